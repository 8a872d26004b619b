//! The double backward of every product: the vector–Jacobian product of its backward with
//! respect to every input of that backward, the upstream gradient included — what the
//! parameter gradient of a force loss needs.
//!
//! A backward maps `(x1, x2, [w], g)` to `∂x1 = T₁(w; g, x2)`, `∂x2 = T₂(w; g, x1)` and
//! `∂w = P(x1, x2, g)`. For cotangents `dd = (dd₁, dd₂, [dd_w])` of those outputs, the scalar
//! `⟨dd₁, ∂x1⟩ + ⟨dd₂, ∂x2⟩ + ⟨dd_w, ∂w⟩` equals
//! `⟨g, T(w; dd₁, x2) + T(w; x1, dd₂) + T(dd_w; x1, x2)⟩`, trilinear in its arguments, so
//! each of its gradients is again a few products of the same kind:
//! - `g' = T(w; dd₁, x2) + T(w; x1, dd₂) + T(dd_w; x1, x2)`,
//! - `x1' = T₁(w; g, dd₂) + T₁(dd_w; g, x2)`, `x2' = T₂(w; g, dd₁) + T₂(dd_w; g, x1)`,
//! - `w' = P(dd₁, x2, g) + P(x1, dd₂, g)`,
//!
//! with the terms in `dd_w` absent for the unweighted products, a broadcast x2 summed over
//! the channels and shared weights over the samples, as in the backward. The Grid and Fourier
//! routes stay O(L³): every term is one of their products.

use super::backward::{checked, checked_weights, ProductGrads, WeightedGrads};
use super::bilinear::{Bilinear, Route};
use super::forward::GauntMethod;
use super::tables::Coefficients;
use crate::linalg::elementwise::sum;
use crate::{Context, Result, Tensor};

/// The double backward of an unweighted product: the gradients of `⟨dd, backward(x1, x2, d_out)⟩`.
#[derive(Debug)]
pub struct ProductSecondGrads {
    /// `∂/∂x1`, x1's shape.
    pub x1: Tensor,
    /// `∂/∂x2`, x2's shape (summed over the channels for a broadcast x2).
    pub x2: Tensor,
    /// `∂/∂d_out`, the output's shape.
    pub d_out: Tensor,
}

/// The double backward of [`weighted_cg_product`](super::forward::weighted_cg_product).
#[derive(Debug)]
pub struct WeightedSecondGrads {
    /// `∂/∂x1`, x1's shape.
    pub x1: Tensor,
    /// `∂/∂x2`, x2's shape (summed over the channels for a broadcast x2).
    pub x2: Tensor,
    /// `∂/∂weights`, the weights' shape (summed over the samples for shared weights).
    pub weights: Tensor,
    /// `∂/∂d_out`, the output's shape.
    pub d_out: Tensor,
}

/// The double backward of [`cg_product`](super::forward::cg_product): for cotangents `dd`
/// of [`cg_product_backward`](super::backward::cg_product_backward)'s outputs,
/// `d_out' = CG(dd.x1, x2) + CG(x1, dd.x2)`, `x1' = CG₁(d_out, dd.x2)`,
/// `x2' = CG₂(d_out, dd.x1)` — four products of the backward's kind.
pub fn cg_product_double_backward(
    ctx: &Context,
    x1: &Tensor,
    x2: &Tensor,
    lmax_out: usize,
    d_out: &Tensor,
    dd: &ProductGrads,
) -> Result<ProductSecondGrads> {
    const OP: &str = "so3::cg_product_double_backward";
    let _call = crate::call::Call::enter(OP);
    let route = Route::Sparse(Coefficients::ClebschGordan);
    let product = checked(ctx, OP, [x1, x2, d_out], lmax_out, route)?;
    unweighted_second(ctx, OP, &product, [x1, x2, d_out], dd)
}

/// The double backward of [`gaunt_product`](super::forward::gaunt_product) by `method`, as
/// [`cg_product_double_backward`] with Gaunt products (O(L³) on the Grid and Fourier routes).
pub fn gaunt_product_double_backward(
    ctx: &Context,
    x1: &Tensor,
    x2: &Tensor,
    lmax_out: usize,
    method: GauntMethod,
    d_out: &Tensor,
    dd: &ProductGrads,
) -> Result<ProductSecondGrads> {
    const OP: &str = "so3::gaunt_product_double_backward";
    let _call = crate::call::Call::enter(OP);
    let product = checked(ctx, OP, [x1, x2, d_out], lmax_out, Route::gaunt(method))?;
    unweighted_second(ctx, OP, &product, [x1, x2, d_out], dd)
}

fn unweighted_second(
    ctx: &Context,
    op: &'static str,
    product: &Bilinear<'_>,
    [x1, x2, d_out]: [&Tensor; 3],
    dd: &ProductGrads,
) -> Result<ProductSecondGrads> {
    check_cotangent(ctx, op, "dd.x1", &dd.x1, x1)?;
    check_cotangent(ctx, op, "dd.x2", &dd.x2, x2)?;
    let d_out_second = sum(
        ctx,
        vec![
            product.forward(ctx, &dd.x1, x2)?,
            product.forward(ctx, x1, &dd.x2)?,
        ],
    )?;
    Ok(ProductSecondGrads {
        x1: product.grad_x1(ctx, d_out, &dd.x2)?,
        x2: product.grad_x2(ctx, d_out, &dd.x1)?,
        d_out: d_out_second,
    })
}

/// The double backward of [`weighted_cg_product`](super::forward::weighted_cg_product): for
/// cotangents `dd` of [`weighted_cg_product_backward`](super::backward::weighted_cg_product_backward)'s
/// outputs, `d_out' = T(w; dd.x1, x2) + T(w; x1, dd.x2) + T(dd.weights; x1, x2)`,
/// `x1' = T₁(w; d_out, dd.x2) + T₁(dd.weights; d_out, x2)`,
/// `x2' = T₂(w; d_out, dd.x1) + T₂(dd.weights; d_out, x1)` and
/// `weights' = P(dd.x1, x2, d_out) + P(x1, dd.x2, d_out)` (P the weights' gradient), broadcast
/// x2 and shared weights summed over what they were shared by.
pub fn weighted_cg_product_double_backward(
    ctx: &Context,
    x1: &Tensor,
    x2: &Tensor,
    weights: &Tensor,
    lmax_out: usize,
    d_out: &Tensor,
    dd: &WeightedGrads,
) -> Result<WeightedSecondGrads> {
    const OP: &str = "so3::weighted_cg_product_double_backward";
    let _call = crate::call::Call::enter(OP);
    let route = Route::Sparse(Coefficients::ClebschGordan);
    let unweighted = checked(ctx, OP, [x1, x2, d_out], lmax_out, route)?;
    let by_w = unweighted.weighted_by(checked_weights(ctx, OP, &unweighted, weights)?);
    check_cotangent(ctx, OP, "dd.x1", &dd.x1, x1)?;
    check_cotangent(ctx, OP, "dd.x2", &dd.x2, x2)?;
    check_cotangent(ctx, OP, "dd.weights", &dd.weights, weights)?;
    let by_dd = unweighted.weighted_by(checked_weights(ctx, OP, &unweighted, &dd.weights)?);
    let d_out_second = sum(
        ctx,
        vec![
            by_w.forward(ctx, &dd.x1, x2)?,
            by_w.forward(ctx, x1, &dd.x2)?,
            by_dd.forward(ctx, x1, x2)?,
        ],
    )?;
    let x1_second = sum(
        ctx,
        vec![
            by_w.grad_x1(ctx, d_out, &dd.x2)?,
            by_dd.grad_x1(ctx, d_out, x2)?,
        ],
    )?;
    let x2_second = sum(
        ctx,
        vec![
            by_w.grad_x2(ctx, d_out, &dd.x1)?,
            by_dd.grad_x2(ctx, d_out, x1)?,
        ],
    )?;
    let weights_second = sum(
        ctx,
        vec![
            by_w.weight_gradient(ctx, OP, [&dd.x1, x2, d_out])?,
            by_w.weight_gradient(ctx, OP, [x1, &dd.x2, d_out])?,
        ],
    )?;
    Ok(WeightedSecondGrads {
        x1: x1_second,
        x2: x2_second,
        weights: weights_second,
        d_out: d_out_second,
    })
}

/// Checks that the cotangent `arg` (owned by `ctx`) has the shape of the gradient it pairs
/// with, which is `like`'s.
fn check_cotangent(
    ctx: &Context,
    op: &'static str,
    arg: &'static str,
    cotangent: &Tensor,
    like: &Tensor,
) -> Result<()> {
    let what = "the shape of the gradient it pairs with";
    ctx.check_shape(op, arg, cotangent, like.shape(), what)
}
