//! [`StaticInverse`]: the inverse Fisher of a fixed set of gradients, for pruning.

use super::kernels::{self, Coefficients, Factorization};
use super::{check_damp, check_f32, reference, vectors};
use crate::gpu::pool::PooledBuffer;
use crate::op::{self, Resident};
use crate::{linalg, Context, Error, Result, Tensor};

/// From this many gradients the Gram matrix `G·Gᵀ` is a tiled GEMM; below, the chunked
/// dot kernel. A GEMM of m×m outputs has only ⌈m/64⌉² workgroups, each walking all of d;
/// the dot kernel splits d across workgroups but walks the m gradients one at a time.
/// (lavapipe, d = 2^14: m = 16 takes 0.18 s by dots and 0.58 s by GEMM; m = 256 by dots,
/// 22.9 s.) Split-K GEMM would serve both.
const GRAM_BY_GEMM_FROM: usize = 128;

/// V = W·G (`[m, d]`, the paper's v_i as rows) and the pivots D on the device.
struct DeviceFactors {
    v: Tensor,
    denominators: PooledBuffer,
}

/// The inverse of the Fisher of a fixed set of m f32 gradients, for pruning: precomputed in
/// O(d·m²), then `F⁻¹x` in O(d·m), its diagonal in O(d·m), one entry in O(m).
///
/// Accuracy: F's condition number is `κ = 1 + σ²_max/(m·λ)` (σ_max the largest singular value
/// of the gradients); in f32 the results carry relative errors of about `κ·1e-7` — the same
/// order as rounding the gradients themselves to f32 perturbs F⁻¹. Small λ with large
/// gradients (λ = 1e-5, |g| ~ 30) reaches κ ~ 1e8: then only the component of x outside the
/// gradients' span (scaled by 1/λ) is accurate.
pub struct StaticInverse {
    ctx: Context,
    d: usize,
    m: usize,
    damp: f32,
    state: Resident<reference::StaticFactors, DeviceFactors>,
}

impl StaticInverse {
    /// Precomputes the factors of `F = λ·I + (1/m)·Σ g_i g_iᵀ` for `grads [m, d]`, λ = `damp`.
    pub fn new(ctx: &Context, grads: &Tensor, damp: f32) -> Result<StaticInverse> {
        const OP: &str = "mfac::StaticInverse::new";
        let _call = crate::call::Call::enter(OP);
        ctx.check_owns(OP, "grads", grads)?;
        check_f32(OP, "grads", grads)?;
        check_damp(OP, damp)?;
        let &[m, d] = grads.shape() else {
            return Err(Error::Shape {
                op: OP,
                message: format!("`grads` must be [m, d], got {:?}", grads.shape()),
            });
        };
        let state = Resident::new(
            ctx,
            || {
                // The factors V [m, d] and the m×m Gram matrix, in f64.
                op::reserve(OP, "grads", grads.len())?;
                op::reserve(OP, "grads", m.saturating_mul(m))?;
                Ok(reference::sherman_morrison(grads.host(), d, damp as f64))
            },
            |gpu| {
                kernels::check_window_count(OP, gpu, m)?;
                // The dot kernel binds all of G as its vectors; the GEMM splits it.
                let g_bytes = grads.len() as u64 * grads.dtype().size() as u64;
                let gram = if m >= GRAM_BY_GEMM_FROM || g_bytes > gpu.binding.max_bytes {
                    linalg::matmul(ctx, grads, grads, false, true)?
                } else {
                    let gram = gpu.output(&[m, m])?;
                    let how = Coefficients::Gram {
                        gram: gram.buffer(),
                    };
                    kernels::coefficients(gpu, OP, grads, m, grads, how)?;
                    gram
                };
                let Factorization { w, denominators } =
                    kernels::factor(gpu, OP, gram.buffer(), m, m, damp)?;
                let w = Tensor::from_device(ctx, w, &[m, m]);
                let v = linalg::matmul(ctx, &w, grads, false, false)?; // V = W·G, [m, d]
                Ok(DeviceFactors { v, denominators })
            },
        )?;
        Ok(StaticInverse {
            ctx: ctx.clone(),
            d,
            m,
            damp,
            state,
        })
    }

    /// The length d of the vectors it applies to.
    pub(crate) fn dimension(&self) -> usize {
        self.d
    }

    /// The context it lives on.
    pub(crate) fn context(&self) -> &Context {
        &self.ctx
    }

    /// The number of gradients m.
    pub fn len(&self) -> usize {
        self.m
    }

    /// Never true: there is at least one gradient.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// `F⁻¹x = x/λ − Σ_i (v_iᵀx / D_i)·v_i` for `x [d]` or a batch `[k, d]`; same shape out.
    pub fn ihvp(&self, x: &Tensor) -> Result<Tensor> {
        const OP: &str = "mfac::StaticInverse::ihvp";
        let _call = crate::call::Call::enter(OP);
        let k = vectors(OP, &self.ctx, x, self.d)?;
        let [out] = self.state.run(
            &self.ctx,
            OP,
            [x.shape()],
            |factors| {
                let out = x.host().chunks(self.d).flat_map(|x| factors.ihvp(x));
                Ok([out.collect()])
            },
            |DeviceFactors { v, denominators }, gpu, [out]| {
                let how = Coefficients::Static {
                    denominators: denominators.buffer(),
                };
                let c = kernels::coefficients(gpu, OP, v, self.m, x, how)?
                    .ok_or_else(|| Error::gpu("static coefficients missing"))?;
                let (m, damp) = (self.m, self.damp);
                kernels::combine(gpu, OP, v, m, Some(x), c.buffer(), damp, out.buffer(), k)
            },
        )?;
        Ok(out)
    }

    /// `[F⁻¹]_kk = 1/λ − Σ_i v_ik² / D_i` for every k: `[d]`.
    pub fn inverse_diagonal(&self) -> Result<Tensor> {
        const OP: &str = "mfac::StaticInverse::inverse_diagonal";
        let _call = crate::call::Call::enter(OP);
        let [out] = self.state.run(
            &self.ctx,
            OP,
            [&[self.d]],
            |factors| Ok([factors.inverse_diagonal()]),
            |DeviceFactors { v, denominators }, gpu, [out]| {
                let (dens, damp) = (denominators.buffer(), self.damp);
                kernels::combine(gpu, OP, v, self.m, None, dens, damp, out.buffer(), 1)
            },
        )?;
        Ok(out)
    }

    /// `[F⁻¹]_ij = δ_ij/λ − Σ_t v_ti v_tj / D_t`, in O(m) (one small kernel and a read back).
    pub fn inverse_entry(&self, i: usize, j: usize) -> Result<f32> {
        const OP: &str = "mfac::StaticInverse::inverse_entry";
        let _call = crate::call::Call::enter(OP);
        for (arg, index) in [("i", i), ("j", j)] {
            if index >= self.d {
                return Err(Error::InvalidArgument {
                    op: OP,
                    arg,
                    message: format!("is {index}, past d = {}", self.d),
                });
            }
        }
        self.state.with(
            &self.ctx,
            |factors| Ok(factors.inverse_entry(i, j) as f32),
            |DeviceFactors { v, denominators }, gpu| {
                let sum = kernels::entry_sum(gpu, OP, v, denominators.buffer(), (i, j))?;
                let diagonal = if i == j { 1.0 / self.damp as f64 } else { 0.0 };
                Ok((diagonal - sum) as f32)
            },
        )
    }
}
