//! GPU launches of the attention kernels, heads spread over as many storage bindings as needed.

use super::reference::feature_len;
use super::{Dims, FeatureMap};
use crate::gpu::dispatch::{BindingLimits, Window};
use crate::gpu::specialize::operands;
use crate::gpu::{binding, shader, GpuDevice, Shader, ELEMENTWISE_WORKGROUP};
use crate::{Error, Result, Tensor};

const KEY_MAX: Shader = shader!("attention/key_max.wgsl");
const LINEAR_STATE: Shader = shader!("attention/linear_state.wgsl");
const STATE_SCAN: Shader = shader!("attention/state_scan.wgsl");
const LINEAR_OUTPUT: Shader = shader!("attention/linear_output.wgsl");
const SOFTMAX: Shader = shader!("attention/softmax.wgsl");

/// Rows and columns of every tile (TILE in the shaders); also the causal chunk length.
const TILE: usize = 32;
/// Elements of k per workgroup of key_max.wgsl (WORKGROUP · PER_THREAD).
const KEY_MAX_SPAN: usize = 256 * 16;
/// Workgroups the non-causal state pass aims for, so that even one head fills a large GPU.
const STATE_WORKGROUPS: usize = 1024;

/// Blocks of whole heads `(first_head, heads)` such that every per-head array fits one
/// binding; `per_head` lists each array's name and elements per head.
fn head_blocks(
    op: &'static str,
    heads: usize,
    per_head: &[(&'static str, usize)],
    limits: &BindingLimits,
) -> Result<Vec<(usize, usize)>> {
    let max = limits.max_elements();
    let mut block = heads;
    for &(arg, len) in per_head {
        let fit = (max / len.max(1) as u64) as usize;
        if fit == 0 {
            return Err(Error::TooLarge {
                op,
                arg,
                bytes: len as u64 * 4,
                limit: limits.max_bytes,
            });
        }
        block = block.min(fit);
    }
    Ok((0..heads)
        .step_by(block)
        .map(|h0| (h0, block.min(heads - h0)))
        .collect())
}

/// Windows of q, k, v and the output for heads `h0 .. h0 + heads`.
fn head_windows(
    op: &'static str,
    limits: &BindingLimits,
    dims: Dims,
    inputs: [&Tensor; 3],
    out: &wgpu::Buffer,
    (h0, heads): (usize, usize),
) -> Result<[Window; 4]> {
    let Dims { n, dk, dv, .. } = dims;
    let [q, k, v] = inputs;
    let window = |arg, t: &Tensor, d: usize| {
        let (first, len) = ((h0 * n * d) as u64, (heads * n * d) as u64);
        limits.window_of(op, arg, t.dtype(), first, len, t.buffer().size())
    };
    let (first, len) = ((h0 * n * dv) as u64, (heads * n * dv) as u64);
    Ok([
        window("q", q, dk)?,
        window("k", k, dk)?,
        window("v", v, dv)?,
        limits.window(op, "out", first, len, out.size())?,
    ])
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

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ScanParams {
    heads: u32,
    splits: u32,
    width: u32,
    causal: u32,
}

/// How the keys of a head are split for the state pass: `(splits, keys_per_split)`.
/// Causal: one split per chunk of TILE keys (the chunked form). Non-causal: enough splits
/// for about [`STATE_WORKGROUPS`] workgroups, each a whole number of tiles.
fn key_splits(dims: Dims, tiles_per_head: usize, causal: bool) -> (usize, usize) {
    let chunks = dims.n.div_ceil(TILE);
    if causal {
        return (chunks, TILE);
    }
    let wanted = STATE_WORKGROUPS
        .div_ceil(dims.heads * tiles_per_head)
        .clamp(1, chunks);
    let keys_per_split = TILE * chunks.div_ceil(wanted);
    (dims.n.div_ceil(keys_per_split), keys_per_split)
}

/// Linear attention: key scale (norm-aware), per-split states, scan, then the queries.
pub(super) fn linear(
    gpu: &GpuDevice,
    dims: Dims,
    map: FeatureMap,
    causal: bool,
    inputs: [&Tensor; 3],
    out: &wgpu::Buffer,
) -> Result<()> {
    const OP: &str = "attention::linear";
    let Dims { heads, n, dk, dv } = dims;
    let [q, k, v] = inputs;
    let norm_aware = map == FeatureMap::NormAware;
    let features = feature_len(map, dk);
    let (f_tiles, v_tiles) = (features.div_ceil(TILE), dv.div_ceil(TILE));
    let (splits, keys_per_split) = key_splits(dims, f_tiles * v_tiles, causal);
    let state_len = splits * features * (dv + 1);
    let limits = gpu.binding;
    let blocks = head_blocks(
        OP,
        heads,
        &[("q", n * dk), ("v", n * dv), ("chunk states", state_len)],
        &limits,
    )?;
    let block_heads = blocks.iter().map(|b| b.1).max().unwrap_or(1);
    let state_elements = (block_heads * state_len) as u64;
    let state = gpu.storage_bytes(state_elements * 4)?;
    let state_window =
        limits.window(OP, "chunk states", 0, state_elements, state.buffer().size())?;
    // One u32 per head: the largest |k| (norm-aware); zero, and never read, for elu+1.
    let key_max = gpu.storage_bytes(heads as u64 * 4)?;
    let key_max_window =
        limits.window(OP, "key scales", 0, heads as u64, key_max.buffer().size())?;

    let kernels = (
        gpu.kernel_for(&KEY_MAX, &operands(["k"], [k]))?,
        gpu.kernel_for(&LINEAR_STATE, &operands(["k", "v"], [k, v]))?,
        gpu.kernel(&STATE_SCAN)?,
        gpu.kernel_for(&LINEAR_OUTPUT, &operands(["q", "k", "v"], [q, k, v]))?,
    );
    let key_max_groups = (n * dk).div_ceil(KEY_MAX_SPAN);
    let chunks = n.div_ceil(TILE);
    let mut launches = Vec::new();
    for block in blocks {
        let (h0, bh) = block;
        let [wq, wk, wv, wo] = head_windows(OP, &limits, dims, inputs, out, block)?;
        let params = |total_groups: usize| LinearParams {
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
            q_offset: wq.skip,
            k_offset: wk.skip,
            v_offset: wv.skip,
            out_offset: wo.skip,
            scale_offset: h0 as u32,
            eps: super::reference::EPS as f32,
            _pad: [0; 2],
        };
        let state_groups = bh * splits * f_tiles * v_tiles;
        let output_groups = bh * chunks * v_tiles;
        let uniforms = [
            gpu.uniform(&KeyMaxParams {
                heads: bh as u32,
                head_len: (n * dk) as u32,
                groups_per_head: key_max_groups as u32,
                k_offset: wk.skip,
                first_head: h0 as u32,
                _pad: [0; 3],
            })?,
            gpu.uniform(&params(state_groups))?,
            gpu.uniform(&ScanParams {
                heads: bh as u32,
                splits: splits as u32,
                width: (features * (dv + 1)) as u32,
                causal: causal as u32,
            })?,
            gpu.uniform(&params(output_groups))?,
        ];
        let groups = [
            bh * key_max_groups,
            state_groups,
            (bh * features * (dv + 1)).div_ceil(ELEMENTWISE_WORKGROUP as usize),
            output_groups,
        ];
        launches.push((uniforms, [wq, wk, wv, wo], groups));
    }

    gpu.submit(|encoder| {
        encoder.clear_buffer(key_max.buffer(), 0, None);
        let (key_max_kernel, state_kernel, scan_kernel, output_kernel) = &kernels;
        let scales = binding(key_max.buffer(), &key_max_window);
        let state = binding(state.buffer(), &state_window);
        for (uniforms, [wq, wk, wv, wo], groups) in &launches {
            if norm_aware {
                let resources = [
                    uniforms[0].buffer().as_entire_binding(),
                    binding(k.buffer(), wk),
                    scales.clone(),
                ];
                gpu.dispatch(encoder, key_max_kernel, &resources, groups[0] as u32);
            }
            let resources = [
                uniforms[1].buffer().as_entire_binding(),
                binding(k.buffer(), wk),
                binding(v.buffer(), wv),
                scales.clone(),
                state.clone(),
            ];
            gpu.dispatch(encoder, state_kernel, &resources, groups[1] as u32);
            let resources = [uniforms[2].buffer().as_entire_binding(), state.clone()];
            gpu.dispatch(encoder, scan_kernel, &resources, groups[2] as u32);
            let resources = [
                uniforms[3].buffer().as_entire_binding(),
                binding(q.buffer(), wq),
                binding(k.buffer(), wk),
                binding(v.buffer(), wv),
                scales.clone(),
                state.clone(),
                binding(out, wo),
            ];
            gpu.dispatch(encoder, output_kernel, &resources, groups[3] as u32);
        }
        Ok(())
    })
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
    _pad: [u32; 3],
}

/// Exact softmax attention, online (flash-attention style), a workgroup per 32 queries ×
/// 32 value columns of a head.
pub(super) fn softmax(
    gpu: &GpuDevice,
    dims: Dims,
    causal: bool,
    inputs: [&Tensor; 3],
    out: &wgpu::Buffer,
) -> Result<()> {
    const OP: &str = "attention::softmax";
    let Dims { heads, n, dk, dv } = dims;
    let [q, k, v] = inputs;
    let limits = gpu.binding;
    let kernel = gpu.kernel_for(&SOFTMAX, &operands(["q", "k", "v"], [q, k, v]))?;
    let blocks = head_blocks(OP, heads, &[("q", n * dk), ("v", n * dv)], &limits)?;
    let v_tiles = dv.div_ceil(TILE);
    let mut launches = Vec::new();
    for block in blocks {
        let windows = head_windows(OP, &limits, dims, inputs, out, block)?;
        let [wq, wk, wv, wo] = windows;
        let groups = block.1 * n.div_ceil(TILE) * v_tiles;
        let uniform = gpu.uniform(&SoftmaxParams {
            heads: block.1 as u32,
            n: n as u32,
            dk: dk as u32,
            dv: dv as u32,
            causal: causal as u32,
            k_tiles: dk.div_ceil(TILE) as u32,
            v_tiles: v_tiles as u32,
            total_groups: groups as u32,
            q_offset: wq.skip,
            k_offset: wk.skip,
            v_offset: wv.skip,
            out_offset: wo.skip,
            scale: 1.0 / (dk as f32).sqrt(),
            _pad: [0; 3],
        })?;
        launches.push((uniform, windows, groups));
    }
    gpu.submit(|encoder| {
        for (uniform, [wq, wk, wv, wo], groups) in &launches {
            let resources = [
                uniform.buffer().as_entire_binding(),
                binding(q.buffer(), wq),
                binding(k.buffer(), wk),
                binding(v.buffer(), wv),
                binding(out, wo),
            ];
            gpu.dispatch(encoder, &kernel, &resources, *groups as u32);
        }
        Ok(())
    })
}
