//! The gradients of every product.
//!
//! Each product is bilinear, `out[i3] = Σ T[i1,i2,i3]·x1[i1]·x2[i2]`, so each input's gradient
//! is a product of the same form with the table regrouped: `∂x1[i1] = Σ T·∂out[i3]·x2[i2]`,
//! `∂x2[i2] = Σ T·∂out[i3]·x1[i1]` (the same sparse kernel,
//! [`grouped`](super::tables::grouped)). Gaunt coefficients are symmetric in their three
//! indices, so the Grid and Fourier routes get their gradients as Gaunt products too,
//! `∂x1 = Gaunt(∂out, x2)` projected to x1's degrees, by the same O(L³) route. Broadcast
//! operands get the sum over what they were broadcast along.

use super::args::{check_d_out, product_args, weight_args};
use super::bilinear::{Bilinear, Route};
use super::forward::GauntMethod;
use super::sparse::PathWeights;
use super::tables::{paths, Coefficients};
use crate::so3::degrees::dim;
use crate::{Context, Result, Tensor};

/// The gradients of a product: `∂L/∂x1` and `∂L/∂x2`, each of its input's shape (a
/// broadcast `[n, 1, ·]` x2 gets the sum over the channels).
#[derive(Debug)]
pub struct ProductGrads {
    /// `∂L/∂x1`.
    pub x1: Tensor,
    /// `∂L/∂x2`.
    pub x2: Tensor,
}

/// The gradients of [`weighted_cg_product`](super::forward::weighted_cg_product): inputs and weights, each of its input's shape
/// (shared `[1, c, P]` weights get the sum over the samples).
#[derive(Debug)]
pub struct WeightedGrads {
    /// `∂L/∂x1`.
    pub x1: Tensor,
    /// `∂L/∂x2`.
    pub x2: Tensor,
    /// `∂L/∂weights`.
    pub weights: Tensor,
}

/// The gradients of [`cg_product`](super::forward::cg_product) for an upstream `d_out = ∂L/∂out`
/// (`[n, c, (lmax_out+1)²]`): `∂x1[i1] = Σ C·d_out[i3]·x2[i2]`, `∂x2[i2] = Σ C·d_out[i3]·x1[i1]`,
/// the same sparse kernel with the terms regrouped by i1 and by i2.
pub fn cg_product_backward(
    ctx: &Context,
    x1: &Tensor,
    x2: &Tensor,
    lmax_out: usize,
    d_out: &Tensor,
) -> Result<ProductGrads> {
    const OP: &str = "so3::cg_product_backward";
    let _call = crate::call::Call::enter(OP);
    let product = checked(ctx, OP, [x1, x2, d_out], lmax_out, Route::Sparse(CG))?;
    let [dx1, dx2] = product.input_gradients(ctx, [x1, x2, d_out])?;
    Ok(ProductGrads { x1: dx1, x2: dx2 })
}

/// The gradients of [`gaunt_product`](super::forward::gaunt_product) for an upstream `d_out`, by the same `method`: Gaunt
/// coefficients are symmetric in their three indices, so `∂x1 = gaunt_product(d_out, x2, l1)`
/// and `∂x2 = gaunt_product(d_out, x1, l2)` (summed over channels for a broadcast x2) — O(L³)
/// for the Grid and Fourier routes, as their forwards, at every degree on both paths.
pub fn gaunt_product_backward(
    ctx: &Context,
    x1: &Tensor,
    x2: &Tensor,
    lmax_out: usize,
    method: GauntMethod,
    d_out: &Tensor,
) -> Result<ProductGrads> {
    const OP: &str = "so3::gaunt_product_backward";
    let _call = crate::call::Call::enter(OP);
    let product = checked(ctx, OP, [x1, x2, d_out], lmax_out, Route::gaunt(method))?;
    let [dx1, dx2] = product.input_gradients(ctx, [x1, x2, d_out])?;
    Ok(ProductGrads { x1: dx1, x2: dx2 })
}

/// The gradients of [`weighted_cg_product`](super::forward::weighted_cg_product) for an upstream `d_out`: the inputs' as
/// [`cg_product_backward`] with each term weighted, and
/// `∂w[n,c,p] = Σ_{terms of p} C·x1[i1]·x2[i2]·d_out[i3]` (summed over the samples for shared
/// weights).
pub fn weighted_cg_product_backward(
    ctx: &Context,
    x1: &Tensor,
    x2: &Tensor,
    weights: &Tensor,
    lmax_out: usize,
    d_out: &Tensor,
) -> Result<WeightedGrads> {
    const OP: &str = "so3::weighted_cg_product_backward";
    let _call = crate::call::Call::enter(OP);
    let unweighted = checked(ctx, OP, [x1, x2, d_out], lmax_out, Route::Sparse(CG))?;
    let product = unweighted.weighted_by(checked_weights(ctx, OP, &unweighted, weights)?);
    let [dx1, dx2] = product.input_gradients(ctx, [x1, x2, d_out])?;
    let dw = product.weight_gradient(ctx, OP, [x1, x2, d_out])?;
    Ok(WeightedGrads {
        x1: dx1,
        x2: dx2,
        weights: dw,
    })
}

const CG: Coefficients = Coefficients::ClebschGordan;

/// Checks a product's inputs and its upstream gradient; the product they describe.
pub(super) fn checked(
    ctx: &Context,
    op: &'static str,
    [x1, x2, d_out]: [&Tensor; 3],
    lmax_out: usize,
    route: Route,
) -> Result<Bilinear<'static>> {
    let (n, c, l1, l2, broadcast) = product_args(ctx, op, x1, x2, lmax_out)?;
    check_d_out(ctx, op, d_out, [n, c, dim(lmax_out)])?;
    Ok(Bilinear {
        route,
        degrees: [l1, l2, lmax_out],
        samples: [n, c],
        broadcast,
        weights: None,
    })
}

/// Checks path weights for `product`, per sample or shared.
pub(super) fn checked_weights<'w>(
    ctx: &Context,
    op: &'static str,
    product: &Bilinear<'_>,
    weights: &'w Tensor,
) -> Result<PathWeights<'w>> {
    let [l1, l2, lmax_out] = product.degrees;
    let count = paths(l1, l2, lmax_out).len();
    let shared = weight_args(ctx, op, weights, product.samples, count)?;
    Ok(PathWeights {
        tensor: weights,
        paths: count,
        shared,
    })
}
