//! GPU launch of the softmax attention backward, flash-attention's: the forward is rerun for
//! `out` and the rows' log-sum-exp, `Δ_i = g_i·out_i` is one pass over the rows, then one
//! pass over key blocks per query block gives ∂q and one over query blocks per key block gives
//! ∂k and ∂v, each recomputing the weights `exp(q_i·k_j/√dk − lse_i)` from the log-sum-exp.

use super::kernels::{softmax, TILE};
use super::Dims;
use crate::gpu::{shader, Operand, Shader};
use crate::op::Gpu;
use crate::{DType, Result, Tensor};

const DELTA: Shader = shader!("attention/softmax_delta.wgsl");
const QUERY_GRADIENT: Shader = shader!("attention/softmax_query_gradient.wgsl");
const KEY_GRADIENT: Shader = shader!("attention/softmax_key_gradient.wgsl");

/// Rows per workgroup of softmax_delta.wgsl.
use crate::gpu::shader_constants::attention_softmax_delta::ROWS;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct DeltaParams {
    rows: u32,
    dv: u32,
    g_offset: u32,
    out_offset: u32,
    delta_offset: u32,
    _pad: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct GradientParams {
    heads: u32,
    n: u32,
    dk: u32,
    dv: u32,
    causal: u32,
    k_tiles: u32,
    v_tiles: u32,
    total_groups: u32,
    q_offset: u32,
    k_offset: u32,
    v_offset: u32,
    g_offset: u32,
    dq_offset: u32,
    dv_offset: u32,
    lse_offset: u32,
    scale: f32,
    _pad: [u32; 3],
}

/// Softmax attention backward for `inputs = [q, k, v, d_out]` into `grads = [dq, dk, dv]`.
pub(super) fn run(
    gpu: &Gpu<'_>,
    dims: Dims,
    causal: bool,
    inputs: [&Tensor; 4],
    grads: &[Tensor; 3],
) -> Result<()> {
    const OP: &str = "attention::softmax_backward";
    let Dims { heads, n, dk, dv } = dims;
    let [q, k, v, g] = inputs;
    let out = gpu.output(&[heads, n, dv])?;
    let lse = gpu.output(&[heads, n])?;
    softmax(gpu, dims, causal, [q, k, v], &out, Some(&lse))?;
    let delta = gpu.storage(heads * n)?;

    let delta_kernel = gpu.kernel_for(&DELTA, &Tensor::operands(["g"], [g]))?;
    let operand_types = Tensor::operands(["q", "k", "v", "g"], inputs);
    let query_kernel = gpu.kernel_for(&QUERY_GRADIENT, &operand_types)?;
    let key_kernel = gpu.kernel_for(&KEY_GRADIENT, &operand_types)?;
    let blocks = gpu.binding.blocks(
        OP,
        heads,
        [
            q.rows("q", n * dk),
            k.rows("k", n * dk),
            v.rows("v", n * dv),
            g.rows("d_out", n * dv),
            out.rows("out", n * dv),
            lse.rows("lse", n),
            Operand::rows("delta", delta.buffer(), DType::F32, n),
            grads[0].rows("dq", n * dk),
            grads[1].rows("dk", n * dk),
            grads[2].rows("dv", n * dv),
        ],
    )?;
    let (k_tiles, v_tiles) = (dk.div_ceil(TILE), dv.div_ceil(TILE));
    let chunks = n.div_ceil(TILE);
    let mut recording = gpu.recording();
    for block in &blocks {
        let [wq, wk, wv, wg, wout, wlse, wdelta, wdq, wdk, wdv] = block.bound;
        // lse and delta have the same layout and buffer sizes, so the same windows.
        debug_assert_eq!(wlse.skip(), wdelta.skip());
        let bh = block.rows.count;
        let params = DeltaParams {
            rows: (bh * n) as u32,
            dv: dv as u32,
            g_offset: wg.skip(),
            out_offset: wout.skip(),
            delta_offset: wdelta.skip(),
            _pad: [0; 3],
        };
        let groups = (bh * n).div_ceil(ROWS) as u32;
        recording.dispatch(&delta_kernel, &params, &[wg, wout, wdelta], groups)?;
        let params = |total_groups: usize, out_offset: u32, dv_offset: u32| GradientParams {
            heads: bh as u32,
            n: n as u32,
            dk: dk as u32,
            dv: dv as u32,
            causal: causal as u32,
            k_tiles: k_tiles as u32,
            v_tiles: v_tiles as u32,
            total_groups: total_groups as u32,
            q_offset: wq.skip(),
            k_offset: wk.skip(),
            v_offset: wv.skip(),
            g_offset: wg.skip(),
            dq_offset: out_offset,
            dv_offset,
            lse_offset: wlse.skip(),
            scale: 1.0 / (dk as f32).sqrt(),
            _pad: [0; 3],
        };
        let groups = bh * chunks * k_tiles;
        recording.dispatch(
            &query_kernel,
            &params(groups, wdq.skip(), 0),
            &[wq, wk, wv, wg, wlse, wdelta, wdq],
            groups as u32,
        )?;
        let groups = bh * chunks * (k_tiles + v_tiles);
        recording.dispatch(
            &key_kernel,
            &params(groups, wdk.skip(), wdv.skip()),
            &[wq, wk, wv, wg, wlse, wdelta, wdk, wdv],
            groups as u32,
        )?;
    }
    recording.submit()
}
