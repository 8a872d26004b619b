//! [`Tensor`]: an f32, row-major array on a context's device.

use std::sync::Arc;

use crate::context::{Backend, Context};
use crate::gpu::pool::{MemoryTracker, PooledBuffer};
use crate::{Error, Result};

/// An f32 array, row-major, living on its [`Context`]'s device: in device memory on a GPU
/// context, in host memory on the CPU context.
///
/// Uploading ([`Context::tensor`]) and reading back ([`Tensor::to_vec`]) are the only host
/// round trips; operations take tensors and return tensors on the same device.
pub struct Tensor {
    ctx: Context,
    shape: Vec<usize>,
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
    pub(crate) fn new(ctx: Context, shape: Vec<usize>, storage: Storage) -> Tensor {
        Tensor {
            ctx,
            shape,
            storage,
        }
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

    /// Copies the elements to the host, row-major, waiting for pending kernels.
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        match &self.storage {
            Storage::Host(host) => Ok(host.data.clone()),
            Storage::Device(buffer) => {
                let gpu = self.gpu()?;
                let bytes = gpu.read(buffer.buffer(), self.len() as u64 * 4)?;
                Ok(bytemuck::pod_collect_to_vec(&bytes))
            }
        }
    }

    /// The same data under another shape with the same number of elements (a copy on the
    /// device).
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let len = crate::context::element_count("reshape", "shape", shape)?;
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
            Storage::Host(host) => match &*self.ctx.backend {
                Backend::Cpu(memory) => Storage::host(host.data.clone(), memory),
                Backend::Gpu(_) => unreachable!("host storage only on the CPU path"),
            },
            Storage::Device(buffer) => {
                let gpu = self.gpu()?;
                let copy = gpu.storage(len)?;
                gpu.submit(|encoder| {
                    encoder.copy_buffer_to_buffer(
                        buffer.buffer(),
                        0,
                        copy.buffer(),
                        0,
                        len as u64 * 4,
                    );
                    Ok(())
                })?;
                Storage::Device(copy)
            }
        };
        Ok(Tensor::new(self.ctx.clone(), shape.to_vec(), storage))
    }

    /// The elements on the CPU path.
    pub(crate) fn host(&self) -> &[f32] {
        match &self.storage {
            Storage::Host(host) => &host.data,
            Storage::Device(_) => panic!("host() on a device tensor: a dispatch bug"),
        }
    }

    /// The buffer on the GPU path.
    pub(crate) fn buffer(&self) -> &wgpu::Buffer {
        match &self.storage {
            Storage::Device(buffer) => buffer.buffer(),
            Storage::Host(_) => panic!("buffer() on a host tensor: a dispatch bug"),
        }
    }

    fn gpu(&self) -> Result<&crate::gpu::GpuDevice> {
        self.ctx
            .gpu_device()
            .ok_or_else(|| Error::Gpu("device tensor on a CPU context".into()))
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor({:?} on {})", self.shape, self.ctx.device_name())
    }
}
