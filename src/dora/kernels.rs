//! GPU launches of the DoRA kernels, each split into blocks of rows that fit one binding.

use super::LoraShape;
use crate::gpu::dispatch::row_blocks;
use crate::gpu::elementwise::{elementwise, Op};
use crate::gpu::specialize::operands;
use crate::gpu::{binding, shader, GpuDevice, Shader, ELEMENTWISE_WORKGROUP};
use crate::{Context, DType, Error, Result, Tensor};

const WEIGHT_NORM: Shader = shader!("dora/weight_norm.wgsl");
const DENSE_NORM: Shader = shader!("dora/dense_norm.wgsl");
const COMPOSE: Shader = shader!("dora/compose.wgsl");
const COMPOSE_VEC4: Shader = shader!("dora/compose_vec4.wgsl");
const COMPOSE_BACKWARD: Shader = shader!("dora/compose_backward.wgsl");
const MAGNITUDE_GRAD: Shader = shader!("dora/magnitude_grad.wgsl");

/// Rows of the backward pass per workgroup (CHUNK in compose_backward.wgsl).
const BACKWARD_CHUNK: usize = 64;
/// Columns of the backward pass per workgroup.
const BACKWARD_COLUMNS: usize = 64;

fn groups(len: usize) -> u32 {
    len.div_ceil(ELEMENTWISE_WORKGROUP as usize) as u32
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct WeightNormParams {
    d_in: u32,
    r: u32,
    rows: u32,
    low_rank: u32,
    two_s: f32,
    s_squared: f32,
    w_offset: u32,
    b_offset: u32,
    u_offset: u32,
    bg_offset: u32,
    out_offset: u32,
    _pad: u32,
}

/// `norm_j = √max(0, ‖W_j‖² + Σ_r B_jr(2s·U_jr + s²·BG_jr))`; `low_rank = (U, B·G)`, or
/// `None` when s = 0.
pub(super) fn weight_norm(
    gpu: &GpuDevice,
    shape: LoraShape,
    scale: f32,
    w_tensor: &Tensor,
    b_tensor: &Tensor,
    low_rank: Option<(&wgpu::Buffer, &wgpu::Buffer)>,
    norm: &wgpu::Buffer,
) -> Result<()> {
    const OP: &str = "dora::weight_norm";
    let LoraShape { d_out, d_in, r } = shape;
    let (w, b) = (w_tensor.buffer(), b_tensor.buffer());
    let (w_dtype, b_dtype) = (w_tensor.dtype(), b_tensor.dtype());
    // With s = 0 the B slot is bound to W, so it is read as W's dtype (and never used).
    let b_read_as = if low_rank.is_some() { b_dtype } else { w_dtype };
    let kernel = gpu.kernel_for(&WEIGHT_NORM, &[("w", w_dtype), ("b", b_read_as)])?;
    let limits = gpu.binding;
    let mut launches = Vec::new();
    for (row0, rows) in row_blocks(OP, "w", d_out, d_in.max(r), &limits)? {
        let ww = limits.window(
            OP,
            "w",
            (row0 * d_in) as u64,
            (rows * d_in) as u64,
            w.size(),
        )?;
        let low_rank_windows = match low_rank {
            Some((u, bg)) => {
                let window = |arg, buffer: &wgpu::Buffer| {
                    limits.window(OP, arg, (row0 * r) as u64, (rows * r) as u64, buffer.size())
                };
                Some([window("b", b)?, window("u", u)?, window("bg", bg)?])
            }
            None => None,
        };
        let skip = |i: usize| low_rank_windows.map_or(0, |w| w[i].skip);
        let wn = limits.window(OP, "norm", row0 as u64, rows as u64, norm.size())?;
        let uniform = gpu.uniform(&WeightNormParams {
            d_in: d_in as u32,
            r: r as u32,
            rows: rows as u32,
            low_rank: low_rank.is_some() as u32,
            two_s: 2.0 * scale,
            s_squared: scale * scale,
            w_offset: ww.skip,
            b_offset: skip(0),
            u_offset: skip(1),
            bg_offset: skip(2),
            out_offset: wn.skip,
            _pad: 0,
        })?;
        launches.push((uniform, ww, low_rank_windows, wn, rows));
    }
    gpu.submit(|encoder| {
        for (uniform, ww, low_rank_windows, wn, rows) in &launches {
            // With s = 0 the low-rank bindings are never read: W stands in for them.
            let [b_res, u_res, bg_res] = match (low_rank, low_rank_windows) {
                (Some((u, bg)), Some([wb, wu, wbg])) => {
                    [binding(b, wb), binding(u, wu), binding(bg, wbg)]
                }
                _ => [binding(w, ww), binding(w, ww), binding(w, ww)],
            };
            let resources = [
                uniform.buffer().as_entire_binding(),
                binding(w, ww),
                b_res,
                u_res,
                bg_res,
                binding(norm, wn),
            ];
            gpu.dispatch(encoder, &kernel, &resources, *rows as u32);
        }
        Ok(())
    })
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct DenseNormParams {
    d_in: u32,
    rows: u32,
    scale: f32,
    w_offset: u32,
    d_offset: u32,
    out_offset: u32,
    _pad: [u32; 2],
}

/// `norm_j = ‖W_j + s·D_j‖` with `D = B·A` already formed.
pub(super) fn dense_norm(
    gpu: &GpuDevice,
    shape: LoraShape,
    scale: f32,
    w_tensor: &Tensor,
    ba: &wgpu::Buffer,
    norm: &wgpu::Buffer,
) -> Result<()> {
    const OP: &str = "dora::weight_norm_dense";
    let LoraShape { d_out, d_in, .. } = shape;
    let w = w_tensor.buffer();
    let kernel = gpu.kernel_for(&DENSE_NORM, &[("w", w_tensor.dtype())])?;
    let limits = gpu.binding;
    let mut launches = Vec::new();
    for (row0, rows) in row_blocks(OP, "w", d_out, d_in, &limits)? {
        let (first, len) = ((row0 * d_in) as u64, (rows * d_in) as u64);
        let ww = limits.window_of(OP, "w", w_tensor.dtype(), first, len, w.size())?;
        let wd = limits.window(OP, "b·a", first, len, ba.size())?;
        let wn = limits.window(OP, "norm", row0 as u64, rows as u64, norm.size())?;
        let uniform = gpu.uniform(&DenseNormParams {
            d_in: d_in as u32,
            rows: rows as u32,
            scale,
            w_offset: ww.skip,
            d_offset: wd.skip,
            out_offset: wn.skip,
            _pad: [0; 2],
        })?;
        launches.push((uniform, [ww, wd, wn], rows));
    }
    gpu.submit(|encoder| {
        for (uniform, [ww, wd, wn], rows) in &launches {
            let resources = [
                uniform.buffer().as_entire_binding(),
                binding(w, ww),
                binding(ba, wd),
                binding(norm, wn),
            ];
            gpu.dispatch(encoder, &kernel, &resources, *rows as u32);
        }
        Ok(())
    })
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ComposeParams {
    rows: u32,
    d_out: u32,
    scale: f32,
    col_blocks: u32,
    total_groups: u32,
    base_offset: u32,
    lora_offset: u32,
    out_offset: u32,
}

/// Rows per workgroup of the compose kernel (ROWS in compose.wgsl).
const COMPOSE_ROWS: usize = 8;

/// `y = base + (g−1)⊙base + g⊙(s·lora)` in one pass; `inputs = [base, lora, magnitude, norm]`.
pub(super) fn compose(
    gpu: &GpuDevice,
    n: usize,
    d_out: usize,
    scale: f32,
    inputs: [&Tensor; 4],
    y: &wgpu::Buffer,
) -> Result<()> {
    const OP: &str = "dora::compose";
    let names = ["base", "lora", "magnitude", "norm"];
    // f32 rows of whole vec4s take the vec4 kernel; windows then start on vec4 boundaries too,
    // since a row block starts at a multiple of d_out elements.
    let vec4 = d_out % 4 == 0 && inputs.iter().all(|t| t.dtype() == DType::F32);
    let width = if vec4 { 4 } else { 1 };
    let kernel = if vec4 {
        gpu.kernel(&COMPOSE_VEC4)?
    } else {
        gpu.kernel_for(&COMPOSE, &operands(names, inputs))?
    };
    let [base, lora, magnitude, norm] = inputs.map(Tensor::buffer);
    let [base_dtype, lora_dtype, m_dtype, norm_dtype] = inputs.map(Tensor::dtype);
    let limits = gpu.binding;
    let wm = limits.window_of(OP, "magnitude", m_dtype, 0, d_out as u64, magnitude.size())?;
    let wnorm = limits.window_of(OP, "norm", norm_dtype, 0, d_out as u64, norm.size())?;
    let mut launches = Vec::new();
    for (row0, rows) in row_blocks(OP, "base", n, d_out, &limits)? {
        let (first, len) = ((row0 * d_out) as u64, (rows * d_out) as u64);
        let wb = limits.window_of(OP, "base", base_dtype, first, len, base.size())?;
        let wl = limits.window_of(OP, "lora", lora_dtype, first, len, lora.size())?;
        let wy = limits.window(OP, "output", first, len, y.size())?;
        let col_blocks = (d_out / width).div_ceil(ELEMENTWISE_WORKGROUP as usize);
        let total_groups = col_blocks * rows.div_ceil(COMPOSE_ROWS);
        debug_assert!([wb.skip, wl.skip, wy.skip]
            .iter()
            .all(|s| *s as usize % width == 0));
        let uniform = gpu.uniform(&ComposeParams {
            rows: rows as u32,
            d_out: (d_out / width) as u32,
            scale,
            col_blocks: col_blocks as u32,
            total_groups: total_groups as u32,
            base_offset: wb.skip / width as u32,
            lora_offset: wl.skip / width as u32,
            out_offset: wy.skip / width as u32,
        })?;
        launches.push((uniform, [wb, wl, wy], total_groups as u32));
    }
    gpu.submit(|encoder| {
        for (uniform, [wb, wl, wy], total_groups) in &launches {
            let resources = [
                uniform.buffer().as_entire_binding(),
                binding(base, wb),
                binding(lora, wl),
                binding(magnitude, &wm),
                binding(norm, &wnorm),
                binding(y, wy),
            ];
            gpu.dispatch(encoder, &kernel, &resources, *total_groups);
        }
        Ok(())
    })
}

/// PEFT's compose as separate element-wise kernels, each a full pass over its operands.
#[allow(clippy::too_many_arguments)]
pub(super) fn compose_unfused(
    ctx: &Context,
    gpu: &GpuDevice,
    n: usize,
    d_out: usize,
    scale: f32,
    base: &Tensor,
    lora: &Tensor,
    magnitude: &Tensor,
    norm: &Tensor,
) -> Result<Tensor> {
    // Each step allocates its result, as an eager framework does.
    let vector = || ctx.output(&[d_out]);
    let full = || ctx.output(&[n, d_out]);
    let g = vector()?;
    elementwise(gpu, Op::Div, magnitude, Some(norm), &g, 1, d_out)?;
    let g_minus_1 = vector()?;
    elementwise(gpu, Op::AddScalar(-1.0), &g, None, &g_minus_1, 1, d_out)?;
    let scaled = full()?;
    elementwise(gpu, Op::Scale(scale), lora, None, &scaled, n, d_out)?;
    let t1 = full()?;
    elementwise(gpu, Op::MulRow, base, Some(&g_minus_1), &t1, n, d_out)?;
    let t2 = full()?;
    elementwise(gpu, Op::MulRow, &scaled, Some(&g), &t2, n, d_out)?;
    let delta = full()?;
    elementwise(gpu, Op::Add, &t1, Some(&t2), &delta, n, d_out)?;
    let y = full()?;
    elementwise(gpu, Op::Add, base, Some(&delta), &y, n, d_out)?;
    Ok(y)
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct BackwardParams {
    rows: u32,
    d_out: u32,
    scale: f32,
    col_blocks: u32,
    total_groups: u32,
    chunk0: u32,
    dy_offset: u32,
    base_offset: u32,
    lora_offset: u32,
    d_base_offset: u32,
    d_lora_offset: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct MagnitudeGradParams {
    d_out: u32,
    chunks: u32,
    _pad: [u32; 2],
}

/// Fused compose backward; `inputs = [dy, base, lora, magnitude, norm]`,
/// `outputs = [d_base, d_lora, d_magnitude]`.
pub(super) fn compose_backward(
    ctx: &Context,
    gpu: &GpuDevice,
    n: usize,
    d_out: usize,
    scale: f32,
    inputs: [&Tensor; 5],
    outputs: [&wgpu::Buffer; 3],
) -> Result<()> {
    const OP: &str = "dora::compose_backward";
    let names = ["dy", "base", "lora", "magnitude", "norm"];
    let backward = gpu.kernel_for(&COMPOSE_BACKWARD, &operands(names, inputs))?;
    let finish = gpu.kernel_for(&MAGNITUDE_GRAD, &[("norm", inputs[4].dtype())])?;
    let [dy_dtype, base_dtype, lora_dtype, m_dtype, norm_dtype] = inputs.map(Tensor::dtype);
    let [dy, base, lora, magnitude, norm] = inputs.map(Tensor::buffer);
    let [d_base, d_lora, d_magnitude] = outputs;
    let limits = gpu.binding;
    // Each block numbers its own chunks from its first row; `chunk0` places them in `partial`.
    let blocks = row_blocks(OP, "base", n, d_out, &limits)?;
    let total_chunks: usize = blocks
        .iter()
        .map(|(_, rows)| rows.div_ceil(BACKWARD_CHUNK))
        .sum();
    if (total_chunks * d_out * 4) as u64 > limits.max_bytes {
        return Err(Error::TooLarge {
            op: OP,
            arg: "partial sums",
            bytes: (total_chunks * d_out * 4) as u64,
            limit: limits.max_bytes,
        });
    }
    let partial = ctx.output(&[total_chunks, d_out])?;
    let col_blocks = d_out.div_ceil(BACKWARD_COLUMNS);
    let wm = limits.window_of(OP, "magnitude", m_dtype, 0, d_out as u64, magnitude.size())?;
    let wnorm = limits.window_of(OP, "norm", norm_dtype, 0, d_out as u64, norm.size())?;
    let wpartial = limits.window(
        OP,
        "partial sums",
        0,
        (total_chunks * d_out) as u64,
        partial.buffer().size(),
    )?;
    let mut launches = Vec::new();
    let mut chunk0 = 0;
    for (row0, rows) in blocks {
        let (first, len) = ((row0 * d_out) as u64, (rows * d_out) as u64);
        let window = |arg, dtype, buffer: &wgpu::Buffer| {
            limits.window_of(OP, arg, dtype, first, len, buffer.size())
        };
        let windows = [
            window("dy", dy_dtype, dy)?,
            window("base", base_dtype, base)?,
            window("lora", lora_dtype, lora)?,
            window("d_base", DType::F32, d_base)?,
            window("d_lora", DType::F32, d_lora)?,
        ];
        let chunks = rows.div_ceil(BACKWARD_CHUNK);
        let total_groups = chunks * col_blocks;
        let uniform = gpu.uniform(&BackwardParams {
            rows: rows as u32,
            d_out: d_out as u32,
            scale,
            col_blocks: col_blocks as u32,
            total_groups: total_groups as u32,
            chunk0: chunk0 as u32,
            dy_offset: windows[0].skip,
            base_offset: windows[1].skip,
            lora_offset: windows[2].skip,
            d_base_offset: windows[3].skip,
            d_lora_offset: windows[4].skip,
            _pad: 0,
        })?;
        launches.push((uniform, windows, total_groups));
        chunk0 += chunks;
    }
    let finish_uniform = gpu.uniform(&MagnitudeGradParams {
        d_out: d_out as u32,
        chunks: total_chunks as u32,
        _pad: [0; 2],
    })?;
    let wdm = limits.window(OP, "d_magnitude", 0, d_out as u64, d_magnitude.size())?;
    gpu.submit(|encoder| {
        for (uniform, [wdy, wb, wl, wdb, wdl], total_groups) in &launches {
            let resources = [
                uniform.buffer().as_entire_binding(),
                binding(dy, wdy),
                binding(base, wb),
                binding(lora, wl),
                binding(magnitude, &wm),
                binding(norm, &wnorm),
                binding(d_base, wdb),
                binding(d_lora, wdl),
                binding(partial.buffer(), &wpartial),
            ];
            gpu.dispatch(encoder, &backward, &resources, *total_groups as u32);
        }
        let resources = [
            finish_uniform.buffer().as_entire_binding(),
            binding(partial.buffer(), &wpartial),
            binding(norm, &wnorm),
            binding(d_magnitude, &wdm),
        ];
        gpu.dispatch(encoder, &finish, &resources, groups(d_out));
        Ok(())
    })
}
