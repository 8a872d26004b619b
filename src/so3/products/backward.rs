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
use super::forward::{gaunt_product, GauntMethod};
use super::launch::ProductShape;
use super::reference;
use super::sparse::{self, PathWeights, Sparse};
use super::tables::{path_table, paths, Coefficients, Grouping};
use crate::linalg::reduce::sum_middle;
use crate::so3::degrees::dim;
use crate::{op, Context, Result, Tensor};

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

/// The input gradients of a sparse product (CG, weighted or not, or Gaunt `Direct`).
fn sparse_input_gradients(
    ctx: &Context,
    kind: Coefficients,
    [x1, x2, d_out]: [&Tensor; 3],
    (degrees, broadcast): ([usize; 3], bool),
    weights: Option<&PathWeights<'_>>,
) -> Result<ProductGrads> {
    let (n, c) = (x1.shape()[0], x1.shape()[1]);
    let regrouped = |grouping| Sparse {
        kind,
        degrees,
        grouping,
    };
    let dx1 = regrouped(Grouping::X1).run(ctx, [d_out, x2], broadcast, weights, x1.shape())?;
    let d2 = x2.shape()[2];
    let dx2 = regrouped(Grouping::X2).run(ctx, [d_out, x1], false, weights, &[n, c, d2])?;
    let dx2 = summed_over_channels(ctx, dx2, broadcast, [n, c, d2])?;
    Ok(ProductGrads { x1: dx1, x2: dx2 })
}

/// `[n, c, d]` summed over the channels to `[n, 1, d]` when the operand was broadcast.
fn summed_over_channels(
    ctx: &Context,
    x: Tensor,
    broadcast: bool,
    [n, c, d]: [usize; 3],
) -> Result<Tensor> {
    if broadcast {
        sum_middle(ctx, &x, [n, c, d], &[n, 1, d])
    } else {
        Ok(x)
    }
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
    let (n, c, l1, l2, broadcast) = product_args(ctx, OP, x1, x2, lmax_out)?;
    check_d_out(ctx, OP, d_out, [n, c, dim(lmax_out)])?;
    let degrees = [l1, l2, lmax_out];
    sparse_input_gradients(
        ctx,
        Coefficients::ClebschGordan,
        [x1, x2, d_out],
        (degrees, broadcast),
        None,
    )
}

/// The gradients of [`gaunt_product`] for an upstream `d_out`, by the same `method`: Gaunt
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
    let (n, c, l1, l2, broadcast) = product_args(ctx, OP, x1, x2, lmax_out)?;
    check_d_out(ctx, OP, d_out, [n, c, dim(lmax_out)])?;
    if method == GauntMethod::Direct {
        let degrees = [l1, l2, lmax_out];
        return sparse_input_gradients(
            ctx,
            Coefficients::Gaunt,
            [x1, x2, d_out],
            (degrees, broadcast),
            None,
        );
    }
    let dx1 = gaunt_product(ctx, d_out, x2, l1, method)?;
    let dx2 = gaunt_product(ctx, d_out, x1, l2, method)?;
    let dx2 = summed_over_channels(ctx, dx2, broadcast, [n, c, x2.shape()[2]])?;
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
    let (n, c, l1, l2, broadcast) = product_args(ctx, OP, x1, x2, lmax_out)?;
    let count = paths(l1, l2, lmax_out).len();
    let shared = weight_args(ctx, OP, weights, [n, c], count)?;
    check_d_out(ctx, OP, d_out, [n, c, dim(lmax_out)])?;
    let w = PathWeights {
        tensor: weights,
        paths: count,
        shared,
    };
    let degrees = [l1, l2, lmax_out];
    let inputs = sparse_input_gradients(
        ctx,
        Coefficients::ClebschGordan,
        [x1, x2, d_out],
        (degrees, broadcast),
        Some(&w),
    )?;
    let table = path_table(l1, l2, lmax_out);
    let cpu = || {
        let group = if broadcast { c } else { 1 };
        let (d1, d2, d3) = (x1.shape()[2], x2.shape()[2], d_out.shape()[2]);
        Ok([reference::path_gradient(
            &table,
            (&op::widen(OP, "x1", x1)?, d1),
            (&op::widen(OP, "x2", x2)?, d2, group),
            (&op::widen(OP, "d_out", d_out)?, d3),
        )])
    };
    let [dw] = op::run(ctx, OP, [&[n, c, count]], cpu, |gpu, [dw]| {
        let key = format!("cg/{l1}/{l2}/{lmax_out}");
        let shape = ProductShape {
            channels: c,
            broadcast,
            d3: count,
        };
        sparse::path_gradient(gpu, key, &table, [x1, x2, d_out], &shape, dw)
    })?;
    let dw = if shared {
        sum_middle(ctx, &dw, [1, n, c * count], &[1, c, count])?
    } else {
        dw
    };
    Ok(WeightedGrads {
        x1: inputs.x1,
        x2: inputs.x2,
        weights: dw,
    })
}
