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
pub(crate) mod template;
pub(crate) mod tune;

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
pub use tune::Tuning;

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
    /// Caps the device memory the context holds, live tensors and pooled buffers together:
    /// an allocation past it first frees the pool's cached buffers, then fails with
    /// [`Error::OutOfMemory`] naming the call. `None`: only the device's own memory limits.
    pub memory_budget: Option<u64>,
    /// The longest a call waits for the device (a read-back, [`Context::synchronize`](crate::Context::synchronize))
    /// before it gives up with [`Error::DeviceLost`]: a GPU that stops answering is as good as
    /// lost. A lost device is noticed within a tenth of a second whatever this is.
    pub wait_timeout: std::time::Duration,
    /// How kernels with several forms (the GEMM's tiles and register blocks) choose one on
    /// this adapter: by default timed once per shape class and remembered in a cache file,
    /// or each kernel's default form where the environment has `WGKERNELS_TUNE=off`.
    pub tuning: Tuning,
    /// Use subgroup operations (`subgroupAdd`, …) where the adapter offers
    /// `wgpu::Features::SUBGROUP`: the reductions of `shaders/util/workgroup_sum.inc.wgsl`
    /// then run in their subgroup form (`subgroup_sum.inc.wgsl`). `false` keeps the
    /// workgroup-memory form everywhere, so that both can be tested on one adapter. Results
    /// agree to rounding. Default `true`.
    pub subgroups: bool,
    /// The most coefficient terms an SO(3) product table (`cg_product`, Gaunt `Direct`, their
    /// gradients, the weighted product) is written out for as FMAs with literal coefficients
    /// (the products' `unrolled` form, the default on CPU adapters): at the default 4096,
    /// 0..4 ⊗ 0..4 → 0..8 and smaller. A larger table takes longer to compile on first use
    /// (lavapipe, cold: CG 0..5 ⊗ 0..5 → 0..5, 5265 terms, 1.8 s; 0..6, 11 896 terms, 4.3 s;
    /// 0..7, 23 902 terms, 11.5 s; Mesa caches it on disk for later processes), then runs
    /// 37–68× faster than the looping forms there: worth raising for long runs at high degree.
    pub unrolled_max_terms: usize,
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
            memory_budget: None,
            wait_timeout: std::time::Duration::from_secs(300),
            tuning: Tuning::default(),
            subgroups: true,
            unrolled_max_terms: UNROLLED_MAX_TERMS,
        }
    }
}

impl GpuOptions {
    /// The instance on [`backends`](Self::backends) and its preferred adapter;
    /// `Err(NoAdapter)` where there is none.
    pub(crate) fn adapter(&self) -> Result<(wgpu::Instance, wgpu::Adapter)> {
        let mut instance = wgpu::InstanceDescriptor::new_without_display_handle();
        instance.backends = self.backends;
        let instance = wgpu::Instance::new(instance.with_env());
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: self.power_preference,
            force_fallback_adapter: false,
            compatible_surface: None,
            apply_limit_buckets: false,
        }))
        .map_err(|_| Error::NoAdapter)?;
        Ok((instance, adapter))
    }
}

/// Default of [`GpuOptions::split_k_below_tiles`] on GPUs: about two workgroups per compute
/// unit of a large GPU (an H100 has 132). Not yet sized on real hardware.
pub(crate) const SPLIT_K_BELOW_TILES: u32 = 256;

/// Default of [`GpuOptions::unrolled_max_terms`]: 0..4 ⊗ 0..4 → 0..8 (3741 CG terms) and
/// smaller are written out. Past it the driver's compile time (lavapipe: seconds) outgrows
/// what the form saves in a short run, and the looping forms run.
pub(crate) const UNROLLED_MAX_TERMS: usize = 4096;

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
    /// See [`GpuOptions::memory_budget`].
    pub memory_budget: Option<u64>,
    /// See [`GpuOptions::wait_timeout`].
    pub wait_timeout: std::time::Duration,
    /// The forms chosen for kernels that have several ([`GpuOptions::tuning`]).
    pub tuner: tune::Tuner,
    /// Whether kernels use their subgroup forms: the device has `wgpu::Features::SUBGROUP`
    /// and [`GpuOptions::subgroups`] allows it.
    pub subgroups: bool,
    /// See [`GpuOptions::unrolled_max_terms`].
    pub unrolled_max_terms: usize,
    pipelines: Mutex<HashMap<pipelines::KernelKey, Arc<Kernel>>>,
    constants: Mutex<HashMap<String, Arc<PooledBuffer>>>,
    /// Why the device was lost, once it is: every later call fails with it.
    lost: Arc<Mutex<Option<String>>>,
    /// A wgpu error that escaped every error scope on a device we own (work the application
    /// recorded itself through [`Context::wgpu`](crate::Context::wgpu)); the next call reports it.
    uncaptured: Arc<Mutex<Option<String>>>,
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
        let uncaptured = Arc::new(Mutex::new(None));
        if owned {
            let on_lost = lost.clone();
            device.set_device_lost_callback(move |reason, message| {
                *lock(&on_lost) = Some(format!("{reason:?} {message}").trim_end().to_string());
            });
            // Everything the library does runs inside error scopes; what still escapes them
            // came from the application's own use of the device, and must not abort it
            // (wgpu's default handler panics): it is kept for the next call to report.
            let on_error = uncaptured.clone();
            device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| {
                *lock(&on_error) = Some(error.to_string());
            }));
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
            memory_budget: options.memory_budget,
            wait_timeout: options.wait_timeout,
            tuner: tune::Tuner::new(options.tuning.clone(), tune::adapter_key(&info)),
            subgroups: options.subgroups && device.features().contains(wgpu::Features::SUBGROUP),
            unrolled_max_terms: options.unrolled_max_terms,
            pool: Arc::new(BufferPool::new()),
            pipelines: Mutex::new(HashMap::new()),
            constants: Mutex::new(HashMap::new()),
            lost,
            uncaptured,
            device,
            queue,
        }
    }

    /// `Err(DeviceLost)` once the device is gone, on a device we own or one shared with the
    /// application alike. A lost device drops most work silently (wgpu reports loss only to a
    /// device's lost callback, which a shared device keeps for the application), so each call
    /// asks: a poll (which runs our callback on an owned device) and a 4-byte buffer mapped at
    /// creation, which a lost device cannot give (about a microsecond).
    pub(crate) fn check_alive(&self) -> Result<()> {
        if let Some(reason) = lock(&self.lost).clone() {
            return Err(Error::device_lost(&reason));
        }
        if let Some(error) = lock(&self.uncaptured).take() {
            return Err(Error::gpu(format!(
                "an earlier error outside wgkernels' calls: {error}"
            )));
        }
        let _ = self.device.poll(wgpu::PollType::Poll);
        if !self.answers() {
            let mut lost = lock(&self.lost);
            let reason = lost.get_or_insert_with(|| "it no longer answers".to_string());
            return Err(Error::device_lost(reason));
        }
        Ok(())
    }

    /// Whether the device can still make a buffer, or has been lost.
    fn answers(&self) -> bool {
        let scopes = Scopes::push(&self.device);
        let probe = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("liveness probe"),
            size: 4,
            usage: wgpu::BufferUsages::MAP_WRITE,
            mapped_at_creation: true,
        });
        let mapped = probe.slice(..).get_mapped_range_mut().is_ok();
        drop(probe);
        scopes.pop();
        mapped && lock(&self.lost).is_none()
    }

    /// Runs `work` (wgpu calls) inside validation, out-of-memory and internal error scopes and
    /// turns what they catch into an `Err` naming the call: `DeviceLost` if the device has
    /// gone, `OutOfMemory` for `arg` (`bytes`), else `Gpu`. Nothing escapes to wgpu's
    /// uncaptured-error handler, which panics by default.
    pub(crate) fn scoped<T>(
        &self,
        arg: &'static str,
        bytes: u64,
        work: impl FnOnce() -> T,
    ) -> Result<T> {
        self.scoped_or(arg, bytes, work, Error::gpu)
    }

    /// [`scoped`](Self::scoped), with `other` making the error for what is neither a lost
    /// device nor out-of-memory (a shader's validation error, say).
    pub(crate) fn scoped_or<T>(
        &self,
        arg: &'static str,
        bytes: u64,
        work: impl FnOnce() -> T,
        other: impl FnOnce(wgpu::Error) -> Error,
    ) -> Result<T> {
        let scopes = Scopes::push(&self.device);
        let value = work();
        match scopes.pop() {
            None => Ok(value),
            Some(_) if !self.answers() => Err(self
                .check_alive()
                .err()
                .unwrap_or_else(|| Error::device_lost("it no longer answers"))),
            Some(wgpu::Error::OutOfMemory { .. }) => Err(Error::OutOfMemory {
                op: crate::call::name("allocate"),
                arg,
                bytes,
                in_use: self.pool.memory.in_use(),
                budget: None,
            }),
            Some(error) => Err(other(error)),
        }
    }

    /// Blocks until the queue has finished everything submitted so far, noticing a lost
    /// device within a tenth of a second and giving up after [`GpuOptions::wait_timeout`].
    pub(crate) fn wait(&self) -> Result<()> {
        const SLICE: std::time::Duration = std::time::Duration::from_millis(100);
        let start = std::time::Instant::now();
        loop {
            let done = self.device.poll(wgpu::PollType::Wait {
                submission_index: None,
                timeout: Some(SLICE.min(self.wait_timeout)),
            });
            self.check_alive()?;
            match done {
                Ok(_) => return Ok(()),
                Err(wgpu::PollError::Timeout) if start.elapsed() < self.wait_timeout => continue,
                Err(e) => {
                    return Err(Error::device_lost(&format!(
                        "no answer after {:.1} s: {e}",
                        start.elapsed().as_secs_f64()
                    )))
                }
            }
        }
    }
}

/// The three error scopes of [`GpuDevice::scoped`], pushed together and popped in reverse.
struct Scopes {
    internal: wgpu::ErrorScopeGuard,
    oom: wgpu::ErrorScopeGuard,
    validation: wgpu::ErrorScopeGuard,
}

impl Scopes {
    fn push(device: &wgpu::Device) -> Scopes {
        let internal = device.push_error_scope(wgpu::ErrorFilter::Internal);
        let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
        Scopes {
            internal,
            oom,
            validation,
        }
    }

    /// The first error caught, innermost scope first.
    fn pop(self) -> Option<wgpu::Error> {
        let validation = pollster::block_on(self.validation.pop());
        let oom = pollster::block_on(self.oom.pop());
        let internal = pollster::block_on(self.internal.pop());
        validation.or(oom).or(internal)
    }
}
