//! The DoRA layer's backward ([`backward`]): gradients of x, A, B and the magnitude with W
//! frozen, the norm detached (DoRA §4.3, PEFT) or differentiated ([`NormGradient`]).

use super::{compose_backward, kernels, layer_products, reference, LoraShape};
use crate::linalg::elementwise::{elementwise, Op};
use crate::{linalg, op, Context, Error, Result, Tensor};

/// How the backward treats the weight norm `‖W + s·B·A‖_row`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NormGradient {
    /// Held constant, as the DoRA paper (§4.3) and Hugging Face PEFT do: no gradient flows
    /// through the norm into A and B.
    Detached,
    /// Differentiated too, from the factored quantities `U = W·Aᵀ` and `G = A·Aᵀ`: the
    /// gradient of the layer as written.
    Exact,
}

/// Gradients of the DoRA layer (see [`backward`]); each has its input's shape.
#[derive(Debug)]
pub struct LayerGrads {
    /// `∂L/∂x`, `[n, d_in]`.
    pub x: Tensor,
    /// `∂L/∂A`, `[r, d_in]`.
    pub a: Tensor,
    /// `∂L/∂B`, `[d_out, r]`.
    pub b: Tensor,
    /// `∂L/∂m`, `[d_out]`.
    pub magnitude: Tensor,
}

/// Backward of [`forward`](super::forward) for an upstream gradient `dy [n, d_out]`, W frozen:
/// with `g = m / max(norm, 1e-12)` and `d_lora = s·g⊙dy`,
/// `∂m = Σ_n dy⊙(base + s·lora)/norm`, `∂x = (g⊙dy)·W + (d_lora·B)·A`,
/// `∂A = (d_lora·B)ᵀ·x`, `∂B = d_loraᵀ·(x·Aᵀ)`; [`NormGradient::Exact`] adds the path
/// through the norm, `∂B_j += κ_j·s·(U_j + s·B_j·G)/norm_j` and
/// `∂A += s·Σ_j κ_j·B_jᵀ(W_j + s·B_j·A)/norm_j` with
/// `κ_j = −(m_j/norm_j²)·Σ_n dy_nj·(base + s·lora)_nj` (0 on rows whose norm is clamped).
///
/// On the GPU the forward's base, `x·Aᵀ` and lora are recomputed by GEMM, the element-wise
/// part is the fused [`compose_backward`], and the Exact terms use `U`, `G` and
/// `(κ/norm)⊙B` (`[d_out, r]`, `[r, r]`): no `[d_out, d_in]` array besides W is ever held.
///
/// ```
/// use wgkernels::dora::{self, NormGradient};
/// use wgkernels::Context;
/// # fn main() -> wgkernels::Result<()> {
/// let ctx = Context::new()?;
/// let w = ctx.tensor(&[3.0, 0.0, 0.0, 4.0], &[2, 2])?;
/// let a = ctx.tensor(&[1.0, 1.0], &[1, 2])?;
/// let b = ctx.tensor(&[0.5, 0.0], &[2, 1])?;
/// let m = ctx.tensor(&[3.0, 4.0], &[2])?;
/// let x = ctx.tensor(&[1.0, 2.0], &[1, 2])?;
/// let dy = ctx.tensor(&[1.0, 1.0], &[1, 2])?;
/// let grads = dora::backward(&ctx, &x, &w, &a, &b, &m, 1.0, &dy, NormGradient::Exact)?;
/// assert_eq!(grads.a.shape(), &[1, 2]);
/// # Ok(())
/// # }
/// ```
#[allow(clippy::too_many_arguments)]
pub fn backward(
    ctx: &Context,
    x: &Tensor,
    w: &Tensor,
    a: &Tensor,
    b: &Tensor,
    magnitude: &Tensor,
    scale: f32,
    dy: &Tensor,
    norm: NormGradient,
) -> Result<LayerGrads> {
    const OP: &str = "dora::backward";
    let shape = super::layer_args(ctx, OP, [x, w, a, b, magnitude], scale)?;
    let LoraShape { d_out, d_in, r } = shape;
    let n = x.shape()[0];
    check_dy(ctx, OP, x, w, dy, [n, d_out])?;
    let exact = norm == NormGradient::Exact;
    let cpu = || {
        let wide = |(arg, t)| op::widen(OP, arg, t);
        let [x64, w64, a64, b64, m64, dy64] = [
            ("x", x),
            ("w", w),
            ("a", a),
            ("b", b),
            ("magnitude", magnitude),
            ("dy", dy),
        ]
        .map(wide);
        let [x64, w64, a64, b64, m64, dy64] = [x64?, w64?, a64?, b64?, m64?, dy64?];
        // The reference forms M = W + s·B·A, the size of `w`, beside its gradients.
        op::reserve(OP, "w", d_out * d_in)?;
        op::reserve(OP, "x", n * d_in)?;
        let g = reference::layer_backward(
            &x64,
            &w64,
            &a64,
            &b64,
            &m64,
            shape,
            scale as f64,
            &dy64,
            exact,
        );
        Ok(LayerGrads {
            x: ctx.host_result(g.x, &[n, d_in])?,
            a: ctx.host_result(g.a, &[r, d_in])?,
            b: ctx.host_result(g.b, &[d_out, r])?,
            magnitude: ctx.host_result(g.magnitude, &[d_out])?,
        })
    };
    op::choose(ctx, cpu, |gpu| {
        let [base, xa, lora] = layer_products(ctx, [x, w, a, b])?;
        let norm = gpu.output(&[d_out])?;
        let low_rank = super::factored_norm(gpu, shape, scale, [w, a, b], &norm)?;
        let low_rank = low_rank.filter(|_| exact); // U and B·G are freed now where unused
        let grads = compose_backward(ctx, dy, &base, &lora, magnitude, &norm, scale)?;
        drop((base, lora));
        let [dx, mut da, db] = input_gradients(ctx, [x, w, a, b], &xa, &grads.base, &grads.lora)?;
        let add = |p: &Tensor, q: &Tensor, alpha: f32, shape: [usize; 2]| {
            elementwise(ctx, Op::Axpby(1.0, alpha), p, Some(q), shape, &shape)
        };
        // The norm's own U = W·Aᵀ and B·G, reused (None when s = 0: nothing flows there).
        if let Some([u, bg]) = &low_rank {
            let bc = gpu.output(&[d_out, r])?;
            let per_row = [magnitude, &norm, &grads.magnitude];
            kernels::norm_gradient(gpu, shape, scale, per_row, [b, u, bg], &db, &bc)?;
            // ∂A += s·((κ/norm)⊙B)ᵀ·(W + s·B·A) = s·(bcᵀ·W + s·(bcᵀ·B)·A)
            let bc_w = linalg::matmul(ctx, &bc, w, true, false)?; // [r, d_in]
            let bc_b = linalg::matmul(ctx, &bc, b, true, false)?; // [r, r]
            let bc_ba = linalg::matmul(ctx, &bc_b, a, false, false)?; // [r, d_in]
            let through_norm = add(&bc_w, &bc_ba, scale, [r, d_in])?;
            da = add(&da, &through_norm, scale, [r, d_in])?;
        }
        Ok(LayerGrads {
            x: dx,
            a: da,
            b: db,
            magnitude: grads.magnitude,
        })
    })
}

/// The PEFT-style baseline [`backward`] is measured against: the norm detached and computed
/// by materialising `B·A` ([`weight_norm_dense`](super::weight_norm_dense)), the
/// element-wise part as separate kernels an eager autograd would run (`g = m/norm`,
/// `g⊙dy`, `s·(g⊙dy)`, `s·lora`, `base + s·lora`, `dy⊙(…)`, a column sum by GEMM, `/norm`),
/// then the same GEMMs. The same gradients as `backward(…, NormGradient::Detached)`.
#[allow(clippy::too_many_arguments)]
pub fn backward_dense(
    ctx: &Context,
    x: &Tensor,
    w: &Tensor,
    a: &Tensor,
    b: &Tensor,
    magnitude: &Tensor,
    scale: f32,
    dy: &Tensor,
) -> Result<LayerGrads> {
    const OP: &str = "dora::backward_dense";
    let shape = super::layer_args(ctx, OP, [x, w, a, b, magnitude], scale)?;
    let LoraShape { d_out, .. } = shape;
    let n = x.shape()[0];
    check_dy(ctx, OP, x, w, dy, [n, d_out])?;
    let cpu = || {
        backward(
            ctx,
            x,
            w,
            a,
            b,
            magnitude,
            scale,
            dy,
            NormGradient::Detached,
        )
    };
    op::choose(ctx, cpu, |_| {
        let (full, vector) = ([n, d_out], [1, d_out]);
        let step = |op, p: &Tensor, q: Option<&Tensor>, dims: [usize; 2]| {
            elementwise(ctx, op, p, q, dims, &dims)
        };
        let [base, xa, lora] = layer_products(ctx, [x, w, a, b])?;
        let norm = super::weight_norm_dense(ctx, w, a, b, scale)?.reshape(&vector)?;
        let g = step(Op::Div, &magnitude.reshape(&vector)?, Some(&norm), vector)?;
        let d_base = step(Op::MulRow, dy, Some(&g), full)?;
        let d_lora = step(Op::Scale(scale), &d_base, None, full)?;
        let scaled = step(Op::Scale(scale), &lora, None, full)?;
        let pre_gain = step(Op::Add, &base, Some(&scaled), full)?;
        let weighted = step(Op::Mul, dy, Some(&pre_gain), full)?;
        let ones = ctx.tensor(&vec![1.0; n], &[1, n])?;
        let column_sums = linalg::matmul(ctx, &ones, &weighted, false, false)?;
        let d_magnitude = step(Op::Div, &column_sums, Some(&norm), vector)?.reshape(&[d_out])?;
        let [dx, da, db] = input_gradients(ctx, [x, w, a, b], &xa, &d_base, &d_lora)?;
        Ok(LayerGrads {
            x: dx,
            a: da,
            b: db,
            magnitude: d_magnitude,
        })
    })
}

/// The GEMMs of the detached gradients from `d_base = g⊙dy` and `d_lora = s·g⊙dy`:
/// `[∂x = d_base·W + (d_lora·B)·A, ∂A = (d_lora·B)ᵀ·x, ∂B = d_loraᵀ·(x·Aᵀ)]`.
fn input_gradients(
    ctx: &Context,
    [x, w, a, b]: [&Tensor; 4],
    xa: &Tensor,
    d_base: &Tensor,
    d_lora: &Tensor,
) -> Result<[Tensor; 3]> {
    let lora_back = linalg::matmul(ctx, d_lora, b, false, false)?; // d_lora·B, [n, r]
    let dx = elementwise(
        ctx,
        Op::Add,
        &linalg::matmul(ctx, d_base, w, false, false)?,
        Some(&linalg::matmul(ctx, &lora_back, a, false, false)?),
        [x.shape()[0], x.shape()[1]],
        x.shape(),
    )?;
    let da = linalg::matmul(ctx, &lora_back, x, true, false)?; // [r, d_in]
    let db = linalg::matmul(ctx, d_lora, xa, true, false)?; // [d_out, r]
    Ok([dx, da, db])
}

/// `Err` unless `dy` is `[n, d_out]` on `ctx`.
fn check_dy(
    ctx: &Context,
    op: &'static str,
    x: &Tensor,
    w: &Tensor,
    dy: &Tensor,
    [n, d_out]: [usize; 2],
) -> Result<()> {
    ctx.check_owns(op, "dy", dy)?;
    if dy.shape() != [n, d_out] {
        return Err(Error::Shape {
            op,
            message: format!(
                "`dy` must be [n, d_out] = [{n}, {d_out}] for `x` {:?} and `w` {:?}, got {:?}",
                x.shape(),
                w.shape(),
                dy.shape()
            ),
        });
    }
    Ok(())
}
