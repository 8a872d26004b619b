//! The per-degree channel mix of equivariant features, `so3::linear`, and its backward.
//!
//! `out[n,o,l,m] = Σ_i w[l,i,o]·x[n,i,l,m]`: one `[c_in, c_out]` matrix per degree, the same
//! for every m of that degree, so the map commutes with rotations (Wigner D acts on m only).

mod kernels;
pub(crate) mod reference;

use crate::linalg::elementwise::sum;
use crate::so3::degrees::{degree, dim};
use crate::{op, Context, Error, Result, Tensor};

/// The gradients of [`linear`]: `∂L/∂x` (`[n, c_in, (lmax+1)²]`) and `∂L/∂w`
/// (`[lmax+1, c_in, c_out]`).
#[derive(Debug)]
pub struct LinearGrads {
    /// `∂L/∂x`.
    pub x: Tensor,
    /// `∂L/∂w`.
    pub w: Tensor,
}

/// Checks `x [n, c_in, (lmax+1)²]` and `w [lmax+1, c_in, c_out]`; returns
/// `(n, c_in, c_out, lmax)`.
fn linear_args(
    ctx: &Context,
    op: &'static str,
    x: &Tensor,
    w: &Tensor,
) -> Result<(usize, usize, usize, usize)> {
    ctx.check_owns(op, "x", x)?;
    ctx.check_owns(op, "w", w)?;
    let &[n, c_in, _] = x.shape() else {
        return Err(Error::Shape {
            op,
            message: format!("`x` must be [n, c_in, (lmax+1)²], got {:?}", x.shape()),
        });
    };
    let lmax = degree(op, "x", x.shape())?;
    match *w.shape() {
        [degrees, wc, c_out] if degrees == lmax + 1 && wc == c_in => Ok((n, c_in, c_out, lmax)),
        _ => Err(Error::Shape {
            op,
            message: format!(
                "`w` {:?} must be [lmax+1, c_in, c_out] = [{}, {c_in}, ·] for `x` {:?} (degree {lmax})",
                w.shape(),
                lmax + 1,
                x.shape()
            ),
        }),
    }
}

/// `out[n,o,l,m] = Σ_i w[l,i,o]·x[n,i,l,m]` (no normalisation): `x [n, c_in, (lmax+1)²]`,
/// `w [lmax+1, c_in, c_out]` → `[n, c_out, (lmax+1)²]`. Equivariant: it commutes with
/// [`rotate`](crate::so3::rotate).
///
/// ```
/// use wgkernels::{so3, Context};
/// # fn main() -> wgkernels::Result<()> {
/// let ctx = Context::new()?;
/// let x = ctx.tensor(&[1.0, 2.0, 3.0, 4.0], &[1, 1, 4])?; // one channel, l ≤ 1
/// let w = ctx.tensor(&[10.0, 2.0], &[2, 1, 1])?;          // ×10 at l = 0, ×2 at l = 1
/// assert_eq!(so3::linear(&ctx, &x, &w)?.to_vec()?, vec![10.0, 4.0, 6.0, 8.0]);
/// # Ok(())
/// # }
/// ```
pub fn linear(ctx: &Context, x: &Tensor, w: &Tensor) -> Result<Tensor> {
    const OP: &str = "so3::linear";
    let _call = crate::call::Call::enter(OP);
    let (n, c_in, c_out, lmax) = linear_args(ctx, OP, x, w)?;
    let d = dim(lmax);
    let cpu = || {
        Ok([reference::linear(
            x.host(),
            w.host(),
            [n, c_in, c_out],
            lmax,
            false,
        )])
    };
    let [out] = op::run(ctx, OP, [&[n, c_out, d]], cpu, |gpu, [out]| {
        kernels::linear(gpu, [x, w], [c_in, c_out], false, out)
    })?;
    Ok(out)
}

/// The gradients of [`linear`] for an upstream `d_out` (`[n, c_out, (lmax+1)²]`):
/// `∂x[n,i,l,m] = Σ_o w[l,i,o]·d_out[n,o,l,m]` and `∂w[l,i,o] = Σ_n Σ_m x[n,i,l,m]·d_out[n,o,l,m]`
/// (summed in increasing n: the same bits every run).
pub fn linear_backward(
    ctx: &Context,
    x: &Tensor,
    w: &Tensor,
    d_out: &Tensor,
) -> Result<LinearGrads> {
    const OP: &str = "so3::linear_backward";
    let _call = crate::call::Call::enter(OP);
    let (n, c_in, c_out, lmax) = linear_args(ctx, OP, x, w)?;
    check_d_out(ctx, OP, d_out, [n, c_out, dim(lmax)])?;
    let cpu = || {
        Ok([
            reference::linear(d_out.host(), w.host(), [n, c_in, c_out], lmax, true),
            reference::linear_weight_gradient(x.host(), d_out.host(), [n, c_in, c_out], lmax),
        ])
    };
    let [dx, dw] = op::run(ctx, OP, [x.shape(), w.shape()], cpu, |gpu, [dx, dw]| {
        kernels::linear(gpu, [d_out, w], [c_out, c_in], true, dx)?;
        kernels::linear_weight_gradient(gpu, [x, d_out], [c_in, c_out], lmax, dw)
    })?;
    Ok(LinearGrads { x: dx, w: dw })
}

/// The double backward of [`linear`]: the gradients of `⟨dd, linear_backward(x, w, d_out)⟩`.
#[derive(Debug)]
pub struct LinearSecondGrads {
    /// `∂/∂x`, x's shape.
    pub x: Tensor,
    /// `∂/∂w`, w's shape.
    pub w: Tensor,
    /// `∂/∂d_out`, the output's shape.
    pub d_out: Tensor,
}

/// The double backward of [`linear`] for cotangents `dd` of [`linear_backward`]'s outputs.
/// The map is bilinear in (x, w), so `⟨dd.x, ∂x⟩ + ⟨dd.w, ∂w⟩ = ⟨d_out, linear(dd.x, w) +
/// linear(x, dd.w)⟩` and: `d_out' = linear(dd.x, w) + linear(x, dd.w)`,
/// `x' = Σ_o dd.w[l,i,o]·d_out[n,o,l,m]` and `w' = Σ_n Σ_m dd.x[n,i,l,m]·d_out[n,o,l,m]` —
/// which is `linear_backward(dd.x, dd.w, d_out)`.
pub fn linear_double_backward(
    ctx: &Context,
    x: &Tensor,
    w: &Tensor,
    d_out: &Tensor,
    dd: &LinearGrads,
) -> Result<LinearSecondGrads> {
    const OP: &str = "so3::linear_double_backward";
    let _call = crate::call::Call::enter(OP);
    let (n, _, c_out, lmax) = linear_args(ctx, OP, x, w)?;
    check_d_out(ctx, OP, d_out, [n, c_out, dim(lmax)])?;
    for (arg, cotangent, like) in [("dd.x", &dd.x, x), ("dd.w", &dd.w, w)] {
        let what = "the shape of the gradient it pairs with";
        ctx.check_shape(OP, arg, cotangent, like.shape(), what)?;
    }
    let crossed = linear_backward(ctx, &dd.x, &dd.w, d_out)?;
    let d_out_second = sum(ctx, vec![linear(ctx, &dd.x, w)?, linear(ctx, x, &dd.w)?])?;
    Ok(LinearSecondGrads {
        x: crossed.x,
        w: crossed.w,
        d_out: d_out_second,
    })
}

/// Checks that `d_out` (owned by `ctx`) has the output's shape.
fn check_d_out(ctx: &Context, op: &'static str, d_out: &Tensor, shape: [usize; 3]) -> Result<()> {
    ctx.check_shape(op, "d_out", d_out, &shape, "the output's shape")
}
