//! SO(3): real spherical harmonics, Clebsch–Gordan and Gaunt tensor products, in e3nn-jax's
//! basis (index `l² + m + l`, component normalisation), each with an f64 CPU reference.

mod cg;
pub mod fft;
mod memo;
pub mod reference;
mod rotation;

// The machinery of the products (tables, plans, quadrature): public for the tests of this
// repository, which check each piece against the others; users call the functions below and
// the f64 oracles of `reference`.
#[doc(hidden)]
pub mod fourier;
#[doc(hidden)]
pub mod grid;
#[doc(hidden)]
pub mod products;
#[doc(hidden)]
pub mod quadrature;

#[doc(hidden)]
pub use products::Coefficients;

pub use cg::{clebsch_gordan, MAX_L};
pub use rotation::Rotation;

mod backward;
mod cp;
mod kernels;
mod linear;

pub use backward::{
    cg_product_backward, gaunt_product_backward, paths, weighted_cg_product,
    weighted_cg_product_backward, ProductGrads, WeightedGrads,
};
pub use cp::CpProduct;
use kernels::ProductShape;
pub use linear::{linear, linear_backward, LinearGrads};

use crate::{op, Context, Error, Result, Tensor};

/// Real spherical harmonics, identical to e3nn-jax 0.21
/// `spherical_harmonics(irreps, v, normalize=True, normalization="component")`:
/// `vectors [n, 3]` → `[n, (lmax+1)²]`, index `l² + (m + l)`, `Σ_m Y_lm² = 2l+1`,
/// `Y_1 = √3·(x, y, z)/|v|`. Any nonzero length (vectors are scaled by their largest
/// component before normalising); a zero vector gives `Y_0 = 1` and zeros, as do, on devices
/// that flush subnormals, vectors whose components are all below 1.2e-38. A vector with a
/// NaN or infinite component gives `Y_0 = 1` and NaN for every l ≥ 1, on both paths.
/// `lmax ≤` [`MAX_L`].
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
    ctx.check_owns(OP, "vectors", vectors)?;
    let &[n, 3] = vectors.shape() else {
        return Err(Error::Shape {
            op: OP,
            message: format!("`vectors` must be [n, 3], got {:?}", vectors.shape()),
        });
    };
    if lmax > MAX_L {
        return Err(Error::InvalidArgument {
            op: OP,
            arg: "lmax",
            message: format!("must be at most {MAX_L}, got {lmax}"),
        });
    }
    let [y] = op::run(
        ctx,
        OP,
        [&[n, reference::dim(lmax)]],
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
    ctx.check_owns(OP, "vectors", vectors)?;
    ctx.check_owns(OP, "d_y", d_y)?;
    let &[n, 3] = vectors.shape() else {
        return Err(Error::Shape {
            op: OP,
            message: format!("`vectors` must be [n, 3], got {:?}", vectors.shape()),
        });
    };
    if lmax > MAX_L {
        return Err(Error::InvalidArgument {
            op: OP,
            arg: "lmax",
            message: format!("must be at most {MAX_L}, got {lmax}"),
        });
    }
    let d = reference::dim(lmax);
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

/// How [`gaunt_product`] computes the product of two functions on the sphere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GauntMethod {
    /// Sums the precomputed sparse Gaunt coefficients: the exact reference.
    Direct,
    /// 2D Fourier coefficients convolved by FFT (Luo et al., ICLR 2024; see [`fourier`]
    /// and [`fft`]). Every degree up to [`MAX_L`] on both paths: on the GPU each product is
    /// one zero-padded FFT grid, in one workgroup's memory up to [`fft::FFT_CAPACITY`] entries
    /// (l1 + l2 ≤ 22 and l1 + l2 + lmax_out ≤ 44; 0..10 ⊗ 0..10 → 0..20 fits), else in a
    /// storage scratch slice per product, the same arithmetic.
    Fourier,
    /// Pointwise product on a Gauss–Legendre × uniform grid exact for the degree (The Price
    /// of Freedom), in the separable form: O(L³) per product (see [`grid`]). Every degree up
    /// to [`MAX_L`] on both paths: on the GPU a product's stages live in one workgroup's
    /// memory where they fit (l1, l2 ≤ 16 and about `l1 + l2 + lmax_out ≤ 44`; 0..10 ⊗ 0..10
    /// → 0..20 does), else in a storage scratch slice per product, the same arithmetic.
    Grid,
}

/// The degree of a coefficient axis of `(l+1)²` entries.
fn degree(op: &'static str, arg: &'static str, shape: &[usize]) -> Result<usize> {
    let d = *shape.last().unwrap_or(&0);
    let side = (d as f64).sqrt().round() as usize;
    if side == 0 || side * side != d {
        return Err(Error::Shape {
            op,
            message: format!(
                "the last dimension of `{arg}` {shape:?} must be (l+1)² for some l, got {d}"
            ),
        });
    }
    let l = side - 1;
    if l > MAX_L {
        return Err(Error::InvalidArgument {
            op,
            arg,
            message: format!("has degree {l} above {MAX_L}"),
        });
    }
    Ok(l)
}

/// Checks `x1 [n,c,(l1+1)²]`, `x2 [n,c or 1,(l2+1)²]`; returns `(n, c, l1, l2, broadcast)`.
fn product_args(
    ctx: &Context,
    op: &'static str,
    x1: &Tensor,
    x2: &Tensor,
    lmax_out: usize,
) -> Result<(usize, usize, usize, usize, bool)> {
    ctx.check_owns(op, "x1", x1)?;
    ctx.check_owns(op, "x2", x2)?;
    let (&[n, c, _], &[n2, c2, _]) = (x1.shape(), x2.shape()) else {
        return Err(Error::Shape {
            op,
            message: format!(
                "`x1` {:?} and `x2` {:?} must be [n, c, (l+1)²]",
                x1.shape(),
                x2.shape()
            ),
        });
    };
    if n2 != n || (c2 != c && c2 != 1) {
        return Err(Error::Shape {
            op,
            message: format!(
                "`x2` {:?} must be [n, c, ·] or [n, 1, ·] for `x1` {:?}",
                x2.shape(),
                x1.shape()
            ),
        });
    }
    if lmax_out > MAX_L {
        return Err(Error::InvalidArgument {
            op,
            arg: "lmax_out",
            message: format!("must be at most {MAX_L}, got {lmax_out}"),
        });
    }
    let l1 = degree(op, "x1", x1.shape())?;
    let l2 = degree(op, "x2", x2.shape())?;
    Ok((n, c, l1, l2, c2 == 1 && c != 1))
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
        grouping: products::Grouping::Output,
    };
    sparse.run(
        ctx,
        [x1, x2],
        broadcast,
        None,
        &[n, c, reference::dim(lmax_out)],
    )
}

/// One sparse product of the table of `kind` for `degrees = [l1, l2, lmax_out]`, grouped by
/// `grouping`: the forward (`Output`) or one of its input gradients (see
/// [`products::ProductTable`]), on either path.
struct Sparse {
    kind: Coefficients,
    degrees: [usize; 3],
    grouping: products::Grouping,
}

impl Sparse {
    /// `out = table(a, b)`, b broadcast over channels when `broadcast`, times the path
    /// weights when given.
    fn run(
        &self,
        ctx: &Context,
        [a, b]: [&Tensor; 2],
        broadcast: bool,
        weights: Option<&kernels::PathWeights<'_>>,
        shape: &[usize],
    ) -> Result<Tensor> {
        let [l1, l2, lmax_out] = self.degrees;
        let table = products::grouped(self.kind, l1, l2, lmax_out, self.grouping);
        let c = shape[1];
        let cpu = || {
            let group = if broadcast { c } else { 1 };
            let (da, db) = (a.shape()[2], b.shape()[2]);
            let data = weights
                .map(|w| op::widen("so3::product", "weights", w.tensor))
                .transpose()?;
            let w = weights
                .zip(data.as_ref())
                .map(|(w, data)| products::Weights {
                    data,
                    paths: w.paths,
                    shared_channels: w.shared.then_some(c),
                });
            Ok([products::apply_weighted(
                &table,
                &op::widen("so3::product", "x1", a)?,
                da,
                &op::widen("so3::product", "x2", b)?,
                db,
                group,
                w.as_ref(),
            )])
        };
        let [y] = op::run(ctx, "so3::product", [shape], cpu, |gpu, [y]| {
            let key = format!("{:?}/{l1}/{l2}/{lmax_out}/{:?}", self.kind, self.grouping);
            let product_shape = ProductShape {
                channels: c,
                broadcast,
                d3: shape[2],
            };
            kernels::sparse_product(gpu, key, &table, [a, b], weights, &product_shape, y)
        })?;
        Ok(y)
    }
}

/// Channel-wise Clebsch–Gordan tensor product over all paths, weight 1:
/// `out[n,c,l3,m3] = Σ C^{l1 l2 l3}[m1,m2,m3]·x1[n,c,l1,m1]·x2[n,c,l2,m2]` over
/// `|l1−l2| ≤ l3 ≤ min(l1+l2, lmax_out)`, C from [`clebsch_gordan`]. `x1 [n,c,(L1+1)²]`,
/// `x2 [n,c,(L2+1)²]` or `[n,1,(L2+1)²]` (broadcast over channels) → `[n,c,(lmax_out+1)²]`.
/// The GPU kernel sums only the nonzero coefficients.
pub fn cg_product(ctx: &Context, x1: &Tensor, x2: &Tensor, lmax_out: usize) -> Result<Tensor> {
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
fn gaunt_transformed(
    ctx: &Context,
    op: &'static str,
    x1: &Tensor,
    x2: &Tensor,
    lmax_out: usize,
    method: GauntMethod,
) -> Result<Tensor> {
    let (n, c, l1, l2, broadcast) = product_args(ctx, op, x1, x2, lmax_out)?;
    let shape = [n, c, reference::dim(lmax_out)];
    let cpu = || {
        let (a, b) = (op::widen(op, "x1", x1)?, op::widen(op, "x2", x2)?);
        let group = if broadcast { c } else { 1 };
        Ok([match method {
            GauntMethod::Fourier => fourier::gaunt_fourier(
                &fourier::FourierPlan::shared(l1, l2, lmax_out),
                &a,
                &b,
                group,
            ),
            _ => grid::gaunt_grid(&grid::GridPlan::shared(l1, l2, lmax_out), &a, &b, group),
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
                let plan = fourier::FourierPlan::shared(l1, l2, lmax_out);
                kernels::gaunt_fourier(gpu, &plan, inputs, &product, y)
            }
            _ => {
                let plan = grid::GridPlan::shared(l1, l2, lmax_out);
                kernels::gaunt_grid(gpu, &plan, inputs, &product, y)
            }
        }
    })?;
    Ok(y)
}

/// The real Wigner D matrices `D^l(R)`, l = 0..=lmax, in the basis of
/// [`spherical_harmonics`]: `Y_l(R·u) = D^l(R)·Y_l(u)`, `D¹ = R`; block l is row-major
/// `(2l+1)×(2l+1)`. [`reference::rotate_coefficients`] applies them to coefficient rows.
pub fn wigner_d(lmax: usize, rotation: &Rotation) -> Result<Vec<Vec<f64>>> {
    if lmax > MAX_L {
        return Err(Error::InvalidArgument {
            op: "so3::wigner_d",
            arg: "lmax",
            message: format!("must be at most {MAX_L}, got {lmax}"),
        });
    }
    Ok(reference::wigner_d(lmax, rotation))
}

/// Rotates coefficient tensors `[.., (lmax+1)²]` on the device: every row becomes
/// `x'_l = D^l(R)·x_l` (the coefficients of `f∘R⁻¹`), as one GEMM with the block-diagonal
/// `D(R)`.
pub fn rotate(ctx: &Context, x: &Tensor, rotation: &Rotation) -> Result<Tensor> {
    const OP: &str = "so3::rotate";
    ctx.check_owns(OP, "x", x)?;
    let lmax = degree(OP, "x", x.shape())?;
    let blocks = wigner_d(lmax, rotation)?;
    let d = reference::dim(lmax);
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
