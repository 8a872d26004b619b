//! SO(3): real spherical harmonics and Clebsch–Gordan coefficients in e3nn-jax's basis.
//!
//! This session lands the CPU side (coefficients and the f64 reference, calibrated on
//! e3nn-jax values); the GPU kernels and tensor products follow.

pub mod cg;
pub mod quadrature;
pub mod reference;

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
            ctx.host_result(
                y.into_iter().map(|v| v as f32).collect(),
                &[n, reference::dim(lmax)],
            )
        }
        Backend::Gpu(gpu) => {
            let out = ctx.output(&[n, reference::dim(lmax)])?;
            kernels::spherical_harmonics(gpu, vectors, n, lmax, out.buffer())?;
            Ok(out)
        }
    }
}
