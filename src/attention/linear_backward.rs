//! GPU launch of the linear attention backward.
//!
//! With `a_i = φ_q(q_i)`, `b_j = φ_k(k_j·σ)`, `ṽ_j = [v_j, 1]` and, from the recomputed
//! forward, `g̃_i = [g_i/D_i, −δ_i/D_i]` (so that `∂s_ij = g̃_i·ṽ_j`), every product of the
//! backward is an unnormalised linear attention `out_i = Σ_{j ∈ J(i)} (x_i·y_j) w_j`
//! (chunked.inc.wgsl), run in the chunked form — chunk states, a scan, the masked block:
//!
//! | product                 | x   | y   | w   | J(i)               |
//! |-------------------------|-----|-----|-----|--------------------|
//! | `[N_i, Σ_j s_ij]`       | a   | b   | ṽ   | j ≤ i (or all)     |
//! | `∂a_i`                  | g̃   | ṽ   | b   | j ≤ i              |
//! | `∂v_j`                  | b   | a   | g/D | i ≥ j: a reverse scan |
//! | `∂b_j`                  | ṽ   | g̃   | a   | i ≥ j              |
//!
//! Per-row passes before and after: the features (backward_features.wgsl), `g̃`
//! (backward_prepare.wgsl) and the chain rule through the feature maps
//! (backward_feature_gradients.wgsl). Memory per head: O(n·(features + dv)) rows and one
//! state per chunk, never n×n.

use super::kernels::{
    key_splits, KeyMaxParams, Scan, ScanParams, KEY_MAX, KEY_MAX_SPAN, STATE_SCAN, TILE,
};
use super::reference::{feature_len, EPS};
use super::{Dims, FeatureMap};
use crate::gpu::{shader, Bound, Kernel, Operand, Recording, Shader, ELEMENTWISE_WORKGROUP};
use crate::op::Gpu;
use crate::{Result, Tensor};
use std::sync::Arc;

const FEATURES: Shader = shader!("attention/backward_features.wgsl");
const PREPARE: Shader = shader!("attention/backward_prepare.wgsl");
const FEATURE_GRADIENTS: Shader = shader!("attention/backward_feature_gradients.wgsl");
const CHUNK_STATE: Shader = shader!("attention/chunk_state.wgsl");
const CHUNK_OUTPUT: Shader = shader!("attention/chunk_output.wgsl");

/// Rows per workgroup of the per-row passes (ROWS in their shaders).
use crate::gpu::shader_constants::attention_backward_features::ROWS;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct FeatureParams {
    rows: u32,
    n: u32,
    dk: u32,
    dv: u32,
    features: u32,
    norm_aware: u32,
    q_offset: u32,
    k_offset: u32,
    v_offset: u32,
    scale_offset: u32,
    _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PrepareParams {
    rows: u32,
    n: u32,
    dv: u32,
    norm_aware: u32,
    causal: u32,
    g_offset: u32,
    scale_offset: u32,
    eps: f32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct FeatureGradientParams {
    rows: u32,
    n: u32,
    dk: u32,
    features: u32,
    norm_aware: u32,
    q_offset: u32,
    k_offset: u32,
    dq_offset: u32,
    dk_offset: u32,
    scale_offset: u32,
    _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ProductParams {
    heads: u32,
    n: u32,
    inner: u32,
    columns: u32,
    x_stride: u32,
    y_stride: u32,
    w_stride: u32,
    out_stride: u32,
    mode: u32,
    splits: u32,
    keys_per_split: u32,
    inner_tiles: u32,
    column_tiles: u32,
    total_groups: u32,
    out_offset: u32,
    _pad: u32,
}

/// One chunked product `out_i = Σ_{j ∈ J(i)} (x_i·y_j) w_j` over `inner`-wide x, y and
/// `columns` of w (rows of w `w_stride` apart).
struct Product<'a> {
    x: Bound<'a>,
    y: Bound<'a>,
    w: Bound<'a>,
    out: Bound<'a>,
    inner: usize,
    columns: usize,
    w_stride: usize,
    out_stride: usize,
    scan: Scan,
}

/// The states of a product: `(splits, keys per split)` and the f32 entries per head.
fn product_states(dims: Dims, inner: usize, columns: usize, scan: Scan) -> (usize, usize, usize) {
    let tiles = inner.div_ceil(TILE) * columns.div_ceil(TILE);
    let (splits, keys_per_split) = key_splits(dims, tiles, scan != Scan::Total);
    (splits, keys_per_split, splits * inner * columns)
}

struct ProductKernels {
    state: Arc<Kernel>,
    scan: Arc<Kernel>,
    output: Arc<Kernel>,
}

impl ProductKernels {
    /// Records the state pass, the scan and the output pass of `product` for `heads` heads.
    fn record<'a>(
        &self,
        recording: &mut Recording<'a>,
        dims: Dims,
        heads: usize,
        product: Product<'a>,
        state: Bound<'a>,
    ) -> Result<()> {
        let n = dims.n;
        let (splits, keys_per_split, _) =
            product_states(dims, product.inner, product.columns, product.scan);
        let (inner_tiles, column_tiles) =
            (product.inner.div_ceil(TILE), product.columns.div_ceil(TILE));
        let params = |total_groups: usize| ProductParams {
            heads: heads as u32,
            n: n as u32,
            inner: product.inner as u32,
            columns: product.columns as u32,
            x_stride: product.inner as u32,
            y_stride: product.inner as u32,
            w_stride: product.w_stride as u32,
            out_stride: product.out_stride as u32,
            mode: product.scan as u32,
            splits: splits as u32,
            keys_per_split: keys_per_split as u32,
            inner_tiles: inner_tiles as u32,
            column_tiles: column_tiles as u32,
            total_groups: total_groups as u32,
            out_offset: product.out.skip(),
            _pad: 0,
        };
        let state_groups = heads * splits * inner_tiles * column_tiles;
        recording.dispatch(
            &self.state,
            &params(state_groups),
            &[product.y, product.w, state],
            state_groups as u32,
        )?;
        let width = product.inner * product.columns;
        let scan = ScanParams {
            heads: heads as u32,
            splits: splits as u32,
            width: width as u32,
            mode: product.scan as u32,
        };
        let scan_groups = (heads * width).div_ceil(ELEMENTWISE_WORKGROUP as usize);
        recording.dispatch(&self.scan, &scan, &[state], scan_groups as u32)?;
        let output_groups = heads * n.div_ceil(TILE) * column_tiles;
        recording.dispatch(
            &self.output,
            &params(output_groups),
            &[product.x, product.y, product.w, state, product.out],
            output_groups as u32,
        )
    }
}

/// Linear attention backward for `inputs = [q, k, v, d_out]` into `grads = [dq, dk, dv]`.
pub(super) fn run(
    gpu: &Gpu<'_>,
    dims: Dims,
    map: FeatureMap,
    causal: bool,
    inputs: [&Tensor; 4],
    grads: &[Tensor; 3],
) -> Result<()> {
    const OP: &str = "attention::linear_backward";
    let Dims { heads, n, dk, dv } = dims;
    let [q, k, v, g] = inputs;
    let norm_aware = map == FeatureMap::NormAware;
    let features = feature_len(map, dk);
    let extended = dv + 1;
    let (forward, reverse) = if causal {
        (Scan::Prefix, Scan::Suffix)
    } else {
        (Scan::Total, Scan::Total)
    };
    let state_len = [
        product_states(dims, features, extended, forward),
        product_states(dims, extended, features, forward),
        product_states(dims, features, dv, reverse),
        product_states(dims, extended, features, reverse),
    ]
    .iter()
    .map(|s| s.2)
    .max()
    .unwrap_or(0);
    let limits = gpu.binding;
    let blocks = limits.row_blocks(
        OP,
        heads,
        &[
            ("q", n * dk),
            ("v", n * dv),
            ("features", n * features),
            ("values and ones", n * extended),
            ("chunk states", state_len),
        ],
    )?;
    let block_heads = blocks.iter().map(|b| b.count).max().unwrap_or(1);
    let feature_rows = block_heads * n * features;
    let extended_rows = block_heads * n * extended;
    let scratch = |len: usize| gpu.storage_bytes(len.max(1) as u64 * 4);
    let [phi_q, phi_k, d_phi_q, d_phi_k] = [(); 4].map(|_| scratch(feature_rows));
    let [v_ext, nd, g_ext] = [(); 3].map(|_| scratch(extended_rows));
    let (phi_q, phi_k, d_phi_q, d_phi_k) = (phi_q?, phi_k?, d_phi_q?, d_phi_k?);
    let (v_ext, nd, g_ext) = (v_ext?, nd?, g_ext?);
    let state = scratch(block_heads * state_len)?;
    // One u32 per head: the largest |k| (norm-aware); zero, and never read, for elu+1.
    let key_max = gpu.storage_bytes(heads as u64 * 4)?;
    let [scales, phi_q, phi_k, d_phi_q, d_phi_k, v_ext, nd, g_ext, state] = limits.bind_all(
        OP,
        &[
            Operand::fixed("key scales", key_max.buffer(), heads),
            Operand::fixed("features", phi_q.buffer(), feature_rows),
            Operand::fixed("features", phi_k.buffer(), feature_rows),
            Operand::fixed("features", d_phi_q.buffer(), feature_rows),
            Operand::fixed("features", d_phi_k.buffer(), feature_rows),
            Operand::fixed("values and ones", v_ext.buffer(), extended_rows),
            Operand::fixed("values and ones", nd.buffer(), extended_rows),
            Operand::fixed("values and ones", g_ext.buffer(), extended_rows),
            Operand::fixed("chunk states", state.buffer(), block_heads * state_len),
        ],
    )?;

    let key_max_kernel = gpu.kernel_for(&KEY_MAX, &Tensor::operands(["k"], [k]))?;
    let features_kernel =
        gpu.kernel_for(&FEATURES, &Tensor::operands(["q", "k", "v"], [q, k, v]))?;
    let prepare_kernel = gpu.kernel_for(&PREPARE, &Tensor::operands(["g"], [g]))?;
    let gradients_kernel =
        gpu.kernel_for(&FEATURE_GRADIENTS, &Tensor::operands(["q", "k"], [q, k]))?;
    let products = ProductKernels {
        state: gpu.kernel(&CHUNK_STATE)?,
        scan: gpu.kernel(&STATE_SCAN)?,
        output: gpu.kernel(&CHUNK_OUTPUT)?,
    };
    let operands = [
        q.rows("q", n * dk),
        k.rows("k", n * dk),
        v.rows("v", n * dv),
        g.rows("d_out", n * dv),
        grads[0].rows("dq", n * dk),
        grads[1].rows("dk", n * dk),
        grads[2].rows("dv", n * dv),
    ];
    let key_max_groups = (n * dk).div_ceil(KEY_MAX_SPAN);
    let mut recording = gpu.recording();
    recording.clear(key_max.buffer());
    for block in blocks {
        let (h0, bh) = (block.first, block.count);
        let [wq, wk, wv, wg, wdq, wdk, wdv] = limits.bind(OP, block, &operands)?;
        let rows = bh * n;
        let row_groups = rows.div_ceil(ROWS) as u32;
        if norm_aware {
            let params = KeyMaxParams {
                heads: bh as u32,
                head_len: (n * dk) as u32,
                groups_per_head: key_max_groups as u32,
                k_offset: wk.skip(),
                first_head: h0 as u32,
                _pad: [0; 3],
            };
            let groups = (bh * key_max_groups) as u32;
            recording.dispatch(&key_max_kernel, &params, &[wk, scales], groups)?;
        }
        let params = FeatureParams {
            rows: rows as u32,
            n: n as u32,
            dk: dk as u32,
            dv: dv as u32,
            features: features as u32,
            norm_aware: norm_aware as u32,
            q_offset: wq.skip(),
            k_offset: wk.skip(),
            v_offset: wv.skip(),
            scale_offset: h0 as u32,
            _pad: [0; 2],
        };
        let bindings = [wq, wk, wv, scales, phi_q, phi_k, v_ext];
        recording.dispatch(&features_kernel, &params, &bindings, row_groups)?;
        // The forward's numerator and normaliser, recomputed.
        let product = Product {
            x: phi_q,
            y: phi_k,
            w: v_ext,
            out: nd,
            inner: features,
            columns: extended,
            w_stride: extended,
            out_stride: extended,
            scan: forward,
        };
        products.record(&mut recording, dims, bh, product, state)?;
        let params = PrepareParams {
            rows: rows as u32,
            n: n as u32,
            dv: dv as u32,
            norm_aware: norm_aware as u32,
            causal: causal as u32,
            g_offset: wg.skip(),
            scale_offset: h0 as u32,
            eps: EPS as f32,
        };
        recording.dispatch(
            &prepare_kernel,
            &params,
            &[wg, scales, nd, g_ext],
            row_groups,
        )?;
        let query_side = Product {
            x: g_ext,
            y: v_ext,
            w: phi_k,
            out: d_phi_q,
            inner: extended,
            columns: features,
            w_stride: features,
            out_stride: features,
            scan: forward,
        };
        products.record(&mut recording, dims, bh, query_side, state)?;
        let values = Product {
            x: phi_k,
            y: phi_q,
            w: g_ext,
            out: wdv,
            inner: features,
            columns: dv,
            w_stride: extended,
            out_stride: dv,
            scan: reverse,
        };
        products.record(&mut recording, dims, bh, values, state)?;
        let key_side = Product {
            x: v_ext,
            y: g_ext,
            w: phi_q,
            out: d_phi_k,
            inner: extended,
            columns: features,
            w_stride: features,
            out_stride: features,
            scan: reverse,
        };
        products.record(&mut recording, dims, bh, key_side, state)?;
        let params = FeatureGradientParams {
            rows: rows as u32,
            n: n as u32,
            dk: dk as u32,
            features: features as u32,
            norm_aware: norm_aware as u32,
            q_offset: wq.skip(),
            k_offset: wk.skip(),
            dq_offset: wdq.skip(),
            dk_offset: wdk.skip(),
            scale_offset: h0 as u32,
            _pad: [0; 2],
        };
        let bindings = [wq, wk, scales, d_phi_q, d_phi_k, wdq, wdk];
        recording.dispatch(&gradients_kernel, &params, &bindings, row_groups)?;
    }
    recording.submit()
}
