//! GPU launches of the DoRA kernels, each split into blocks of rows that fit one binding.

use super::LoraShape;
use crate::gpu::{shader, Bound, Shader, ELEMENTWISE_WORKGROUP};
use crate::linalg::elementwise::{elementwise, Op};
use crate::op::Gpu;
use crate::{DType, Error, Result, Tensor};

const WEIGHT_NORM: Shader = shader!("dora/weight_norm.wgsl");
const DENSE_NORM: Shader = shader!("dora/dense_norm.wgsl");
const COMPOSE: Shader = shader!("dora/compose.wgsl");
const COMPOSE_VEC4: Shader = shader!("dora/compose_vec4.wgsl");
const COMPOSE_BACKWARD: Shader = shader!("dora/compose_backward.wgsl");
const MAGNITUDE_GRAD: Shader = shader!("dora/magnitude_grad.wgsl");

/// Rows of the backward pass per workgroup.
use crate::gpu::shader_constants::dora_compose_backward::CHUNK as BACKWARD_CHUNK;
/// Columns of the backward pass per workgroup.
const BACKWARD_COLUMNS: usize = 64;

fn groups(len: usize) -> u32 {
    len.div_ceil(ELEMENTWISE_WORKGROUP as usize) as u32
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct WeightNormParams {
    r: u32,
    rows: u32,
    low_rank: u32,
    two_s: f32,
    s_squared: f32,
    squares_offset: u32,
    b_offset: u32,
    u_offset: u32,
    bg_offset: u32,
    out_offset: u32,
    _pad: [u32; 2],
}

/// `norm_j = √max(0, ‖W_j‖² + Σ_r B_jr(2s·U_jr + s²·BG_jr))` from `w_squares = ‖W_j‖²`;
/// `low_rank = (U, B·G)`, or `None` when s = 0 or when `w_squares` already holds the whole
/// `‖W_j + s·(B·A)_j‖²`.
pub(super) fn weight_norm(
    gpu: &Gpu<'_>,
    shape: LoraShape,
    scale: f32,
    [w_squares, b]: [&Tensor; 2],
    low_rank: Option<[&Tensor; 2]>,
    norm: &Tensor,
) -> Result<()> {
    const OP: &str = "dora::weight_norm";
    let _call = crate::call::Call::enter(OP);
    let LoraShape { d_out, r, .. } = shape;
    let squares = w_squares.rows("w_squares", 1);
    // With s = 0 the low-rank bindings are never read: the squares stand in for them.
    let (low, b_read_as) = match low_rank {
        Some([u, bg]) => (
            [b.rows("b", r), u.rows("u", r), bg.rows("bg", r)],
            b.dtype(),
        ),
        None => ([w_squares.rows("w_squares", 1); 3], DType::F32),
    };
    let kernel = gpu.kernel_for(&WEIGHT_NORM, &[("b", b_read_as)])?;
    let [b_op, u_op, bg_op] = low;
    let operands = [squares, b_op, u_op, bg_op, norm.rows("norm", 1)];
    let blocks = gpu.binding.blocks(OP, d_out, operands)?;
    let mut recording = gpu.recording();
    recording.dispatch_blocks(&kernel, &blocks, |block| {
        let [ws, wb, wu, wbg, wn] = block.bound;
        let low = |bound: Bound<'_>| if low_rank.is_some() { bound.skip() } else { 0 };
        let params = WeightNormParams {
            r: r as u32,
            rows: block.rows.count as u32,
            low_rank: low_rank.is_some() as u32,
            two_s: 2.0 * scale,
            s_squared: scale * scale,
            squares_offset: ws.skip(),
            b_offset: low(wb),
            u_offset: low(wu),
            bg_offset: low(wbg),
            out_offset: wn.skip(),
            _pad: [0; 2],
        };
        (params, block.rows.count as u32)
    })?;
    recording.submit()
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
    gpu: &Gpu<'_>,
    shape: LoraShape,
    scale: f32,
    w: &Tensor,
    ba: &Tensor,
    norm: &Tensor,
) -> Result<()> {
    const OP: &str = "dora::weight_norm_dense";
    let _call = crate::call::Call::enter(OP);
    let LoraShape { d_out, d_in, .. } = shape;
    let kernel = gpu.kernel_for(&DENSE_NORM, &[("w", w.dtype())])?;
    let operands = [
        w.rows("w", d_in),
        ba.rows("b·a", d_in),
        norm.rows("norm", 1),
    ];
    let blocks = gpu.binding.blocks(OP, d_out, operands)?;
    let mut recording = gpu.recording();
    recording.dispatch_blocks(&kernel, &blocks, |block| {
        let [ww, wd, wn] = block.bound;
        let params = DenseNormParams {
            d_in: d_in as u32,
            rows: block.rows.count as u32,
            scale,
            w_offset: ww.skip(),
            d_offset: wd.skip(),
            out_offset: wn.skip(),
            _pad: [0; 2],
        };
        (params, block.rows.count as u32)
    })?;
    recording.submit()
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

/// Rows per workgroup of the compose kernel (the same in its vec4 form).
use crate::gpu::shader_constants::dora_compose::ROWS as COMPOSE_ROWS;

/// `y = base + (g−1)⊙base + g⊙(s·lora)` in one pass; `inputs = [base, lora, magnitude, norm]`.
pub(super) fn compose(
    gpu: &Gpu<'_>,
    [n, d_out]: [usize; 2],
    scale: f32,
    inputs: [&Tensor; 4],
    y: &Tensor,
) -> Result<()> {
    const OP: &str = "dora::compose";
    let _call = crate::call::Call::enter(OP);
    let names = ["base", "lora", "magnitude", "norm"];
    // f32 rows of whole vec4s take the vec4 kernel; windows then start on vec4 boundaries too,
    // since a row block starts at a multiple of d_out elements.
    let vec4 = d_out % 4 == 0 && inputs.iter().all(|t| t.dtype() == DType::F32);
    let width = if vec4 { 4 } else { 1 };
    let kernel = if vec4 {
        gpu.kernel(&COMPOSE_VEC4)?
    } else {
        gpu.kernel_for(&COMPOSE, &Tensor::operands(names, inputs))?
    };
    let [base, lora, magnitude, norm] = inputs;
    let operands = [
        base.rows("base", d_out),
        lora.rows("lora", d_out),
        magnitude.all("magnitude"),
        norm.all("norm"),
        y.rows("output", d_out),
    ];
    let blocks = gpu.binding.blocks(OP, n, operands)?;
    let mut recording = gpu.recording();
    recording.dispatch_blocks(&kernel, &blocks, |block| {
        let [wb, wl, _, _, wy] = block.bound;
        let rows = block.rows.count;
        let col_blocks = (d_out / width).div_ceil(ELEMENTWISE_WORKGROUP as usize);
        let total_groups = col_blocks * rows.div_ceil(COMPOSE_ROWS);
        debug_assert!([wb.skip(), wl.skip(), wy.skip()]
            .iter()
            .all(|s| *s as usize % width == 0));
        let params = ComposeParams {
            rows: rows as u32,
            d_out: (d_out / width) as u32,
            scale,
            col_blocks: col_blocks as u32,
            total_groups: total_groups as u32,
            base_offset: wb.skip() / width as u32,
            lora_offset: wl.skip() / width as u32,
            out_offset: wy.skip() / width as u32,
        };
        (params, total_groups as u32)
    })?;
    recording.submit()
}

/// PEFT's compose as separate element-wise kernels, each a full pass over its operands and
/// each allocating its result, as an eager framework does.
pub(super) fn compose_unfused(
    gpu: &Gpu<'_>,
    [n, d_out]: [usize; 2],
    scale: f32,
    [base, lora, magnitude, norm]: [&Tensor; 4],
) -> Result<Tensor> {
    let ctx = gpu.ctx;
    let (vector, full) = ([1, d_out], [n, d_out]);
    let g = elementwise(ctx, Op::Div, magnitude, Some(norm), vector, &[d_out])?;
    let g_minus_1 = elementwise(ctx, Op::AddScalar(-1.0), &g, None, vector, &[d_out])?;
    let scaled = elementwise(ctx, Op::Scale(scale), lora, None, full, &full)?;
    let t1 = elementwise(ctx, Op::MulRow, base, Some(&g_minus_1), full, &full)?;
    let t2 = elementwise(ctx, Op::MulRow, &scaled, Some(&g), full, &full)?;
    let delta = elementwise(ctx, Op::Add, &t1, Some(&t2), full, &full)?;
    elementwise(ctx, Op::Add, base, Some(&delta), full, &full)
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
    gpu: &Gpu<'_>,
    [n, d_out]: [usize; 2],
    scale: f32,
    inputs: [&Tensor; 5],
    [d_base, d_lora, d_magnitude]: &[Tensor; 3],
) -> Result<()> {
    const OP: &str = "dora::compose_backward";
    let _call = crate::call::Call::enter(OP);
    let names = ["dy", "base", "lora", "magnitude", "norm"];
    let backward = gpu.kernel_for(&COMPOSE_BACKWARD, &Tensor::operands(names, inputs))?;
    let [dy, base, lora, magnitude, norm] = inputs;
    let finish = gpu.kernel_for(&MAGNITUDE_GRAD, &[("norm", norm.dtype())])?;
    // Each block numbers its own chunks from its first row; `chunk0` places them in `partial`.
    let rows = gpu.binding.row_blocks(OP, n, &[("base", d_out)])?;
    let total_chunks: usize = rows.iter().map(|b| b.count.div_ceil(BACKWARD_CHUNK)).sum();
    let partial_len = total_chunks * d_out;
    if (partial_len * 4) as u64 > gpu.binding.max_bytes {
        return Err(Error::TooLarge {
            op: OP,
            arg: "partial sums",
            bytes: (partial_len * 4) as u64,
            limit: gpu.binding.max_bytes,
        });
    }
    let partial = gpu.output(&[total_chunks, d_out])?;
    let operands = [
        dy.rows("dy", d_out),
        base.rows("base", d_out),
        lora.rows("lora", d_out),
        magnitude.all("magnitude"),
        norm.all("norm"),
        d_base.rows("d_base", d_out),
        d_lora.rows("d_lora", d_out),
        partial.all("partial sums"),
    ];
    let col_blocks = d_out.div_ceil(BACKWARD_COLUMNS);
    let mut recording = gpu.recording();
    let mut chunk0 = 0;
    for block in rows {
        let bound = gpu.binding.bind(OP, block, &operands)?;
        let [wdy, wb, wl, _, _, wdb, wdl, _] = bound;
        let chunks = block.count.div_ceil(BACKWARD_CHUNK);
        let total_groups = chunks * col_blocks;
        let params = BackwardParams {
            rows: block.count as u32,
            d_out: d_out as u32,
            scale,
            col_blocks: col_blocks as u32,
            total_groups: total_groups as u32,
            chunk0: chunk0 as u32,
            dy_offset: wdy.skip(),
            base_offset: wb.skip(),
            lora_offset: wl.skip(),
            d_base_offset: wdb.skip(),
            d_lora_offset: wdl.skip(),
            _pad: 0,
        };
        recording.dispatch(&backward, &params, &bound, total_groups as u32)?;
        chunk0 += chunks;
    }
    let finish_params = MagnitudeGradParams {
        d_out: d_out as u32,
        chunks: total_chunks as u32,
        _pad: [0; 2],
    };
    let finish_operands = [
        partial.all("partial sums"),
        norm.all("norm"),
        d_magnitude.all("d_magnitude"),
    ];
    let bound = gpu.binding.bind_all(OP, &finish_operands)?;
    recording.dispatch(&finish, &finish_params, &bound, groups(d_out))?;
    recording.submit()
}

const NORM_GRADIENT: Shader = shader!("dora/norm_gradient.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct NormGradientParams {
    rows: u32,
    r: u32,
    scale: f32,
    row0: u32,
    b_offset: u32,
    u_offset: u32,
    bg_offset: u32,
    db_offset: u32,
    bc_offset: u32,
    _pad: [u32; 3],
}

/// The exact backward's path through the norm: with `c_j = −m_j·∂m_j/norm_j²` (0 where the
/// norm is clamped), `bc = c⊙B` and `db += s·c⊙(U + s·B·G)`, in place;
/// `per_row = [magnitude, norm, ∂m (detached)]`, `factors = [B, U, B·G]`.
pub(super) fn norm_gradient(
    gpu: &Gpu<'_>,
    shape: LoraShape,
    scale: f32,
    [magnitude, norm, d_magnitude]: [&Tensor; 3],
    [b, u, bg]: [&Tensor; 3],
    db: &Tensor,
    bc: &Tensor,
) -> Result<()> {
    const OP: &str = "dora::backward";
    let _call = crate::call::Call::enter(OP);
    let LoraShape { d_out, r, .. } = shape;
    let operands = Tensor::operands(["magnitude", "b"], [magnitude, b]);
    let kernel = gpu.kernel_for(&NORM_GRADIENT, &operands)?;
    let operands = [
        magnitude.all("magnitude"),
        norm.all("norm"),
        d_magnitude.all("d_magnitude"),
        b.rows("b", r),
        u.rows("u", r),
        bg.rows("bg", r),
        db.rows("d_b", r),
        bc.rows("b·κ/norm", r),
    ];
    let blocks = gpu.binding.blocks(OP, d_out, operands)?;
    let mut recording = gpu.recording();
    recording.dispatch_blocks(&kernel, &blocks, |block| {
        let [_, _, _, wb, wu, wbg, wdb, wbc] = block.bound;
        let len = block.rows.count * r;
        let params = NormGradientParams {
            rows: block.rows.count as u32,
            r: r as u32,
            scale,
            row0: block.rows.first as u32,
            b_offset: wb.skip(),
            u_offset: wu.skip(),
            bg_offset: wbg.skip(),
            db_offset: wdb.skip(),
            bc_offset: wbc.skip(),
            _pad: [0; 3],
        };
        (params, groups(len))
    })?;
    recording.submit()
}
