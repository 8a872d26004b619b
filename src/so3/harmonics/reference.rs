//! The harmonics in f64: the recursion `Y_l = c_l·C^{l−1,1,l}·(Y_{l−1} ⊗ Y_1)`, the harmonics
//! of f32 and f64 vectors, and their vector–Jacobian product by reverse mode through it.

use std::sync::Arc;

use super::dual::{Dual, Real};

use crate::so3::clebsch_gordan::clebsch_gordan;
use crate::so3::degrees::dim;

/// `out[k] = Σ_ij C[i][j][k]·a_i·b_j` for C of shape `[a.len()][b.len()][n_out]`.
fn contract<R: Real>(cg: &[f64], a: &[R], b: &[R], n_out: usize) -> Vec<R> {
    let mut out = vec![R::constant(0.0); n_out];
    for (i, &x) in a.iter().enumerate() {
        for (j, &y) in b.iter().enumerate() {
            let row = &cg[(i * b.len() + j) * n_out..][..n_out];
            for (o, &w) in out.iter_mut().zip(row) {
                *o = *o + R::constant(w) * x * y;
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
        y[0] = 1.0;
        match direction(v, lmax) {
            Direction::Defined => y.copy_from_slice(&harmonics_of([v[0], v[1], v[2]], &steps)),
            Direction::Undefined => y[1..].fill(f64::NAN),
            Direction::Zero => {}
        }
    }
    out
}

/// What the harmonics of degree ≥ 1 do at a vector.
enum Direction {
    /// A finite nonzero vector (and lmax ≥ 1): the recursion.
    Defined,
    /// A zero vector, or lmax = 0: zeros (and zero gradients).
    Zero,
    /// A NaN or infinite component: NaN.
    Undefined,
}

fn direction(v: &[f64], lmax: usize) -> Direction {
    if lmax == 0 || v.iter().map(|x| x * x).sum::<f64>() == 0.0 {
        Direction::Zero
    } else if v.iter().all(|x| x.is_finite()) {
        Direction::Defined
    } else {
        Direction::Undefined
    }
}

/// `|v|` and `v/|v|`.
fn length_and_unit<R: Real>(v: [R; 3]) -> (R, [R; 3]) {
    let r = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    (r, v.map(|x| x.over(r)))
}

/// The harmonics of one finite nonzero vector, `[(lmax+1)²]`, by the recursion of `steps`
/// (lmax = `steps.len() + 1`).
fn harmonics_of<R: Real>(v: [R; 3], steps: &[(Arc<Vec<f64>>, f64)]) -> Vec<R> {
    let lmax = steps.len() + 1;
    let (_, u) = length_and_unit(v);
    let mut y = vec![R::constant(0.0); dim(lmax)];
    y[0] = R::constant(1.0);
    let y1 = u.map(|x| R::constant(3f64.sqrt()) * x);
    y[1..4].copy_from_slice(&y1);
    for (l, (cg, c)) in (2..=lmax).zip(steps) {
        let (done, rest) = y.split_at_mut(l * l);
        let yl = contract(cg, &done[(l - 1) * (l - 1)..], &y1, 2 * l + 1);
        for (o, v) in rest.iter_mut().zip(yl) {
            *o = R::constant(*c) * v;
        }
    }
    y
}

/// `J(v)ᵀ·g` at one finite nonzero vector whose harmonics are `y`: reverse mode through the
/// recursion, each step sending `ȳ_l` back to `ȳ_{l−1}` and `ȳ_1`, then through
/// `Y_1 = √3·v/|v|`.
fn vjp_of<R: Real>(v: [R; 3], y: &[R], g: &[R], steps: &[(Arc<Vec<f64>>, f64)]) -> [R; 3] {
    let lmax = steps.len() + 1;
    let zero = R::constant(0.0);
    let y1 = &y[1..4];
    let mut y1_bar = [zero; 3];
    let mut current: Vec<R> = g[lmax * lmax..].to_vec();
    for (l, (cg, c)) in (2..lmax + 1).zip(steps).rev() {
        let n_out = 2 * l + 1;
        let below = &y[(l - 1) * (l - 1)..l * l];
        let mut previous: Vec<R> = g[(l - 1) * (l - 1)..l * l].to_vec();
        for (i, p) in previous.iter_mut().enumerate() {
            for (j, &y1_j) in y1.iter().enumerate() {
                let row = &cg[(i * 3 + j) * n_out..][..n_out];
                let back = row
                    .iter()
                    .zip(&current)
                    .fold(zero, |acc, (&w, &b)| acc + R::constant(c * w) * b);
                *p = *p + back * y1_j;
                y1_bar[j] = y1_bar[j] + back * below[i];
            }
        }
        current = previous;
    }
    let total = [0, 1, 2].map(|j| current[j] + y1_bar[j]);
    let (r, u) = length_and_unit(v);
    let along = total[0] * u[0] + total[1] * u[1] + total[2] * u[2];
    [0, 1, 2].map(|j| (R::constant(3f64.sqrt()) * (total[j] - along * u[j])).over(r))
}

/// The vector–Jacobian product of [`spherical_harmonics`]: `∂L/∂v` for `d_y = ∂L/∂Y`
/// (`[n, (lmax+1)²]`), by reverse mode through the recursion
/// `Y_l = c_l·C^{l−1,1,l}·(Y_{l−1} ⊗ Y_1)`: each step sends `ȳ_l` back to `ȳ_{l−1}` and `ȳ_1`;
/// then `Y_1 = √3·v/|v|` gives `∂v = √3·(ȳ_1 − (ȳ_1·u)·u)/|v|`, u = v/|v|. A zero vector
/// gets 0 (the harmonics of degree ≥ 1 are not continuous there).
pub fn spherical_harmonics_backward(vectors: &[f32], lmax: usize, d_y: &[f32]) -> Vec<f64> {
    let wide = |x: &[f32]| x.iter().map(|&v| v as f64).collect::<Vec<f64>>();
    spherical_harmonics_backward_f64(&wide(vectors), lmax, &wide(d_y))
}

/// [`spherical_harmonics_backward`] of f64 vectors and upstream gradients.
pub fn spherical_harmonics_backward_f64(vectors: &[f64], lmax: usize, d_y: &[f64]) -> Vec<f64> {
    let steps = recursion(lmax);
    let d = dim(lmax);
    let mut out = vec![0.0; vectors.len()];
    for (t, (v, grad)) in vectors
        .chunks_exact(3)
        .zip(out.chunks_exact_mut(3))
        .enumerate()
    {
        match direction(v, lmax) {
            Direction::Zero => {}
            Direction::Undefined => grad.fill(f64::NAN),
            Direction::Defined => {
                let v = [v[0], v[1], v[2]];
                let y = harmonics_of(v, &steps);
                grad.copy_from_slice(&vjp_of(v, &y, &d_y[t * d..][..d], &steps));
            }
        }
    }
    out
}

/// The double backward of [`spherical_harmonics`] for the cotangent `dd_v` of its backward's
/// output: `[∂v, ∂d_y]` with `∂d_y = J(v)·dd_v` (`[n, (lmax+1)²]`, the harmonics' tangent
/// along dd_v) and `∂v = ∂⟨dd_v, J(v)ᵀ·d_y⟩/∂v = H(v)·dd_v` for `H = ∂²⟨d_y, Y⟩/∂v²`
/// (`[n, 3]`) — both the ε parts of dual numbers `v + ε·dd_v` carried through the forward
/// and the backward. A zero vector gets zeros (as in the backward); a NaN or infinite one
/// `∂v` NaN and `∂d_y` NaN above degree 0.
pub fn spherical_harmonics_double_backward(
    vectors: &[f32],
    lmax: usize,
    d_y: &[f32],
    dd_vectors: &[f32],
) -> [Vec<f64>; 2] {
    let steps = recursion(lmax);
    let d = dim(lmax);
    let (mut dv, mut dg) = (vec![0.0; vectors.len()], vec![0.0; d_y.len()]);
    for (t, (v_out, g_out)) in dv
        .chunks_exact_mut(3)
        .zip(dg.chunks_exact_mut(d))
        .enumerate()
    {
        let v: [f64; 3] = std::array::from_fn(|i| vectors[3 * t + i] as f64);
        match direction(&v, lmax) {
            Direction::Zero => {}
            Direction::Undefined => {
                v_out.fill(f64::NAN);
                g_out[1..].fill(f64::NAN);
            }
            Direction::Defined => {
                let along = std::array::from_fn(|i| Dual {
                    value: v[i],
                    tangent: dd_vectors[3 * t + i] as f64,
                });
                let g: Vec<Dual> = d_y[t * d..][..d]
                    .iter()
                    .map(|&x| Dual::constant(x as f64))
                    .collect();
                let y = harmonics_of(along, &steps);
                for (o, y) in g_out.iter_mut().zip(&y) {
                    *o = y.tangent;
                }
                for (o, x) in v_out.iter_mut().zip(vjp_of(along, &y, &g, &steps)) {
                    *o = x.tangent;
                }
            }
        }
    }
    [dv, dg]
}
