//! CPU reference for the SO(3) kernels, in f64.

use std::sync::Arc;

use super::cg::clebsch_gordan;

/// `(lmax+1)²`: coefficients of degrees 0..=lmax.
pub fn dim(lmax: usize) -> usize {
    (lmax + 1) * (lmax + 1)
}

/// `out[k] = Σ_ij C[i][j][k]·a_i·b_j` for C of shape `[a.len()][b.len()][n_out]`.
fn contract(cg: &[f64], a: &[f64], b: &[f64], n_out: usize) -> Vec<f64> {
    let mut out = vec![0.0; n_out];
    for (i, &x) in a.iter().enumerate() {
        for (j, &y) in b.iter().enumerate() {
            let row = &cg[(i * b.len() + j) * n_out..][..n_out];
            for (o, &w) in out.iter_mut().zip(row) {
                *o += w * x * y;
            }
        }
    }
    out
}

/// For l = 2..=lmax: `C^{l−1,1,l}` and the positive constant `c_l` of the recursion
/// `Y_l = c_l · C^{l−1,1,l}·(Y_{l−1} ⊗ Y_1)`. The contraction is a harmonic of degree l whose
/// norm is the same in every direction, so `c_l` is measured once, on the y axis.
pub(crate) fn recursion(lmax: usize) -> Vec<(Arc<Vec<f64>>, f64)> {
    let y1 = [0.0, 3f64.sqrt(), 0.0]; // Y_1 of the y axis
    let mut prev = y1.to_vec();
    (2..=lmax)
        .map(|l| {
            let cg = clebsch_gordan(l - 1, 1, l).expect("l within MAX_L");
            let v = contract(&cg, &prev, &y1, 2 * l + 1);
            let c = ((2 * l + 1) as f64).sqrt() / v.iter().map(|x| x * x).sum::<f64>().sqrt();
            prev = v.iter().map(|x| x * c).collect();
            (cg, c)
        })
        .collect()
}

/// Real spherical harmonics of e3nn-jax 0.21 (`normalize=True`, `normalization="component"`)
/// for `[n, 3]` vectors: `[n, (lmax+1)²]`, index `l² + (m + l)`, `Σ_m Y_lm(u)² = 2l+1`,
/// `Y_1 = √3·(x, y, z)/|v|`, higher degrees by the recursion above.
/// A zero vector gives `Y_0 = 1` and 0 for every l ≥ 1.
pub fn spherical_harmonics(vectors: &[f32], lmax: usize) -> Vec<f64> {
    let steps = recursion(lmax);
    let d = dim(lmax);
    let mut out = vec![0.0; vectors.len() / 3 * d];
    for (v, y) in vectors.chunks_exact(3).zip(out.chunks_exact_mut(d)) {
        let v = [v[0] as f64, v[1] as f64, v[2] as f64];
        let r = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        y[0] = 1.0;
        if lmax == 0 || r == 0.0 {
            continue;
        }
        let y1 = v.map(|x| 3f64.sqrt() * x / r);
        y[1..4].copy_from_slice(&y1);
        for (l, (cg, c)) in (2..=lmax).zip(&steps) {
            let (done, rest) = y.split_at_mut(l * l);
            let yl = contract(cg, &done[(l - 1) * (l - 1)..], &y1, 2 * l + 1);
            for (o, v) in rest.iter_mut().zip(yl) {
                *o = c * v;
            }
        }
    }
    out
}
