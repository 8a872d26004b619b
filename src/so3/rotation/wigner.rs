//! The real Wigner D matrices in f64, by quadrature of the harmonics, and rotations of
//! vectors and coefficient rows: the references of [`rotate`](super::rotate).

use super::matrix::Rotation;
use crate::so3::degrees::dim;
use crate::so3::harmonics::reference::spherical_harmonics_f64;
use crate::so3::quadrature::sphere_rule;

/// The real Wigner D matrices `D^l(R)` for l = 0..=lmax in the basis of
/// [`spherical_harmonics`](crate::so3::reference::spherical_harmonics): `Y_l(R·u) = D^l(R)·Y_l(u)`; `D^1 = R`. Entry `[l][a·(2l+1) + b]`.
///
/// Computed as `D^l_ab = (1/4π)∫ Y_la(R·u)·Y_lb(u) dΩ` with a quadrature rule exact for
/// degree 2l, which is exact because the harmonics are orthonormal under that rule.
pub fn wigner_d(lmax: usize, rotation: &Rotation) -> Vec<Vec<f64>> {
    let (points, weights) = sphere_rule(2 * lmax);
    let flat: Vec<f64> = points.iter().flatten().copied().collect();
    let rotated: Vec<f64> = points
        .iter()
        .flat_map(|p| rotate_vector(rotation, p))
        .collect();
    let (y, yr) = (
        spherical_harmonics_f64(&flat, lmax),
        spherical_harmonics_f64(&rotated, lmax),
    );
    let d = dim(lmax);
    (0..=lmax)
        .map(|l| {
            let (o, n) = (l * l, 2 * l + 1);
            let mut block = vec![0.0; n * n];
            for ((row, row_r), w) in y.chunks_exact(d).zip(yr.chunks_exact(d)).zip(&weights) {
                for a in 0..n {
                    for b in 0..n {
                        block[a * n + b] += w * row_r[o + a] * row[o + b];
                    }
                }
            }
            block
        })
        .collect()
}

/// `R·v`.
pub fn rotate_vector(rotation: &Rotation, v: &[f64; 3]) -> [f64; 3] {
    rotation.apply(*v)
}

/// Rotates coefficient rows `[.., (lmax+1)²]` by the Wigner D matrices of each degree:
/// `x'_l = D^l(R)·x_l`, so that rotating the coefficients of `f` gives those of `f∘R⁻¹`.
pub fn rotate_coefficients(x: &[f64], lmax: usize, d: &[Vec<f64>]) -> Vec<f64> {
    let width = dim(lmax);
    let mut out = vec![0.0; x.len()];
    for (row, out_row) in x.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
        for (l, block) in d.iter().enumerate().take(lmax + 1) {
            let (o, n) = (l * l, 2 * l + 1);
            for a in 0..n {
                out_row[o + a] = (0..n).map(|b| block[a * n + b] * row[o + b]).sum();
            }
        }
    }
    out
}
