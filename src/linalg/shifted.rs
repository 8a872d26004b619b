//! `squares[i] = Σ_j (E[i,j] + s·(op(A)·op(B))[i,j])²`: the row sums of squares of a
//! shifted product, the product held a tile at a time in the GEMM's registers and never
//! stored, in the tiled form (`shaders/linalg/matmul_shifted_row_squares.wgsl`) or the rows
//! form (`matmul_rows.wgsl` with `rows_shifted.inc.wgsl`), as the device's tuner chooses.
//! DoRA's weight norm `‖W_j + s·(B·A)_j‖²` is its one use.

use super::gemm::Gemm;
use super::kernels::{Epilogue, GemmForm, Params};
use super::launch::bind_a4;
use super::plan::{plan_blocks, GemmBlock};
use super::reduce::SumSlices;
use super::tuned;
use crate::gpu::{Bound, GpuDevice};
use crate::{Result, Tensor};

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
    operands: [&Tensor; 3],
    squares: &Tensor,
) -> Result<bool> {
    const OP: &str = "shifted_row_squares";
    let _call = crate::call::Call::enter(OP);
    let [_, a, b] = operands;
    let mut fits = true;
    let form = tuned::choose_form(gpu, OP, g, [a.dtype(), b.dtype()], |form| {
        fits = shifted_in(gpu, form, g, scale, operands, squares)?;
        gpu.wait()
    })?;
    Ok(fits && shifted_in(gpu, form, g, scale, operands, squares)?)
}

/// [`shifted_row_squares`] in one form.
fn shifted_in(
    gpu: &GpuDevice,
    form: GemmForm,
    g: Gemm,
    scale: f32,
    [e, a, b]: [&Tensor; 3],
    squares: &Tensor,
) -> Result<bool> {
    const OP: &str = "shifted_row_squares";
    let limits = gpu.binding;
    if g.m == 0 || g.n == 0 || g.k == 0 {
        return Ok(false);
    }
    let gemm = form.kernel(Epilogue::ShiftedSquares);
    // E has C's row length, so the cap on C's rows is E's too.
    let planned = plan_blocks(OP, g, gemm.tile, gemm.k_step, limits.max_elements());
    let Ok([rows, n, k]) = planned else {
        return Ok(false);
    };
    if n < g.n || k < g.k {
        return Ok(false);
    }
    let tiles_n = g.n.div_ceil(gemm.tile[1]);
    let operands = [("a", a.dtype()), ("b", b.dtype()), ("e", e.dtype())];
    let kernel = gpu.kernel_with(&gemm.shader, &operands, &gemm.constants)?;
    let a4_scratch = match gemm.reads_a4 {
        true => Some(gpu.storage(4)?),
        false => None,
    };
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
            ..block.params(g, gemm.tile, [wa.skip, wb.skip, wp.skip])
        };
        let mut params = params;
        let mut bindings = vec![
            Bound::window(a.buffer(), wa),
            Bound::window(b.buffer(), wb),
            Bound::window(partials, wp),
            Bound::window(e.buffer(), we),
        ];
        if let Some(scratch) = &a4_scratch {
            let buffers = [a.buffer(), scratch.buffer()];
            bindings.push(bind_a4(g, buffers, a.dtype(), wa, 1, &mut params));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{op, GpuOptions, Tuning};

    /// Every form against the f64 definition Σ_j (E + s·op(A)·op(B))², on fresh inputs: with
    /// more rows in a tile than lanes (33 × 600 runs the 32-row tile), several column tiles,
    /// and size 1. Bound 1e-5: f32 sums of ≤ 600 squares (≈ √n·2⁻²⁴ relative).
    #[test]
    fn every_form_squares_the_shifted_product() {
        let (seed, mut uniform) = super::super::fresh_uniform();
        for form in ["tiled", "rows32x8x16", "rows16x4x16", "rows8x2x16"] {
            let Some(ctx) = crate::context::test_gpu(GpuOptions {
                tuning: Tuning::Force(form.into()),
                poison_outputs: true,
                ..Default::default()
            }) else {
                return;
            };
            for (m, k, n, s) in [(33, 5, 600, 0.7f32), (70, 9, 130, -1.5), (1, 1, 1, 2.0)] {
                let (e, a, b) = (uniform(m * n), uniform(m * k), uniform(k * n));
                let g = Gemm::of("t", &[m, k], &[k, n], false, false).unwrap();
                let product = super::super::reference::matmul(&a, &b, g);
                let want: Vec<f64> = (0..m)
                    .map(|i| {
                        (0..n)
                            .map(|j| (e[i * n + j] as f64 + s as f64 * product[i * n + j]).powi(2))
                            .sum()
                    })
                    .collect();
                let tensors = [&e, &a, &b].map(|x| x.as_slice());
                let shapes = [[m, n], [m, k], [k, n]];
                let [e, a, b] = [0, 1, 2].map(|t| ctx.tensor(tensors[t], &shapes[t]).unwrap());
                let [squares] = op::run(
                    &ctx,
                    "test",
                    [&[m]],
                    || unreachable!("a GPU context"),
                    |gpu, [squares]| {
                        assert!(shifted_row_squares(gpu, g, s, [&e, &a, &b], squares)?);
                        Ok(())
                    },
                )
                .unwrap();
                let err = crate::compare::relative_error(&squares.to_vec().unwrap(), &want);
                assert!(err < 1e-5, "{form} {m}×{k}×{n} seed {seed}: {err:e}");
            }
        }
    }
}
