//! GPU launches of the attention kernels, heads spread over as many storage bindings as needed.

use super::reference::feature_len;
use super::{Dims, FeatureMap};
use std::sync::Arc;

use crate::gpu::{shader, Bound, Kernel, Operand, Recording, Shader, ELEMENTWISE_WORKGROUP};
use crate::op::Gpu;
use crate::{Result, Tensor};

pub(super) const KEY_MAX: Shader = shader!("attention/key_max.wgsl");
const LINEAR_STATE: Shader = shader!("attention/linear_state.wgsl");
pub(super) const STATE_SCAN: Shader = shader!("attention/state_scan.wgsl");
const LINEAR_OUTPUT: Shader = shader!("attention/linear_output.wgsl");
const LINEAR_STATE_ROWS: Shader = shader!("attention/linear_state_rows.wgsl");
const LINEAR_OUTPUT_ROWS: Shader = shader!("attention/linear_output_rows.wgsl");
const SOFTMAX: Shader = shader!("attention/softmax.wgsl");
const SOFTMAX_ROWS: Shader = shader!("attention/softmax_rows.wgsl");
const SOFTMAX_ROWS_VEC4: Shader = shader!("attention/softmax_rows_vec4.wgsl");

/// Rows and columns of every tile (TILE in the shaders); also the causal chunk length.
pub(super) use crate::gpu::shader_constants::attention_linear_state::TILE;
/// Elements of k per workgroup of key_max.wgsl (WORKGROUP · PER_THREAD).
const KEY_MAX_SPAN: usize = {
    use crate::gpu::shader_constants::attention_key_max::{PER_THREAD, WORKGROUP};
    WORKGROUP * PER_THREAD
};
/// Workgroups the non-causal state pass aims for, so that even one head fills a large GPU.
const STATE_WORKGROUPS: usize = 1024;
/// Workgroups the register form of the state pass aims for (CPU adapters: a few per core).
pub(super) const STATE_ROWS_WORKGROUPS: usize = 64;

/// The forms of linear attention's forward, chosen per adapter and shape class by the
/// device's tuner: `"tiles"`, 32×32 tiles through workgroup memory (linear_state.wgsl,
/// linear_output.wgsl; the default on GPUs), or `"rows"`, registers (linear_state_rows.wgsl,
/// linear_output_rows.wgsl, with one barrier for the causal block; the default on CPU
/// adapters).
pub(super) const LINEAR_FORMS: [&str; 2] = ["tiles", "rows"];

/// The per-head operands q, k, v and the output, split with the heads.
fn head_operands<'a>(dims: Dims, [q, k, v]: [&'a Tensor; 3], out: &'a Tensor) -> [Operand<'a>; 4] {
    let Dims { n, dk, dv, .. } = dims;
    [
        q.rows("q", n * dk),
        k.rows("k", n * dk),
        v.rows("v", n * dv),
        out.rows("out", n * dv),
    ]
}

/// Whether a rows kernel can read its inputs as vec4s (`attention/qkv_vec4.inc.wgsl`): all
/// f32, dk and dv multiples of 4, and every window starting at a multiple of 4.
pub(super) fn reads_vec4<'a>(
    inputs: &[&Tensor],
    dims: Dims,
    mut windows: impl Iterator<Item = &'a Bound<'a>>,
) -> bool {
    inputs.iter().all(|t| t.dtype() == crate::DType::F32)
        && dims.dk % 4 == 0
        && dims.dv % 4 == 0
        && windows.all(|w| w.skip() % 4 == 0)
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct LinearParams {
    heads: u32,
    n: u32,
    dk: u32,
    dv: u32,
    features: u32,
    norm_aware: u32,
    causal: u32,
    splits: u32,
    keys_per_split: u32,
    f_tiles: u32,
    v_tiles: u32,
    total_groups: u32,
    q_offset: u32,
    k_offset: u32,
    v_offset: u32,
    out_offset: u32,
    scale_offset: u32,
    eps: f32,
    _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct KeyMaxParams {
    heads: u32,
    head_len: u32,
    groups_per_head: u32,
    k_offset: u32,
    first_head: u32,
    _pad: [u32; 3],
}

/// Records key_max.wgsl for heads `first_head .. first_head + heads` of `k` (bound as `wk`,
/// `head_len` elements a head) into `scales`, which must start zeroed.
pub(super) fn record_key_max<'a>(
    recording: &mut Recording<'a>,
    kernel: &Arc<Kernel>,
    [wk, scales]: [Bound<'a>; 2],
    (first_head, heads): (usize, usize),
    head_len: usize,
) -> Result<()> {
    let groups_per_head = head_len.div_ceil(KEY_MAX_SPAN);
    let params = KeyMaxParams {
        heads: heads as u32,
        head_len: head_len as u32,
        groups_per_head: groups_per_head as u32,
        k_offset: wk.skip(),
        first_head: first_head as u32,
        _pad: [0; 3],
    };
    recording.dispatch(
        kernel,
        &params,
        &[wk, scales],
        (heads * groups_per_head) as u32,
    )
}

/// How state_scan.wgsl combines the splits: the total, or the exclusive prefix or suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Scan {
    Total = 0,
    Prefix = 1,
    Suffix = 2,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct ScanParams {
    pub heads: u32,
    pub splits: u32,
    pub width: u32,
    pub mode: u32,
}

/// How the keys of a head are split for the state pass: `(splits, keys_per_split)`.
/// Causal: one split per chunk of TILE keys (the chunked form). Non-causal: enough splits
/// for about [`STATE_WORKGROUPS`] workgroups, each a whole number of tiles.
pub(super) fn key_splits(dims: Dims, tiles_per_head: usize, causal: bool) -> (usize, usize) {
    split_keys(dims, tiles_per_head, causal, STATE_WORKGROUPS)
}

/// [`key_splits`] aiming at `workgroups` workgroups.
pub(super) fn split_keys(
    dims: Dims,
    tiles_per_head: usize,
    causal: bool,
    workgroups: usize,
) -> (usize, usize) {
    let chunks = dims.n.div_ceil(TILE);
    if causal {
        return (chunks, TILE);
    }
    let wanted = workgroups
        .div_ceil(dims.heads * tiles_per_head)
        .clamp(1, chunks);
    let keys_per_split = TILE * chunks.div_ceil(wanted);
    (dims.n.div_ceil(keys_per_split), keys_per_split)
}

/// Runs `op` on `dims` by `run` (which runs one form: in registers, `"rows"`, when given
/// `true`, else in tiles) in the form chosen for it: forced, remembered, or timed by `run` on
/// the first call of its shape class (`op [heads, n, dk, dv] <what> <dtypes>`, heads and n to
/// powers of two); the default is registers on CPU adapters, tiles elsewhere.
pub(super) fn run_chosen_form(
    gpu: &Gpu<'_>,
    op: &str,
    dims: Dims,
    what: &str,
    inputs: &[&Tensor],
    mut run: impl FnMut(bool) -> Result<()>,
) -> Result<()> {
    let p = |x: usize| x.max(1).next_power_of_two();
    let dtypes: Vec<String> = inputs.iter().map(|t| t.dtype().to_string()).collect();
    let (heads, n) = (p(dims.heads), p(dims.n));
    let class = format!(
        "{op} [{heads}, {n}, {}, {}] {what} {}",
        dims.dk,
        dims.dv,
        dtypes.join(" ")
    );
    let names = LINEAR_FORMS.map(String::from);
    let default = match gpu.device_type {
        wgpu::DeviceType::Cpu => "rows",
        _ => "tiles",
    };
    let chosen = gpu.tuner.choose(&class, &names, default, |form| {
        run(form == "rows")?;
        gpu.wait()
    })?;
    run(chosen == "rows")
}

/// Linear attention: key scale (norm-aware), per-split states, scan, then the queries, in
/// the form the device's tuner chooses (see [`LINEAR_FORMS`]).
pub(super) fn linear(
    gpu: &Gpu<'_>,
    dims: Dims,
    map: FeatureMap,
    causal: bool,
    inputs: [&Tensor; 3],
    out: &Tensor,
) -> Result<()> {
    const OP: &str = "attention::linear";
    let _call = crate::call::Call::enter(OP);
    run_chosen_form(
        gpu,
        OP,
        dims,
        &format!("{map:?} causal {causal}"),
        &inputs,
        |rows| linear_form(gpu, dims, map, causal, rows, inputs, out),
    )
}

/// [`linear`] in registers (`rows`) or in tiles.
#[allow(clippy::too_many_arguments)]
fn linear_form(
    gpu: &Gpu<'_>,
    dims: Dims,
    map: FeatureMap,
    causal: bool,
    rows: bool,
    inputs: [&Tensor; 3],
    out: &Tensor,
) -> Result<()> {
    const OP: &str = "attention::linear";
    let Dims { heads, n, dk, dv } = dims;
    let [_, k, v] = inputs;
    let norm_aware = map == FeatureMap::NormAware;
    let features = feature_len(map, dk);
    let (f_tiles, v_tiles) = (features.div_ceil(TILE), dv.div_ceil(TILE));
    // The register forms' blocks: 8 features (or queries) × 64 columns.
    let (f_blocks, v_blocks) = (features.div_ceil(8), dv.div_ceil(64));
    let (splits, keys_per_split) = match rows {
        true => split_keys(dims, f_blocks * v_blocks, causal, STATE_ROWS_WORKGROUPS),
        false => key_splits(dims, f_tiles * v_tiles, causal),
    };
    let state_len = splits * features * (dv + 1);
    let limits = gpu.binding;
    let blocks = limits.row_blocks(
        OP,
        heads,
        &[("q", n * dk), ("v", n * dv), ("chunk states", state_len)],
    )?;
    let block_heads = blocks.iter().map(|b| b.count).max().unwrap_or(1);
    let state_elements = block_heads * state_len;
    let state = gpu.storage_bytes(state_elements as u64 * 4)?;
    // One u32 per head: the largest |k| (norm-aware); zero, and never read, for elu+1.
    let key_max = gpu.storage_bytes(heads as u64 * 4)?;
    let [scales, state] = limits.bind_all(
        OP,
        &[
            Operand::fixed("key scales", key_max.buffer(), heads),
            Operand::fixed("chunk states", state.buffer(), state_elements),
        ],
    )?;

    let key_max_kernel = gpu.kernel_for(&KEY_MAX, &Tensor::operands(["k"], [k]))?;
    let state_shader = if rows {
        &LINEAR_STATE_ROWS
    } else {
        &LINEAR_STATE
    };
    let state_kernel = gpu.kernel_for(state_shader, &Tensor::operands(["k", "v"], [k, v]))?;
    let scan_kernel = gpu.kernel(&STATE_SCAN)?;
    let output_shader = if rows {
        &LINEAR_OUTPUT_ROWS
    } else {
        &LINEAR_OUTPUT
    };
    let output_kernel =
        gpu.kernel_for(output_shader, &Tensor::operands(["q", "k", "v"], inputs))?;
    let chunks = n.div_ceil(TILE);
    let operands = head_operands(dims, inputs, out);
    let mut recording = gpu.recording();
    recording.clear(key_max.buffer());
    for block in blocks {
        let (h0, bh) = (block.first, block.count);
        let [wq, wk, wv, wo] = limits.bind(OP, block, &operands)?;
        let params = |total_groups: usize, [f_tiles, v_tiles]: [usize; 2]| LinearParams {
            heads: bh as u32,
            n: n as u32,
            dk: dk as u32,
            dv: dv as u32,
            features: features as u32,
            norm_aware: norm_aware as u32,
            causal: causal as u32,
            splits: splits as u32,
            keys_per_split: keys_per_split as u32,
            f_tiles: f_tiles as u32,
            v_tiles: v_tiles as u32,
            total_groups: total_groups as u32,
            q_offset: wq.skip(),
            k_offset: wk.skip(),
            v_offset: wv.skip(),
            out_offset: wo.skip(),
            scale_offset: h0 as u32,
            eps: super::reference::EPS as f32,
            _pad: [0; 2],
        };
        if norm_aware {
            record_key_max(
                &mut recording,
                &key_max_kernel,
                [wk, scales],
                (h0, bh),
                n * dk,
            )?;
        }
        let state_tiles = if rows {
            [f_blocks, v_blocks]
        } else {
            [f_tiles, v_tiles]
        };
        let state_groups = bh * splits * state_tiles[0] * state_tiles[1];
        let bindings = [wk, wv, scales, state];
        recording.dispatch(
            &state_kernel,
            &params(state_groups, state_tiles),
            &bindings,
            state_groups as u32,
        )?;
        let scan = ScanParams {
            heads: bh as u32,
            splits: splits as u32,
            width: (features * (dv + 1)) as u32,
            mode: if causal { Scan::Prefix } else { Scan::Total } as u32,
        };
        let scan_groups = (bh * features * (dv + 1)).div_ceil(ELEMENTWISE_WORKGROUP as usize);
        recording.dispatch(&scan_kernel, &scan, &[state], scan_groups as u32)?;
        let (output_groups, output_tiles) = match rows {
            true => (bh * n.div_ceil(8) * v_blocks, [f_tiles, v_blocks]),
            false => (bh * chunks * v_tiles, [f_tiles, v_tiles]),
        };
        let bindings = [wq, wk, wv, scales, state, wo];
        recording.dispatch(
            &output_kernel,
            &params(output_groups, output_tiles),
            &bindings,
            output_groups as u32,
        )?;
    }
    recording.submit()
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct SoftmaxParams {
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
    out_offset: u32,
    scale: f32,
    lse_offset: u32,
    _pad: [u32; 2],
}

/// Exact softmax attention, online (flash-attention style), in the form the device's tuner
/// chooses (as linear attention's: a workgroup per 32 queries × 32 value columns in tiles,
/// or per 8 queries × 64 columns in registers); the rows' log-sum-exp goes to `lse`
/// (`[heads, n]`) when given.
pub(super) fn softmax(
    gpu: &Gpu<'_>,
    dims: Dims,
    causal: bool,
    inputs: [&Tensor; 3],
    out: &Tensor,
    lse: Option<&Tensor>,
) -> Result<()> {
    const OP: &str = "attention::softmax";
    let _call = crate::call::Call::enter(OP);
    run_chosen_form(
        gpu,
        OP,
        dims,
        &format!("causal {causal}"),
        &inputs,
        |rows| softmax_form(gpu, dims, causal, rows, inputs, (out, lse)),
    )
}

/// [`softmax`] in registers (`rows`: softmax_rows.wgsl) or in tiles (softmax.wgsl).
fn softmax_form(
    gpu: &Gpu<'_>,
    dims: Dims,
    causal: bool,
    rows: bool,
    inputs: [&Tensor; 3],
    (out, lse): (&Tensor, Option<&Tensor>),
) -> Result<()> {
    const OP: &str = "attention::softmax";
    let Dims { heads, n, dk, dv } = dims;
    let scratch;
    let lse_buffer = match lse {
        Some(lse) => lse.buffer(),
        None => {
            scratch = gpu.storage(heads * n)?;
            scratch.buffer()
        }
    };
    let [q, k, v, out] = head_operands(dims, inputs, out);
    let lse = Operand::rows("lse", lse_buffer, crate::DType::F32, n);
    let blocks = gpu.binding.blocks(OP, heads, [q, k, v, out, lse])?;
    let windows = blocks.iter().flat_map(|b| &b.bound[..3]);
    let shader = match (rows, reads_vec4(&inputs, dims, windows)) {
        (true, true) => &SOFTMAX_ROWS_VEC4,
        (true, false) => &SOFTMAX_ROWS,
        (false, _) => &SOFTMAX,
    };
    let kernel = gpu.kernel_for(shader, &Tensor::operands(["q", "k", "v"], inputs))?;
    // Tiles of 32 queries × 32 columns, or the register form's 8 queries × 64 columns.
    let (queries, columns) = if rows { (8, 64) } else { (TILE, TILE) };
    let v_tiles = dv.div_ceil(columns);
    let mut recording = gpu.recording();
    recording.dispatch_blocks(&kernel, &blocks, |block| {
        let [wq, wk, wv, wo, wl] = block.bound;
        let groups = block.rows.count * n.div_ceil(queries) * v_tiles;
        let params = SoftmaxParams {
            heads: block.rows.count as u32,
            n: n as u32,
            dk: dk as u32,
            dv: dv as u32,
            causal: causal as u32,
            k_tiles: dk.div_ceil(TILE) as u32,
            v_tiles: v_tiles as u32,
            total_groups: groups as u32,
            q_offset: wq.skip(),
            k_offset: wk.skip(),
            v_offset: wv.skip(),
            out_offset: wo.skip(),
            scale: 1.0 / (dk as f32).sqrt(),
            lse_offset: wl.skip(),
            _pad: [0; 2],
        };
        (params, groups as u32)
    })?;
    recording.submit()
}
