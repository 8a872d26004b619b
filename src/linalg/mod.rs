//! Dense linear algebra the kernel families share: a GEMM in several forms (workgroup tiles,
//! register-blocked rows), chosen per adapter.
//!
//! ```
//! use wgkernels::{linalg, Context};
//! # fn main() -> wgkernels::Result<()> {
//! let ctx = Context::new()?;
//! let x = ctx.tensor(&[1.0, 2.0, 3.0, 4.0], &[2, 2])?;
//! let w = ctx.tensor(&[1.0, 1.0, 0.0, 2.0], &[2, 2])?;
//! let y = linalg::matmul(&ctx, &x, &w, false, true)?; // x · wᵀ
//! assert_eq!(y.to_vec()?, vec![3.0, 4.0, 7.0, 8.0]);
//! # Ok(())
//! # }
//! ```

pub(crate) mod elementwise;
mod epilogue;
mod gemm;
mod kernels;
mod launch;
mod plan;
pub(crate) mod reduce;
pub mod reference;
mod rows;
mod shifted;
mod tuned;

pub use gemm::Gemm;
pub(crate) use shifted::shifted_row_squares;

use crate::gpu::GpuDevice;
use crate::{op, Context, Result, Tensor};
use kernels::{Epilogue, GemmForm};
use launch::launch;

/// `C = op(A) · op(B)`: `C[i,j] = Σ_k op(A)[i,k]·op(B)[k,j]`, where `op(A) = Aᵀ` when
/// `transpose_a` (A stored `[k,m]`) and likewise for B. The kernel is one of the GEMM's forms
/// (64×64 workgroup tiles, or register-blocked rows), as the device's tuner chooses
/// ([`Tuning`](crate::Tuning), [`Gemm::form`]).
///
/// A and B may be stored as f16 or bf16 ([`DType`](crate::DType)); they are widened as they
/// are read and accumulated in f32, and C is f32.
///
/// Matrices larger than one storage binding are split into blocks of rows or columns (and of
/// k, accumulating) that fit. On the CPU path this is [`reference::matmul`] rounded to f32.
pub fn matmul(
    ctx: &Context,
    a: &Tensor,
    b: &Tensor,
    transpose_a: bool,
    transpose_b: bool,
) -> Result<Tensor> {
    let _call = crate::call::Call::enter("matmul");
    run(ctx, "matmul", None, a, b, transpose_a, transpose_b)
}

/// [`matmul`] and the row sums of squares of `op(A)`, `squares[i] = Σ_k op(A)[i,k]²` (`[m]`),
/// in one pass over A: the squares are summed from the A tiles the GEMM already holds in
/// workgroup memory. DoRA's factored norm takes `‖W_j‖²` and `U = W·Aᵀ` from it.
pub(crate) fn matmul_row_squares(
    ctx: &Context,
    a: &Tensor,
    b: &Tensor,
    transpose_a: bool,
    transpose_b: bool,
) -> Result<[Tensor; 2]> {
    const OP: &str = "matmul_row_squares";
    let _call = crate::call::Call::enter(OP);
    ctx.check_owns(OP, "a", a)?;
    ctx.check_owns(OP, "b", b)?;
    let g = Gemm::of(OP, a.shape(), b.shape(), transpose_a, transpose_b)?;
    let cpu = || {
        let squares = reference::row_squares(a.host(), g);
        Ok([reference::matmul(a.host(), b.host(), g), squares])
    };
    op::run(ctx, OP, [&[g.m, g.n], &[g.m]], cpu, |gpu, [c, squares]| {
        let squares = Some(squares.buffer());
        launch_form(gpu, OP, None, g, [a, b], c.buffer(), squares)
    })
}

/// The same product with one thread per output and no data reuse: the baseline that
/// [`matmul`] is benchmarked against.
pub fn matmul_naive(
    ctx: &Context,
    a: &Tensor,
    b: &Tensor,
    transpose_a: bool,
    transpose_b: bool,
) -> Result<Tensor> {
    let _call = crate::call::Call::enter("matmul_naive");
    run(
        ctx,
        "matmul_naive",
        Some(GemmForm::Naive),
        a,
        b,
        transpose_a,
        transpose_b,
    )
}

fn run(
    ctx: &Context,
    op: &'static str,
    form: Option<GemmForm>,
    a: &Tensor,
    b: &Tensor,
    transpose_a: bool,
    transpose_b: bool,
) -> Result<Tensor> {
    ctx.check_owns(op, "a", a)?;
    ctx.check_owns(op, "b", b)?;
    let g = Gemm::of(op, a.shape(), b.shape(), transpose_a, transpose_b)?;
    let [c] = op::run(
        ctx,
        op,
        [&[g.m, g.n]],
        || Ok([reference::matmul(a.host(), b.host(), g)]),
        |gpu, [c]| launch_form(gpu, op, form, g, [a, b], c.buffer(), None),
    )?;
    Ok(c)
}

/// Launches `g` in `form`, or in the form the device's tuner chooses for its shape class
/// (timing every form on this call, the first of its class, where the device measures).
fn launch_form(
    gpu: &GpuDevice,
    op: &'static str,
    form: Option<GemmForm>,
    g: Gemm,
    [a, b]: [&Tensor; 2],
    c: &wgpu::Buffer,
    squares: Option<&wgpu::Buffer>,
) -> Result<()> {
    let epilogue = match squares {
        Some(_) => Epilogue::RowSquares,
        None => Epilogue::Store,
    };
    let form = match form {
        Some(form) => form,
        None => tuned::choose_form(gpu, op, g, [a.dtype(), b.dtype()], |form| {
            launch(gpu, op, &form.kernel(epilogue), g, [a, b], c, squares)?;
            gpu.wait()
        })?,
    };
    launch(gpu, op, &form.kernel(epilogue), g, [a, b], c, squares)
}

/// Fresh values uniform in [-1, 1) for the unit tests, from a xorshift seeded by the clock:
/// `(seed, values)`, the seed to name in a failure.
#[cfg(test)]
pub(crate) fn fresh_uniform() -> (u64, impl FnMut(usize) -> Vec<f32>) {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |t| t.as_nanos() as u64);
    let mut state = seed | 1;
    let uniform = move |len: usize| -> Vec<f32> {
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
            })
            .collect()
    };
    (seed, uniform)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The row sums of squares of op(A) beside C, on both paths and in every form, where the GEMM is split into
    /// blocks of rows, of columns and of k (4 KiB bindings), and where k is cut into split-K
    /// slices (forced, with and without 16 KiB bindings): the squares are taken once per row
    /// and accumulated over the k-blocks and slices. Fresh inputs; bound 1e-5 (f32 sums of
    /// ≤ 1300 squares, ≈ √k·2⁻²⁴).
    #[test]
    fn row_squares_come_with_the_product_on_both_paths() {
        let gpu = |max_binding_bytes, split_k_below_tiles, form: &str| {
            crate::context::test_gpu(crate::GpuOptions {
                max_binding_bytes,
                split_k_below_tiles,
                poison_outputs: true,
                tuning: crate::Tuning::Force(form.into()),
                ..Default::default()
            })
        };
        let short = [
            (1, 1, 1, false, false),
            (70, 300, 9, true, false),
            (65, 13, 130, false, true),
        ];
        let long = [(70, 1300, 9, true, false), (65, 600, 13, false, true)];
        // Split slices inside k-blocks (C and the squares accumulate over the blocks).
        let blocked = [(5, 3000, 3, false, false), (1, 5000, 2, true, false)];
        let mut contexts = vec![(Some(Context::cpu()), &short[..])];
        for form in ["tiled", "rows32x8x16", "rows8x2x16"] {
            contexts.extend([
                (gpu(Some(4096), None, form), &short[..]),
                (gpu(None, Some(u32::MAX), form), &long[..]),
                (gpu(Some(16384), Some(u32::MAX), form), &blocked[..]),
            ]);
        }
        let (seed, mut uniform) = fresh_uniform();
        for (ctx, shapes) in contexts {
            let Some(ctx) = ctx else { continue };
            for &(m, k, n, ta, tb) in shapes {
                let a_host = uniform(m * k);
                let b_host = uniform(k * n);
                let a_shape = if ta { [k, m] } else { [m, k] };
                let b_shape = if tb { [n, k] } else { [k, n] };
                let a = ctx.tensor(&a_host, &a_shape).unwrap();
                let b = ctx.tensor(&b_host, &b_shape).unwrap();
                let [c, squares] = matmul_row_squares(&ctx, &a, &b, ta, tb).unwrap();
                let g = Gemm::of("test", &a_shape, &b_shape, ta, tb).unwrap();
                assert!(
                    k < 512 || g.k_slices(&ctx) > 1 || !ctx.is_gpu(),
                    "not split"
                );
                let want_c = reference::matmul(&a_host, &b_host, g);
                let want = reference::row_squares(&a_host, g);
                let err_c = crate::compare::relative_error(&c.to_vec().unwrap(), &want_c);
                let err = crate::compare::relative_error(&squares.to_vec().unwrap(), &want);
                let name = ctx.device_name();
                assert!(
                    err_c < 1e-5 && err < 1e-5,
                    "{name} seed {seed} {m}×{k}×{n}: {err_c:e} {err:e}"
                );
            }
        }
    }
}
