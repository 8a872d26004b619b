//! Element-wise operations on device buffers (`shaders/util/elementwise.wgsl`), used to build
//! unfused baselines one kernel at a time.

use super::dispatch::row_blocks;
use super::{binding, shader, GpuDevice, Shader, ELEMENTWISE_WORKGROUP};
use crate::{Result, Tensor};

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

/// Runs `out = op(x, y)` over `rows × cols` elements, one binding window of rows at a time.
pub(crate) fn elementwise(
    gpu: &GpuDevice,
    op: Op,
    x_tensor: &Tensor,
    y_tensor: Option<&Tensor>,
    out_tensor: &Tensor,
    rows: usize,
    cols: usize,
) -> Result<()> {
    let y_tensor = y_tensor.unwrap_or(x_tensor);
    let (x, y, out) = (x_tensor.buffer(), y_tensor.buffer(), out_tensor.buffer());
    let (x_dtype, y_dtype) = (x_tensor.dtype(), y_tensor.dtype());
    let kernel = gpu.kernel_for(&ELEMENTWISE, &[("x", x_dtype), ("y", y_dtype)])?;
    let (code, alpha, beta) = match op {
        Op::Scale(alpha) => (0, alpha, 0.0),
        Op::Add => (1, 0.0, 0.0),
        Op::MulRow => (2, 0.0, 0.0),
        Op::Div => (3, 0.0, 0.0),
        Op::AddScalar(alpha) => (4, alpha, 0.0),
        Op::Axpby(alpha, beta) => (5, alpha, beta),
    };
    let limits = gpu.binding;
    let mut launches = Vec::new();
    for (row0, n) in row_blocks("elementwise", "x", rows, cols, &limits)? {
        let (first, len) = ((row0 * cols) as u64, (n * cols) as u64);
        let wx = limits.window_of("elementwise", "x", x_dtype, first, len, x.size())?;
        let wy = match op {
            Op::MulRow => {
                limits.window_of("elementwise", "y", y_dtype, 0, cols as u64, y.size())?
            }
            _ => limits.window_of("elementwise", "y", y_dtype, first, len, y.size())?,
        };
        let wo = limits.window("elementwise", "out", first, len, out.size())?;
        let uniform = gpu.uniform(&Params {
            len: len as u32,
            cols: cols as u32,
            op: code,
            alpha,
            x_offset: wx.skip,
            y_offset: wy.skip,
            out_offset: wo.skip,
            beta,
        })?;
        launches.push((uniform, [wx, wy, wo], len));
    }
    gpu.submit(|encoder| {
        for (uniform, [wx, wy, wo], len) in &launches {
            let resources = [
                uniform.buffer().as_entire_binding(),
                binding(x, wx),
                binding(y, wy),
                binding(out, wo),
            ];
            let groups = len.div_ceil(ELEMENTWISE_WORKGROUP as u64) as u32;
            gpu.dispatch(encoder, &kernel, &resources, groups);
        }
        Ok(())
    })
}
