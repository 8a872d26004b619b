//! Linear attention (Katharopoulos et al. 2020; NaLaFormer, 2025) and the exact softmax
//! attention it replaces, for `[batch, heads, n, d]` tensors.
//!
//! For each (batch, head) and query i, over keys j (j ≤ i when causal), with
//! `s_ij = φ_q(q_i)·φ_k(k_j)`: `out_i = Σ_j s_ij v_j / (Σ_j s_ij + ε_i)`. Because
//! `Σ_j s_ij v_j = φ_q(q_i)ᵀ·Σ_j φ_k(k_j) v_jᵀ`, the GPU path never forms the n×n scores:
//! non-causal calls build the `[features, dv]` state once per head and answer every query
//! from it; causal calls use the chunked form of flash-linear-attention (a state per chunk of
//! 32 keys, a scan across chunks, the masked 32×32 block inside each chunk). Both are O(n).
//! [`LinearDecoder`] advances the same state one token at a time.
//!
//! ```
//! use wgkernels::attention::{self, FeatureMap};
//! use wgkernels::Context;
//! # fn main() -> wgkernels::Result<()> {
//! let ctx = Context::new()?;
//! let q = ctx.tensor(&[1.0, 0.0, 0.0, 1.0], &[1, 1, 2, 2])?; // [batch, heads, n, dk]
//! let v = ctx.tensor(&[1.0, 2.0], &[1, 1, 2, 1])?;           // [batch, heads, n, dv]
//! let out = attention::linear(&ctx, &q, &q, &v, FeatureMap::EluPlusOne, true)?;
//! let first = out.to_vec()?[0];
//! assert!((first - 1.0).abs() < 1e-5); // the first query sees only the first value
//! # Ok(())
//! # }
//! ```

mod decode;
mod kernels;
mod linear_backward;
pub mod reference;
mod softmax_backward;

pub use decode::LinearDecoder;
pub use reference::Dims;

use crate::{op, Context, Error, Result, Tensor};

/// The feature map φ of linear attention.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FeatureMap {
    /// `φ_q = φ_k = elu(x) + 1` (Katharopoulos et al.); `ε = 1e-6`.
    EluPlusOne,
    /// NaLaFormer's norm-aware map: `φ_k(k) = [relu(k³), relu(−k³)]`,
    /// `φ_q(q) = [(relu(q)/‖q‖)^p, (relu(−q)/‖q‖)^p]`, `p = 3·(0.5 + tanh‖q‖)`;
    /// `ε_i = c_i·1e-6` with c_i the number of keys attended.
    ///
    /// Guards: a zero query maps to zero features (its output is 0). Keys are cubed after
    /// scaling each head by a power of two 2^-e ≤ 1/max|k| that cancels between numerator
    /// and denominator (ε becomes ε·2^-3e), so any finite keys give finite outputs; without
    /// it, f32 overflows from |k| ≈ 7e12 (k³ > 3.4e38), or sooner in the sums. The outputs
    /// stay finite for every finite input whose `n·dk·max|v|` is below ~1e38. The price: keys
    /// more than ~2^42 (4e12) below the head's largest |k| underflow to zero features once
    /// scaled — negligible unless a query is orthogonal to every larger key, where the output
    /// then falls to 0 instead of averaging the tiny keys' values.
    NormAware,
}

/// Checks `q [b,h,n,dk]`, `k` like q, `v [b,h,n,dv]`; returns their dims with b·h as heads.
fn attention_args(
    ctx: &Context,
    op: &'static str,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
) -> Result<Dims> {
    for (name, t) in [("q", q), ("k", k), ("v", v)] {
        ctx.check_owns(op, name, t)?;
    }
    let &[b, h, n, dk] = q.shape() else {
        return Err(Error::Shape {
            op,
            message: format!("`q` must be [batch, heads, n, dk], got {:?}", q.shape()),
        });
    };
    if k.shape() != q.shape() {
        return Err(Error::Shape {
            op,
            message: format!(
                "`k` {:?} must have the shape of `q` {:?}",
                k.shape(),
                q.shape()
            ),
        });
    }
    let &[vb, vh, vn, dv] = v.shape() else {
        return Err(Error::Shape {
            op,
            message: format!("`v` must be [batch, heads, n, dv], got {:?}", v.shape()),
        });
    };
    if [vb, vh, vn] != [b, h, n] {
        return Err(Error::Shape {
            op,
            message: format!(
                "`v` {:?} must match `q` {:?} in batch, heads and n",
                v.shape(),
                q.shape()
            ),
        });
    }
    Ok(Dims {
        heads: b * h,
        n,
        dk,
        dv,
    })
}

/// Linear attention with feature map `map`, causal or not:
/// `out_i = Σ_j s_ij v_j / (Σ_j s_ij + ε_i)`, `s_ij = φ_q(q_i)·φ_k(k_j)`, j ≤ i when causal.
/// `q`, `k`: `[batch, heads, n, dk]`; `v`: `[batch, heads, n, dv]`; returns `[batch, heads, n, dv]`.
///
/// O(n·features·dv) per head in time, O(features·dv) state memory per head and chunk. One
/// head's q, k, v and (causal) its ⌈n/32⌉ chunk states must each fit one storage binding;
/// heads are spread over as many bindings as needed.
pub fn linear(
    ctx: &Context,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    map: FeatureMap,
    causal: bool,
) -> Result<Tensor> {
    const OP: &str = "attention::linear";
    let _call = crate::call::Call::enter(OP);
    let dims = attention_args(ctx, OP, q, k, v)?;
    let shape = [q.shape()[0], q.shape()[1], dims.n, dims.dv];
    let cpu = || {
        let out = reference::linear_recurrent(q.host(), k.host(), v.host(), dims, map, causal);
        Ok([out])
    };
    let [out] = op::run(ctx, OP, [&shape], cpu, |gpu, [out]| {
        kernels::linear(gpu, dims, map, causal, [q, k, v], out)
    })?;
    Ok(out)
}

/// Exact softmax attention, the baseline: `out_i = Σ_j softmax_j(q_i·k_j/√dk) v_j` over j
/// (j ≤ i when causal). Online softmax: O(n²·(dk + dv)) time, O(n·d) memory — the n×n
/// matrix never exists. Shapes as in [`linear`].
pub fn softmax(ctx: &Context, q: &Tensor, k: &Tensor, v: &Tensor, causal: bool) -> Result<Tensor> {
    const OP: &str = "attention::softmax";
    let _call = crate::call::Call::enter(OP);
    let dims = attention_args(ctx, OP, q, k, v)?;
    let shape = [q.shape()[0], q.shape()[1], dims.n, dims.dv];
    let [out] = op::run(
        ctx,
        OP,
        [&shape],
        || {
            Ok([reference::softmax(
                q.host(),
                k.host(),
                v.host(),
                dims,
                causal,
            )])
        },
        |gpu, [out]| kernels::softmax(gpu, dims, causal, [q, k, v], out, None),
    )?;
    Ok(out)
}

/// The gradients of an attention call: `∂L/∂q`, `∂L/∂k` (`[batch, heads, n, dk]`) and
/// `∂L/∂v` (`[batch, heads, n, dv]`).
#[derive(Debug)]
pub struct AttentionGrads {
    /// `∂L/∂q`.
    pub q: Tensor,
    /// `∂L/∂k`.
    pub k: Tensor,
    /// `∂L/∂v`.
    pub v: Tensor,
}

/// Checks that `d_out` has the output's shape `[batch, heads, n, dv]`.
fn check_d_out(
    ctx: &Context,
    op: &'static str,
    q: &Tensor,
    v: &Tensor,
    d_out: &Tensor,
) -> Result<()> {
    ctx.check_owns(op, "d_out", d_out)?;
    let want = [q.shape()[0], q.shape()[1], q.shape()[2], v.shape()[3]];
    if d_out.shape() != want {
        return Err(Error::Shape {
            op,
            message: format!(
                "`d_out` {:?} must have the output's shape {:?} ([batch, heads, n, dv])",
                d_out.shape(),
                want
            ),
        });
    }
    Ok(())
}

/// The gradients of [`linear`] for an upstream `d_out = ∂L/∂out` (`[batch, heads, n, dv]`):
/// with `D_i = Σ_j s_ij + ε_i` and `δ_i = d_out_i·out_i`, `∂s_ij = (d_out_i·v_j − δ_i)/D_i`,
/// then `∂φ_q(q_i) = Σ_j ∂s_ij φ_k(k_j)`, `∂φ_k(k_j) = Σ_i ∂s_ij φ_q(q_i)`,
/// `∂v_j = Σ_i s_ij d_out_i/D_i`, and through the feature map.
///
/// The GPU path never forms the n×n scores: it recomputes the forward's numerator and
/// normaliser from chunk states and gets each gradient as a linear attention of its own (the
/// query side causal, the key side anti-causal: a reverse scan of the state gradients), in
/// O(n·(dk + dv) + (n/32)·features·dv) memory per head. The norm-aware map keeps the
/// forward's guards: the gradient of a zero query is 0, and keys of any finite size give
/// finite gradients (the same power-of-two key scale, which cancels exactly).
///
/// ```
/// use wgkernels::attention::{self, FeatureMap};
/// use wgkernels::Context;
/// # fn main() -> wgkernels::Result<()> {
/// let ctx = Context::new()?;
/// let q = ctx.tensor(&[0.5, -1.0, 0.25, 1.0], &[1, 1, 2, 2])?;
/// let v = ctx.tensor(&[1.0, 2.0], &[1, 1, 2, 1])?;
/// let d_out = ctx.tensor(&[1.0, 1.0], &[1, 1, 2, 1])?;
/// let grads = attention::linear_backward(&ctx, &q, &q, &v, &d_out, FeatureMap::EluPlusOne, true)?;
/// // out_0 = v_0 whatever v_0 is: its weight is 1, so ∂L/∂v_0 gets 1 from query 0.
/// assert!(grads.v.to_vec()?[0] > 1.0);
/// # Ok(())
/// # }
/// ```
pub fn linear_backward(
    ctx: &Context,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    d_out: &Tensor,
    map: FeatureMap,
    causal: bool,
) -> Result<AttentionGrads> {
    const OP: &str = "attention::linear_backward";
    let _call = crate::call::Call::enter(OP);
    let dims = attention_args(ctx, OP, q, k, v)?;
    check_d_out(ctx, OP, q, v, d_out)?;
    let cpu = || {
        let g = reference::linear_backward(
            q.host(),
            k.host(),
            v.host(),
            d_out.host(),
            dims,
            map,
            causal,
        );
        Ok([g.q, g.k, g.v])
    };
    let [dq, dk, dv] = op::run(
        ctx,
        OP,
        [q.shape(), k.shape(), v.shape()],
        cpu,
        |gpu, grads| linear_backward::run(gpu, dims, map, causal, [q, k, v, d_out], grads),
    )?;
    Ok(AttentionGrads {
        q: dq,
        k: dk,
        v: dv,
    })
}

/// [`softmax`] and the per-row log-sum-exp of its scaled scores,
/// `lse_i = ln Σ_j exp(q_i·k_j/√dk)` (`[batch, heads, n]`), which flash-attention's backward
/// keeps from the forward to recompute the weights `exp(q_i·k_j/√dk − lse_i)` blockwise.
pub fn softmax_with_lse(
    ctx: &Context,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    causal: bool,
) -> Result<(Tensor, Tensor)> {
    const OP: &str = "attention::softmax_with_lse";
    let _call = crate::call::Call::enter(OP);
    let dims = attention_args(ctx, OP, q, k, v)?;
    let shape = [q.shape()[0], q.shape()[1], dims.n, dims.dv];
    let cpu = || {
        Ok([
            reference::softmax(q.host(), k.host(), v.host(), dims, causal),
            reference::softmax_log_sum_exp(q.host(), k.host(), dims, causal),
        ])
    };
    let [out, lse] = op::run(ctx, OP, [&shape, &shape[..3]], cpu, |gpu, [out, lse]| {
        kernels::softmax(gpu, dims, causal, [q, k, v], out, Some(lse))
    })?;
    Ok((out, lse))
}

/// The gradients of [`softmax`] for an upstream `d_out = ∂L/∂out`: with
/// `P_ij = exp(q_i·k_j/√dk − lse_i)` and `Δ_i = d_out_i·out_i`, `∂v_j = Σ_i P_ij d_out_i`,
/// `∂S_ij = P_ij·(d_out_i·v_j − Δ_i)`, `∂q_i = Σ_j ∂S_ij k_j/√dk`, `∂k_j = Σ_i ∂S_ij q_i/√dk`.
///
/// Flash-attention's backward: per block of 32 queries, one pass over the key blocks finds
/// each row's log-sum-exp and `Δ_i` online and a second gives ∂q; per block of 32 keys, one
/// pass over the query blocks gives ∂k and ∂v; the weights are recomputed 32×32 block by
/// block from the log-sum-exp. O(n·d) memory: the n×n matrix never exists.
pub fn softmax_backward(
    ctx: &Context,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    d_out: &Tensor,
    causal: bool,
) -> Result<AttentionGrads> {
    const OP: &str = "attention::softmax_backward";
    let _call = crate::call::Call::enter(OP);
    let dims = attention_args(ctx, OP, q, k, v)?;
    check_d_out(ctx, OP, q, v, d_out)?;
    let cpu = || {
        let g =
            reference::softmax_backward(q.host(), k.host(), v.host(), d_out.host(), dims, causal);
        Ok([g.q, g.k, g.v])
    };
    let [dq, dk, dv] = op::run(
        ctx,
        OP,
        [q.shape(), k.shape(), v.shape()],
        cpu,
        |gpu, grads| softmax_backward::run(gpu, dims, causal, [q, k, v, d_out], grads),
    )?;
    Ok(AttentionGrads {
        q: dq,
        k: dk,
        v: dv,
    })
}
