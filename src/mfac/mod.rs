//! M-FAC (Frantar, Kurtic, Alistarh 2021): products with the inverse of an empirical Fisher
//! `F = λ·I + (1/m)·Σ_i g_i g_iᵀ` of m gradients, never forming the d×d matrix.
//!
//! Both inverses go through the m×m matrix `M = m·I + G·Gᵀ/λ` (Woodbury): its LDLᵀ pivots are
//! the paper's `D_i` and `W = L⁻¹/λ` turns the gradients G into the paper's `v_i` (the rows of
//! `V = W·G`). The O(d·m²) work is GEMMs (`G·Gᵀ`, `W·G`), the O(m³) factorisation one
//! workgroup, and every product with F⁻¹ two coalesced passes over a `[m, d]` matrix.
//!
//! ```
//! use wgkernels::{mfac::StaticInverse, Context};
//! # fn main() -> wgkernels::Result<()> {
//! let ctx = Context::new()?;
//! let grads = ctx.tensor(&[1.0, 0.0, 0.0, 0.0, 2.0, 0.0], &[2, 3])?; // m = 2, d = 3
//! let inverse = StaticInverse::new(&ctx, &grads, 0.5)?;
//! // F = 0.5·I + (g₁g₁ᵀ + g₂g₂ᵀ)/2 = diag(1, 2.5, 0.5)
//! let x = ctx.tensor(&[1.0, 1.0, 1.0], &[3])?;
//! let y = inverse.ihvp(&x)?.to_vec()?;
//! assert!((y[0] - 1.0).abs() < 1e-5 && (y[1] - 0.4).abs() < 1e-5 && (y[2] - 2.0).abs() < 1e-5);
//! # Ok(())
//! # }
//! ```

mod block_inverse;
mod kernels;
mod optimizer;
mod prune;
pub mod reference;
mod sliding;
mod static_inverse;

pub use block_inverse::BlockInverse;
pub use optimizer::{Mfac, MfacConfig};
pub use prune::{obs_scores, prune};
pub use sliding::SlidingInverse;
pub use static_inverse::StaticInverse;

use crate::{Context, DType, Error, Result, Tensor};

pub(super) fn check_damp(op: &'static str, damp: f32) -> Result<()> {
    if damp > 0.0 && damp.is_finite() {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            op,
            arg: "damp",
            message: format!("must be positive and finite, got {damp}"),
        })
    }
}

/// M-FAC reads its vectors and gradients as f32 only.
pub(super) fn check_f32(op: &'static str, arg: &'static str, t: &Tensor) -> Result<()> {
    if t.dtype() == DType::F32 {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            op,
            arg,
            message: format!("must be f32, got {}", t.dtype()),
        })
    }
}

/// `x` as `k` vectors of length d: `[d]` or `[k, d]`.
pub(super) fn vectors(op: &'static str, ctx: &Context, x: &Tensor, d: usize) -> Result<usize> {
    ctx.check_owns(op, "x", x)?;
    check_f32(op, "x", x)?;
    match *x.shape() {
        [n] if n == d => Ok(1),
        [k, n] if n == d => Ok(k),
        _ => Err(Error::Shape {
            op,
            message: format!(
                "`x` must be [d] or [k, d] with d = {d}, got {:?}",
                x.shape()
            ),
        }),
    }
}
