//! The weighted Clebsch–Gordan product and the gradients of every product.
//!
//! Each product is bilinear, `out[i3] = Σ T[i1,i2,i3]·x1[i1]·x2[i2]`, so each input's gradient
//! is a product of the same form with the table regrouped: `∂x1[i1] = Σ T·∂out[i3]·x2[i2]`,
//! `∂x2[i2] = Σ T·∂out[i3]·x1[i1]` (the same sparse kernel, [`products::grouped`]). Gaunt
//! coefficients are symmetric in their three indices, so the Grid and Fourier routes get their
//! gradients as Gaunt products too, `∂x1 = Gaunt(∂out, x2)` projected to x1's degrees, by the
//! same O(L³) route. Broadcast operands get the sum over what they were broadcast along.

use super::kernels::{self, PathWeights, ProductShape};
use super::products::{self, Coefficients, Grouping};
use super::{gaunt_product, product_args, reference, GauntMethod, Sparse};
use crate::linalg::reduce::sum_middle;
use crate::{op, Context, Error, Result, Tensor};

/// The paths of a product of degrees `0..=l1max ⊗ 0..=l2max → 0..=lmax_out`, in the order of
/// the weights of [`weighted_cg_product`]: `(l1, l2, l3)` with l1, then l2, then l3 ascending
/// over `|l1 − l2| ≤ l3 ≤ min(l1 + l2, lmax_out)`.
///
/// ```
/// assert_eq!(wgkernels::so3::paths(1, 1, 1), vec![[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 0], [1, 1, 1]]);
/// ```
pub fn paths(l1max: usize, l2max: usize, lmax_out: usize) -> Vec<[usize; 3]> {
    let mut out = Vec::new();
    for l1 in 0..=l1max {
        for l2 in 0..=l2max {
            for l3 in l1.abs_diff(l2)..=(l1 + l2).min(lmax_out) {
                out.push([l1, l2, l3]);
            }
        }
    }
    out
}

/// The gradients of a product: `∂L/∂x1` and `∂L/∂x2`, each of its input's shape (a
/// broadcast `[n, 1, ·]` x2 gets the sum over the channels).
#[derive(Debug)]
pub struct ProductGrads {
    /// `∂L/∂x1`.
    pub x1: Tensor,
    /// `∂L/∂x2`.
    pub x2: Tensor,
}

/// The gradients of [`weighted_cg_product`]: inputs and weights, each of its input's shape
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

/// Checks `weights [n, c, P]` or `[1, c, P]` for P = [`paths`]`(l1, l2, lmax_out).len()`;
/// returns whether they are shared by the samples.
fn weight_args(
    ctx: &Context,
    op: &'static str,
    weights: &Tensor,
    [n, c]: [usize; 2],
    count: usize,
) -> Result<bool> {
    ctx.check_owns(op, "weights", weights)?;
    match *weights.shape() {
        [wn, wc, p] if (wn == n || wn == 1) && wc == c && p == count => Ok(wn == 1 && n != 1),
        _ => Err(Error::Shape {
            op,
            message: format!(
                "`weights` {:?} must be [n, c, P] or [1, c, P] = [{n} or 1, {c}, {count}] \
                 ({count} paths, see so3::paths)",
                weights.shape()
            ),
        }),
    }
}

/// Checks that `d_out` has the product's output shape.
fn check_d_out(ctx: &Context, op: &'static str, d_out: &Tensor, shape: [usize; 3]) -> Result<()> {
    ctx.check_owns(op, "d_out", d_out)?;
    if d_out.shape() != shape {
        return Err(Error::Shape {
            op,
            message: format!(
                "`d_out` {:?} must have the output's shape {shape:?} ([n, c, (lmax_out+1)²])",
                d_out.shape()
            ),
        });
    }
    Ok(())
}

/// The weighted Clebsch–Gordan product: path p's term times `weights[·, c, p]`,
/// `out[n,c,l3,m3] = Σ_p w[n,c,p]·Σ C^{l1 l2 l3}[m1,m2,m3]·x1[n,c,l1,m1]·x2[n,c,l2,m2]`, with
/// the paths of [`paths`]. `weights` are per sample `[n, c, P]` (per-edge radial weights) or
/// shared `[1, c, P]`; [`cg_product`](super::cg_product) is this with every weight 1.
pub fn weighted_cg_product(
    ctx: &Context,
    x1: &Tensor,
    x2: &Tensor,
    weights: &Tensor,
    lmax_out: usize,
) -> Result<Tensor> {
    const OP: &str = "so3::weighted_cg_product";
    let (n, c, l1, l2, broadcast) = product_args(ctx, OP, x1, x2, lmax_out)?;
    let count = paths(l1, l2, lmax_out).len();
    let shared = weight_args(ctx, OP, weights, [n, c], count)?;
    let w = PathWeights {
        tensor: weights,
        paths: count,
        shared,
    };
    let sparse = Sparse {
        kind: Coefficients::ClebschGordan,
        degrees: [l1, l2, lmax_out],
        grouping: Grouping::Output,
    };
    sparse.run(
        ctx,
        [x1, x2],
        broadcast,
        Some(&w),
        &[n, c, reference::dim(lmax_out)],
    )
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

/// The gradients of [`cg_product`](super::cg_product) for an upstream `d_out = ∂L/∂out`
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
    check_d_out(ctx, OP, d_out, [n, c, reference::dim(lmax_out)])?;
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
    check_d_out(ctx, OP, d_out, [n, c, reference::dim(lmax_out)])?;
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

/// The gradients of [`weighted_cg_product`] for an upstream `d_out`: the inputs' as
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
    check_d_out(ctx, OP, d_out, [n, c, reference::dim(lmax_out)])?;
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
    let table = products::path_table(l1, l2, lmax_out);
    let cpu = || {
        let group = if broadcast { c } else { 1 };
        let (d1, d2, d3) = (x1.shape()[2], x2.shape()[2], d_out.shape()[2]);
        Ok([products::path_gradient(
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
        kernels::path_gradient(gpu, key, &table, [x1, x2, d_out], &shape, dw)
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
