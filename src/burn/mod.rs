//! Our kernels inside [burn](https://burn.dev) 0.22 (feature `burn`): one wgpu device for
//! both, burn tensors read by our kernels in place, our results handed to burn without a copy.
//!
//! A [`Bridge`] holds a [`Context`] and a burn [`Device`] on the same `wgpu::Device` and
//! queue. [`Bridge::view`] makes a burn float tensor (f32 or f16) our [`Tensor`](crate::Tensor) over burn's
//! own buffer; [`Bridge::run`] runs any of our operations with their outputs allocated in
//! burn's memory, so that [`Bridge::to_burn`] hands them to burn as they are:
//!
//! ```no_run
//! # fn main() -> wgkernels::Result<()> {
//! use burn::tensor::Tensor as BurnTensor;
//! use wgkernels::{burn::Bridge, linalg, GpuOptions};
//! let bridge = Bridge::new(GpuOptions::default())?;
//! let a = BurnTensor::<2>::from_floats([[1.0, 2.0], [3.0, 4.0]], bridge.device()) * 2.0;
//! let y = bridge.run(|ctx| {
//!     let a = bridge.view(a.clone())?;           // burn's buffer, no copy
//!     linalg::matmul(ctx, &a, &a, false, false)   // written into burn's memory
//! })?;
//! let y: BurnTensor<2> = bridge.to_burn(y)?;     // no copy
//! let y = y + 1.0;                               // burn goes on, on the device
//! # Ok(())
//! # }
//! ```
//!
//! Ordering holds without a host wait: a view first makes burn record and submit what
//! computes the tensor (fusion's queue drained, cubecl's stream flushed), our kernels are
//! submitted to the same queue when the operation returns, and burn's later work is
//! submitted after that.
//!
//! The burn device uses cubecl's exclusive memory pages (one wgpu buffer per allocation), so
//! every tensor starts at offset 0 of its buffer, as our kernels bind them. A strided,
//! broadcast, sliced or storage-tiled burn tensor is first made contiguous by burn (a device
//! copy); a contiguous one is not copied.

mod autodiff;
mod dora_linear;
mod ops;
mod view;

pub use dora_linear::DoraLinear;
pub(crate) use view::output;

use ::burn::backend::wgpu::{MemoryConfiguration, WgpuSetup};
use ::burn::tensor::Device;

use crate::{Context, Error, GpuOptions, Result};

/// A [`Context`] and a burn [`Device`] on one wgpu device and queue.
#[derive(Clone, Debug)]
pub struct Bridge {
    ctx: Context,
    device: Device,
}

impl Bridge {
    /// A new wgpu device (the best adapter of `options.backends`), as our [`Context`] and as
    /// a burn [`Device`]. The device gets what cubecl asks of it — every feature of the
    /// adapter but `MAPPABLE_PRIMARY_BUFFERS`, the adapter's limits — since burn's compiler
    /// reads the adapter, not the device.
    pub fn new(options: GpuOptions) -> Result<Bridge> {
        let (instance, adapter) = options.adapter()?;
        let (device, queue) = pollster::block_on(
            adapter.request_device(&wgpu::DeviceDescriptor {
                label: Some("wgkernels + burn"),
                required_features: adapter
                    .features()
                    .difference(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS),
                required_limits: adapter.limits(),
                // SAFETY: as cubecl's own device request (cubecl-wgpu's `try_request_device`):
                // the experimental features the adapter reports are the ones its compiler may use.
                experimental_features: unsafe { wgpu::ExperimentalFeatures::enabled() },
                memory_hints: wgpu::MemoryHints::MemoryUsage,
                trace: wgpu::Trace::Off,
            }),
        )
        .map_err(|e| Error::RequestDevice(e.to_string()))?;
        let backend = adapter.get_info().backend;
        Bridge::from_setup(
            WgpuSetup {
                instance,
                adapter,
                device,
                queue,
                backend,
            },
            options,
        )
    }

    /// A bridge on a wgpu setup the application made (its device must not be known to burn
    /// yet: burn imports each setup once).
    pub fn from_setup(setup: WgpuSetup, options: GpuOptions) -> Result<Bridge> {
        let ctx = Context::from_wgpu_with(setup.device.clone(), setup.queue.clone(), options)?;
        let device = Device::wgpu_options()
            .setup(setup)
            .memory_config(MemoryConfiguration::ExclusivePages)
            .init()
            .map_err(|e| Error::RequestDevice(format!("burn refused the device: {e}")))?;
        Ok(Bridge { ctx, device })
    }

    /// Our context on the shared device.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// burn's device on the shared device (use `.autodiff()` for training).
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Runs `op` on our context with every output tensor it allocates taken from burn's
    /// memory, so that [`to_burn`](Self::to_burn) hands it to burn without a copy.
    pub fn run<T>(&self, op: impl FnOnce(&Context) -> Result<T>) -> Result<T> {
        let _outputs = view::Outputs::install(self);
        op(&self.ctx)
    }
}
