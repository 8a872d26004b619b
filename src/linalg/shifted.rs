//! `squares[i] = Σ_j (E[i,j] + s·(op(A)·op(B))[i,j])²`: the row sums of squares of a
//! shifted product, the product held a tile at a time in the GEMM's registers and never
//! stored (`shaders/linalg/matmul_shifted_row_squares.wgsl`). DoRA's weight norm
//! `‖W_j + s·(B·A)_j‖²` is its one use.

use super::gemm::Gemm;
use super::kernels::{Params, K_STEP, TILE};
use super::plan::{plan_blocks, GemmBlock};
use super::reduce::SumSlices;
use crate::gpu::{shader, Bound, GpuDevice, Shader};
use crate::{Result, Tensor};

const SHIFTED_ROW_SQUARES: Shader = shader!("linalg/matmul_shifted_row_squares.wgsl");

/// Writes `squares[i] = Σ_j (E[i,j] + s·C[i,j])²`, `C = op(a)·op(b)` (`g`), into `squares`
/// (`[m]`, f32); `e` is `[m, n]`. The product is cut into blocks of whole rows; each block's
/// workgroups write one partial sum per row and 64-column tile, which are then added in
/// increasing column order. With `s = 0` the GEMM walks no k at all.
///
/// Returns `Ok(false)` having recorded nothing where the product's columns or k would have to
/// be cut across storage bindings (the sum over k must be whole before it is squared): the
/// caller then takes another route.
pub(crate) fn shifted_row_squares(
    gpu: &GpuDevice,
    g: Gemm,
    scale: f32,
    [e, a, b]: [&Tensor; 3],
    squares: &Tensor,
) -> Result<bool> {
    const OP: &str = "shifted_row_squares";
    let _call = crate::call::Call::enter(OP);
    let limits = gpu.binding;
    if g.m == 0 || g.n == 0 || g.k == 0 {
        return Ok(false);
    }
    // E has C's row length, so the cap on C's rows is E's too.
    let Ok([rows, n, k]) = plan_blocks(OP, g, [TILE, TILE], K_STEP, limits.max_elements()) else {
        return Ok(false);
    };
    if n < g.n || k < g.k {
        return Ok(false);
    }
    let tiles_n = g.n.div_ceil(TILE);
    let operands = [("a", a.dtype()), ("b", b.dtype()), ("e", e.dtype())];
    let kernel = gpu.kernel_for(&SHIFTED_ROW_SQUARES, &operands)?;
    let sum = SumSlices::new(gpu)?;
    // One block's [tiles_n, rows] partials, reused by every block.
    let partials = gpu.storage(tiles_n * rows.min(g.m))?;
    let partials = partials.buffer();

    let mut recording = gpu.recording();
    for i0 in (0..g.m).step_by(rows) {
        let m = rows.min(g.m - i0);
        let block = GemmBlock {
            i0,
            m,
            j0: 0,
            n,
            k0: 0,
            k,
            k_chunk: k,
        };
        let [(fa, na), (fb, nb)] = block.operand_spans(g);
        let wa = limits.window_of(OP, "a", a.dtype(), fa, na, a.buffer().size())?;
        let wb = limits.window_of(OP, "b", b.dtype(), fb, nb, b.buffer().size())?;
        let cells = (i0 * n) as u64;
        let we = limits.window_of(OP, "e", e.dtype(), cells, (m * n) as u64, e.buffer().size())?;
        let wp = limits.window(OP, "output", 0, (tiles_n * m) as u64, partials.size())?;
        let ws = limits.window(OP, "output", i0 as u64, m as u64, squares.buffer().size())?;
        // s = 0: E alone, whatever A and B hold (as the reference skips the low-rank terms).
        let k_walked = if scale == 0.0 { 0 } else { k };
        let params = Params {
            k: k_walked as u32,
            k_chunk: k_walked as u32,
            e_offset: we.skip,
            scale,
            ..block.params(g, [TILE, TILE], [wa.skip, wb.skip, wp.skip])
        };
        let bindings = [
            Bound::window(a.buffer(), wa),
            Bound::window(b.buffer(), wb),
            Bound::window(partials, wp),
            Bound::window(e.buffer(), we),
        ];
        recording.dispatch(&kernel, &params, &bindings, params.total_tiles)?;
        let (from, to) = (
            Bound::window(partials, wp),
            Bound::window(squares.buffer(), ws),
        );
        sum.record(&mut recording, from, to, [tiles_n, m], false)?;
    }
    recording.submit()?;
    Ok(true)
}
