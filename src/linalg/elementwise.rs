//! Element-wise operations of `out[rows, cols]` from `x` and `y` (`shaders/util/elementwise.wgsl`):
//! the steps of unfused baselines, and the vector updates of the M-FAC optimizer.

use crate::gpu::{shader, Shader, ELEMENTWISE_WORKGROUP};
use crate::{op, Context, Result, Tensor};

const ELEMENTWISE: Shader = shader!("util/elementwise.wgsl");

/// One element-wise operation of `out[rows, cols]` from `x[rows, cols]` and `y`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Op {
    /// `alpha·x`
    Scale(f32),
    /// `x + y`, y the same shape
    Add,
    /// `x · y[col]`, y a row vector of `cols`
    MulRow,
    /// `x / y`, y the same shape
    Div,
    /// `x + alpha`
    AddScalar(f32),
    /// `alpha·x + beta·y`, y the same shape
    Axpby(f32, f32),
    /// `x · y`, y the same shape
    Mul,
}

impl Op {
    /// The operation on one element (f64 on the CPU path).
    fn apply(self, x: f64, y: f64) -> f64 {
        match self {
            Op::Scale(alpha) => alpha as f64 * x,
            Op::Add => x + y,
            Op::MulRow => x * y,
            Op::Div => x / y,
            Op::AddScalar(alpha) => x + alpha as f64,
            Op::Axpby(alpha, beta) => alpha as f64 * x + beta as f64 * y,
            Op::Mul => x * y,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    len: u32,
    cols: u32,
    op: u32,
    alpha: f32,
    x_offset: u32,
    y_offset: u32,
    out_offset: u32,
    beta: f32,
}

/// `out = op(x, y)` over `x [rows, cols]` (y as the operation wants it, or none); returns
/// a tensor of `shape` (`rows·cols` elements).
pub(crate) fn elementwise(
    ctx: &Context,
    op: Op,
    x: &Tensor,
    y: Option<&Tensor>,
    [rows, cols]: [usize; 2],
    shape: &[usize],
) -> Result<Tensor> {
    let y = y.unwrap_or(x);
    let cpu = || {
        let (x, y) = (x.host(), y.host());
        let at = |i: usize| match op {
            Op::MulRow => y[i % cols],
            Op::Add | Op::Div | Op::Axpby(..) | Op::Mul => y[i],
            Op::Scale(_) | Op::AddScalar(_) => 0.0,
        };
        let out = (0..rows * cols)
            .map(|i| op.apply(x[i] as f64, at(i) as f64))
            .collect();
        Ok([out])
    };
    let [out] = op::run(ctx, "linalg::elementwise", [shape], cpu, |gpu, [out]| {
        let kernel = gpu.kernel_for(&ELEMENTWISE, &Tensor::operands(["x", "y"], [x, y]))?;
        let (code, alpha, beta) = match op {
            Op::Scale(alpha) => (0, alpha, 0.0),
            Op::Add => (1, 0.0, 0.0),
            Op::MulRow => (2, 0.0, 0.0),
            Op::Div => (3, 0.0, 0.0),
            Op::AddScalar(alpha) => (4, alpha, 0.0),
            Op::Axpby(alpha, beta) => (5, alpha, beta),
            Op::Mul => (6, 0.0, 0.0),
        };
        let y_operand = match op {
            Op::MulRow => y.all("y"),
            _ => y.rows("y", cols),
        };
        let operands = [x.rows("x", cols), y_operand, out.rows("out", cols)];
        let blocks = gpu.binding.blocks("elementwise", rows, operands)?;
        let mut recording = gpu.recording();
        recording.dispatch_blocks(&kernel, &blocks, |block| {
            let len = block.rows.count * cols;
            let [wx, wy, wo] = block.bound;
            let params = Params {
                len: len as u32,
                cols: cols as u32,
                op: code,
                alpha,
                x_offset: wx.skip(),
                y_offset: wy.skip(),
                out_offset: wo.skip(),
                beta,
            };
            (params, len.div_ceil(ELEMENTWISE_WORKGROUP as usize) as u32)
        })?;
        recording.submit()
    })?;
    Ok(out)
}

/// `Σ terms`, element by element, each term of the first one's shape (cut into rows along its
/// first dimension, so that terms larger than one binding are summed block by block).
pub(crate) fn sum(ctx: &Context, terms: Vec<Tensor>) -> Result<Tensor> {
    let mut terms = terms.into_iter();
    let Some(mut total) = terms.next() else {
        return Err(crate::Error::InvalidArgument {
            op: "linalg::sum",
            arg: "terms",
            message: "must hold at least one tensor".into(),
        });
    };
    let shape = total.shape().to_vec();
    let rows = shape.first().copied().unwrap_or(1).max(1);
    let cols = total.len() / rows;
    for term in terms {
        total = elementwise(ctx, Op::Add, &total, Some(&term), [rows, cols], &shape)?;
    }
    Ok(total)
}
