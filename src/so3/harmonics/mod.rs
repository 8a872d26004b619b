//! Real spherical harmonics of edge vectors and their backward: the public functions; the
//! f64 reference is [`reference`], the GPU launches are `kernels`.

mod dual;
mod kernels;
pub(crate) mod reference;
mod unrolled;

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
    let _call = crate::call::Call::enter(OP);
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
    let _call = crate::call::Call::enter(OP);
    let n = vector_count(ctx, OP, vectors, lmax)?;
    check_upstream(ctx, OP, d_y, n, lmax)?;
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

/// The second derivatives of [`spherical_harmonics`]: the vector–Jacobian product of
/// [`spherical_harmonics_backward`] with respect to each of its inputs.
#[derive(Debug)]
pub struct HarmonicsSecondGrads {
    /// `∂⟨dd_v, J(v)ᵀ·d_y⟩/∂v = H(v)·dd_v`, `[n, 3]`, with `H` the Hessian of `⟨d_y, Y(v)⟩`.
    pub vectors: Tensor,
    /// `J(v)·dd_v`, `[n, (lmax+1)²]`: the harmonics' tangent along `dd_v`.
    pub d_y: Tensor,
}

/// The double backward of [`spherical_harmonics`] — what a force loss needs, since forces are
/// already a backward: for the cotangent `dd_vectors` (`[n, 3]`) of the output of
/// [`spherical_harmonics_backward`]`(vectors, lmax, d_y)`, the gradients of
/// `⟨dd_v, J(v)ᵀ·d_y⟩` with respect to `vectors` (`H(v)·dd_v`, the harmonics' Hessians
/// contracted with `d_y`) and to `d_y` (`J(v)·dd_v`, a Jacobian–vector product). Forward mode
/// along `dd_v` through the recursion and through the backward's reverse pass. A zero vector
/// gets zeros, as in the backward; a NaN or infinite one NaN (from degree 1 in `d_y`).
///
/// ```
/// use wgkernels::{so3, Context};
/// # fn main() -> wgkernels::Result<()> {
/// let ctx = Context::new()?;
/// let v = ctx.tensor(&[0.0, 0.0, 2.0], &[1, 3])?;
/// let d_y = ctx.tensor(&[0.0, 0.0, 0.0, 1.0], &[1, 4])?; // L = Y_1z = √3·z/|v|
/// let dd = ctx.tensor(&[1.0, 0.0, 0.0], &[1, 3])?;
/// let second = so3::spherical_harmonics_double_backward(&ctx, &v, 1, &d_y, &dd)?;
/// // Moving v along x by ε turns Y_1 by ε/|v| towards x: J·dd = (0, √3/2, 0, 0).
/// let jvp = second.d_y.to_vec()?;
/// assert!((jvp[1] - 3f32.sqrt() / 2.0).abs() < 1e-6 && jvp[3].abs() < 1e-6);
/// # Ok(())
/// # }
/// ```
pub fn spherical_harmonics_double_backward(
    ctx: &Context,
    vectors: &Tensor,
    lmax: usize,
    d_y: &Tensor,
    dd_vectors: &Tensor,
) -> Result<HarmonicsSecondGrads> {
    const OP: &str = "so3::spherical_harmonics_double_backward";
    let _call = crate::call::Call::enter(OP);
    let n = vector_count(ctx, OP, vectors, lmax)?;
    check_upstream(ctx, OP, d_y, n, lmax)?;
    ctx.check_shape(
        OP,
        "dd_vectors",
        dd_vectors,
        &[n, 3],
        "the shape of `vectors`",
    )?;
    let cpu = || {
        Ok(reference::spherical_harmonics_double_backward(
            vectors.host(),
            lmax,
            d_y.host(),
            dd_vectors.host(),
        ))
    };
    let shapes = [vectors.shape(), d_y.shape()];
    let [dv, dg] = op::run(ctx, OP, shapes, cpu, |gpu, [dv, dg]| {
        let inputs = [vectors, d_y, dd_vectors];
        kernels::spherical_harmonics_double_backward(gpu, inputs, lmax, [dv, dg])
    })?;
    Ok(HarmonicsSecondGrads {
        vectors: dv,
        d_y: dg,
    })
}

/// Checks that `d_y` (owned by `ctx`) has the harmonics' shape `[n, (lmax+1)²]`.
fn check_upstream(
    ctx: &Context,
    op: &'static str,
    d_y: &Tensor,
    n: usize,
    lmax: usize,
) -> Result<()> {
    let what = format!("the harmonics' shape (lmax {lmax})");
    ctx.check_shape(op, "d_y", d_y, &[n, dim(lmax)], &what)
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
