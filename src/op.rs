//! The operation layer: the one place that chooses between the CPU reference path and the
//! GPU path (after candle's `CustomOp`, whose `cpu_fwd` / `cuda_fwd` / `metal_fwd` are
//! dispatched in one `match`).
//!
//! An operation declares its output shapes, its f64 CPU body and its GPU launch, and
//! [`run`] runs it on the context's backend: on the CPU path the body's f64 results are
//! rounded into the outputs; on the GPU path the outputs are allocated (NaN-poisoned when
//! the context poisons) and the launch must write every element. Operations that yield
//! something else — state kept on the device, a scalar, a composite of other operations —
//! go through [`choose`], and state made on one path is a [`Resident`].
//!
//! Family modules check arguments and state formulas; they never match on the backend.

use std::ops::Deref;

use crate::context::{Backend, Context};
use crate::gpu::GpuDevice;
use crate::{Error, Result, Tensor};

/// What a GPU launch gets: the device, and its context for allocating tensors or calling
/// other operations.
pub(crate) struct Gpu<'a> {
    pub ctx: &'a Context,
    pub device: &'a GpuDevice,
}

impl Deref for Gpu<'_> {
    type Target = GpuDevice;
    fn deref(&self) -> &GpuDevice {
        self.device
    }
}

impl Gpu<'_> {
    /// A tensor the launch will write every element of (NaN first when poisoning).
    pub(crate) fn output(&self, shape: &[usize]) -> Result<Tensor> {
        self.ctx.output(shape)
    }
}

/// Runs operation `op` with `N` tensor outputs of the given shapes: `cpu` returns their
/// elements in f64 (rounded to f32 here), `gpu` writes them on the device. An output too
/// large for the host (its f64 values, refused by the allocator) or the device is
/// `Err(TooLarge)` naming `op`, before any work.
pub(crate) fn run<const N: usize>(
    ctx: &Context,
    op: &'static str,
    outputs: [&[usize]; N],
    cpu: impl FnOnce() -> Result<[Vec<f64>; N]>,
    gpu: impl FnOnce(&Gpu<'_>, &[Tensor; N]) -> Result<()>,
) -> Result<[Tensor; N]> {
    let _call = crate::call::Call::enter(op);
    choose(
        ctx,
        || {
            // The CPU body builds its f64 results in memory of this size, all at once: an
            // Err here rather than an abort there.
            let total = outputs.iter().try_fold(0usize, |sum, shape| {
                shape
                    .iter()
                    .try_fold(1usize, |a, &d| a.checked_mul(d))
                    .and_then(|len| sum.checked_add(len))
            });
            // A total that overflows is refused like any over-large request.
            reserve(op, "output", total.unwrap_or(usize::MAX))?;
            let results = cpu()?;
            let mut tensors = Vec::with_capacity(N);
            for (data, shape) in results.into_iter().zip(outputs) {
                debug_assert_eq!(
                    data.len(),
                    shape.iter().product::<usize>(),
                    "a CPU body's output length"
                );
                tensors.push(ctx.host_result(data, shape)?);
            }
            Ok(to_array(tensors))
        },
        |device| {
            let tensors = outputs
                .iter()
                .map(|shape| device.output(shape))
                .collect::<Result<Vec<_>>>()?;
            let tensors = to_array(tensors);
            gpu(device, &tensors)?;
            Ok(tensors)
        },
    )
}

/// Checks that the host can give a CPU body `len` f64 values at once: `Err(TooLarge)` naming
/// `op` and `arg` where the allocator refuses (an Err, not the abort a plain `vec!` of that
/// size would be). For the scratch a reference function makes itself; the memory is
/// returned at once.
pub(crate) fn reserve(op: &'static str, arg: &'static str, len: usize) -> Result<()> {
    host_vec::<f64>(op, arg, len).map(drop)
}

/// A tensor's elements widened to f64 for a CPU body, or `Err(TooLarge)` naming `op` and
/// `arg` where the host refuses the copy.
pub(crate) fn widen(op: &'static str, arg: &'static str, t: &Tensor) -> Result<Vec<f64>> {
    let host = t.host();
    let mut out = host_vec(op, arg, host.len())?;
    out.extend(host.iter().map(|&x| x as f64));
    Ok(out)
}

/// An empty vector with room for `len` values, or `Err(TooLarge)` naming `op` and `arg`
/// where the allocator refuses (an Err, not the abort a plain `vec!` of that size would be).
pub(crate) fn host_vec<T>(op: &'static str, arg: &'static str, len: usize) -> Result<Vec<T>> {
    let mut out = Vec::new();
    out.try_reserve_exact(len).map_err(|_| Error::TooLarge {
        op: crate::call::name(op),
        arg,
        bytes: (len as u64).saturating_mul(std::mem::size_of::<T>() as u64),
        limit: isize::MAX as u64,
    })?;
    Ok(out)
}

fn to_array<const N: usize>(tensors: Vec<Tensor>) -> [Tensor; N] {
    match tensors.try_into() {
        Ok(array) => array,
        Err(_) => unreachable!("one tensor per declared output"),
    }
}

/// Runs `cpu` on the CPU path, `gpu` on the GPU path.
pub(crate) fn choose<T>(
    ctx: &Context,
    cpu: impl FnOnce() -> Result<T>,
    gpu: impl FnOnce(&Gpu<'_>) -> Result<T>,
) -> Result<T> {
    match &*ctx.backend {
        Backend::Cpu(_) => cpu(),
        Backend::Gpu(device) => gpu(&Gpu { ctx, device }),
    }
}

/// State of a stateful operation, made on one path and used on the same one: f64 state on
/// the CPU path, device buffers on the GPU path.
pub(crate) enum Resident<C, G> {
    Cpu(C),
    Gpu(G),
}

impl<C, G> Resident<C, G> {
    /// State made by `cpu` or `gpu`, whichever path `ctx` runs.
    pub(crate) fn new(
        ctx: &Context,
        cpu: impl FnOnce() -> Result<C>,
        gpu: impl FnOnce(&Gpu<'_>) -> Result<G>,
    ) -> Result<Self> {
        choose(
            ctx,
            || cpu().map(Resident::Cpu),
            |device| gpu(device).map(Resident::Gpu),
        )
    }

    /// Uses the state on its path; `ctx` must be the context that made it.
    pub(crate) fn with<T>(
        &self,
        ctx: &Context,
        cpu: impl FnOnce(&C) -> Result<T>,
        gpu: impl FnOnce(&G, &Gpu<'_>) -> Result<T>,
    ) -> Result<T> {
        match (self, &*ctx.backend) {
            (Resident::Cpu(state), Backend::Cpu(_)) => cpu(state),
            (Resident::Gpu(state), Backend::Gpu(device)) => gpu(state, &Gpu { ctx, device }),
            _ => Err(stray_state()),
        }
    }

    /// [`with`](Self::with), using the state up (it is dropped as the path wants).
    pub(crate) fn into_with<T>(
        self,
        ctx: &Context,
        cpu: impl FnOnce(C) -> Result<T>,
        gpu: impl FnOnce(G, &Gpu<'_>) -> Result<T>,
    ) -> Result<T> {
        match (self, &*ctx.backend) {
            (Resident::Cpu(state), Backend::Cpu(_)) => cpu(state),
            (Resident::Gpu(state), Backend::Gpu(device)) => gpu(state, &Gpu { ctx, device }),
            _ => Err(stray_state()),
        }
    }

    /// [`run`] with the state: the outputs probed, allocated and named as there.
    pub(crate) fn run<const N: usize>(
        &self,
        ctx: &Context,
        op: &'static str,
        outputs: [&[usize]; N],
        cpu: impl FnOnce(&C) -> Result<[Vec<f64>; N]>,
        gpu: impl FnOnce(&G, &Gpu<'_>, &[Tensor; N]) -> Result<()>,
    ) -> Result<[Tensor; N]> {
        let (on_cpu, on_gpu) = match self {
            Resident::Cpu(state) => (Some(state), None),
            Resident::Gpu(state) => (None, Some(state)),
        };
        run(
            ctx,
            op,
            outputs,
            || cpu(on_cpu.ok_or_else(stray_state)?),
            |device, tensors| gpu(on_gpu.ok_or_else(stray_state)?, device, tensors),
        )
    }

    /// [`with`](Self::with), changing the state.
    pub(crate) fn with_mut<T>(
        &mut self,
        ctx: &Context,
        cpu: impl FnOnce(&mut C) -> Result<T>,
        gpu: impl FnOnce(&mut G, &Gpu<'_>) -> Result<T>,
    ) -> Result<T> {
        match (self, &*ctx.backend) {
            (Resident::Cpu(state), Backend::Cpu(_)) => cpu(state),
            (Resident::Gpu(state), Backend::Gpu(device)) => gpu(state, &Gpu { ctx, device }),
            _ => Err(stray_state()),
        }
    }
}

fn stray_state() -> Error {
    Error::gpu("state used on a path other than the one that made it")
}
