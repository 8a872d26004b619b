//! The harmonics in f64: the recursion `Y_l = c_l·C^{l−1,1,l}·(Y_{l−1} ⊗ Y_1)`, the harmonics
//! of f32 and f64 vectors, and their vector–Jacobian product by reverse mode through it.

use std::sync::Arc;

use crate::so3::clebsch_gordan::clebsch_gordan;
use crate::so3::degrees::dim;

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

/// The recursion as the GPU kernel reads it: nonzero `(i, j, k, c_l·C[i,j,k])` of every step
/// l = 2..=lmax, and `starts[l]..starts[l+1]` delimiting step l.
pub(crate) fn recursion_table(lmax: usize) -> (Vec<[f32; 4]>, Vec<u32>) {
    let mut table = Vec::new();
    let mut starts = vec![0u32; lmax.max(1) + 2];
    for (l, (cg, c)) in (2..=lmax).zip(recursion(lmax)) {
        starts[l] = table.len() as u32;
        let n_out = 2 * l + 1;
        for (at, &w) in cg.iter().enumerate() {
            if w != 0.0 {
                let (i, j, k) = (at / (3 * n_out), (at / n_out) % 3, at % n_out);
                table.push([i as f32, j as f32, k as f32, (c * w) as f32]);
            }
        }
        starts[l + 1] = table.len() as u32;
    }
    if table.is_empty() {
        table.push([0.0; 4]); // bindings may not be empty
    }
    (table, starts)
}

/// Real spherical harmonics of e3nn-jax 0.21 (`normalize=True`, `normalization="component"`)
/// for `[n, 3]` vectors: `[n, (lmax+1)²]`, index `l² + (m + l)`, `Σ_m Y_lm(u)² = 2l+1`,
/// `Y_1 = √3·(x, y, z)/|v|`, higher degrees by the recursion above.
/// A zero vector gives `Y_0 = 1` and 0 for every l ≥ 1; a vector with a NaN or infinite
/// component gives `Y_0 = 1` and NaN for every l ≥ 1 (its direction is undefined).
///
/// # Panics
/// When `lmax` exceeds [`MAX_L`](crate::so3::MAX_L) (the checked entry point is
/// [`so3::spherical_harmonics`](crate::so3::spherical_harmonics)).
pub fn spherical_harmonics(vectors: &[f32], lmax: usize) -> Vec<f64> {
    let wide: Vec<f64> = vectors.iter().map(|&x| x as f64).collect();
    spherical_harmonics_f64(&wide, lmax)
}

/// [`spherical_harmonics`] of f64 vectors.
pub fn spherical_harmonics_f64(vectors: &[f64], lmax: usize) -> Vec<f64> {
    let steps = recursion(lmax);
    let d = dim(lmax);
    let mut out = vec![0.0; vectors.len() / 3 * d];
    for (v, y) in vectors.chunks_exact(3).zip(out.chunks_exact_mut(d)) {
        let r = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        y[0] = 1.0;
        if lmax == 0 || r == 0.0 {
            continue;
        }
        if !v.iter().all(|x| x.is_finite()) {
            y[1..].fill(f64::NAN);
            continue;
        }
        let y1 = [v[0], v[1], v[2]].map(|x| 3f64.sqrt() * x / r);
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

/// The vector–Jacobian product of [`spherical_harmonics`]: `∂L/∂v` for `d_y = ∂L/∂Y`
/// (`[n, (lmax+1)²]`), by reverse mode through the recursion
/// `Y_l = c_l·C^{l−1,1,l}·(Y_{l−1} ⊗ Y_1)`: each step sends `ȳ_l` back to `ȳ_{l−1}` and `ȳ_1`;
/// then `Y_1 = √3·v/|v|` gives `∂v = √3·(ȳ_1 − (ȳ_1·u)·u)/|v|`, u = v/|v|. A zero vector
/// gets 0 (the harmonics of degree ≥ 1 are not continuous there).
pub fn spherical_harmonics_backward(vectors: &[f32], lmax: usize, d_y: &[f32]) -> Vec<f64> {
    let steps = recursion(lmax);
    let d = dim(lmax);
    let wide: Vec<f64> = vectors.iter().map(|&x| x as f64).collect();
    let y = spherical_harmonics_f64(&wide, lmax);
    let mut out = vec![0.0; vectors.len()];
    for (t, (v, grad)) in wide
        .chunks_exact(3)
        .zip(out.chunks_exact_mut(3))
        .enumerate()
    {
        let r = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if lmax == 0 || r == 0.0 {
            continue;
        }
        if !v.iter().all(|x| x.is_finite()) {
            grad.fill(f64::NAN);
            continue;
        }
        let (y, g) = (&y[t * d..][..d], &d_y[t * d..][..d]);
        let y1 = &y[1..4];
        let mut y1_bar = [0.0; 3];
        let mut current: Vec<f64> = g[lmax * lmax..].iter().map(|&x| x as f64).collect();
        for (l, (cg, c)) in (2..lmax + 1).zip(&steps).rev() {
            let n_out = 2 * l + 1;
            let below = &y[(l - 1) * (l - 1)..l * l];
            let mut previous: Vec<f64> = g[(l - 1) * (l - 1)..l * l]
                .iter()
                .map(|&x| x as f64)
                .collect();
            for (i, p) in previous.iter_mut().enumerate() {
                for (j, y1_j) in y1.iter().enumerate() {
                    let row = &cg[(i * 3 + j) * n_out..][..n_out];
                    let back: f64 = row.iter().zip(&current).map(|(w, b)| c * w * b).sum();
                    *p += back * y1_j;
                    y1_bar[j] += back * below[i];
                }
            }
            current = previous;
        }
        let total: Vec<f64> = current.iter().zip(y1_bar).map(|(a, b)| a + b).collect();
        let u: Vec<f64> = v.iter().map(|x| x / r).collect();
        let along: f64 = total.iter().zip(&u).map(|(a, b)| a * b).sum();
        for ((o, a), b) in grad.iter_mut().zip(&total).zip(&u) {
            *o = 3f64.sqrt() * (a - along * b) / r;
        }
    }
    out
}
