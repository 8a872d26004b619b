//! [`Tensor`]: an f32, row-major array on a context's device.

use std::sync::Arc;

use crate::context::Context;
use crate::gpu::pool::{MemoryTracker, PooledBuffer};
use crate::{Error, Result};

/// How a tensor's elements are stored. Arithmetic is f32 whatever the storage: half-precision
/// tensors are widened when a kernel reads them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// IEEE binary32.
    F32,
    /// IEEE binary16 (`half::f16`), stored two per 32-bit word on the GPU.
    F16,
    /// bfloat16 (`half::bf16`): the top 16 bits of an f32, stored two per 32-bit word.
    BF16,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
        }
    }

    /// `x` rounded to the nearest value this dtype holds (ties to even).
    pub fn round(self, x: f32) -> f32 {
        match self {
            DType::F32 => x,
            DType::F16 => half::f16::from_f32(x).to_f32(),
            DType::BF16 => half::bf16::from_f32(x).to_f32(),
        }
    }

    /// Bytes of a device buffer holding `len` elements (whole 32-bit words).
    pub(crate) fn buffer_bytes(self, len: usize) -> u64 {
        (len * self.size()).div_ceil(4) as u64 * 4
    }

    /// The elements' device representation, padded to whole 32-bit words.
    pub(crate) fn encode(self, data: &[f32]) -> Vec<u8> {
        let mut bytes: Vec<u8> = match self {
            DType::F32 => bytemuck::cast_slice(data).to_vec(),
            DType::F16 => data
                .iter()
                .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
                .collect(),
            DType::BF16 => data
                .iter()
                .flat_map(|&x| half::bf16::from_f32(x).to_le_bytes())
                .collect(),
        };
        bytes.resize(self.buffer_bytes(data.len()) as usize, 0);
        bytes
    }

    /// The first `len` elements of a device representation, as f32.
    pub(crate) fn decode(self, bytes: &[u8], len: usize) -> Vec<f32> {
        let halves = || bytes.chunks_exact(2).take(len).map(|b| [b[0], b[1]]);
        match self {
            DType::F32 => bytemuck::pod_collect_to_vec(&bytes[..len * 4]),
            DType::F16 => halves()
                .map(|b| half::f16::from_le_bytes(b).to_f32())
                .collect(),
            DType::BF16 => halves()
                .map(|b| half::bf16::from_le_bytes(b).to_f32())
                .collect(),
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
        })
    }
}

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
            Storage::Host(host) => Storage::host(host.data.clone(), &host.memory),
            Storage::Device(buffer) => {
                let gpu = self.gpu()?;
                let bytes = self.dtype.buffer_bytes(len);
                let copy = gpu.storage_bytes(bytes)?;
                gpu.submit(|encoder| {
                    encoder.copy_buffer_to_buffer(buffer.buffer(), 0, copy.buffer(), 0, bytes);
                    Ok(())
                })?;
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
        write!(
            f,
            "Tensor({:?} {} on {})",
            self.shape,
            self.dtype,
            self.ctx.device_name()
        )
    }
}
