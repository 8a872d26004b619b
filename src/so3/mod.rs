//! SO(3): real spherical harmonics, Clebsch–Gordan and Gaunt tensor products, in e3nn-jax's
//! basis (index `l² + m + l`, component normalisation), each with an f64 CPU reference.

pub mod cg;
pub mod fft;
pub mod fourier;
pub mod grid;
mod memo;
pub mod products;
pub mod quadrature;
pub mod reference;

pub use products::Coefficients;

pub use cg::{clebsch_gordan, MAX_L};

mod kernels;

use crate::context::Backend;
use crate::{Context, Error, Result, Tensor};

/// Real spherical harmonics, identical to e3nn-jax 0.21
/// `spherical_harmonics(irreps, v, normalize=True, normalization="component")`:
/// `vectors [n, 3]` → `[n, (lmax+1)²]`, index `l² + (m + l)`, `Σ_m Y_lm² = 2l+1`,
/// `Y_1 = √3·(x, y, z)/|v|`. Any nonzero length (vectors are scaled by their largest
/// component before normalising); a zero vector gives `Y_0 = 1` and zeros, as do, on devices
/// that flush subnormals, vectors whose components are all below 1.2e-38.
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
    match &*ctx.backend {
        Backend::Cpu(_) => {
            let y = reference::spherical_harmonics(vectors.host(), lmax);
            ctx.host_result(y, &[n, reference::dim(lmax)])
        }
        Backend::Gpu(gpu) => {
            let out = ctx.output(&[n, reference::dim(lmax)])?;
            kernels::spherical_harmonics(gpu, vectors, n, lmax, out.buffer())?;
            Ok(out)
        }
    }
}

/// How [`gaunt_product`] computes the product of two functions on the sphere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GauntMethod {
    /// Sums the precomputed sparse Gaunt coefficients: the exact reference.
    Direct,
    /// 2D Fourier coefficients convolved by FFT (Luo et al., ICLR 2024; see [`fourier`]
    /// and [`fft`]). On the GPU each product is one zero-padded FFT grid of at most
    /// [`fft::FFT_CAPACITY`] entries in one workgroup: l1 + l2 ≤ 22 and l1 + l2 + lmax_out ≤ 44
    /// (0..10 ⊗ 0..10 → 0..20 fits).
    Fourier,
    /// Pointwise product on a Gauss–Legendre × uniform grid exact for the degree (The Price
    /// of Freedom), in the separable form: O(L³) per product (see [`grid`]). On the GPU
    /// each product lives in one workgroup's memory: l1, l2 ≤ 16 and about
    /// `l1 + l2 + lmax_out ≤ 44` (0..10 ⊗ 0..10 → 0..20 fits).
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
    let table = products::product_table(kind, l1, l2, lmax_out);
    let d3 = reference::dim(lmax_out);
    match &*ctx.backend {
        Backend::Cpu(_) => {
            let wide = |t: &Tensor| t.host().iter().map(|&x| x as f64).collect::<Vec<f64>>();
            let group = if broadcast { c } else { 1 };
            let y = products::apply(
                &table,
                &wide(x1),
                x1.shape()[2],
                &wide(x2),
                x2.shape()[2],
                group,
            );
            ctx.host_result(y, &[n, c, d3])
        }
        Backend::Gpu(gpu) => {
            let out = ctx.output(&[n, c, d3])?;
            let key = format!("{kind:?}/{l1}/{l2}/{lmax_out}");
            kernels::sparse_product(gpu, key, &table, [x1, x2], c, broadcast, out.buffer())?;
            Ok(out)
        }
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
/// workgroup per row on the GPU, where a product must fit that workgroup's memory.
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
    let too_large = |limit: &str| Error::InvalidArgument {
        op,
        arg: "lmax_out",
        message: format!(
            "GauntMethod::{method:?} on the GPU holds {limit} in workgroup memory, \
             got {l1} ⊗ {l2} → {lmax_out}"
        ),
    };
    match &*ctx.backend {
        Backend::Cpu(_) => {
            let wide = |t: &Tensor| t.host().iter().map(|&x| x as f64).collect::<Vec<f64>>();
            let (a, b) = (wide(x1), wide(x2));
            let group = if broadcast { c } else { 1 };
            let y = match method {
                GauntMethod::Fourier => fourier::gaunt_fourier(
                    &fourier::FourierPlan::shared(l1, l2, lmax_out),
                    &a,
                    &b,
                    group,
                ),
                _ => grid::gaunt_grid(&grid::GridPlan::shared(l1, l2, lmax_out), &a, &b, group),
            };
            ctx.host_result(y, &shape)
        }
        Backend::Gpu(gpu) => {
            let out = ctx.output(&shape)?;
            let inputs = [x1, x2];
            match method {
                GauntMethod::Fourier => {
                    let plan = fourier::FourierPlan::shared(l1, l2, lmax_out);
                    if !kernels::fourier_fits(&plan) {
                        return Err(too_large("a padded FFT grid of 2048 entries: l1 + l2 ≤ 22 and l1 + l2 + lmax_out ≤ 44"));
                    }
                    kernels::gaunt_fourier(gpu, &plan, inputs, c, broadcast, out.buffer())?;
                }
                _ => {
                    let plan = grid::GridPlan::shared(l1, l2, lmax_out);
                    if !kernels::grid_fits(&plan) {
                        return Err(too_large("l1, l2 ≤ 16 and about l1 + l2 + lmax_out ≤ 44"));
                    }
                    kernels::gaunt_grid(gpu, &plan, inputs, c, broadcast, out.buffer())?;
                }
            }
            Ok(out)
        }
    }
}

/// The real Wigner D matrices `D^l(R)`, l = 0..=lmax, in the basis of
/// [`spherical_harmonics`]: `Y_l(R·u) = D^l(R)·Y_l(u)`, `D¹ = R`; block l is row-major
/// `(2l+1)×(2l+1)`. `rotation` must be a proper rotation (orthonormal to 1e-6, det +1).
/// [`reference::rotate_coefficients`] applies them to coefficient rows.
pub fn wigner_d(lmax: usize, rotation: &reference::Rotation) -> Result<Vec<Vec<f64>>> {
    const OP: &str = "so3::wigner_d";
    if lmax > MAX_L {
        return Err(Error::InvalidArgument {
            op: OP,
            arg: "lmax",
            message: format!("must be at most {MAX_L}, got {lmax}"),
        });
    }
    let r = rotation;
    let off_orthonormal = (0..3)
        .flat_map(|i| (0..3).map(move |j| (i, j)))
        .map(|(i, j)| {
            ((0..3).map(|k| r[k][i] * r[k][j]).sum::<f64>() - (i == j) as u8 as f64).abs()
        })
        .fold(0.0, f64::max);
    let det = r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1])
        - r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0])
        + r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0]);
    if !(off_orthonormal < 1e-6 && det > 0.0) {
        return Err(Error::InvalidArgument {
            op: OP,
            arg: "rotation",
            message: format!(
                "must be a proper rotation: |RᵀR − I| = {off_orthonormal:.1e}, det = {det}"
            ),
        });
    }
    Ok(reference::wigner_d(lmax, rotation))
}

/// Rotates coefficient tensors `[.., (lmax+1)²]` on the device: every row becomes
/// `x'_l = D^l(R)·x_l` (the coefficients of `f∘R⁻¹`), as one GEMM with the block-diagonal
/// `D(R)`. `rotation` as in [`wigner_d`].
pub fn rotate(ctx: &Context, x: &Tensor, rotation: &reference::Rotation) -> Result<Tensor> {
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
