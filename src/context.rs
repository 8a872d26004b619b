//! [`Context`]: where tensors live and kernels run — one GPU device, or the CPU reference path.

use std::sync::Arc;

use crate::gpu::pool::MemoryTracker;
use crate::gpu::{GpuDevice, GpuOptions};
use crate::{Error, Result};

/// Bytes held by a context's tensors and scratch buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryStats {
    /// Bytes in live buffers now.
    pub allocated: u64,
    /// Most bytes live at once since creation or the last [`Context::reset_peak_allocated_bytes`].
    pub peak_allocated: u64,
    /// Bytes of freed buffers kept by the pool for reuse (GPU only).
    pub cached: u64,
}

/// Where tensors live and kernels run: one wgpu device, or the CPU reference path.
///
/// Cloning is cheap and gives a handle to the same device. Tensors remember their context;
/// passing a tensor to an operation on another context is an [`Error::ContextMismatch`].
#[derive(Clone)]
pub struct Context {
    pub(crate) backend: Arc<Backend>,
}

pub(crate) enum Backend {
    Cpu(Arc<MemoryTracker>),
    Gpu(Box<GpuDevice>),
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Context({})", self.device_name())
    }
}

impl Context {
    /// The best GPU adapter, or the CPU reference path when there is none (see
    /// [`Context::is_gpu`] and [`Context::device_name`] for which). Never fails for lack of
    /// a GPU.
    pub fn new() -> Result<Context> {
        match Context::gpu() {
            Ok(ctx) => Ok(ctx),
            Err(Error::NoAdapter | Error::RequestDevice(_)) => Ok(Context::cpu()),
            Err(other) => Err(other),
        }
    }

    /// The best GPU adapter, with its own limits and the optional features it has
    /// (`SHADER_F16`, `TIMESTAMP_QUERY`); [`Error::NoAdapter`] where there is none.
    pub fn gpu() -> Result<Context> {
        Context::gpu_with(GpuOptions::default())
    }

    /// [`Context::gpu`] with options.
    pub fn gpu_with(options: GpuOptions) -> Result<Context> {
        let (_instance, adapter) = options.adapter()?;
        let mut wanted = wgpu::Features::SHADER_F16 | wgpu::Features::TIMESTAMP_QUERY;
        if options.subgroups {
            wanted |= wgpu::Features::SUBGROUP;
        }
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("wgkernels"),
            required_features: adapter.features() & wanted,
            required_limits: adapter.limits(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::RequestDevice(e.to_string()))?;
        Ok(Context::from_gpu(GpuDevice::new(
            device, queue, &options, true,
        )))
    }

    /// The CPU reference path: plain Rust, accumulating in f64.
    pub fn cpu() -> Context {
        Context {
            backend: Arc::new(Backend::Cpu(Arc::new(MemoryTracker::default()))),
        }
    }

    /// Runs on a device the application already has, so tensors can share it. The
    /// application keeps its own lost-device callback and uncaptured-error handler (wgpu's
    /// default one panics): every call of the library runs inside error scopes, so none of
    /// its work reaches that handler, and a lost device is an [`Error::DeviceLost`].
    pub fn from_wgpu(device: wgpu::Device, queue: wgpu::Queue) -> Result<Context> {
        Context::from_wgpu_with(device, queue, GpuOptions::default())
    }

    /// [`Context::from_wgpu`] with options (those about choosing an adapter are ignored).
    pub fn from_wgpu_with(
        device: wgpu::Device,
        queue: wgpu::Queue,
        options: GpuOptions,
    ) -> Result<Context> {
        Ok(Context::from_gpu(GpuDevice::new(
            device, queue, &options, false,
        )))
    }

    fn from_gpu(gpu: GpuDevice) -> Context {
        Context {
            backend: Arc::new(Backend::Gpu(Box::new(gpu))),
        }
    }

    /// Whether kernels run on a GPU (else on the CPU reference path).
    pub fn is_gpu(&self) -> bool {
        matches!(*self.backend, Backend::Gpu(_))
    }

    /// The adapter's name, backend and type, or `"CPU reference"`.
    pub fn device_name(&self) -> String {
        match &*self.backend {
            Backend::Cpu(_) => "CPU reference".to_string(),
            Backend::Gpu(gpu) => gpu.name.clone(),
        }
    }

    /// The adapter's type (discrete, integrated, CPU for lavapipe, ...); `None` on the CPU
    /// reference path.
    pub fn device_type(&self) -> Option<wgpu::DeviceType> {
        self.gpu_device().map(|gpu| gpu.device_type)
    }

    /// The wgpu device and queue, for applications that want to record their own work
    /// beside ours. `None` on the CPU path.
    pub fn wgpu(&self) -> Option<(&wgpu::Device, &wgpu::Queue)> {
        self.gpu_device().map(|gpu| (&gpu.device, &gpu.queue))
    }

    /// Bytes one storage binding may hold on this device (after any
    /// [`GpuOptions::max_binding_bytes`] cap); `None` on the CPU path. Larger tensors are
    /// split across bindings by the kernels.
    pub fn max_binding_bytes(&self) -> Option<u64> {
        self.gpu_device().map(|gpu| gpu.binding.max_bytes)
    }

    /// Blocks until every kernel submitted so far has finished. Kernels run asynchronously:
    /// a call returns once its work is queued, and [`Tensor::to_vec`](crate::Tensor::to_vec) waits for it.
    pub fn synchronize(&self) -> Result<()> {
        let _call = crate::call::Call::enter("Context::synchronize");
        match &*self.backend {
            Backend::Cpu(_) => Ok(()),
            Backend::Gpu(gpu) => gpu.wait(),
        }
    }

    /// Bytes in live buffers (tensors and scratch) now.
    pub fn allocated_bytes(&self) -> u64 {
        self.memory().in_use()
    }

    /// Most bytes live at once since creation or the last
    /// [`reset_peak_allocated_bytes`](Context::reset_peak_allocated_bytes).
    pub fn peak_allocated_bytes(&self) -> u64 {
        self.memory().peak()
    }

    /// Starts a new peak measurement from the bytes live now.
    pub fn reset_peak_allocated_bytes(&self) {
        self.memory().reset_peak()
    }

    /// Live, peak and pooled bytes together.
    pub fn memory_stats(&self) -> MemoryStats {
        let memory = self.memory();
        MemoryStats {
            allocated: memory.in_use(),
            peak_allocated: memory.peak(),
            cached: memory.cached(),
        }
    }

    /// Frees the buffers the pool keeps for reuse.
    pub fn trim_pool(&self) {
        if let Some(gpu) = self.gpu_device() {
            gpu.pool.trim();
        }
    }

    fn memory(&self) -> &MemoryTracker {
        match &*self.backend {
            Backend::Cpu(memory) => memory,
            Backend::Gpu(gpu) => &gpu.pool.memory,
        }
    }

    /// The forms chosen so far for kernels that have several, as `(shape class, form)` pairs
    /// (e.g. `("matmul [1024, 1024, 1024] NN f32 f32", "rows32x8x16")`), measured or loaded
    /// from the cache by [`GpuOptions::tuning`]; empty on the CPU path and under
    /// [`Tuning::Defaults`](crate::Tuning::Defaults).
    pub fn tuned_forms(&self) -> Vec<(String, String)> {
        self.gpu_device()
            .map_or_else(Vec::new, |gpu| gpu.tuner.choices())
    }

    /// Whether this context's kernels run their subgroup forms (the device has
    /// `wgpu::Features::SUBGROUP` and [`GpuOptions::subgroups`] is on); `false` on the CPU path.
    pub fn subgroups(&self) -> bool {
        self.gpu_device().is_some_and(|gpu| gpu.subgroups)
    }

    /// The device and which context on it, for messages about two contexts (two GPU contexts
    /// on one adapter have the same device name).
    pub(crate) fn describe(&self) -> String {
        format!(
            "{} (context {:#x})",
            self.device_name(),
            Arc::as_ptr(&self.backend) as *const () as usize
        )
    }

    /// Whether `other` is a handle to this same context.
    pub(crate) fn same_as(&self, other: &Context) -> bool {
        Arc::ptr_eq(&self.backend, &other.backend)
    }

    pub(crate) fn gpu_device(&self) -> Option<&GpuDevice> {
        match &*self.backend {
            Backend::Cpu(_) => None,
            Backend::Gpu(gpu) => Some(gpu),
        }
    }
}

/// A GPU context for the crate's unit tests, or `None` (test skipped) where there is no
/// adapter — unless `WGKERNELS_REQUIRE_GPU=1`, where a missing adapter fails the test (as
/// `tests/common::gpu` does for the integration tests).
#[cfg(test)]
pub(crate) fn test_gpu(options: GpuOptions) -> Option<Context> {
    let tuning = match options.tuning {
        crate::Tuning::Measure { .. } => crate::Tuning::Defaults,
        forced => forced,
    };
    match Context::gpu_with(GpuOptions { tuning, ..options }) {
        Ok(ctx) => Some(ctx),
        Err(e) if std::env::var("WGKERNELS_REQUIRE_GPU").as_deref() == Ok("1") => {
            panic!("WGKERNELS_REQUIRE_GPU=1 but no GPU context: {e}")
        }
        Err(_) => None,
    }
}
