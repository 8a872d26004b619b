//! Device buffers: storage for tensors and scratch, uniforms, constant tables kept for the
//! life of the device, and readback — all from the pool, in size classes.

use std::sync::Arc;

use super::pool::{size_class, PooledBuffer};
use super::{lock, GpuDevice};
use crate::{Error, Result};

/// Usage of every tensor buffer: bound as storage, copied in and out.
pub(crate) const TENSOR_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);
const UNIFORM_USAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::UNIFORM.union(wgpu::BufferUsages::COPY_DST);
const READBACK_USAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::MAP_READ.union(wgpu::BufferUsages::COPY_DST);

impl GpuDevice {
    fn buffer(&self, bytes: u64, usage: wgpu::BufferUsages, label: &str) -> Result<PooledBuffer> {
        self.check_alive()?;
        let class = size_class(bytes);
        if class > self.max_buffer_bytes && bytes > self.max_buffer_bytes {
            return Err(Error::TooLarge {
                op: "allocate",
                arg: "buffer",
                bytes,
                limit: self.max_buffer_bytes,
            });
        }
        // Requests near the device limit are not rounded up past it.
        let class = if class > self.max_buffer_bytes {
            bytes.div_ceil(4) * 4
        } else {
            class
        };
        if let Some(buffer) = self.pool.take(usage, class) {
            return Ok(PooledBuffer::new(buffer, usage, class, self.pool.clone()));
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: class,
            usage,
            mapped_at_creation: false,
        });
        if pollster::block_on(scope.pop()).is_some() {
            return Err(Error::OutOfMemory {
                bytes: class,
                label: label.to_string(),
            });
        }
        self.pool.memory.acquire(class);
        Ok(PooledBuffer::new(buffer, usage, class, self.pool.clone()))
    }

    /// A storage buffer for `len` f32 values, its contents unspecified (NaN when poisoning).
    pub(crate) fn storage(&self, len: usize) -> Result<PooledBuffer> {
        let buffer = self.buffer(len as u64 * 4, TENSOR_USAGE, "tensor")?;
        if self.poison_outputs {
            self.fill(buffer.buffer(), len as u64, f32::NAN)?;
        }
        Ok(buffer)
    }

    /// A storage buffer of `bytes` (a multiple of 4), contents unspecified.
    pub(crate) fn storage_bytes(&self, bytes: u64) -> Result<PooledBuffer> {
        self.buffer(bytes, TENSOR_USAGE, "tensor")
    }

    /// A storage buffer holding `bytes` (a multiple of 4).
    pub(crate) fn upload(&self, bytes: &[u8]) -> Result<PooledBuffer> {
        let buffer = self.buffer(bytes.len() as u64, TENSOR_USAGE, "tensor")?;
        self.queue.write_buffer(buffer.buffer(), 0, bytes);
        Ok(buffer)
    }

    /// A read-only buffer of constants (coefficient tables), built and uploaded once per `key`
    /// and kept for the life of the device.
    pub(crate) fn constant<T: bytemuck::Pod>(
        &self,
        key: &str,
        table: impl FnOnce() -> Vec<T>,
    ) -> Result<Arc<PooledBuffer>> {
        if let Some(buffer) = lock(&self.constants).get(key) {
            return Ok(buffer.clone());
        }
        let buffer = Arc::new(self.upload(bytemuck::cast_slice(&table()))?);
        lock(&self.constants).insert(key.to_string(), buffer.clone());
        Ok(buffer)
    }

    /// A uniform buffer holding `value`.
    pub(crate) fn uniform<T: bytemuck::Pod>(&self, value: &T) -> Result<PooledBuffer> {
        let bytes = bytemuck::bytes_of(value);
        let buffer = self.buffer(bytes.len() as u64, UNIFORM_USAGE, "uniform")?;
        self.queue.write_buffer(buffer.buffer(), 0, bytes);
        Ok(buffer)
    }

    /// Copies `bytes` bytes out of `buffer` to the host.
    pub(crate) fn read(&self, buffer: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        let staging = self.buffer(bytes, READBACK_USAGE, "readback")?;
        let mut recording = self.recording();
        recording.copy(buffer, 0, staging.buffer(), 0, bytes);
        recording.submit()?;
        let slice = staging.buffer().slice(..bytes);
        let (sender, receiver) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |result| {
            let _ = sender.send(result);
        });
        self.wait()?;
        receiver
            .recv()
            .map_err(|_| Error::DeviceLost("readback never completed".into()))?
            .map_err(|e| Error::Gpu(format!("mapping a readback buffer: {e}")))?;
        let data = slice
            .get_mapped_range()
            .map_err(|e| Error::Gpu(format!("mapping a readback buffer: {e}")))?
            .to_vec();
        staging.buffer().unmap();
        Ok(data)
    }
}
