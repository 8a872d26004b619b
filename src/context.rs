//! [`Context`]: where tensors live and kernels run — one GPU device, or the CPU reference path.

use std::sync::Arc;

use crate::gpu::pool::MemoryTracker;
use crate::gpu::GpuDevice;
use crate::tensor::{DType, Storage, Tensor};
use crate::{Error, Result};

/// Options for [`Context::gpu_with`].
#[derive(Clone, Debug)]
pub struct GpuOptions {
    /// Which adapter to prefer when there are several.
    pub power_preference: wgpu::PowerPreference,
    /// Caps the bytes of one storage binding below the device's own limit, so that the
    /// splitting of large tensors across bindings can be exercised at small sizes.
    pub max_binding_bytes: Option<u64>,
    /// Fills every freshly allocated output with NaN before a kernel writes it, so that an
    /// element the kernel forgets to write shows up in a comparison. For tests.
    pub poison_outputs: bool,
    /// Caps the workgroups per dimension of a dispatch below the device's limit (65 535),
    /// so that grids folded into two dimensions can be exercised with few workgroups.
    pub max_workgroups_per_dimension: Option<u32>,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            max_binding_bytes: None,
            poison_outputs: false,
            max_workgroups_per_dimension: None,
        }
    }
}

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
    Gpu(GpuDevice),
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
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: options.power_preference,
            force_fallback_adapter: false,
            compatible_surface: None,
            apply_limit_buckets: false,
        }))
        .map_err(|_| Error::NoAdapter)?;
        let wanted = wgpu::Features::SHADER_F16 | wgpu::Features::TIMESTAMP_QUERY;
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
    /// application keeps its own lost-device callback and uncaptured-error handler.
    pub fn from_wgpu(device: wgpu::Device, queue: wgpu::Queue) -> Result<Context> {
        Ok(Context::from_gpu(GpuDevice::new(
            device,
            queue,
            &GpuOptions::default(),
            false,
        )))
    }

    fn from_gpu(gpu: GpuDevice) -> Context {
        Context {
            backend: Arc::new(Backend::Gpu(gpu)),
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

    /// An f32 tensor holding a copy of `data`, row-major with `shape`.
    pub fn tensor(&self, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        self.tensor_as(data, shape, DType::F32)
    }

    /// An f16 tensor holding a copy of `data`.
    pub fn tensor_f16(&self, data: &[half::f16], shape: &[usize]) -> Result<Tensor> {
        let wide: Vec<f32> = data.iter().map(|x| x.to_f32()).collect();
        self.tensor_as(&wide, shape, DType::F16)
    }

    /// A bf16 tensor holding a copy of `data`.
    pub fn tensor_bf16(&self, data: &[half::bf16], shape: &[usize]) -> Result<Tensor> {
        let wide: Vec<f32> = data.iter().map(|x| x.to_f32()).collect();
        self.tensor_as(&wide, shape, DType::BF16)
    }

    /// A tensor stored as `dtype`, holding `data` rounded to it (to nearest, ties to even).
    pub fn tensor_as(&self, data: &[f32], shape: &[usize], dtype: DType) -> Result<Tensor> {
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
            Backend::Gpu(gpu) => Storage::Device(gpu.upload(&dtype.encode(data))?),
        };
        Ok(Tensor::new(self.clone(), shape.to_vec(), dtype, storage))
    }

    /// A tensor of zeros.
    pub fn zeros(&self, shape: &[usize]) -> Result<Tensor> {
        let len = element_count("zeros", "shape", shape)?;
        let storage = match &*self.backend {
            Backend::Cpu(memory) => Storage::host(vec![0.0; len], memory),
            Backend::Gpu(gpu) => {
                let buffer = gpu.storage(len)?;
                gpu.submit(|encoder| {
                    encoder.clear_buffer(buffer.buffer(), 0, None);
                    Ok(())
                })?;
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
            Backend::Cpu(memory) => Storage::host(vec![f32::NAN; len], memory),
            Backend::Gpu(gpu) => Storage::Device(gpu.storage(len)?),
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

    /// Blocks until every kernel submitted so far has finished. Kernels run asynchronously:
    /// a call returns once its work is queued, and [`Tensor::to_vec`] waits for it.
    pub fn synchronize(&self) -> Result<()> {
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

    pub(crate) fn gpu_device(&self) -> Option<&GpuDevice> {
        match &*self.backend {
            Backend::Cpu(_) => None,
            Backend::Gpu(gpu) => Some(gpu),
        }
    }

    /// `Err` unless `tensor` was made by this context.
    pub(crate) fn check_owns(
        &self,
        op: &'static str,
        arg: &'static str,
        tensor: &Tensor,
    ) -> Result<()> {
        if Arc::ptr_eq(&self.backend, &tensor.context().backend) {
            Ok(())
        } else {
            Err(Error::ContextMismatch {
                op,
                arg,
                arg_device: tensor.context().device_name(),
                device: self.device_name(),
            })
        }
    }
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
