//! [`Tensor`]: a row-major array on a context's device, and the methods of [`Context`] that
//! make tensors.

use std::sync::Arc;

use crate::call::Call;

use crate::context::{Backend, Context};
use crate::dtype::DType;
use crate::gpu::pool::{MemoryTracker, PooledBuffer};
use crate::gpu::Operand;
use crate::{Error, Result};

/// An array, row-major, living on its [`Context`]'s device: in device memory on a GPU
/// context, in host memory on the CPU context. Elements are f32 unless the tensor was made
/// with [`Context::tensor_as`] (or `tensor_f16`, `tensor_bf16`): see [`DType`].
///
/// Uploading ([`Context::tensor`]) and reading back ([`Tensor::to_vec`]) are the only host
/// round trips; operations take tensors and return tensors on the same device.
pub struct Tensor {
    ctx: Context,
    shape: Vec<usize>,
    dtype: DType,
    storage: Storage,
}

pub(crate) enum Storage {
    Host(HostBuffer),
    Device(PooledBuffer),
}

/// Host memory of a CPU-path tensor, counted in its context's byte accounting.
pub(crate) struct HostBuffer {
    data: Vec<f32>,
    bytes: u64,
    memory: Arc<MemoryTracker>,
}

impl Drop for HostBuffer {
    fn drop(&mut self) {
        self.memory.release(self.bytes);
    }
}

impl Storage {
    pub(crate) fn host(data: Vec<f32>, memory: &Arc<MemoryTracker>) -> Storage {
        let bytes = std::mem::size_of_val(data.as_slice()) as u64;
        memory.acquire(bytes);
        Storage::Host(HostBuffer {
            data,
            bytes,
            memory: memory.clone(),
        })
    }
}

impl Tensor {
    pub(crate) fn new(ctx: Context, shape: Vec<usize>, dtype: DType, storage: Storage) -> Tensor {
        Tensor {
            ctx,
            shape,
            dtype,
            storage,
        }
    }

    /// An f32 tensor around a device buffer a kernel computed.
    pub(crate) fn from_device(ctx: &Context, buffer: PooledBuffer, shape: &[usize]) -> Tensor {
        Tensor::new(
            ctx.clone(),
            shape.to_vec(),
            DType::F32,
            Storage::Device(buffer),
        )
    }

    /// How the elements are stored.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The dimensions, outermost first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of elements (the product of the shape).
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Always false: a tensor has at least one element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The context the tensor lives on.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// Copies the elements to the host as f32 (exactly, whatever the dtype), row-major,
    /// waiting for pending kernels.
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        let _call = Call::enter("Tensor::to_vec");
        match &self.storage {
            Storage::Host(host) => Ok(host.data.clone()),
            Storage::Device(buffer) => {
                let gpu = self.gpu()?;
                let bytes = gpu.read(buffer.buffer(), self.dtype.buffer_bytes(self.len()))?;
                Ok(self.dtype.decode(&bytes, self.len()))
            }
        }
    }

    /// The same data under another shape with the same number of elements (a copy on the
    /// device).
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let _call = Call::enter("reshape");
        let len = element_count("reshape", "shape", shape)?;
        if len != self.len() {
            return Err(Error::Shape {
                op: "reshape",
                message: format!(
                    "cannot view {:?} ({} elements) as {:?} ({len} elements)",
                    self.shape,
                    self.len(),
                    shape
                ),
            });
        }
        let storage = match &self.storage {
            Storage::Host(host) => Storage::host(host.data.clone(), &host.memory),
            Storage::Device(buffer) => {
                let gpu = self.gpu()?;
                let bytes = self.dtype.buffer_bytes(len);
                let copy = gpu.buffer_for("output", bytes)?;
                let mut recording = gpu.recording();
                recording.copy(buffer.buffer(), 0, copy.buffer(), 0, bytes);
                recording.submit()?;
                Storage::Device(copy)
            }
        };
        Ok(Tensor::new(
            self.ctx.clone(),
            shape.to_vec(),
            self.dtype,
            storage,
        ))
    }

    /// The elements on the CPU path.
    pub(crate) fn host(&self) -> &[f32] {
        match &self.storage {
            Storage::Host(host) => &host.data,
            Storage::Device(_) => panic!("host() on a device tensor: a dispatch bug"),
        }
    }

    /// The device buffer, on the GPU path.
    #[cfg(feature = "burn")]
    pub(crate) fn device_buffer(&self) -> Option<&PooledBuffer> {
        match &self.storage {
            Storage::Device(buffer) => Some(buffer),
            Storage::Host(_) => None,
        }
    }

    /// The buffer on the GPU path.
    pub(crate) fn buffer(&self) -> &wgpu::Buffer {
        match &self.storage {
            Storage::Device(buffer) => buffer.buffer(),
            Storage::Host(_) => panic!("buffer() on a host tensor: a dispatch bug"),
        }
    }

    /// This tensor as an operand of a launch, split with its rows of `row_len` elements.
    pub(crate) fn rows(&self, arg: &'static str, row_len: usize) -> Operand<'_> {
        Operand::rows(arg, self.buffer(), self.dtype, row_len)
    }

    /// This tensor as an operand bound whole (all its elements) in every block.
    pub(crate) fn all(&self, arg: &'static str) -> Operand<'_> {
        Operand::range(arg, self.buffer(), self.dtype, 0, self.len())
    }

    /// The binding name and dtype of each tensor, for [`GpuDevice::kernel_for`](crate::gpu::GpuDevice::kernel_for).
    pub(crate) fn operands<'a, const N: usize>(
        names: [&'a str; N],
        tensors: [&Tensor; N],
    ) -> Vec<(&'a str, DType)> {
        names
            .into_iter()
            .zip(tensors)
            .map(|(n, t)| (n, t.dtype()))
            .collect()
    }

    fn gpu(&self) -> Result<&crate::gpu::GpuDevice> {
        self.ctx
            .gpu_device()
            .ok_or_else(|| Error::gpu("device tensor on a CPU context"))
    }
}

impl Context {
    /// An f32 tensor holding a copy of `data`, row-major with `shape`.
    pub fn tensor(&self, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        let _call = crate::call::Call::enter("tensor");
        self.tensor_as(data, shape, DType::F32)
    }

    /// An f16 tensor holding a copy of `data`.
    pub fn tensor_f16(&self, data: &[half::f16], shape: &[usize]) -> Result<Tensor> {
        let _call = crate::call::Call::enter("tensor_f16");
        let wide: Vec<f32> = data.iter().map(|x| x.to_f32()).collect();
        self.tensor_as(&wide, shape, DType::F16)
    }

    /// A bf16 tensor holding a copy of `data`.
    pub fn tensor_bf16(&self, data: &[half::bf16], shape: &[usize]) -> Result<Tensor> {
        let _call = crate::call::Call::enter("tensor_bf16");
        let wide: Vec<f32> = data.iter().map(|x| x.to_f32()).collect();
        self.tensor_as(&wide, shape, DType::BF16)
    }

    /// A tensor stored as `dtype`, holding `data` rounded to it (to nearest, ties to even).
    pub fn tensor_as(&self, data: &[f32], shape: &[usize], dtype: DType) -> Result<Tensor> {
        let _call = Call::enter("tensor");
        let expected = element_count("tensor", "shape", shape)?;
        if data.len() != expected {
            return Err(Error::DataLength {
                len: data.len(),
                shape: shape.to_vec(),
                expected,
            });
        }
        let storage = match &*self.backend {
            Backend::Cpu(memory) => {
                Storage::host(data.iter().map(|&x| dtype.round(x)).collect(), memory)
            }
            Backend::Gpu(gpu) => Storage::Device(gpu.upload("data", &dtype.encode(data))?),
        };
        Ok(Tensor::new(self.clone(), shape.to_vec(), dtype, storage))
    }

    /// A tensor of zeros.
    pub fn zeros(&self, shape: &[usize]) -> Result<Tensor> {
        let _call = Call::enter("zeros");
        let len = element_count("zeros", "shape", shape)?;
        let storage = match &*self.backend {
            Backend::Cpu(memory) => Storage::host(host_filled("zeros", len, 0.0)?, memory),
            Backend::Gpu(gpu) => {
                let buffer = gpu.storage_for("shape", len)?;
                let mut recording = gpu.recording();
                recording.clear(buffer.buffer());
                recording.submit()?;
                Storage::Device(buffer)
            }
        };
        Ok(Tensor::new(
            self.clone(),
            shape.to_vec(),
            DType::F32,
            storage,
        ))
    }

    /// An output tensor whose every element the caller's kernel will write (NaN first when
    /// poisoning, so that a missed element is caught).
    pub(crate) fn output(&self, shape: &[usize]) -> Result<Tensor> {
        let len = element_count("output", "shape", shape)?;
        let storage = match &*self.backend {
            Backend::Cpu(memory) => Storage::host(host_filled("output", len, f32::NAN)?, memory),
            Backend::Gpu(gpu) => {
                // Inside `burn::Bridge::run`, outputs come from burn's memory.
                #[cfg(feature = "burn")]
                let foreign = crate::burn::output(self, len);
                #[cfg(not(feature = "burn"))]
                let foreign: Option<Result<PooledBuffer>> = None;
                Storage::Device(match foreign {
                    Some(buffer) => gpu.poisoned(buffer?, len)?,
                    None => gpu.storage_for("output", len)?,
                })
            }
        };
        Ok(Tensor::new(
            self.clone(),
            shape.to_vec(),
            DType::F32,
            storage,
        ))
    }

    /// An f32 tensor holding the f64 result of a CPU-path computation, rounded.
    pub(crate) fn host_result(&self, data: Vec<f64>, shape: &[usize]) -> Result<Tensor> {
        let data: Vec<f32> = data.into_iter().map(|x| x as f32).collect();
        match &*self.backend {
            Backend::Cpu(memory) => Ok(Tensor::new(
                self.clone(),
                shape.to_vec(),
                DType::F32,
                Storage::host(data, memory),
            )),
            Backend::Gpu(_) => self.tensor(&data, shape),
        }
    }

    /// `Err` unless `tensor` was made by this context and has the shape `want`, which is
    /// `what` (e.g. "the output's shape") for the message.
    pub(crate) fn check_shape(
        &self,
        op: &'static str,
        arg: &'static str,
        tensor: &Tensor,
        want: &[usize],
        what: &str,
    ) -> Result<()> {
        self.check_owns(op, arg, tensor)?;
        if tensor.shape() != want {
            return Err(Error::Shape {
                op,
                message: format!("`{arg}` {:?} must have {what}, {want:?}", tensor.shape()),
            });
        }
        Ok(())
    }

    /// `Err` unless `tensor` was made by this context.
    pub(crate) fn check_owns(
        &self,
        op: &'static str,
        arg: &'static str,
        tensor: &Tensor,
    ) -> Result<()> {
        if self.same_as(tensor.context()) {
            Ok(())
        } else {
            Err(Error::ContextMismatch {
                op,
                arg,
                arg_device: tensor.context().describe(),
                device: self.describe(),
            })
        }
    }
}

/// `len` copies of `value` in host memory, or `Err(TooLarge)` where the allocator refuses
/// (an Err, not an abort).
fn host_filled(op: &'static str, len: usize, value: f32) -> Result<Vec<f32>> {
    let mut data = crate::op::host_vec(op, "shape", len)?;
    data.resize(len, value);
    Ok(data)
}

/// The number of elements of `shape`; `Err` when it is zero or overflows.
pub(crate) fn element_count(op: &'static str, arg: &'static str, shape: &[usize]) -> Result<usize> {
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::Shape {
            op,
            message: format!("`{arg}` {shape:?} has more elements than memory can address"),
        })?;
    if count == 0 {
        return Err(Error::Empty {
            op,
            arg,
            shape: shape.to_vec(),
        });
    }
    Ok(count)
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Tensor({:?} {} on {})",
            self.shape,
            self.dtype,
            self.ctx.device_name()
        )
    }
}
