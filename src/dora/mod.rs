//! DoRA (Scaling DoRA: High-Rank Adaptation via Factored Norms and Fused Kernels, 2026).
//!
//! A DoRA layer computes `y = g ⊙ (W + s·B·A)·x` with `g = m / ‖W + s·B·A‖_row`. The row
//! norm never stores the dense `[d_out, d_in]` product B·A ([`weight_norm`], and the paper's
//! factored form [`weight_norm_factored`]), and the compose
//! step is one pass free of cancellation ([`compose`]). The PEFT-style baselines
//! ([`weight_norm_dense`], [`compose_unfused`], [`forward_dense`]) are here for comparison.
//!
//! ```
//! use wgkernels::{dora, Context};
//! # fn main() -> wgkernels::Result<()> {
//! let ctx = Context::new()?;
//! let w = ctx.tensor(&[3.0, 0.0, 0.0, 4.0], &[2, 2])?; // [d_out, d_in]
//! let a = ctx.tensor(&[1.0, 1.0], &[1, 2])?;           // [r, d_in]
//! let b = ctx.tensor(&[0.0, 0.0], &[2, 1])?;           // [d_out, r]: B = 0 at init
//! let norm = dora::weight_norm(&ctx, &w, &a, &b, 2.0)?;
//! assert_eq!(norm.to_vec()?, vec![3.0, 4.0]);
//! # Ok(())
//! # }
//! ```

mod backward;
mod kernels;
pub mod peft;
pub mod reference;

#[cfg(feature = "burn")]
pub(crate) use backward::forward_saved_owning;
pub use backward::{backward, backward_dense, forward_saved, LayerGrads, NormGradient, Saved};

use crate::op::Gpu;
use crate::{linalg, op, Context, Error, Result, Tensor};

/// Dimensions of a LoRA adapter on a `[d_out, d_in]` weight: A is `[r, d_in]`, B `[d_out, r]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoraShape {
    /// Output features (rows of W).
    pub d_out: usize,
    /// Input features (columns of W).
    pub d_in: usize,
    /// Adapter rank.
    pub r: usize,
}

impl LoraShape {
    /// The shape of `w [d_out,d_in]`, `a [r,d_in]`, `b [d_out,r]`; `Err` naming the first
    /// argument that does not fit.
    pub(crate) fn of(op: &'static str, w: &[usize], a: &[usize], b: &[usize]) -> Result<LoraShape> {
        let &[d_out, d_in] = w else {
            return Err(shape_error(
                op,
                format!("`w` must be [d_out, d_in], got {w:?}"),
            ));
        };
        let &[r, a_in] = a else {
            return Err(shape_error(op, format!("`a` must be [r, d_in], got {a:?}")));
        };
        if a_in != d_in {
            return Err(shape_error(
                op,
                format!("`a` {a:?} must have d_in = {d_in} columns like `w` {w:?}"),
            ));
        }
        if b != [d_out, r] {
            return Err(shape_error(
                op,
                format!("`b` must be [d_out, r] = [{d_out}, {r}] for `w` {w:?} and `a` {a:?}, got {b:?}"),
            ));
        }
        Ok(LoraShape { d_out, d_in, r })
    }
}

fn shape_error(op: &'static str, message: String) -> Error {
    Error::Shape { op, message }
}

fn check_scale(op: &'static str, scale: f32) -> Result<()> {
    if scale.is_finite() {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            op,
            arg: "scale",
            message: format!("must be finite, got {scale}"),
        })
    }
}

fn check_context(ctx: &Context, op: &'static str, args: &[(&'static str, &Tensor)]) -> Result<()> {
    args.iter()
        .try_for_each(|(name, t)| ctx.check_owns(op, name, t))
}

fn lora_args(
    ctx: &Context,
    op: &'static str,
    w: &Tensor,
    a: &Tensor,
    b: &Tensor,
    scale: f32,
) -> Result<LoraShape> {
    check_context(ctx, op, &[("w", w), ("a", a), ("b", b)])?;
    check_scale(op, scale)?;
    LoraShape::of(op, w.shape(), a.shape(), b.shape())
}

/// Row norms of `W + s·B·A` without storing B·A: `norm_j = ‖W_j + s·(B·A)_j‖₂`. Returns
/// `[d_out]`.
///
/// On the GPU, one pass over W: the tiled GEMM forms B·A a 64×64 tile at a time in
/// registers, adds W's tile and sums its squares there (`d_out·d_in·r` FMAs, the dense
/// route's, and its accuracy: no cancellation). Transient memory is `d_out·⌈d_in/64⌉` partial
/// sums, whatever r is; [`weight_norm_dense`] holds all of B·A. Where A is larger than one
/// storage binding the norm is [`weight_norm_factored`]'s. `s = 0` gives `‖W_j‖` without
/// reading A or B.
pub fn weight_norm(
    ctx: &Context,
    w: &Tensor,
    a: &Tensor,
    b: &Tensor,
    scale: f32,
) -> Result<Tensor> {
    let _call = crate::call::Call::enter("dora::weight_norm");
    run_weight_norm(
        ctx,
        "dora::weight_norm",
        [w, a, b],
        scale,
        // The definition; s = 0 is ‖W_j‖ with A and B unread, as on the GPU (which then
        // walks no k) and in the factored form, so a non-finite adapter does not reach it.
        |w, a, b, shape, s| {
            if s == 0.0 {
                reference::weight_norm(w, a, b, shape, s)
            } else {
                reference::weight_norm_dense(w, a, b, shape, s)
            }
        },
        |gpu, shape, scale, factors, norm| norm_into(gpu, shape, scale, factors, norm).map(drop),
    )
}

/// [`weight_norm`]'s GPU path into `norm`: fused where A fits one binding, else factored, in
/// which case it returns the factored norm's `[U, B·G]` for the exact backward to reuse.
fn norm_into(
    gpu: &Gpu<'_>,
    shape: LoraShape,
    scale: f32,
    [w, a, b]: [&Tensor; 3],
    norm: &Tensor,
) -> Result<Option<[Tensor; 2]>> {
    if fused_norm(gpu, shape, scale, [w, a, b], norm)? {
        return Ok(None);
    }
    factored_norm(gpu, shape, scale, [w, a, b], norm)
}

/// The paper's factored norm, from quantities of size `d_out·r` and `r²`:
/// `norm_j = √max(0, ‖W_j‖² + 2s·B_j·U_j + s²·B_j G B_jᵀ)`, `U = W·Aᵀ`, `G = A·Aᵀ`.
///
/// `U` and `‖W_j‖²` come from one GEMM pass over W, then G, B·G and one pass over the rows.
/// It costs `r²·(d_in + d_out)` FMAs more than [`weight_norm`], but leaves U, which
/// [`NormGradient::Exact`]'s backward needs: it reuses U and B·G where [`weight_norm`] fell
/// back to this form, and otherwise forms U itself. Transient memory is U, G and B·G:
/// O(d_out·r + r²). `s = 0` skips the low-rank terms. Returns `[d_out]`.
///
/// Accuracy: in f32 the error of `norm_j²` is relative to `‖ |W_j| + |s|·|B_j|·|A| ‖²`, the
/// size of the terms summed, not to `norm_j²`: where `W_j + s·(B·A)_j` nearly cancels, the
/// factored form loses digits that [`weight_norm`] keeps.
pub fn weight_norm_factored(
    ctx: &Context,
    w: &Tensor,
    a: &Tensor,
    b: &Tensor,
    scale: f32,
) -> Result<Tensor> {
    let _call = crate::call::Call::enter("dora::weight_norm_factored");
    run_weight_norm(
        ctx,
        "dora::weight_norm_factored",
        [w, a, b],
        scale,
        reference::weight_norm,
        |gpu, shape, scale, factors, norm| {
            factored_norm(gpu, shape, scale, factors, norm).map(drop)
        },
    )
}

/// [`weight_norm`]'s GPU path where A fits one binding (every real adapter):
/// `norm_j² = Σ_i (W_ji + s·(B·A)_ji)²` with B·A formed a tile at a time in registers.
/// `Ok(false)`, nothing done, otherwise.
fn fused_norm(
    gpu: &Gpu<'_>,
    shape: LoraShape,
    scale: f32,
    [w, a, b]: [&Tensor; 3],
    norm: &Tensor,
) -> Result<bool> {
    const OP: &str = "dora::weight_norm";
    let _call = crate::call::Call::enter(OP);
    let product = linalg::Gemm::of(OP, b.shape(), a.shape(), false, false)?; // B·A
    let squares = gpu.output(&[shape.d_out])?;
    if !linalg::shifted_row_squares(gpu, product, scale, [w, b, a], &squares)? {
        return Ok(false);
    }
    kernels::weight_norm(gpu, shape, scale, [&squares, b], None, norm)?;
    Ok(true)
}

/// [`weight_norm_factored`]'s GPU path into `norm`; returns `[U, B·G]` (`None` when s = 0),
/// which the exact backward reuses.
fn factored_norm(
    gpu: &Gpu<'_>,
    shape: LoraShape,
    scale: f32,
    [w, a, b]: [&Tensor; 3],
    norm: &Tensor,
) -> Result<Option<[Tensor; 2]>> {
    let ctx = gpu.ctx;
    // One pass over W for both U = W·Aᵀ ([d_out, r]) and ‖W_j‖² ([d_out]). With s = 0 only
    // the squares are used.
    let [u, w_squares] = linalg::matmul_row_squares(ctx, w, a, false, true)?;
    let low_rank = low_rank_terms(ctx, u, [a, b], scale)?;
    let terms = low_rank.as_ref().map(|[u, bg]| [u, bg]);
    kernels::weight_norm(gpu, shape, scale, [&w_squares, b], terms, norm)?;
    Ok(low_rank)
}

/// The factored norm's `[U, B·G]` from `U = W·Aᵀ`: `G = A·Aᵀ` and B·G by GEMM. `None` when
/// s = 0, where the norm has no low-rank terms.
fn low_rank_terms(
    ctx: &Context,
    u: Tensor,
    [a, b]: [&Tensor; 2],
    scale: f32,
) -> Result<Option<[Tensor; 2]>> {
    if scale == 0.0 {
        return Ok(None);
    }
    let g = linalg::matmul(ctx, a, a, false, true)?; // [r, r]
    let bg = linalg::matmul(ctx, b, &g, false, false)?; // [d_out, r]
    Ok(Some([u, bg]))
}

/// The baseline that materialises `B·A` (`[d_out, d_in]`) as Hugging Face PEFT does, then
/// takes `norm_j = ‖W_j + s·(B·A)_j‖₂`. Returns `[d_out]`.
pub fn weight_norm_dense(
    ctx: &Context,
    w: &Tensor,
    a: &Tensor,
    b: &Tensor,
    scale: f32,
) -> Result<Tensor> {
    let _call = crate::call::Call::enter("dora::weight_norm_dense");
    run_weight_norm(
        ctx,
        "dora::weight_norm_dense",
        [w, a, b],
        scale,
        reference::weight_norm_dense,
        |gpu, shape, scale, [w, a, b], norm| {
            let ba = linalg::matmul(gpu.ctx, b, a, false, false)?; // [d_out, d_in]
            kernels::dense_norm(gpu, shape, scale, w, &ba, norm)
        },
    )
}

/// The f64 reference of one of the weight norms.
type NormReference = fn(&[f32], &[f32], &[f32], LoraShape, f64) -> Vec<f64>;
/// The GPU path of one of the weight norms, writing `[d_out]` into its last argument.
type NormKernel = fn(&Gpu<'_>, LoraShape, f32, [&Tensor; 3], &Tensor) -> Result<()>;

/// What the three weight norms share: the checks, the CPU path from `reference`, the GPU
/// path from `kernel`.
fn run_weight_norm(
    ctx: &Context,
    op: &'static str,
    [w, a, b]: [&Tensor; 3],
    scale: f32,
    reference: NormReference,
    kernel: NormKernel,
) -> Result<Tensor> {
    let shape = lora_args(ctx, op, w, a, b, scale)?;
    let cpu = || Ok([reference(w.host(), a.host(), b.host(), shape, scale as f64)]);
    let [norm] = op::run(ctx, op, [&[shape.d_out]], cpu, |gpu, [norm]| {
        kernel(gpu, shape, scale, [w, a, b], norm)
    })?;
    Ok(norm)
}

/// Checks the compose arguments; returns `(n, d_out)`.
fn compose_args(
    ctx: &Context,
    op: &'static str,
    base: &Tensor,
    lora: &Tensor,
    magnitude: &Tensor,
    norm: &Tensor,
    scale: f32,
) -> Result<(usize, usize)> {
    check_context(
        ctx,
        op,
        &[
            ("base", base),
            ("lora", lora),
            ("magnitude", magnitude),
            ("norm", norm),
        ],
    )?;
    check_scale(op, scale)?;
    let &[n, d_out] = base.shape() else {
        return Err(shape_error(
            op,
            format!("`base` must be [n, d_out], got {:?}", base.shape()),
        ));
    };
    if lora.shape() != base.shape() {
        return Err(shape_error(
            op,
            format!(
                "`lora` {:?} must have the shape of `base` {:?}",
                lora.shape(),
                base.shape()
            ),
        ));
    }
    for (name, t) in [("magnitude", magnitude), ("norm", norm)] {
        if t.shape() != [d_out] {
            return Err(shape_error(
                op,
                format!(
                    "`{name}` must be [d_out] = [{d_out}] for `base` {:?}, got {:?}",
                    base.shape(),
                    t.shape()
                ),
            ));
        }
    }
    Ok((n, d_out))
}

/// The fused DoRA compose, one pass:
/// `y = base + (g−1)⊙base + g⊙(s·lora)`, `g = magnitude / max(norm, 1e-12)` broadcast over rows,
/// evaluated in that order in f32 — never as `g⊙(base + s·lora) − base`, which cancels when
/// g ≈ 1. `base`, `lora`: `[n, d_out]`; `magnitude`, `norm`: `[d_out]`.
pub fn compose(
    ctx: &Context,
    base: &Tensor,
    lora: &Tensor,
    magnitude: &Tensor,
    norm: &Tensor,
    scale: f32,
) -> Result<Tensor> {
    const OP: &str = "dora::compose";
    let _call = crate::call::Call::enter(OP);
    let (n, d_out) = compose_args(ctx, OP, base, lora, magnitude, norm, scale)?;
    let cpu = || {
        let (m, s) = (magnitude.host(), scale as f64);
        Ok([reference::compose(
            base.host(),
            lora.host(),
            m,
            norm.host(),
            s,
        )])
    };
    let [y] = op::run(ctx, OP, [&[n, d_out]], cpu, |gpu, [y]| {
        let inputs = [base, lora, magnitude, norm];
        kernels::compose(gpu, [n, d_out], scale, inputs, y)
    })?;
    Ok(y)
}

/// The same function as the sequence of separate element-wise kernels that PEFT's formula
/// implies (`g = m/norm`, `s·lora`, `g−1`, `(g−1)⊙base`, `g⊙(s·lora)`, two sums): the
/// baseline [`compose`] is measured against. Like PEFT, it does not guard `norm = 0`.
pub fn compose_unfused(
    ctx: &Context,
    base: &Tensor,
    lora: &Tensor,
    magnitude: &Tensor,
    norm: &Tensor,
    scale: f32,
) -> Result<Tensor> {
    let _call = crate::call::Call::enter("dora::compose_unfused");
    let (n, d_out) = compose_args(
        ctx,
        "dora::compose_unfused",
        base,
        lora,
        magnitude,
        norm,
        scale,
    )?;
    // The CPU path has one f64 formula for both; the unfused steps exist only on the GPU.
    op::choose(
        ctx,
        || compose(ctx, base, lora, magnitude, norm, scale),
        |gpu| kernels::compose_unfused(gpu, [n, d_out], scale, [base, lora, magnitude, norm]),
    )
}

/// Gradients of the compose (see [`compose_backward`]).
#[derive(Debug)]
pub struct ComposeGrads {
    /// `∂L/∂base = dy + (g−1)⊙dy`, `[n, d_out]`.
    pub base: Tensor,
    /// `∂L/∂lora = g⊙s·dy`, `[n, d_out]`.
    pub lora: Tensor,
    /// `∂L/∂m_j = Σ_n dy·(base + s·lora) / max(norm_j, 1e-12)`, `[d_out]`.
    pub magnitude: Tensor,
}

/// Backward of [`compose`] with the norm held constant (detached, as DoRA does), fused: one
/// pass over `dy`, `base` and `lora` writes both element-wise gradients and per-chunk column
/// sums, and a small second kernel finishes the magnitude gradient.
pub fn compose_backward(
    ctx: &Context,
    dy: &Tensor,
    base: &Tensor,
    lora: &Tensor,
    magnitude: &Tensor,
    norm: &Tensor,
    scale: f32,
) -> Result<ComposeGrads> {
    const OP: &str = "dora::compose_backward";
    let _call = crate::call::Call::enter(OP);
    let (n, d_out) = compose_args(ctx, OP, base, lora, magnitude, norm, scale)?;
    ctx.check_owns(OP, "dy", dy)?;
    if dy.shape() != base.shape() {
        return Err(shape_error(
            OP,
            format!(
                "`dy` {:?} must have the shape of `base` {:?}",
                dy.shape(),
                base.shape()
            ),
        ));
    }
    let cpu = || {
        let (db, dl, dm) = reference::compose_backward(
            dy.host(),
            base.host(),
            lora.host(),
            magnitude.host(),
            norm.host(),
            scale as f64,
        );
        Ok([db, dl, dm])
    };
    let [base, lora, magnitude] = op::run(
        ctx,
        OP,
        [&[n, d_out], &[n, d_out], &[d_out]],
        cpu,
        |gpu, grads| {
            let inputs = [dy, base, lora, magnitude, norm];
            kernels::compose_backward(gpu, [n, d_out], scale, inputs, grads)
        },
    )?;
    Ok(ComposeGrads {
        base,
        lora,
        magnitude,
    })
}

/// The DoRA layer, all on the device: `base = x·Wᵀ`, `lora = (x·Aᵀ)·Bᵀ`,
/// `norm = weight_norm(W, A, B, s)`, then [`compose`]. `x`: `[n, d_in]`; returns `[n, d_out]`.
pub fn forward(
    ctx: &Context,
    x: &Tensor,
    w: &Tensor,
    a: &Tensor,
    b: &Tensor,
    magnitude: &Tensor,
    scale: f32,
) -> Result<Tensor> {
    let _call = crate::call::Call::enter("dora::forward");
    forward_with(
        ctx,
        "dora::forward",
        x,
        w,
        a,
        b,
        magnitude,
        scale,
        weight_norm,
        compose,
    )
}

/// [`forward`] the PEFT way, for comparison: [`weight_norm_dense`] and [`compose_unfused`].
pub fn forward_dense(
    ctx: &Context,
    x: &Tensor,
    w: &Tensor,
    a: &Tensor,
    b: &Tensor,
    magnitude: &Tensor,
    scale: f32,
) -> Result<Tensor> {
    let _call = crate::call::Call::enter("dora::forward_dense");
    forward_with(
        ctx,
        "dora::forward_dense",
        x,
        w,
        a,
        b,
        magnitude,
        scale,
        weight_norm_dense,
        compose_unfused,
    )
}

/// Checks the layer's `[x, w, a, b, magnitude]`; returns the adapter's shape.
fn layer_args(
    ctx: &Context,
    op: &'static str,
    [x, w, a, b, magnitude]: [&Tensor; 5],
    scale: f32,
) -> Result<LoraShape> {
    let shape = lora_args(ctx, op, w, a, b, scale)?;
    check_context(ctx, op, &[("x", x), ("magnitude", magnitude)])?;
    match x.shape() {
        &[_, d_in] if d_in == shape.d_in => {}
        other => {
            return Err(shape_error(
                op,
                format!(
                    "`x` must be [n, d_in] with d_in = {} like `w` {:?}, got {other:?}",
                    shape.d_in,
                    w.shape()
                ),
            ))
        }
    }
    if magnitude.shape() != [shape.d_out] {
        return Err(shape_error(
            op,
            format!(
                "`magnitude` must be [d_out] = [{}], got {:?}",
                shape.d_out,
                magnitude.shape()
            ),
        ));
    }
    Ok(shape)
}

type NormFn = fn(&Context, &Tensor, &Tensor, &Tensor, f32) -> Result<Tensor>;
type ComposeFn = fn(&Context, &Tensor, &Tensor, &Tensor, &Tensor, f32) -> Result<Tensor>;

#[allow(clippy::too_many_arguments)]
fn forward_with(
    ctx: &Context,
    op: &'static str,
    x: &Tensor,
    w: &Tensor,
    a: &Tensor,
    b: &Tensor,
    magnitude: &Tensor,
    scale: f32,
    norm_fn: NormFn,
    compose_fn: ComposeFn,
) -> Result<Tensor> {
    layer_args(ctx, op, [x, w, a, b, magnitude], scale)?;
    let [base, xa, lora] = layer_products(ctx, [x, w, a, b])?;
    drop(xa);
    let norm = norm_fn(ctx, w, a, b, scale)?;
    compose_fn(ctx, &base, &lora, magnitude, &norm, scale)
}

/// The layer's products `[x·Wᵀ, x·Aᵀ, (x·Aᵀ)·Bᵀ]` (base, xa, lora), by GEMM: what the forward
/// composes and the backwards recompute.
fn layer_products(ctx: &Context, [x, w, a, b]: [&Tensor; 4]) -> Result<[Tensor; 3]> {
    let base = linalg::matmul(ctx, x, w, false, true)?; // [n, d_out]
    let xa = linalg::matmul(ctx, x, a, false, true)?; // [n, r]
    let lora = linalg::matmul(ctx, &xa, b, false, true)?; // [n, d_out]
    Ok([base, xa, lora])
}
