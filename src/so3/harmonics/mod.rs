//! Real spherical harmonics of edge vectors and their backward: the public functions; the
//! f64 reference is [`reference`], the GPU launches are `kernels`.

mod kernels;
pub(crate) mod reference;

use super::degrees::{check_degree, dim};
use crate::{op, Context, Error, Result, Tensor};

/// Real spherical harmonics, identical to e3nn-jax 0.21
/// `spherical_harmonics(irreps, v, normalize=True, normalization="component")`:
/// `vectors [n, 3]` → `[n, (lmax+1)²]`, index `l² + (m + l)`, `Σ_m Y_lm² = 2l+1`,
/// `Y_1 = √3·(x, y, z)/|v|`. Any nonzero length (vectors are scaled by their largest
/// component before normalising); a zero vector gives `Y_0 = 1` and zeros, as do, on devices
/// that flush subnormals, vectors whose components are all below 1.2e-38. A vector with a
/// NaN or infinite component gives `Y_0 = 1` and NaN for every l ≥ 1, on both paths.
/// `lmax ≤` [`MAX_L`](crate::so3::MAX_L).
///
/// ```
/// use wgkernels::{so3, Context};
/// # fn main() -> wgkernels::Result<()> {
/// let ctx = Context::new()?;
/// let v = ctx.tensor(&[0.0, 0.0, 2.0], &[1, 3])?;
/// let y = so3::spherical_harmonics(&ctx, &v, 1)?.to_vec()?;
/// assert!((y[3] - 3f32.sqrt()).abs() < 1e-6); // z component of √3·v/|v|
/// # Ok(())
/// # }
/// ```
pub fn spherical_harmonics(ctx: &Context, vectors: &Tensor, lmax: usize) -> Result<Tensor> {
    const OP: &str = "so3::spherical_harmonics";
    let n = vector_count(ctx, OP, vectors, lmax)?;
    let [y] = op::run(
        ctx,
        OP,
        [&[n, dim(lmax)]],
        || Ok([reference::spherical_harmonics(vectors.host(), lmax)]),
        |gpu, [y]| kernels::spherical_harmonics(gpu, vectors, lmax, y),
    )?;
    Ok(y)
}

/// The vector–Jacobian product of [`spherical_harmonics`]: `∂L/∂vectors` (`[n, 3]`) for
/// `d_y = ∂L/∂Y` (`[n, (lmax+1)²]`) — how forces reach the edge vectors. Reverse mode
/// through the harmonics' recursion, then `∂v = √3·(ȳ_1 − (ȳ_1·u)·u)/|v|` (u = v/|v|): the
/// gradient is orthogonal to v, as the harmonics depend on the direction only. A zero vector
/// gets 0.
pub fn spherical_harmonics_backward(
    ctx: &Context,
    vectors: &Tensor,
    lmax: usize,
    d_y: &Tensor,
) -> Result<Tensor> {
    const OP: &str = "so3::spherical_harmonics_backward";
    let n = vector_count(ctx, OP, vectors, lmax)?;
    ctx.check_owns(OP, "d_y", d_y)?;
    let d = dim(lmax);
    if d_y.shape() != [n, d] {
        return Err(Error::Shape {
            op: OP,
            message: format!(
                "`d_y` {:?} must have the harmonics' shape [{n}, {d}] (lmax {lmax})",
                d_y.shape()
            ),
        });
    }
    let cpu = || {
        Ok([reference::spherical_harmonics_backward(
            vectors.host(),
            lmax,
            d_y.host(),
        )])
    };
    let [dv] = op::run(ctx, OP, [&[n, 3]], cpu, |gpu, [dv]| {
        kernels::spherical_harmonics_backward(gpu, vectors, lmax, d_y, dv)
    })?;
    Ok(dv)
}

/// Checks `vectors [n, 3]` (owned by `ctx`) and `lmax`; returns n.
fn vector_count(ctx: &Context, op: &'static str, vectors: &Tensor, lmax: usize) -> Result<usize> {
    ctx.check_owns(op, "vectors", vectors)?;
    let &[n, 3] = vectors.shape() else {
        return Err(Error::Shape {
            op,
            message: format!("`vectors` must be [n, 3], got {:?}", vectors.shape()),
        });
    };
    check_degree(op, "lmax", lmax)?;
    Ok(n)
}
