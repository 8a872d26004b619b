//! GPU launches of M-FAC: the m×m factorisation, and the passes over the `[rows, d]` matrix
//! R (V for the static inverse, the window's gradients for the sliding one), split into
//! blocks of rows that fit one storage binding.

use crate::gpu::dispatch::Rows;
use crate::gpu::pool::PooledBuffer;
use crate::gpu::{shader, Bound, GpuDevice, Operand, Shader, ELEMENTWISE_WORKGROUP};
use crate::{Error, Result, Tensor};

const FACTOR: Shader = shader!("mfac/factor.wgsl");
const DOTS: Shader = shader!("mfac/dots.wgsl");
const DOTS_VEC4: Shader = shader!("mfac/dots_vec4.wgsl");
const COEFFICIENTS: Shader = shader!("mfac/coefficients.wgsl");
const COMBINE: Shader = shader!("mfac/combine.wgsl");
const COMBINE_VEC4: Shader = shader!("mfac/combine_vec4.wgsl");
const INVERSE_ENTRY: Shader = shader!("mfac/inverse_entry.wgsl");

/// Rows of R per workgroup of dots.wgsl.
const DOT_ROWS: usize = 8;
/// Workgroups the dot products aim for: on a GPU, enough that a few rows still fill it; on a
/// CPU adapter, few and long, each a handful per core. On lavapipe (2 cores) the ihvp of
/// m = 16, d = 2¹⁸ took 82 ms at 1024 workgroups, 58 at 64 and 65 at 16.
fn dot_workgroups(gpu: &GpuDevice) -> usize {
    match gpu.device_type {
        wgpu::DeviceType::Cpu => 64,
        _ => 1024,
    }
}

/// `W = L⁻¹/λ` (`[c, c]`) and the pivots D (`[c]`) of `M = c·I + G·Gᵀ/λ`.
pub(super) struct Factorization {
    pub w: PooledBuffer,
    pub denominators: PooledBuffer,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct FactorParams {
    count: u32,
    stride: u32,
    damp: f32,
    _pad: u32,
}

/// Factors the leading `count × count` block of the Gram matrix (row stride `stride`).
pub(super) fn factor(
    gpu: &GpuDevice,
    op: &'static str,
    gram: &wgpu::Buffer,
    count: usize,
    stride: usize,
    damp: f32,
) -> Result<Factorization> {
    let square = count * count;
    let kernel = gpu.kernel(&FACTOR)?;
    let work = gpu.storage_bytes(square as u64 * 4)?;
    let w = gpu.storage_bytes(square as u64 * 4)?;
    let denominators = gpu.storage_bytes(count as u64 * 4)?;
    let bound = gpu.binding.bind_all(
        op,
        &[
            Operand::fixed("gram", gram, stride * stride),
            Operand::fixed("m×m factor", work.buffer(), square),
            Operand::fixed("m×m factor", w.buffer(), square),
            Operand::fixed("pivots", denominators.buffer(), count),
        ],
    )?;
    let params = FactorParams {
        count: count as u32,
        stride: stride as u32,
        damp,
        _pad: 0,
    };
    let mut recording = gpu.recording();
    recording.dispatch(&kernel, &params, &bound, 1)?;
    recording.submit()?;
    Ok(Factorization { w, denominators })
}

/// How the dot products `a = R·x` become the coefficients of the combine pass.
pub(super) enum Coefficients<'a> {
    /// `c_i = a_i / D_i` (R = V).
    Static { denominators: &'a wgpu::Buffer },
    /// `c = Wᵀ·diag(D)⁻¹·W·a` (R = the gradients).
    Woodbury(&'a Factorization),
    /// `a` is row and column `slot` of the Gram matrix `gram` (row stride `stride`).
    GramRow {
        gram: &'a wgpu::Buffer,
        slot: usize,
        stride: usize,
    },
    /// x holds the rows of R themselves: `a` is the whole Gram matrix `R·Rᵀ`, `[count, count]`.
    Gram { gram: &'a wgpu::Buffer },
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct DotsParams {
    rows: u32,
    d: u32,
    vectors: u32,
    chunk_len: u32,
    chunks: u32,
    row_blocks: u32,
    row0: u32,
    all_rows: u32,
    r_offset: u32,
    x_offset: u32,
    _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct CoefficientParams {
    count: u32,
    chunks: u32,
    mode: u32,
    slot: u32,
    stride: u32,
    all_rows: u32,
    vectors: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct CombineParams {
    rows: u32,
    d: u32,
    vectors: u32,
    row0: u32,
    all_rows: u32,
    first: u32,
    diagonal: u32,
    damp: f32,
    r_offset: u32,
    x_offset: u32,
    out_offset: u32,
    _pad: u32,
}

/// Blocks of rows of the first `count` rows of `r [*, d]`, each with R's binding.
fn r_blocks<'a>(
    gpu: &GpuDevice,
    op: &'static str,
    arg: &'static str,
    r: &'a Tensor,
    count: usize,
    d: usize,
) -> Result<Vec<(Rows, Bound<'a>)>> {
    let operand = [r.rows(arg, d)];
    Ok(gpu
        .binding
        .blocks(op, count, operand)?
        .into_iter()
        .map(|block| (block.rows, block.bound[0]))
        .collect())
}

/// The coefficients `c` (`[k, count]`) for the vectors `x [k, d]` against the first
/// `count` rows of `r`, or (GramRow) the Gram row and column written in place.
pub(super) fn coefficients(
    gpu: &GpuDevice,
    op: &'static str,
    r: &Tensor,
    count: usize,
    x: &Tensor,
    how: Coefficients<'_>,
) -> Result<Option<PooledBuffer>> {
    let d = *r.shape().last().unwrap_or(&1);
    let k = x.len() / d;
    let limits = gpu.binding;
    let blocks = r_blocks(gpu, op, "grads", r, count, d)?;
    let row_groups: usize = blocks.iter().map(|b| b.0.count.div_ceil(DOT_ROWS)).sum();
    let chunks = dot_workgroups(gpu)
        .div_ceil(row_groups.max(1))
        .clamp(1, d.div_ceil(ELEMENTWISE_WORKGROUP as usize));
    // Chunks are whole sweeps of the 256 lanes (× 4 coordinates in the vec4 form).
    let vec4 = r.dtype() == crate::DType::F32
        && d % 4 == 0
        && blocks
            .iter()
            .all(|(_, wr)| wr.skip() % 4 == 0 && wr.bytes() >= 16);
    let step = if vec4 { 1024 } else { 256 };
    let chunk_len = d.div_ceil(chunks).div_ceil(step) * step;
    let chunks = d.div_ceil(chunk_len);
    let partial_len = k * chunks * count;
    let partial = gpu.storage_bytes(partial_len as u64 * 4)?;
    let [wx, wp] = limits.bind_all(
        op,
        &[
            Operand::fixed("x", x.buffer(), x.len()),
            Operand::fixed("partial dots", partial.buffer(), partial_len),
        ],
    )?;
    let dots = match vec4 && wx.skip() % 4 == 0 && wx.bytes() >= 16 {
        true => gpu.kernel(&DOTS_VEC4)?,
        false => gpu.kernel_for(&DOTS, &Tensor::operands(["r"], [r]))?,
    };
    let mut recording = gpu.recording();
    for &(rows, wr) in &blocks {
        let row_blocks = rows.count.div_ceil(DOT_ROWS);
        let params = DotsParams {
            rows: rows.count as u32,
            d: d as u32,
            vectors: k as u32,
            chunk_len: chunk_len as u32,
            chunks: chunks as u32,
            row_blocks: row_blocks as u32,
            row0: rows.first as u32,
            all_rows: count as u32,
            r_offset: wr.skip(),
            x_offset: wx.skip(),
            _pad: [0; 2],
        };
        recording.dispatch(&dots, &params, &[wr, wx, wp], (row_blocks * chunks) as u32)?;
    }

    let kernel = gpu.kernel(&COEFFICIENTS)?;
    let (mode, slot, stride) = match how {
        Coefficients::Static { .. } => (0, 0, 0),
        Coefficients::Woodbury(_) => (1, 0, 0),
        Coefficients::GramRow { slot, stride, .. } => (2, slot, stride),
        Coefficients::Gram { .. } => (3, 0, count),
    };
    let params = CoefficientParams {
        count: count as u32,
        chunks: chunks as u32,
        mode,
        slot: slot as u32,
        stride: stride as u32,
        all_rows: count as u32,
        vectors: k as u32,
        _pad: 0,
    };
    let scratch_len = 2 * k * count;
    let scratch = gpu.storage_bytes(scratch_len as u64 * 4)?;
    let coefficients = match how {
        Coefficients::GramRow { .. } | Coefficients::Gram { .. } => None,
        _ => Some(gpu.storage_bytes((k * count) as u64 * 4)?),
    };
    // The W and D bindings: the factorisation's, or (unused) the partial sums.
    let (w_buffer, w_len, d_buffer, d_len) = match &how {
        Coefficients::Static { denominators } => (partial.buffer(), 1, *denominators, count),
        Coefficients::Woodbury(f) => (f.w.buffer(), count * count, f.denominators.buffer(), count),
        Coefficients::GramRow { .. } | Coefficients::Gram { .. } => {
            (partial.buffer(), 1, partial.buffer(), 1)
        }
    };
    let (out_buffer, out_len) = match (&how, &coefficients) {
        (Coefficients::GramRow { gram, stride, .. }, _) => (*gram, stride * stride),
        (Coefficients::Gram { gram }, _) => (*gram, count * count),
        (_, Some(c)) => (c.buffer(), k * count),
        (_, None) => (scratch.buffer(), k * count), // not reached: allocated above
    };
    let [ww, wd, ws, wo] = limits.bind_all(
        op,
        &[
            Operand::fixed("m×m factor", w_buffer, w_len),
            Operand::fixed("pivots", d_buffer, d_len),
            Operand::fixed("coefficients", scratch.buffer(), scratch_len),
            Operand::fixed("coefficients", out_buffer, out_len),
        ],
    )?;
    recording.dispatch(&kernel, &params, &[wp, ww, wd, ws, wo], k as u32)?;
    recording.submit()?;
    Ok(coefficients)
}

/// `out_v = x_v/λ − Σ_i c_v[i]·R_i` (ihvp), or with `diagonal`, `out = 1/λ − Σ_i R_i²/D_i`
/// (`coefficients` then holds D). `out` is `[k, d]`.
#[allow(clippy::too_many_arguments)]
pub(super) fn combine(
    gpu: &GpuDevice,
    op: &'static str,
    r: &Tensor,
    count: usize,
    x: Option<&Tensor>,
    coefficients: &wgpu::Buffer,
    damp: f32,
    out: &wgpu::Buffer,
    k: usize,
) -> Result<()> {
    let d = *r.shape().last().unwrap_or(&1);
    let blocks = r_blocks(gpu, op, "grads", r, count, d)?;
    let coefficient_len = if x.is_some() { k * count } else { count };
    // Without x (the diagonal) the x slot is bound to the coefficients and never read.
    let x_operand = match x {
        Some(x) => Operand::fixed("x", x.buffer(), x.len()),
        None => Operand::fixed("coefficients", coefficients, coefficient_len),
    };
    let [wx, wc, wo] = gpu.binding.bind_all(
        op,
        &[
            x_operand,
            Operand::fixed("coefficients", coefficients, coefficient_len),
            Operand::fixed("out", out, k * d),
        ],
    )?;
    // Four coordinates per thread where R, x and out can be read as vec4s.
    let aligned = |b: &Bound<'_>| b.skip() % 4 == 0 && b.bytes() >= 16;
    let vec4 = r.dtype() == crate::DType::F32
        && d % 4 == 0
        && [wx, wo].iter().all(aligned)
        && blocks.iter().all(|(_, wr)| aligned(wr));
    let (kernel, per_thread) = match vec4 {
        true => (gpu.kernel(&COMBINE_VEC4)?, 4),
        false => (gpu.kernel_for(&COMBINE, &Tensor::operands(["r"], [r]))?, 1),
    };
    let groups = (k * d / per_thread).div_ceil(ELEMENTWISE_WORKGROUP as usize) as u32;
    let mut recording = gpu.recording();
    // With no rows at all (never: count ≥ 1), nothing would write `out`.
    for (index, &(rows, wr)) in blocks.iter().enumerate() {
        let params = CombineParams {
            rows: rows.count as u32,
            d: d as u32,
            vectors: k as u32,
            row0: rows.first as u32,
            all_rows: count as u32,
            first: (index == 0) as u32,
            diagonal: x.is_none() as u32,
            damp,
            r_offset: wr.skip(),
            x_offset: wx.skip(),
            out_offset: wo.skip(),
            _pad: 0,
        };
        recording.dispatch(&kernel, &params, &[wr, wx, wc, wo], groups)?;
    }
    recording.submit()
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct EntryParams {
    rows: u32,
    d: u32,
    i: u32,
    j: u32,
    row0: u32,
    slot: u32,
    r_offset: u32,
    _pad: u32,
}

/// `Σ_t V[t][i]·V[t][j] / D_t`, summed over blocks of rows on the host.
pub(super) fn entry_sum(
    gpu: &GpuDevice,
    op: &'static str,
    v: &Tensor,
    denominators: &wgpu::Buffer,
    (i, j): (usize, usize),
) -> Result<f64> {
    let (m, d) = (v.shape()[0], v.shape()[1]);
    let kernel = gpu.kernel(&INVERSE_ENTRY)?;
    let blocks = r_blocks(gpu, op, "v", v, m, d)?;
    let out = gpu.storage_bytes(blocks.len() as u64 * 4)?;
    let [wd, wo] = gpu.binding.bind_all(
        op,
        &[
            Operand::fixed("pivots", denominators, m),
            Operand::fixed("entry", out.buffer(), blocks.len()),
        ],
    )?;
    let mut recording = gpu.recording();
    for (slot, &(rows, wr)) in blocks.iter().enumerate() {
        let params = EntryParams {
            rows: rows.count as u32,
            d: d as u32,
            i: i as u32,
            j: j as u32,
            row0: rows.first as u32,
            slot: slot as u32,
            r_offset: wr.skip(),
            _pad: 0,
        };
        recording.dispatch(&kernel, &params, &[wr, wd, wo], 1)?;
    }
    recording.submit()?;
    let bytes = gpu.read(out.buffer(), blocks.len() as u64 * 4)?;
    let sums: &[f32] = bytemuck::cast_slice(&bytes);
    Ok(sums.iter().map(|&s| s as f64).sum())
}

/// An `Err` for an m×m factorisation that cannot fit one binding.
pub(super) fn check_window_count(op: &'static str, gpu: &GpuDevice, m: usize) -> Result<()> {
    let bytes = (m * m * 4) as u64;
    if bytes > gpu.binding.max_bytes {
        return Err(Error::TooLarge {
            op,
            arg: "m (the m×m factorisation)",
            bytes,
            limit: gpu.binding.max_bytes,
        });
    }
    Ok(())
}
