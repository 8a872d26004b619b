//! The wgpu side of a [`Context`](crate::Context), written once for every kernel family:
//! the device and its limits ([`GpuDevice`]), shader sources and their includes
//! ([`includes`]), the pipeline cache ([`pipelines`]), buffers ([`buffers`], [`pool`]), the
//! geometry of launches ([`dispatch`]) and the recording of dispatches ([`recording`]).
//!
//! Nothing here knows a [`Tensor`](crate::Tensor): this layer takes buffers and dtypes.

pub(crate) mod buffers;
pub(crate) mod dispatch;
pub(crate) mod includes;
pub(crate) mod pipelines;
pub(crate) mod pool;
pub(crate) mod recording;
pub(crate) mod specialize;

/// The `u32` constants of every shader (`build.rs`), one module per file.
#[allow(dead_code)]
pub(crate) mod shader_constants {
    include!(concat!(env!("OUT_DIR"), "/shader_constants.rs"));
}

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dispatch::BindingLimits;
use pool::{BufferPool, PooledBuffer};

pub(crate) use dispatch::{Bound, Operand};
pub(crate) use pipelines::{shader, Kernel, Shader};
pub(crate) use recording::Recording;

use crate::{Error, Result};

/// Options for [`Context::gpu_with`](crate::Context::gpu_with).
#[derive(Clone, Debug)]
pub struct GpuOptions {
    /// Which adapter to prefer when there are several.
    pub power_preference: wgpu::PowerPreference,
    /// The backends to look for adapters on: by default `Backends::PRIMARY` (Vulkan, Metal,
    /// DX12, WebGPU), the ones the kernels are tested on; a host with none of them gets the
    /// CPU path from [`Context::new`](crate::Context::new), never a silent OpenGL fallback.
    /// `WGPU_BACKEND` in the environment (e.g. `vulkan`, `gl`) overrides it.
    pub backends: wgpu::Backends,
    /// Caps the bytes of one storage binding below the device's own limit, so that the
    /// splitting of large tensors across bindings can be exercised at small sizes.
    pub max_binding_bytes: Option<u64>,
    /// Fills every freshly allocated output with NaN before a kernel writes it, so that an
    /// element the kernel forgets to write shows up in a comparison. For tests.
    pub poison_outputs: bool,
    /// Caps the workgroups per dimension of a dispatch below the device's limit (65 535),
    /// so that grids folded into two dimensions can be exercised with few workgroups.
    pub max_workgroups_per_dimension: Option<u32>,
    /// Split-K: a GEMM whose output has fewer 64×64 tiles than this many cuts its k into
    /// slices computed by separate workgroups (each ≥ 256 long), then sums the partial
    /// products in a fixed order, so that a skinny product such as DoRA's `U = W·Aᵀ`
    /// still fills the device. `None` takes the device's default: 0 (never) on a CPU
    /// adapter such as lavapipe, whose few cores a handful of tiles already keep busy, and
    /// 256 elsewhere. `Some(u32::MAX)` splits every product whose k allows it (for tests).
    pub split_k_below_tiles: Option<u32>,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            backends: wgpu::Backends::PRIMARY,
            max_binding_bytes: None,
            poison_outputs: false,
            max_workgroups_per_dimension: None,
            split_k_below_tiles: None,
        }
    }
}

/// Default of [`GpuOptions::split_k_below_tiles`] on GPUs: about two workgroups per compute
/// unit of a large GPU (an H100 has 132). Not yet sized on real hardware.
pub(crate) const SPLIT_K_BELOW_TILES: u32 = 256;

/// Workgroup size of the element-wise kernels (fill, copy, element-wise).
pub(crate) const ELEMENTWISE_WORKGROUP: u32 = 256;

/// One wgpu device with its queue, limits, pipeline cache, buffer pool and constants.
pub(crate) struct GpuDevice {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub name: String,
    pub device_type: wgpu::DeviceType,
    pub binding: BindingLimits,
    pub max_buffer_bytes: u64,
    pub max_workgroups_per_dim: u32,
    pub poison_outputs: bool,
    /// See [`GpuOptions::split_k_below_tiles`].
    pub split_k_below_tiles: u32,
    pub pool: Arc<BufferPool>,
    pipelines: Mutex<HashMap<pipelines::KernelKey, Arc<Kernel>>>,
    constants: Mutex<HashMap<String, Arc<PooledBuffer>>>,
    lost: Arc<Mutex<Option<String>>>,
}

/// Locks a mutex even if a panicking thread poisoned it: every value guarded here stays
/// consistent across a panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl GpuDevice {
    /// Wraps a device. `owned` devices get our lost-device callback and uncaptured-error
    /// handler; a device shared with an application keeps the application's.
    pub(crate) fn new(
        device: wgpu::Device,
        queue: wgpu::Queue,
        options: &GpuOptions,
        owned: bool,
    ) -> Self {
        let limits = device.limits();
        let info = device.adapter_info();
        let lost = Arc::new(Mutex::new(None));
        if owned {
            let on_lost = lost.clone();
            device.set_device_lost_callback(move |reason, message| {
                *lock(&on_lost) = Some(format!("{reason:?}: {message}"));
            });
            // Every call runs inside error scopes; anything that still escapes them must not
            // abort the application, so it is dropped here rather than panicking.
            device.on_uncaptured_error(Arc::new(|_error: wgpu::Error| {}));
        }
        let max_bytes = limits
            .max_storage_buffer_binding_size
            .min(options.max_binding_bytes.unwrap_or(u64::MAX));
        GpuDevice {
            name: format!("{} ({:?}, {:?})", info.name, info.backend, info.device_type),
            device_type: info.device_type,
            binding: BindingLimits {
                max_bytes: max_bytes - max_bytes % 4,
                offset_alignment: limits.min_storage_buffer_offset_alignment as u64,
            },
            max_buffer_bytes: limits.max_buffer_size,
            max_workgroups_per_dim: limits
                .max_compute_workgroups_per_dimension
                .min(options.max_workgroups_per_dimension.unwrap_or(u32::MAX))
                .max(1),
            poison_outputs: options.poison_outputs,
            split_k_below_tiles: options
                .split_k_below_tiles
                .unwrap_or(match info.device_type {
                    wgpu::DeviceType::Cpu => 0,
                    _ => SPLIT_K_BELOW_TILES,
                }),
            pool: Arc::new(BufferPool::new()),
            pipelines: Mutex::new(HashMap::new()),
            constants: Mutex::new(HashMap::new()),
            lost,
            device,
            queue,
        }
    }

    pub(crate) fn check_alive(&self) -> Result<()> {
        match lock(&self.lost).as_ref() {
            Some(message) => Err(Error::DeviceLost(message.clone())),
            None => Ok(()),
        }
    }

    /// Blocks until the queue has finished everything submitted so far.
    pub(crate) fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::DeviceLost(e.to_string()))?;
        self.check_alive()
    }
}
