//! Rotations: the [`Rotation`] type, the real Wigner D matrices of the harmonics' basis, and
//! coefficient tensors rotated on the device.

mod matrix;
pub(crate) mod wigner;

pub use matrix::Rotation;

use crate::so3::degrees::{check_degree, degree, dim};
use crate::{Context, Result, Tensor};

/// The real Wigner D matrices `D^l(R)`, l = 0..=lmax, in the basis of
/// [`spherical_harmonics`](crate::so3::spherical_harmonics): `Y_l(R·u) = D^l(R)·Y_l(u)`,
/// `D¹ = R`; block l is row-major `(2l+1)×(2l+1)`.
/// [`reference::rotate_coefficients`](crate::so3::reference::rotate_coefficients) applies them
/// to coefficient rows.
pub fn wigner_d(lmax: usize, rotation: &Rotation) -> Result<Vec<Vec<f64>>> {
    check_degree("so3::wigner_d", "lmax", lmax)?;
    Ok(wigner::wigner_d(lmax, rotation))
}

/// Rotates coefficient tensors `[.., (lmax+1)²]` on the device: every row becomes
/// `x'_l = D^l(R)·x_l` (the coefficients of `f∘R⁻¹`), as one GEMM with the block-diagonal
/// `D(R)`.
pub fn rotate(ctx: &Context, x: &Tensor, rotation: &Rotation) -> Result<Tensor> {
    const OP: &str = "so3::rotate";
    let _call = crate::call::Call::enter(OP);
    ctx.check_owns(OP, "x", x)?;
    let lmax = degree(OP, "x", x.shape())?;
    let blocks = wigner_d(lmax, rotation)?;
    let d = dim(lmax);
    let mut dense = vec![0.0f32; d * d];
    for (l, block) in blocks.iter().enumerate() {
        let (o, n) = (l * l, 2 * l + 1);
        for a in 0..n {
            for b in 0..n {
                dense[(o + a) * d + o + b] = block[a * n + b] as f32;
            }
        }
    }
    let rows = x.len() / d;
    let flat = x.reshape(&[rows, d])?;
    let rotated = crate::linalg::matmul(ctx, &flat, &ctx.tensor(&dense, &[d, d])?, false, true)?;
    rotated.reshape(x.shape())
}
