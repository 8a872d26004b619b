//! The products' forwards: the Clebsch–Gordan product (weighted by path or not) and the Gaunt
//! product by each [`GauntMethod`].

use super::args::{product_args, weight_args};
use super::fourier::{self, kernel::gaunt_fourier, FourierPlan};
use super::grid::{self, kernel::gaunt_grid, GridPlan};
use super::launch::ProductShape;
use super::sparse::{PathWeights, Sparse};
use super::tables::{paths, Coefficients, Grouping};
use crate::so3::degrees::dim;
use crate::{op, Context, Result, Tensor};

/// How [`gaunt_product`] computes the product of two functions on the sphere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GauntMethod {
    /// Sums the precomputed sparse Gaunt coefficients: the exact reference.
    Direct,
    /// 2D Fourier coefficients convolved by FFT (Luo et al., ICLR 2024; see
    /// [`fourier`](crate::so3::fourier) and [`fft`](crate::so3::fft)). Every degree up to
    /// [`MAX_L`](crate::so3::MAX_L) on both paths: on the GPU each product is one zero-padded
    /// FFT grid, in one workgroup's memory up to
    /// [`fft::FFT_CAPACITY`](crate::so3::fft::FFT_CAPACITY) entries (l1 + l2 ≤ 22 and
    /// l1 + l2 + lmax_out ≤ 44; 0..10 ⊗ 0..10 → 0..20 fits), else in a storage scratch slice
    /// per product, the same arithmetic.
    Fourier,
    /// Pointwise product on a Gauss–Legendre × uniform grid exact for the degree (The Price
    /// of Freedom), in the separable form: O(L³) per product (see
    /// [`grid`](crate::so3::grid)). Every degree up to [`MAX_L`](crate::so3::MAX_L) on both
    /// paths: on the GPU a product's stages live in one workgroup's memory where they fit
    /// (l1, l2 ≤ 16 and about `l1 + l2 + lmax_out ≤ 44`; 0..10 ⊗ 0..10 → 0..20 does), else in
    /// a storage scratch slice per product, the same arithmetic.
    Grid,
}

fn product(
    ctx: &Context,
    op: &'static str,
    kind: Coefficients,
    x1: &Tensor,
    x2: &Tensor,
    lmax_out: usize,
) -> Result<Tensor> {
    let (n, c, l1, l2, broadcast) = product_args(ctx, op, x1, x2, lmax_out)?;
    let sparse = Sparse {
        kind,
        degrees: [l1, l2, lmax_out],
        grouping: Grouping::Output,
    };
    sparse.run(ctx, [x1, x2], broadcast, None, &[n, c, dim(lmax_out)])
}

/// Channel-wise Clebsch–Gordan tensor product over all paths, weight 1:
/// `out[n,c,l3,m3] = Σ C^{l1 l2 l3}[m1,m2,m3]·x1[n,c,l1,m1]·x2[n,c,l2,m2]` over
/// `|l1−l2| ≤ l3 ≤ min(l1+l2, lmax_out)`, C from
/// [`clebsch_gordan`](crate::so3::clebsch_gordan). `x1 [n,c,(L1+1)²]`,
/// `x2 [n,c,(L2+1)²]` or `[n,1,(L2+1)²]` (broadcast over channels) → `[n,c,(lmax_out+1)²]`.
/// The GPU kernel sums only the nonzero coefficients.
pub fn cg_product(ctx: &Context, x1: &Tensor, x2: &Tensor, lmax_out: usize) -> Result<Tensor> {
    let _call = crate::call::Call::enter("so3::cg_product");
    product(
        ctx,
        "so3::cg_product",
        Coefficients::ClebschGordan,
        x1,
        x2,
        lmax_out,
    )
}

/// The Gaunt product: with `f(u) = Σ x_lm Y_lm(u)`, `out_lm = (1/4π)∫ f1·f2·Y_lm dΩ` for
/// `l ≤ lmax_out` — the product of the two functions on the sphere, projected back. Shapes as
/// [`cg_product`]. All three [`GauntMethod`]s give the same numbers (to f32 rounding); they
/// differ in cost — O(L⁶) for `Direct` against O(L³) for the others — and in the sizes one
/// workgroup holds.
pub fn gaunt_product(
    ctx: &Context,
    x1: &Tensor,
    x2: &Tensor,
    lmax_out: usize,
    method: GauntMethod,
) -> Result<Tensor> {
    const OP: &str = "so3::gaunt_product";
    let _call = crate::call::Call::enter(OP);
    match method {
        GauntMethod::Direct => product(ctx, OP, Coefficients::Gaunt, x1, x2, lmax_out),
        GauntMethod::Grid | GauntMethod::Fourier => {
            gaunt_transformed(ctx, OP, x1, x2, lmax_out, method)
        }
    }
}

/// [`GauntMethod::Grid`] and [`GauntMethod::Fourier`], on either path: f64 on the CPU, one
/// workgroup per row on the GPU (its stages in workgroup memory where they fit, else in
/// storage).
pub(super) fn gaunt_transformed(
    ctx: &Context,
    op: &'static str,
    x1: &Tensor,
    x2: &Tensor,
    lmax_out: usize,
    method: GauntMethod,
) -> Result<Tensor> {
    let (n, c, l1, l2, broadcast) = product_args(ctx, op, x1, x2, lmax_out)?;
    let shape = [n, c, dim(lmax_out)];
    let cpu = || {
        let (a, b) = (op::widen(op, "x1", x1)?, op::widen(op, "x2", x2)?);
        let group = if broadcast { c } else { 1 };
        Ok([match method {
            GauntMethod::Fourier => {
                fourier::gaunt_fourier(&FourierPlan::shared(l1, l2, lmax_out), &a, &b, group)
            }
            _ => grid::gaunt_grid(&GridPlan::shared(l1, l2, lmax_out), &a, &b, group),
        }])
    };
    let [y] = op::run(ctx, op, [&shape], cpu, |gpu, [y]| {
        let product = ProductShape {
            channels: c,
            broadcast,
            d3: shape[2],
        };
        let inputs = [x1, x2];
        match method {
            GauntMethod::Fourier => {
                let plan = FourierPlan::shared(l1, l2, lmax_out);
                gaunt_fourier(gpu, &plan, inputs, &product, y)
            }
            _ => {
                let plan = GridPlan::shared(l1, l2, lmax_out);
                gaunt_grid(gpu, &plan, inputs, &product, y)
            }
        }
    })?;
    Ok(y)
}

/// The weighted Clebsch–Gordan product: path p's term times `weights[·, c, p]`,
/// `out[n,c,l3,m3] = Σ_p w[n,c,p]·Σ C^{l1 l2 l3}[m1,m2,m3]·x1[n,c,l1,m1]·x2[n,c,l2,m2]`, with
/// the paths of [`paths`]. `weights` are per sample `[n, c, P]` (per-edge radial weights) or
/// shared `[1, c, P]`; [`cg_product`] is this with every weight 1.
pub fn weighted_cg_product(
    ctx: &Context,
    x1: &Tensor,
    x2: &Tensor,
    weights: &Tensor,
    lmax_out: usize,
) -> Result<Tensor> {
    const OP: &str = "so3::weighted_cg_product";
    let _call = crate::call::Call::enter(OP);
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
    sparse.run(ctx, [x1, x2], broadcast, Some(&w), &[n, c, dim(lmax_out)])
}
