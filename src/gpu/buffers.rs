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
    /// A buffer of at least `bytes` for `arg` (the argument, output or scratch it holds, named
    /// in errors together with the call being served): from the pool when one of its size
    /// class is parked, else freshly made, within [`GpuOptions::memory_budget`](super::GpuOptions::memory_budget).
    /// Where the budget or the device refuses, the pool's parked buffers are freed and the
    /// request tried once more before it fails; a failure leaves the accounting as it was.
    fn buffer(
        &self,
        bytes: u64,
        usage: wgpu::BufferUsages,
        arg: &'static str,
    ) -> Result<PooledBuffer> {
        let class = size_class(bytes);
        if class > self.max_buffer_bytes && bytes > self.max_buffer_bytes {
            return Err(Error::TooLarge {
                op: crate::call::name("allocate"),
                arg,
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
        let memory = &self.pool.memory;
        if let Some(budget) = self.memory_budget {
            if memory.in_use() + memory.cached() + class > budget {
                self.pool.trim();
            }
            if memory.in_use() + class > budget {
                return Err(Error::OutOfMemory {
                    op: crate::call::name("allocate"),
                    arg,
                    bytes: class,
                    in_use: memory.in_use(),
                    budget: Some(budget),
                });
            }
        }
        let create = || {
            self.scoped(arg, class, || {
                self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(arg),
                    size: class,
                    usage,
                    mapped_at_creation: false,
                })
            })
        };
        let buffer = match create() {
            Err(Error::OutOfMemory { .. }) if memory.cached() > 0 => {
                self.pool.trim();
                create()?
            }
            other => other?,
        };
        memory.acquire(class);
        Ok(PooledBuffer::new(buffer, usage, class, self.pool.clone()))
    }

    /// A scratch storage buffer for `len` f32 values, its contents unspecified (NaN when
    /// poisoning).
    pub(crate) fn storage(&self, len: usize) -> Result<PooledBuffer> {
        self.storage_for("scratch", len)
    }

    /// [`storage`](Self::storage) for `arg` (an output, say), named in errors.
    pub(crate) fn storage_for(&self, arg: &'static str, len: usize) -> Result<PooledBuffer> {
        let buffer = self.buffer((len as u64).saturating_mul(4), TENSOR_USAGE, arg)?;
        self.poisoned(buffer, len)
    }

    /// `buffer` with its first `len` f32 elements NaN when the device poisons outputs.
    pub(crate) fn poisoned(&self, buffer: PooledBuffer, len: usize) -> Result<PooledBuffer> {
        if self.poison_outputs {
            self.fill(buffer.buffer(), len as u64, f32::NAN)?;
        }
        Ok(buffer)
    }

    /// A scratch storage buffer of `bytes` (a multiple of 4), contents unspecified.
    pub(crate) fn storage_bytes(&self, bytes: u64) -> Result<PooledBuffer> {
        self.buffer_for("scratch", bytes)
    }

    /// A storage buffer of `bytes` (a multiple of 4) for `arg`, contents unspecified.
    pub(crate) fn buffer_for(&self, arg: &'static str, bytes: u64) -> Result<PooledBuffer> {
        self.buffer(bytes, TENSOR_USAGE, arg)
    }

    /// A storage buffer holding `bytes` (a multiple of 4), the value of `arg`.
    pub(crate) fn upload(&self, arg: &'static str, bytes: &[u8]) -> Result<PooledBuffer> {
        // A lost device drops writes silently: ask first.
        self.check_alive()?;
        let buffer = self.buffer(bytes.len() as u64, TENSOR_USAGE, arg)?;
        self.scoped(arg, 0, || {
            self.queue.write_buffer(buffer.buffer(), 0, bytes)
        })?;
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
        let buffer = Arc::new(self.upload("constant table", bytemuck::cast_slice(&table()))?);
        lock(&self.constants).insert(key.to_string(), buffer.clone());
        Ok(buffer)
    }

    /// A uniform buffer holding `value`.
    pub(crate) fn uniform<T: bytemuck::Pod>(&self, value: &T) -> Result<PooledBuffer> {
        let bytes = bytemuck::bytes_of(value);
        let buffer = self.buffer(bytes.len() as u64, UNIFORM_USAGE, "uniform")?;
        self.scoped("uniform", 0, || {
            self.queue.write_buffer(buffer.buffer(), 0, bytes)
        })?;
        Ok(buffer)
    }

    /// Copies `bytes` bytes out of `buffer` to the host, waiting (boundedly) for the work
    /// that writes it.
    pub(crate) fn read(&self, buffer: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        let staging = self.buffer(bytes, READBACK_USAGE, "read-back")?;
        let mut recording = self.recording();
        recording.copy(buffer, 0, staging.buffer(), 0, bytes);
        recording.submit()?;
        let slice = staging.buffer().slice(..bytes);
        let (sender, receiver) = std::sync::mpsc::channel();
        self.scoped("read-back", bytes, || {
            slice.map_async(wgpu::MapMode::Read, move |result| {
                let _ = sender.send(result);
            })
        })?;
        self.wait()?;
        let mapped = receiver
            .recv_timeout(std::time::Duration::from_secs(1))
            .map_err(|_| Error::device_lost("a read-back never completed"))?;
        if mapped.is_err() {
            self.check_alive()?;
            return Err(Error::gpu("mapping a read-back buffer failed"));
        }
        let data = self.scoped("read-back", bytes, || {
            let data = slice.get_mapped_range().map(|view| view.to_vec());
            staging.buffer().unmap();
            data
        })?;
        data.map_err(|e| Error::gpu(format!("mapping a read-back buffer: {e}")))
    }
}
