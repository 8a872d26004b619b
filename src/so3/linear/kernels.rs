//! GPU launches of the per-degree linear map (also its input gradient, with the weights read
//! transposed) and of its weight gradient.

use crate::gpu::{shader, Shader};
use crate::op::Gpu;
use crate::{Result, Tensor};

const LINEAR: Shader = shader!("so3/linear.wgsl");
const LINEAR_WEIGHT_GRADIENT: Shader = shader!("so3/linear_weight_gradient.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct LinearParams {
    rows: u32,
    contracted: u32,
    channels: u32,
    dim: u32,
    w_columns: u32,
    transposed: u32,
    x_offset: u32,
    w_offset: u32,
    out_offset: u32,
    _pad: [u32; 3],
}

/// `out[n, o, ·] = Σ_k W(l, k, o)·x[n, k, ·]` with `[contracted, channels]` the channels of
/// x and out; W is `w[l][k][o]`, or `w[l][o][k]` when `transposed` (the input gradient).
pub(super) fn linear(
    gpu: &Gpu<'_>,
    [x, w]: [&Tensor; 2],
    [contracted, channels]: [usize; 2],
    transposed: bool,
    out: &Tensor,
) -> Result<()> {
    const OP: &str = "so3::linear";
    let _call = crate::call::Call::enter(OP);
    let (n, d) = (x.shape()[0], x.shape()[2]);
    let kernel = gpu.kernel_for(&LINEAR, &Tensor::operands(["x", "w"], [x, w]))?;
    let blocks = gpu.binding.blocks(
        OP,
        n,
        [
            x.rows("x", contracted * d),
            w.all("w"),
            out.rows("output", channels * d),
        ],
    )?;
    let mut recording = gpu.recording();
    recording.dispatch_blocks(&kernel, &blocks, |block| {
        let [wx, ww, wo] = block.bound;
        let rows = block.rows.count;
        let params = LinearParams {
            rows: rows as u32,
            contracted: contracted as u32,
            channels: channels as u32,
            dim: d as u32,
            w_columns: w.shape()[2] as u32,
            transposed: transposed as u32,
            x_offset: wx.skip(),
            w_offset: ww.skip(),
            out_offset: wo.skip(),
            _pad: [0; 3],
        };
        let groups = (rows * channels * d).div_ceil(crate::gpu::ELEMENTWISE_WORKGROUP as usize);
        (params, groups as u32)
    })?;
    recording.submit()
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct WeightGradientParams {
    rows: u32,
    c_in: u32,
    c_out: u32,
    dim: u32,
    lmax: u32,
    accumulate: u32,
    x_offset: u32,
    g_offset: u32,
}

/// `∂w[l][i][o] = Σ_n Σ_m x[n, i, ·]·g[n, o, ·]` over blocks of samples that fit one binding,
/// each block added to the last.
pub(super) fn linear_weight_gradient(
    gpu: &Gpu<'_>,
    [x, g]: [&Tensor; 2],
    [c_in, c_out]: [usize; 2],
    lmax: usize,
    dw: &Tensor,
) -> Result<()> {
    const OP: &str = "so3::linear_backward";
    let _call = crate::call::Call::enter(OP);
    let (n, d) = (x.shape()[0], x.shape()[2]);
    let kernel = gpu.kernel_for(
        &LINEAR_WEIGHT_GRADIENT,
        &Tensor::operands(["x", "g"], [x, g]),
    )?;
    let blocks = gpu.binding.blocks(
        OP,
        n,
        [
            x.rows("x", c_in * d),
            g.rows("d_out", c_out * d),
            dw.all("w"),
        ],
    )?;
    let mut recording = gpu.recording();
    let weights = (lmax + 1) * c_in * c_out;
    recording.dispatch_blocks(&kernel, &blocks, |block| {
        let [wx, wg, _] = block.bound;
        let params = WeightGradientParams {
            rows: block.rows.count as u32,
            c_in: c_in as u32,
            c_out: c_out as u32,
            dim: d as u32,
            lmax: lmax as u32,
            accumulate: (block.rows.first > 0) as u32,
            x_offset: wx.skip(),
            g_offset: wg.skip(),
        };
        let groups = weights.div_ceil(crate::gpu::ELEMENTWISE_WORKGROUP as usize);
        (params, groups as u32)
    })?;
    recording.submit()
}
