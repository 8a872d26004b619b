//! GPU launch of the linear attention backward.
//!
//! With `a_i = φ_q(q_i)`, `b_j = φ_k(k_j·σ)`, `ṽ_j = [v_j, 1]` and, from the recomputed
//! forward, `g̃_i = [g_i/D_i, −δ_i/D_i]` (so that `∂s_ij = g̃_i·ṽ_j`), every product of the
//! backward is an unnormalised linear attention `out_i = Σ_{j ∈ J(i)} (x_i·y_j) w_j`
//! (chunked.inc.wgsl), run in the chunked form — chunk states, a scan, the masked block —
//! and the four products share two states, `S̃ = Σ_j b_j ṽ_jᵀ` (the forward's, prefix-scanned)
//! and `R̃ = Σ_i a_i g̃_iᵀ` (suffix-scanned: the reverse scan of the state gradients):
//!
//! | product             | x   | y   | w   | J(i)          | state          |
//! |---------------------|-----|-----|-----|---------------|----------------|
//! | `[N_i, Σ_j s_ij]`   | a   | b   | ṽ   | j ≤ i         | S̃              |
//! | `∂a_i`              | g̃   | ṽ   | b   | j ≤ i         | S̃, transposed  |
//! | `∂v_j`              | b   | a   | g/D | i ≥ j         | R̃ (dv columns) |
//! | `∂b_j`              | ṽ   | g̃   | a   | i ≥ j         | R̃, transposed  |
//!
//! (all j for non-causal calls, with the states summed over the whole sequence). Per-row
//! passes before and after: the features (backward_features.wgsl), `g̃`
//! (backward_prepare.wgsl) and the chain rule through the feature maps
//! (backward_feature_gradients.wgsl). Memory per head: O(n·(features + dv)) rows and one
//! state per chunk, never n×n.

use std::sync::Arc;

use super::kernels::{
    key_splits, record_key_max, run_chosen_form, split_keys, Scan, ScanParams, KEY_MAX,
    STATE_ROWS_WORKGROUPS, STATE_SCAN, TILE,
};
use super::reference::{feature_len, EPS};
use super::{Dims, FeatureMap};
use crate::gpu::{shader, Bound, Kernel, Operand, Recording, Shader, ELEMENTWISE_WORKGROUP};
use crate::op::Gpu;
use crate::{Result, Tensor};

const FEATURES: Shader = shader!("attention/backward_features.wgsl");
const PREPARE: Shader = shader!("attention/backward_prepare.wgsl");
const FEATURE_GRADIENTS: Shader = shader!("attention/backward_feature_gradients.wgsl");
const CHUNK_STATE: Shader = shader!("attention/chunk_state.wgsl");
const CHUNK_OUTPUT: Shader = shader!("attention/chunk_output.wgsl");
const CHUNK_STATE_ROWS: Shader = shader!("attention/chunk_state_rows.wgsl");
const CHUNK_OUTPUT_ROWS: Shader = shader!("attention/chunk_output_rows.wgsl");
/// The register forms' blocks: 8 rows × 64 columns (chunk_*_rows.wgsl).
const BLOCK_ROWS: usize = 8;
const BLOCK_COLUMNS: usize = 64;

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
    inner_extra: u32,
    columns: u32,
    columns_extra: u32,
    x_stride: u32,
    y_stride: u32,
    w_stride: u32,
    out_stride: u32,
    state_stride: u32,
    transposed: u32,
    mode: u32,
    splits: u32,
    keys_per_split: u32,
    inner_tiles: u32,
    column_tiles: u32,
    total_groups: u32,
    out_offset: u32,
    state_len: u32,
}

/// The layout of the chunk states `S = Σ_j y_j w_jᵀ` of one call: `[rows][columns + 1]` per
/// split (w's last element is the extra column), `splits` splits per head.
#[derive(Clone, Copy)]
struct StateLayout {
    rows: usize,
    columns: usize,
    splits: usize,
    keys_per_split: usize,
}

impl StateLayout {
    fn new(dims: Dims, rows: usize, columns: usize, scan: Scan, registers: bool) -> StateLayout {
        let causal = scan != Scan::Total;
        let (splits, keys_per_split) = match registers {
            true => {
                let blocks = rows.div_ceil(BLOCK_ROWS) * columns.div_ceil(BLOCK_COLUMNS);
                split_keys(dims, blocks, causal, STATE_ROWS_WORKGROUPS)
            }
            false => key_splits(dims, rows.div_ceil(TILE) * columns.div_ceil(TILE), causal),
        };
        StateLayout {
            rows,
            columns,
            splits,
            keys_per_split,
        }
    }

    /// Entries of one split's state.
    fn len(&self) -> usize {
        self.rows * (self.columns + 1)
    }
}

/// A `[heads·n, width]` operand bound for a product, `stride` elements per row.
#[derive(Clone, Copy)]
struct Rows<'a> {
    bound: Bound<'a>,
    stride: usize,
}

fn rows_of(bound: Bound<'_>, stride: usize) -> Rows<'_> {
    Rows { bound, stride }
}

/// How an output pass reads the state: as stored (`S[d][c]`, contracting over its rows) or
/// transposed (contracting over its columns and the extra one).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Orientation {
    AsStored { extra_column: bool },
    Transposed,
}

struct ProductKernels {
    state: Arc<Kernel>,
    scan: Arc<Kernel>,
    output: Arc<Kernel>,
    /// The register form's output (chunk_output_rows.wgsl), which runs in place of `output`.
    output_rows: Option<Arc<Kernel>>,
}

/// The chunked products of one block of heads: its kernels, sizes and state buffer.
struct Products<'k, 'a> {
    kernels: &'k ProductKernels,
    n: usize,
    heads: usize,
    layout: StateLayout,
    state: Bound<'a>,
}

impl<'a> Products<'_, 'a> {
    fn params(&self, scan: Scan) -> ProductParams {
        let layout = self.layout;
        ProductParams {
            heads: self.heads as u32,
            n: self.n as u32,
            inner: 0,
            inner_extra: 0,
            columns: 0,
            columns_extra: 0,
            x_stride: 0,
            y_stride: 0,
            w_stride: 0,
            out_stride: 0,
            state_stride: (layout.columns + 1) as u32,
            transposed: 0,
            mode: scan as u32,
            splits: layout.splits as u32,
            keys_per_split: layout.keys_per_split as u32,
            inner_tiles: 0,
            column_tiles: 0,
            total_groups: 0,
            out_offset: 0,
            state_len: layout.len() as u32,
        }
    }

    /// Records the state pass `S = Σ_j y_j w_jᵀ` (w with its extra column) and its scan.
    fn record_state(
        &self,
        recording: &mut Recording<'a>,
        scan: Scan,
        [y, w]: [Rows<'a>; 2],
    ) -> Result<()> {
        let (layout, heads, state) = (self.layout, self.heads, self.state);
        // Tiles of 32 × 32, or the register form's blocks of 8 rows × 64 columns.
        let (block_rows, block_columns) = match self.kernels.output_rows {
            Some(_) => (BLOCK_ROWS, BLOCK_COLUMNS),
            None => (TILE, TILE),
        };
        let (inner_tiles, column_tiles) = (
            layout.rows.div_ceil(block_rows),
            layout.columns.div_ceil(block_columns),
        );
        let groups = heads * layout.splits * inner_tiles * column_tiles;
        let params = ProductParams {
            inner: layout.rows as u32,
            columns: layout.columns as u32,
            columns_extra: 1,
            y_stride: y.stride as u32,
            w_stride: w.stride as u32,
            inner_tiles: inner_tiles as u32,
            column_tiles: column_tiles as u32,
            total_groups: groups as u32,
            ..self.params(scan)
        };
        recording.dispatch(
            &self.kernels.state,
            &params,
            &[y.bound, w.bound, state],
            groups as u32,
        )?;
        let scan_params = ScanParams {
            heads: heads as u32,
            splits: layout.splits as u32,
            width: layout.len() as u32,
            mode: scan as u32,
        };
        let scan_groups = (heads * layout.len()).div_ceil(ELEMENTWISE_WORKGROUP as usize);
        recording.dispatch(
            &self.kernels.scan,
            &scan_params,
            &[state],
            scan_groups as u32,
        )
    }

    /// Records the output pass `out_i = x_iᵀ S + Σ_{j ∈ chunk ∩ J(i)} (x_i·y_j) w_j` of a
    /// state made by [`record_state`](Self::record_state) with the same layout and scan;
    /// `columns` of w and out are used (plus the extra one when the state is read as stored
    /// with `extra_column`).
    fn record_output(
        &self,
        recording: &mut Recording<'a>,
        scan: Scan,
        orientation: Orientation,
        [x, y, w, out]: [Rows<'a>; 4],
        columns: usize,
    ) -> Result<()> {
        let (layout, heads, state) = (self.layout, self.heads, self.state);
        let (inner, inner_extra, columns_extra, transposed) = match orientation {
            Orientation::AsStored { extra_column } => (layout.rows, false, extra_column, false),
            Orientation::Transposed => (layout.columns, true, false, true),
        };
        let registers = self.kernels.output_rows.as_ref();
        let (block_rows, block_columns) = match registers {
            Some(_) => (BLOCK_ROWS, BLOCK_COLUMNS),
            None => (TILE, TILE),
        };
        let column_tiles = columns.div_ceil(block_columns);
        let groups = heads * self.n.div_ceil(block_rows) * column_tiles;
        let params = ProductParams {
            inner: inner as u32,
            inner_extra: inner_extra as u32,
            columns: columns as u32,
            columns_extra: columns_extra as u32,
            x_stride: x.stride as u32,
            y_stride: y.stride as u32,
            w_stride: w.stride as u32,
            out_stride: out.stride as u32,
            transposed: transposed as u32,
            inner_tiles: inner.div_ceil(TILE) as u32,
            column_tiles: column_tiles as u32,
            total_groups: groups as u32,
            out_offset: out.bound.skip(),
            ..self.params(scan)
        };
        let kernel = registers.unwrap_or(&self.kernels.output);
        let bindings = [x.bound, y.bound, w.bound, state, out.bound];
        recording.dispatch(kernel, &params, &bindings, groups as u32)
    }
}

/// Linear attention backward for `inputs = [q, k, v, d_out]` into `grads = [dq, dk, dv]`,
/// its chunked products in the form the device's tuner chooses (the forward's forms).
pub(super) fn run(
    gpu: &Gpu<'_>,
    dims: Dims,
    map: FeatureMap,
    causal: bool,
    inputs: [&Tensor; 4],
    grads: &[Tensor; 3],
) -> Result<()> {
    const OP: &str = "attention::linear_backward";
    let _call = crate::call::Call::enter(OP);
    let what = format!("{map:?} causal {causal}");
    run_chosen_form(gpu, OP, dims, &what, &inputs, |rows| {
        run_form(gpu, dims, (map, causal), rows, inputs, grads)
    })
}

/// [`run`] with its chunked products in registers (`registers`) or in tiles.
fn run_form(
    gpu: &Gpu<'_>,
    dims: Dims,
    (map, causal): (FeatureMap, bool),
    registers: bool,
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
    // S̃ and R̃ are both [features][dv + 1]; only their scans differ (and, non-causal,
    // neither: both are totals).
    let layout = StateLayout::new(dims, features, dv, forward, registers);
    let state_len = layout.splits * layout.len();
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
    let product_kernels = ProductKernels {
        state: gpu.kernel(if registers {
            &CHUNK_STATE_ROWS
        } else {
            &CHUNK_STATE
        })?,
        scan: gpu.kernel(&STATE_SCAN)?,
        output: gpu.kernel(&CHUNK_OUTPUT)?,
        output_rows: match registers {
            true => Some(gpu.kernel(&CHUNK_OUTPUT_ROWS)?),
            false => None,
        },
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
    let mut recording = gpu.recording();
    recording.clear(key_max.buffer());
    for block in blocks {
        let (h0, bh) = (block.first, block.count);
        let [wq, wk, wv, wg, wdq, wdk, wdv] = limits.bind(OP, block, &operands)?;
        let rows = bh * n;
        let row_groups = rows.div_ceil(ROWS) as u32;
        if norm_aware {
            record_key_max(
                &mut recording,
                &key_max_kernel,
                [wk, scales],
                (h0, bh),
                n * dk,
            )?;
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
        let [phi_q, phi_k, d_phi_q, d_phi_k] =
            [phi_q, phi_k, d_phi_q, d_phi_k].map(|b| rows_of(b, features));
        let [v_ext, nd, g_ext] = [v_ext, nd, g_ext].map(|b| rows_of(b, extended));
        let dv_rows = rows_of(wdv, dv);
        let products = Products {
            kernels: &product_kernels,
            n,
            heads: bh,
            layout,
            state,
        };
        // S̃ = Σ_j b_j ṽ_jᵀ, then the forward's numerator and normaliser [N_i, Σ_j s_ij].
        products.record_state(&mut recording, forward, [phi_k, v_ext])?;
        let numerator = Orientation::AsStored { extra_column: true };
        let operands = [phi_q, phi_k, v_ext, nd];
        products.record_output(&mut recording, forward, numerator, operands, dv)?;
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
            &[wg, scales, nd.bound, g_ext.bound],
            row_groups,
        )?;
        // ∂a_i = S̃ g̃_i + block, from the same state.
        let operands = [g_ext, v_ext, phi_k, d_phi_q];
        products.record_output(
            &mut recording,
            forward,
            Orientation::Transposed,
            operands,
            features,
        )?;
        // R̃ = Σ_i a_i g̃_iᵀ over the queries after each chunk, then ∂v and ∂b from it.
        products.record_state(&mut recording, reverse, [phi_q, g_ext])?;
        let values = Orientation::AsStored {
            extra_column: false,
        };
        let operands = [phi_k, phi_q, g_ext, dv_rows];
        products.record_output(&mut recording, reverse, values, operands, dv)?;
        let operands = [v_ext, g_ext, phi_q, d_phi_k];
        products.record_output(
            &mut recording,
            reverse,
            Orientation::Transposed,
            operands,
            features,
        )?;
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
        let bindings = [wq, wk, scales, d_phi_q.bound, d_phi_k.bound, wdq, wdk];
        recording.dispatch(&gradients_kernel, &params, &bindings, row_groups)?;
    }
    recording.submit()
}
