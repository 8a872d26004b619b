//! Buffer pool with byte accounting.
//!
//! Buffers are rounded up to a size class and, when their owner drops them, kept for the
//! next request of the same class and usage instead of being freed. Reuse is safe without
//! fences because wgpu orders `queue.write_buffer` and every submission on one queue.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Bytes held by live buffers, their high-water mark, and bytes parked in the pool.
#[derive(Debug, Default)]
pub(crate) struct MemoryTracker {
    in_use: AtomicU64,
    peak: AtomicU64,
    cached: AtomicU64,
}

impl MemoryTracker {
    pub(crate) fn acquire(&self, bytes: u64) {
        let now = self.in_use.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }
    pub(crate) fn release(&self, bytes: u64) {
        self.in_use.fetch_sub(bytes, Ordering::Relaxed);
    }
    pub(crate) fn in_use(&self) -> u64 {
        self.in_use.load(Ordering::Relaxed)
    }
    pub(crate) fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
    pub(crate) fn cached(&self) -> u64 {
        self.cached.load(Ordering::Relaxed)
    }
    pub(crate) fn reset_peak(&self) {
        self.peak.store(self.in_use(), Ordering::Relaxed);
    }
}

/// Rounds a request up to its size class: multiples of 256 B up to 4 KiB, then four classes
/// per power of two, so a pooled buffer wastes at most a quarter of its size.
pub(crate) fn size_class(bytes: u64) -> u64 {
    const SMALL: u64 = 4096;
    if bytes <= SMALL {
        return bytes.max(1).div_ceil(256) * 256;
    }
    let octave = 1u64 << (63 - (bytes - 1).leading_zeros()); // largest power of two < bytes
    let step = octave / 4;
    bytes.div_ceil(step) * step
}

type PoolKey = (u32, u64); // (usage bits, class bytes)

/// Free buffers by usage and size class.
pub(crate) struct BufferPool {
    free: Mutex<HashMap<PoolKey, Vec<wgpu::Buffer>>>,
    pub(crate) memory: MemoryTracker,
}

impl BufferPool {
    pub(crate) fn new() -> Self {
        BufferPool {
            free: Mutex::new(HashMap::new()),
            memory: MemoryTracker::default(),
        }
    }

    /// A parked buffer of this class and usage, if there is one.
    pub(crate) fn take(&self, usage: wgpu::BufferUsages, class: u64) -> Option<wgpu::Buffer> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let buffer = free.get_mut(&(usage.bits(), class))?.pop()?;
        self.memory.cached.fetch_sub(class, Ordering::Relaxed);
        self.memory.acquire(class);
        Some(buffer)
    }

    /// Parks a buffer for reuse.
    pub(crate) fn give_back(&self, buffer: wgpu::Buffer, usage: wgpu::BufferUsages, class: u64) {
        self.memory.release(class);
        self.memory.cached.fetch_add(class, Ordering::Relaxed);
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        free.entry((usage.bits(), class)).or_default().push(buffer);
    }

    /// Frees every parked buffer.
    pub(crate) fn trim(&self) {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        free.clear();
        self.memory.cached.store(0, Ordering::Relaxed);
    }
}

/// A buffer on loan from the pool; it goes back when dropped. Or a buffer another library
/// owns (burn's allocator, through the `burn` feature), kept alive by `Home::Foreign` and
/// never pooled or counted here.
pub(crate) struct PooledBuffer {
    buffer: Option<wgpu::Buffer>,
    home: Home,
}

enum Home {
    Pool {
        usage: wgpu::BufferUsages,
        class: u64,
        pool: Arc<BufferPool>,
    },
    #[cfg_attr(not(feature = "burn"), allow(dead_code))]
    Foreign(Box<dyn std::any::Any + Send + Sync>),
}

impl PooledBuffer {
    pub(crate) fn new(
        buffer: wgpu::Buffer,
        usage: wgpu::BufferUsages,
        class: u64,
        pool: Arc<BufferPool>,
    ) -> Self {
        PooledBuffer {
            buffer: Some(buffer),
            home: Home::Pool { usage, class, pool },
        }
    }

    /// A buffer owned elsewhere, valid while `owner` lives (which this keeps).
    #[cfg(feature = "burn")]
    pub(crate) fn foreign(
        buffer: wgpu::Buffer,
        owner: Box<dyn std::any::Any + Send + Sync>,
    ) -> Self {
        PooledBuffer {
            buffer: Some(buffer),
            home: Home::Foreign(owner),
        }
    }

    /// The owner of a foreign buffer.
    #[cfg(feature = "burn")]
    pub(crate) fn owner(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        match &self.home {
            Home::Foreign(owner) => Some(owner.as_ref()),
            Home::Pool { .. } => None,
        }
    }

    pub(crate) fn buffer(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("present until drop")
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        if let (Some(buffer), Home::Pool { usage, class, pool }) = (self.buffer.take(), &self.home)
        {
            pool.give_back(buffer, *usage, *class);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::size_class;

    #[test]
    fn size_classes_cover_the_request_and_waste_at_most_a_quarter() {
        for bytes in (1..100_000u64)
            .step_by(37)
            .chain([4096, 4097, 1 << 20, (1 << 20) + 1])
        {
            let class = size_class(bytes);
            assert!(class >= bytes, "{bytes} -> {class}");
            assert!(class % 4 == 0);
            if bytes > 4096 {
                assert!(
                    class as f64 <= bytes as f64 * 1.25 + 1.0,
                    "{bytes} -> {class}"
                );
            }
        }
        assert_eq!(size_class(1 << 20), 1 << 20);
    }
}
