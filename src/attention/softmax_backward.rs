//! GPU launch of the softmax attention backward, flash-attention's, in two kernels: one
//! workgroup per 32 queries finds the rows' log-sum-exp and `Δ_i = g_i·out_i` online (one
//! pass over the key blocks), then ∂q (a second pass); one workgroup per 32 keys gives ∂k and
//! ∂v (one pass over the query blocks), each recomputing the weights
//! `exp(q_i·k_j/√dk − lse_i)` from the log-sum-exp. Each workgroup covers up to 128 output
//! columns, so that the scores of a block are computed once for all of them.
//!
//! Two forms, chosen by the tuner as the forward's are ([`super::kernels::run_chosen_form`]):
//! `tiles` (32 rows per workgroup through workgroup memory) and `rows`
//! (`softmax_*_gradient_rows.wgsl`: 8 rows × 64 columns per workgroup in registers).

use super::kernels::{reads_vec4, run_chosen_form, TILE};
use super::Dims;
use crate::gpu::{shader, Operand, Shader};
use crate::op::Gpu;
use crate::{DType, Result, Tensor};

const QUERY_GRADIENT: Shader = shader!("attention/softmax_query_gradient.wgsl");
const KEY_GRADIENT: Shader = shader!("attention/softmax_key_gradient.wgsl");
const QUERY_GRADIENT_ROWS: Shader = shader!("attention/softmax_query_gradient_rows.wgsl");
const KEY_GRADIENT_ROWS: Shader = shader!("attention/softmax_key_gradient_rows.wgsl");
const QUERY_GRADIENT_ROWS_VEC4: Shader = shader!("attention/softmax_query_gradient_rows_vec4.wgsl");
const KEY_GRADIENT_ROWS_VEC4: Shader = shader!("attention/softmax_key_gradient_rows_vec4.wgsl");

/// Column tiles per workgroup (GROUP_TILES in the shaders).
use crate::gpu::shader_constants::attention_softmax_gradient_inc::GROUP_TILES;

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
    column_groups: u32,
    total_groups: u32,
    q_offset: u32,
    k_offset: u32,
    v_offset: u32,
    g_offset: u32,
    dq_offset: u32,
    dk_offset: u32,
    dv_offset: u32,
    lse_offset: u32,
    scale: f32,
    _pad: [u32; 2],
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
    let _call = crate::call::Call::enter(OP);
    run_chosen_form(
        gpu,
        OP,
        dims,
        &format!("causal {causal}"),
        &inputs,
        |rows| run_form(gpu, dims, causal, rows, inputs, grads),
    )
}

/// [`run`] in registers (`rows`) or in tiles.
fn run_form(
    gpu: &Gpu<'_>,
    dims: Dims,
    causal: bool,
    rows: bool,
    inputs: [&Tensor; 4],
    grads: &[Tensor; 3],
) -> Result<()> {
    const OP: &str = "attention::softmax_backward";
    let Dims { heads, n, dk, dv } = dims;
    let [q, k, v, g] = inputs;
    let lse = gpu.storage(heads * n)?;
    let delta = gpu.storage(heads * n)?;
    let blocks = gpu.binding.blocks(
        OP,
        heads,
        [
            q.rows("q", n * dk),
            k.rows("k", n * dk),
            v.rows("v", n * dv),
            g.rows("d_out", n * dv),
            Operand::rows("lse", lse.buffer(), DType::F32, n),
            Operand::rows("delta", delta.buffer(), DType::F32, n),
            grads[0].rows("dq", n * dk),
            grads[1].rows("dk", n * dk),
            grads[2].rows("dv", n * dv),
        ],
    )?;
    let operand_types = Tensor::operands(["q", "k", "v", "g"], inputs);
    let windows = blocks.iter().flat_map(|b| &b.bound[..4]);
    let (query_shader, key_shader) = match (rows, reads_vec4(&inputs, dims, windows)) {
        (true, true) => (&QUERY_GRADIENT_ROWS_VEC4, &KEY_GRADIENT_ROWS_VEC4),
        (true, false) => (&QUERY_GRADIENT_ROWS, &KEY_GRADIENT_ROWS),
        (false, _) => (&QUERY_GRADIENT, &KEY_GRADIENT),
    };
    let query_kernel = gpu.kernel_for(query_shader, &operand_types)?;
    let key_kernel = gpu.kernel_for(key_shader, &operand_types)?;
    // Tiled: 32 rows, up to GROUP_TILES 32-column tiles per workgroup. Rows: 8 rows and one
    // 64-column tile (of ∂k and ∂v both, in the key kernel).
    let (k_tiles, v_tiles) = (dk.div_ceil(TILE), dv.div_ceil(TILE));
    let (chunks, query_groups, key_groups) = match rows {
        true => (n.div_ceil(8), dk.div_ceil(64), dk.max(dv).div_ceil(64)),
        false => (
            n.div_ceil(TILE),
            k_tiles.div_ceil(GROUP_TILES),
            k_tiles.max(v_tiles).div_ceil(GROUP_TILES),
        ),
    };
    let mut recording = gpu.recording();
    for block in &blocks {
        let [wq, wk, wv, wg, wlse, wdelta, wdq, wdk, wdv] = block.bound;
        // lse and delta have the same layout and buffer sizes, so the same windows.
        debug_assert_eq!(wlse.skip(), wdelta.skip());
        let bh = block.rows.count;
        let params = |column_groups: usize| GradientParams {
            heads: bh as u32,
            n: n as u32,
            dk: dk as u32,
            dv: dv as u32,
            causal: causal as u32,
            k_tiles: k_tiles as u32,
            v_tiles: v_tiles as u32,
            column_groups: column_groups as u32,
            total_groups: (bh * chunks * column_groups) as u32,
            q_offset: wq.skip(),
            k_offset: wk.skip(),
            v_offset: wv.skip(),
            g_offset: wg.skip(),
            dq_offset: wdq.skip(),
            dk_offset: wdk.skip(),
            dv_offset: wdv.skip(),
            lse_offset: wlse.skip(),
            scale: 1.0 / (dk as f32).sqrt(),
            _pad: [0; 2],
        };
        let query = params(query_groups);
        recording.dispatch(
            &query_kernel,
            &query,
            &[wq, wk, wv, wg, wlse, wdelta, wdq],
            query.total_groups,
        )?;
        let key = params(key_groups);
        recording.dispatch(
            &key_kernel,
            &key,
            &[wq, wk, wv, wg, wlse, wdelta, wdk, wdv],
            key.total_groups,
        )?;
    }
    recording.submit()
}
