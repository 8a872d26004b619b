//! The wgpu side of a [`Context`](crate::Context): device, pipeline cache, buffer pool,
//! error scopes and launch helpers, written once for every kernel family.

pub(crate) mod dispatch;
pub(crate) mod elementwise;
pub(crate) mod pool;
pub(crate) mod specialize;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dispatch::BindingLimits;
use pool::{size_class, BufferPool, PooledBuffer};

use crate::tensor::DType;
use crate::{Error, Result};

/// A WGSL file and the entry point to run, known at compile time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shader {
    /// Path under `shaders/`, used as the cache key and in error messages.
    pub label: &'static str,
    pub source: &'static str,
    pub entry: &'static str,
}

/// WGSL files spliced into kernels where a line says `// #include "<path>"` (WGSL has no
/// includes): `shaders/<path>` and its text.
const INCLUDES: &[(&str, &str)] = &[
    (
        "attention/linear_common.inc.wgsl",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/shaders/attention/linear_common.inc.wgsl"
        )),
    ),
    (
        "so3/fft.inc.wgsl",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/shaders/so3/fft.inc.wgsl"
        )),
    ),
];

/// `source` with every `// #include "<path>"` line replaced by that file of [`INCLUDES`]
/// (tests/shaders.rs expands them the same way from disk before validating).
fn resolve_includes(label: &str, source: &str) -> Result<String> {
    let mut out = String::with_capacity(source.len());
    for line in source.lines() {
        match line
            .trim()
            .strip_prefix("// #include \"")
            .and_then(|r| r.strip_suffix('"'))
        {
            Some(path) => {
                let (_, text) =
                    INCLUDES
                        .iter()
                        .find(|(p, _)| *p == path)
                        .ok_or_else(|| Error::Shader {
                            label: label.to_string(),
                            message: format!("#include of unknown file {path}"),
                        })?;
                out += text;
            }
            None => out += line,
        }
        out.push('\n');
    }
    Ok(out)
}

/// Declares a [`Shader`] for `shaders/<path>` with entry point `main`.
macro_rules! shader {
    ($path:literal) => {
        $crate::gpu::Shader {
            label: $path,
            source: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/", $path)),
            entry: "main",
        }
    };
}
pub(crate) use shader;

/// A compiled pipeline and the layout of its bind group 0.
pub(crate) struct Kernel {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
    label: &'static str,
}

/// Shader label, entry point and dtype variant (see [`specialize::variant_key`]).
type KernelKey = (&'static str, &'static str, String);

/// Usage of every tensor buffer: bound as storage, copied in and out.
pub(crate) const TENSOR_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);
const UNIFORM_USAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::UNIFORM.union(wgpu::BufferUsages::COPY_DST);
const READBACK_USAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::MAP_READ.union(wgpu::BufferUsages::COPY_DST);

/// Workgroup size of the element-wise kernels (fill, copy).
pub(crate) const ELEMENTWISE_WORKGROUP: u32 = 256;

const FILL: Shader = shader!("util/fill.wgsl");

pub(crate) struct GpuDevice {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub name: String,
    pub device_type: wgpu::DeviceType,
    pub binding: BindingLimits,
    pub max_buffer_bytes: u64,
    pub max_workgroups_per_dim: u32,
    pub poison_outputs: bool,
    pub pool: Arc<BufferPool>,
    pipelines: Mutex<HashMap<KernelKey, Arc<Kernel>>>,
    constants: Mutex<HashMap<String, Arc<PooledBuffer>>>,
    lost: Arc<Mutex<Option<String>>>,
}

/// Locks a mutex even if a panicking thread poisoned it: every value guarded here stays
/// consistent across a panic.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl GpuDevice {
    /// Wraps a device. `owned` devices get our lost-device callback and uncaptured-error
    /// handler; a device shared with an application keeps the application's.
    pub(crate) fn new(
        device: wgpu::Device,
        queue: wgpu::Queue,
        options: &crate::GpuOptions,
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

    /// The cached pipeline for `shader`, compiled on first use inside an error scope.
    pub(crate) fn kernel(&self, shader: &Shader) -> Result<Arc<Kernel>> {
        self.kernel_for(shader, &[])
    }

    /// The cached pipeline for `shader` with the named operands read as their dtypes (see
    /// [`specialize`](specialize::specialize)).
    pub(crate) fn kernel_for(
        &self,
        shader: &Shader,
        operands: &[(&str, DType)],
    ) -> Result<Arc<Kernel>> {
        self.kernel_with(shader, operands, &[])
    }

    /// [`kernel_for`](Self::kernel_for) with values for the shader's `override` constants,
    /// one pipeline per set: sizes known at pipeline creation let the driver fold branches
    /// and unroll loops (CPU drivers such as lavapipe otherwise run every branch, masked).
    pub(crate) fn kernel_with(
        &self,
        shader: &Shader,
        operands: &[(&str, DType)],
        constants: &[(&str, f64)],
    ) -> Result<Arc<Kernel>> {
        let overrides: Vec<String> = constants.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let key = (
            shader.label,
            shader.entry,
            specialize::variant_key(operands) + ";" + &overrides.join(","),
        );
        if let Some(kernel) = lock(&self.pipelines).get(&key) {
            return Ok(kernel.clone());
        }
        self.check_alive()?;
        let source = resolve_includes(shader.label, shader.source)?;
        let source = specialize::specialize(shader.label, &source, operands)?;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(shader.label),
                source: wgpu::ShaderSource::Wgsl(Cow::Borrowed(&source)),
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(shader.label),
                layout: None,
                module: &module,
                entry_point: Some(shader.entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants,
                    ..Default::default()
                },
                cache: None,
            });
        if let Some(error) = pollster::block_on(scope.pop()) {
            return Err(Error::Shader {
                label: shader.label.to_string(),
                message: error.to_string(),
            });
        }
        let kernel = Arc::new(Kernel {
            layout: pipeline.get_bind_group_layout(0),
            pipeline,
            label: shader.label,
        });
        lock(&self.pipelines).insert(key, kernel.clone());
        Ok(kernel)
    }

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

    /// A read-only buffer of constants (coefficient tables), uploaded once per `key` and kept
    /// for the life of the context.
    pub(crate) fn constant(
        &self,
        key: &str,
        bytes: impl FnOnce() -> Vec<u8>,
    ) -> Result<Arc<PooledBuffer>> {
        if let Some(buffer) = lock(&self.constants).get(key) {
            return Ok(buffer.clone());
        }
        let buffer = Arc::new(self.upload(&bytes())?);
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

    /// Records work with `record` and submits it, inside validation and out-of-memory
    /// scopes so that any wgpu error becomes an `Err`.
    pub(crate) fn submit(
        &self,
        record: impl FnOnce(&mut wgpu::CommandEncoder) -> Result<()>,
    ) -> Result<()> {
        self.check_alive()?;
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        let recorded = record(&mut encoder);
        if recorded.is_ok() {
            self.queue.submit([encoder.finish()]);
        }
        let validation = pollster::block_on(validation.pop());
        let oom = pollster::block_on(oom.pop());
        recorded?;
        if let Some(error) = validation.or(oom) {
            return Err(match error {
                wgpu::Error::OutOfMemory { .. } => Error::OutOfMemory {
                    bytes: 0,
                    label: "a submission".into(),
                },
                other => Error::Gpu(other.to_string()),
            });
        }
        self.check_alive()
    }

    /// Records one dispatch of `total_workgroups` workgroups, laid out past the
    /// per-dimension limit if needed, with `resources` bound in order at group 0.
    pub(crate) fn dispatch(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        kernel: &Kernel,
        resources: &[wgpu::BindingResource<'_>],
        total_workgroups: u32,
    ) {
        let entries: Vec<wgpu::BindGroupEntry<'_>> = resources
            .iter()
            .enumerate()
            .map(|(i, resource)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: resource.clone(),
            })
            .collect();
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(kernel.label),
            layout: &kernel.layout,
            entries: &entries,
        });
        let (x, y, z) = dispatch::grid(total_workgroups, self.max_workgroups_per_dim);
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(kernel.label),
            timestamp_writes: None,
        });
        pass.set_pipeline(&kernel.pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(x, y, z);
    }

    /// Writes `value` into the first `len` f32 elements of `buffer`, one binding window at a time.
    pub(crate) fn fill(&self, buffer: &wgpu::Buffer, len: u64, value: f32) -> Result<()> {
        #[repr(C)]
        #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
        struct FillParams {
            len: u32,
            skip: u32,
            value: f32,
            _pad: u32,
        }
        let kernel = self.kernel(&FILL)?;
        let chunk = self.binding.max_elements();
        let mut uniforms = Vec::new();
        let mut windows = Vec::new();
        let mut first = 0;
        while first < len {
            let count = chunk.min(len - first);
            let window = self
                .binding
                .window("fill", "buffer", first, count, buffer.size())?;
            uniforms.push(self.uniform(&FillParams {
                len: count as u32,
                skip: window.skip,
                value,
                _pad: 0,
            })?);
            windows.push((window, count));
            first += count;
        }
        self.submit(|encoder| {
            for ((window, count), uniform) in windows.iter().zip(&uniforms) {
                let resources = [
                    uniform.buffer().as_entire_binding(),
                    binding(buffer, window),
                ];
                let groups = count.div_ceil(ELEMENTWISE_WORKGROUP as u64) as u32;
                self.dispatch(encoder, &kernel, &resources, groups);
            }
            Ok(())
        })
    }

    /// Copies `bytes` bytes out of `buffer` to the host.
    pub(crate) fn read(&self, buffer: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        let staging = self.buffer(bytes, READBACK_USAGE, "readback")?;
        self.submit(|encoder| {
            encoder.copy_buffer_to_buffer(buffer, 0, staging.buffer(), 0, bytes);
            Ok(())
        })?;
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

    /// Blocks until the queue has finished everything submitted so far.
    pub(crate) fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::DeviceLost(e.to_string()))?;
        self.check_alive()
    }
}

/// The binding resource for a window of a buffer.
pub(crate) fn binding<'a>(
    buffer: &'a wgpu::Buffer,
    window: &dispatch::Window,
) -> wgpu::BindingResource<'a> {
    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
        buffer,
        offset: window.offset,
        size: std::num::NonZeroU64::new(window.size),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu_context() -> Option<crate::Context> {
        match crate::Context::gpu() {
            Ok(ctx) => Some(ctx),
            Err(e) if std::env::var("WGKERNELS_REQUIRE_GPU").as_deref() == Ok("1") => {
                panic!("WGKERNELS_REQUIRE_GPU=1 but no GPU context: {e}")
            }
            Err(_) => None,
        }
    }

    #[test]
    fn a_bad_shader_or_entry_point_is_an_error() {
        let Some(ctx) = gpu_context() else { return };
        let gpu = ctx.gpu_device().unwrap();
        let type_error = Shader {
            label: "bad/type_error.wgsl",
            source: "@compute @workgroup_size(1) fn main() { let x: f32 = 1u; }",
            entry: "main",
        };
        let e = gpu
            .kernel(&type_error)
            .err()
            .expect("a type error compiled");
        assert!(
            matches!(&e, Error::Shader { label, .. } if label == "bad/type_error.wgsl"),
            "{e}"
        );
        let no_entry = Shader {
            label: "bad/no_entry.wgsl",
            source: "@compute @workgroup_size(1) fn main() {}",
            entry: "missing",
        };
        assert!(matches!(gpu.kernel(&no_entry), Err(Error::Shader { .. })));
        // The device is still usable afterwards.
        assert_eq!(
            ctx.tensor(&[2.0], &[1]).unwrap().to_vec().unwrap(),
            vec![2.0]
        );
    }
}
