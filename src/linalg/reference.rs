//! CPU reference for the linear algebra kernels, accumulating in f64.

use rayon::prelude::*;

use super::Gemm;

/// `C = op(A) · op(B)`, row-major, accumulated in f64:
/// `C[i,j] = Σ_k op(A)[i,k] · op(B)[k,j]`, where `op(A)` is `Aᵀ` when `g.transpose_a`.
///
/// `a` holds `[m,k]` (or `[k,m]` when transposed), `b` holds `[k,n]` (or `[n,k]`).
pub fn matmul(a: &[f32], b: &[f32], g: Gemm) -> Vec<f64> {
    let Gemm { m, k, n, .. } = g;
    let op_a = |i: usize, kk: usize| a[index_a(g, i, kk)];
    let op_b = |kk: usize, j: usize| {
        b[if g.transpose_b {
            j * k + kk
        } else {
            kk * n + j
        }]
    };
    let mut c = vec![0.0f64; m * n];
    c.par_chunks_mut(n).enumerate().for_each(|(i, row)| {
        for (j, out) in row.iter_mut().enumerate() {
            *out = (0..k)
                .map(|kk| op_a(i, kk) as f64 * op_b(kk, j) as f64)
                .sum();
        }
    });
    c
}

/// The row sums of squares of `op(A)`, accumulated in f64: `squares[i] = Σ_k op(A)[i,k]²`
/// (`[m]`), `a` stored as for [`matmul`].
pub fn row_squares(a: &[f32], g: Gemm) -> Vec<f64> {
    (0..g.m)
        .map(|i| {
            (0..g.k)
                .map(|kk| (a[index_a(g, i, kk)] as f64).powi(2))
                .sum()
        })
        .collect()
}

/// Where `op(A)[i, kk]` is stored.
fn index_a(g: Gemm, i: usize, kk: usize) -> usize {
    if g.transpose_a {
        kk * g.m + i
    } else {
        i * g.k + kk
    }
}
