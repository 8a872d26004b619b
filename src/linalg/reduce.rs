//! `out[o, i] = Σ_m x[o, m, i]`: the sum over a middle axis, in increasing m on both paths
//! (`shaders/linalg/sum_middle.wgsl`) — how the gradient of a broadcast operand (a shared x2
//! row, weights shared by every sample) is summed over what it was broadcast along.

use std::sync::Arc;

use crate::gpu::{shader, Bound, GpuDevice, Kernel, Recording, Shader, ELEMENTWISE_WORKGROUP};
use crate::{op, Context, Result, Tensor};

const SUM_MIDDLE: Shader = shader!("linalg/sum_middle.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    outer: u32,
    mid: u32,
    inner: u32,
    x_offset: u32,
    out_offset: u32,
    accumulate: u32,
    _pad: [u32; 2],
}

/// The kernel recording sums of one outer row, `out[i] (+)= Σ_m x[m, i]`: [`SumSlices::new`]
/// is its f32 form, with which the GEMM's split-K sums its partial products; `sum_middle`
/// wraps the form for its operand's dtype.
pub(crate) struct SumSlices(Arc<Kernel>);

impl SumSlices {
    pub(crate) fn new(gpu: &GpuDevice) -> Result<SumSlices> {
        Ok(SumSlices(gpu.kernel(&SUM_MIDDLE)?))
    }

    /// Records `out (+)= Σ_m x[m, ·]` for `x` bound as `[mid, inner]`, adding to what `out`
    /// holds when `accumulate`.
    pub(crate) fn record<'a>(
        &self,
        recording: &mut Recording<'a>,
        x: Bound<'a>,
        out: Bound<'a>,
        [mid, inner]: [usize; 2],
        accumulate: bool,
    ) -> Result<()> {
        let params = Params {
            outer: 1,
            mid: mid as u32,
            inner: inner as u32,
            x_offset: x.skip(),
            out_offset: out.skip(),
            accumulate: accumulate as u32,
            _pad: [0; 2],
        };
        let groups = inner.div_ceil(ELEMENTWISE_WORKGROUP as usize) as u32;
        recording.dispatch(&self.0, &params, &[x, out], groups)
    }
}

/// `x` read as `[outer, mid, inner]`, summed over `mid`, as a tensor of `shape`
/// (`outer·inner` elements). Where one outer row is larger than a binding, its mid axis is
/// summed in consecutive chunks that fit, each added to the output in turn (still one fixed
/// order).
pub(crate) fn sum_middle(
    ctx: &Context,
    x: &Tensor,
    [outer, mid, inner]: [usize; 3],
    shape: &[usize],
) -> Result<Tensor> {
    const OP: &str = "sum over a broadcast axis";
    let _call = crate::call::Call::enter(OP);
    let cpu = || {
        let x = x.host();
        let out = (0..outer * inner)
            .map(|t| {
                let (o, i) = (t / inner, t % inner);
                (0..mid).map(|m| x[(o * mid + m) * inner + i] as f64).sum()
            })
            .collect();
        Ok([out])
    };
    let [out] = op::run(ctx, OP, [shape], cpu, |gpu, [out]| {
        let sum = SumSlices(gpu.kernel_for(&SUM_MIDDLE, &Tensor::operands(["x"], [x]))?);
        let limits = gpu.binding;
        let mut recording = gpu.recording();
        let groups = |rows: usize| (rows * inner).div_ceil(ELEMENTWISE_WORKGROUP as usize) as u32;
        if ((mid * inner) as u64) <= limits.max_elements() {
            let blocks = limits.blocks(
                OP,
                outer,
                [x.rows("x", mid * inner), out.rows("output", inner)],
            )?;
            recording.dispatch_blocks(&sum.0, &blocks, |block| {
                let [wx, wo] = block.bound;
                let params = Params {
                    outer: block.rows.count as u32,
                    mid: mid as u32,
                    inner: inner as u32,
                    x_offset: wx.skip(),
                    out_offset: wo.skip(),
                    accumulate: 0,
                    _pad: [0; 2],
                };
                (params, groups(block.rows.count))
            })?;
        } else {
            let chunk = (limits.max_elements() as usize / inner.max(1)).max(1);
            for o in 0..outer {
                let wo = limits.window(
                    OP,
                    "output",
                    (o * inner) as u64,
                    inner as u64,
                    out.buffer().size(),
                )?;
                for m0 in (0..mid).step_by(chunk) {
                    let count = chunk.min(mid - m0);
                    let first = ((o * mid + m0) * inner) as u64;
                    let wx =
                        limits.window(OP, "x", first, (count * inner) as u64, x.buffer().size())?;
                    let (x, out) = (
                        Bound::window(x.buffer(), wx),
                        Bound::window(out.buffer(), wo),
                    );
                    sum.record(&mut recording, x, out, [count, inner], m0 > 0)?;
                }
            }
        }
        recording.submit()
    })?;
    Ok(out)
}
