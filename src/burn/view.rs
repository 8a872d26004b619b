//! Burn tensors as our tensors and back, over the same wgpu buffers.

use std::cell::RefCell;

use ::burn::backend::fusion::{get_client, NoOp};
use ::burn::backend::ir::{InitOperationIr, OperationIr};
use ::burn::backend::{DispatchDevice, Wgpu};
use ::burn::tensor::{DType as BurnDType, Shape, Tensor as BurnTensor};
use burn_cubecl::cubecl::wgpu::{AutoCompiler, WgpuServer};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::CubeBackend;

use super::Bridge;
use crate::gpu::pool::PooledBuffer;
use crate::tensor::Storage;
use crate::{DType, Error, Result, Tensor};

fn held(buffer: &PooledBuffer) -> Option<&Held> {
    buffer.owner()?.downcast_ref::<Held>()
}

/// What keeps a burn allocation alive and in place while our tensor uses its buffer: the
/// tensor itself (its handle: burn will not reuse or move the memory while it is held).
pub(super) type Fused = ::burn::backend::tensor::FloatTensor<Wgpu>;

struct Held {
    tensor: CubeTensor,
}

thread_local! {
    /// The bridge whose burn memory this thread's outputs come from, inside [`Bridge::run`].
    static OUTPUTS: RefCell<Vec<Bridge>> = const { RefCell::new(Vec::new()) };
}

/// Installs a bridge as this thread's output allocator until dropped.
pub(super) struct Outputs;

impl Outputs {
    pub(super) fn install(bridge: &Bridge) -> Outputs {
        OUTPUTS.with(|outputs| outputs.borrow_mut().push(bridge.clone()));
        Outputs
    }
}

impl Drop for Outputs {
    fn drop(&mut self) {
        OUTPUTS.with(|outputs| outputs.borrow_mut().pop());
    }
}

/// An output of `len` f32 elements in burn's memory, when this thread runs inside
/// [`Bridge::run`] of a bridge on `ctx`'s device; `None` otherwise.
pub(crate) fn output(ctx: &crate::Context, len: usize) -> Option<Result<PooledBuffer>> {
    let bridge = OUTPUTS.with(|outputs| outputs.borrow().last().cloned())?;
    if !bridge.ctx.same_as(ctx) {
        return None;
    }
    Some(bridge.allocate(len))
}

impl Bridge {
    fn cube_device(&self) -> Result<burn_cubecl::CubeDevice> {
        match self.device.clone().without_autodiff().as_dispatch() {
            DispatchDevice::Cube(device) => Ok(device.clone()),
            #[allow(unreachable_patterns)]
            _ => Err(Error::gpu("the bridge's burn device is not a wgpu device")),
        }
    }

    /// `len` f32 elements of burn's memory, as a buffer our kernels write.
    fn allocate(&self, len: usize) -> Result<PooledBuffer> {
        let device = self.cube_device()?;
        let client = device.client();
        let bytes = len.checked_mul(4).ok_or_else(|| Error::TooLarge {
            op: crate::call::name("allocate"),
            arg: "output",
            bytes: u64::MAX,
            limit: u64::MAX,
        })?;
        let handle = client.empty(bytes);
        let tensor =
            CubeTensor::new_contiguous(client, device, Shape::from([len]), handle, BurnDType::F32);
        self.hold(tensor)
    }

    /// Our buffer over a contiguous burn tensor, flushed so that what computes it is
    /// submitted before anything of ours.
    fn hold(&self, tensor: CubeTensor) -> Result<PooledBuffer> {
        let resource = tensor
            .client
            .get_resource::<WgpuServer<AutoCompiler>>(tensor.handle.clone())
            .map_err(|e| Error::gpu(format!("burn's buffer: {e:?}")))?;
        let (buffer, offset) = {
            let r = resource.resource();
            (r.buffer.clone(), r.offset)
        };
        drop(resource);
        if offset != 0 {
            return Err(Error::gpu(format!(
                "burn placed the tensor at byte {offset} of its buffer; a bridge's device uses exclusive pages (one buffer per tensor)"
            )));
        }
        tensor
            .client
            .flush()
            .map_err(|e| Error::gpu(format!("flushing burn's work: {e:?}")))?;
        Ok(PooledBuffer::foreign(buffer, Box::new(Held { tensor })))
    }

    /// A contiguous burn float tensor (f32 or f16) on this bridge's device as our [`Tensor`],
    /// reading burn's buffer in place (a strided or sliced one is made contiguous by burn
    /// first). On an autodiff device the tensor's value is viewed (its graph is not followed).
    pub fn view<const D: usize>(&self, tensor: BurnTensor<D>) -> Result<Tensor> {
        let _call = crate::call::Call::enter("burn::Bridge::view");
        let tensor = if tensor.device().is_autodiff() {
            tensor.inner()
        } else {
            tensor
        };
        if tensor.device() != self.device.clone().without_autodiff() {
            return Err(Error::InvalidArgument {
                op: "burn::Bridge::view",
                arg: "tensor",
                message: format!(
                    "is on {:?}, not on the bridge's device {:?}",
                    tensor.device(),
                    self.device
                ),
            });
        }
        let dtype = match tensor.dtype() {
            BurnDType::F32 => DType::F32,
            BurnDType::F16 => DType::F16,
            other => {
                return Err(Error::InvalidArgument {
                    op: "burn::Bridge::view",
                    arg: "tensor",
                    message: format!("is {other:?}; our kernels read F32 and F16 burn tensors"),
                })
            }
        };
        let fused = tensor
            .try_into_primitive::<Wgpu>()
            .map_err(|e| Error::gpu(format!("not a wgpu tensor: {e:?}")))?;
        self.view_fused(fused, dtype)
    }

    /// [`view`](Self::view) of a fusion primitive already checked to be this bridge's.
    pub(super) fn view_fused(&self, fused: Fused, dtype: DType) -> Result<Tensor> {
        let shape = fused.shape.to_vec();
        let client = fused.client.clone();
        let cube = into_contiguous(client.resolve_tensor_float::<CubeBackend>(fused));
        let buffer = self.hold(cube)?;
        Ok(Tensor::new(
            self.ctx.clone(),
            shape,
            dtype,
            Storage::Device(buffer),
        ))
    }

    /// Our f32 tensor as a burn tensor on this bridge's device: without a copy when it was
    /// made inside [`run`](Self::run) (its buffer is burn's), else copied once on the device.
    pub fn to_burn<const D: usize>(&self, tensor: Tensor) -> Result<BurnTensor<D>> {
        let _call = crate::call::Call::enter("burn::Bridge::to_burn");
        if !self.ctx.same_as(tensor.context()) {
            return Err(Error::InvalidArgument {
                op: "burn::Bridge::to_burn",
                arg: "tensor",
                message: "belongs to another context than the bridge's".into(),
            });
        }
        if tensor.shape().len() != D || tensor.dtype() != DType::F32 {
            return Err(Error::InvalidArgument {
                op: "burn::Bridge::to_burn",
                arg: "tensor",
                message: format!(
                    "is {:?} {:?}, not an f32 tensor of rank {D}",
                    tensor.dtype(),
                    tensor.shape()
                ),
            });
        }
        let out = self.to_fused(tensor)?;
        let tensor = BurnTensor::<D>::from_primitive::<Wgpu>(out);
        Ok(if self.device.is_autodiff() {
            BurnTensor::from_inner(tensor)
        } else {
            tensor
        })
    }

    /// Our f32 tensor as a fusion primitive (without a copy when burn allocated it).
    pub(super) fn to_fused(&self, tensor: Tensor) -> Result<Fused> {
        let shape = Shape::from(tensor.shape().to_vec());
        let cube = match tensor.device_buffer().and_then(held) {
            Some(held) => held.tensor.clone(),
            None => {
                // Made outside `run`: one copy on the device into burn's memory.
                let gpu = self
                    .ctx
                    .gpu_device()
                    .ok_or_else(|| Error::gpu("a CPU context"))?;
                let copy = self.allocate(tensor.len())?;
                let from = tensor
                    .device_buffer()
                    .ok_or_else(|| Error::gpu("a host tensor"))?;
                let mut recording = gpu.recording();
                recording.copy(from.buffer(), 0, copy.buffer(), 0, tensor.len() as u64 * 4);
                recording.submit()?;
                held(&copy)
                    .map(|h| h.tensor.clone())
                    .ok_or_else(|| Error::gpu("not burn's"))?
            }
        };
        let cube = CubeTensor::new_contiguous(
            cube.client,
            cube.device,
            shape.clone(),
            cube.handle,
            BurnDType::F32,
        );
        let client = get_client::<CubeBackend>(&cube.device);
        let handle = <CubeBackend as ::burn::backend::ir::BackendIr>::float_tensor_handle(cube);
        let desc = InitOperationIr::create(shape, BurnDType::F32, || {
            client.register_tensor_handle(handle)
        });
        let out = client
            .register(
                ::burn::backend::fusion::stream::StreamId::current(),
                OperationIr::Init(desc),
                NoOp::<CubeBackend>::new(),
            )
            .remove(0);
        Ok(out)
    }
}
