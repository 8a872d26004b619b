//! The DoRA layer's backward ([`backward`]): gradients of x, A, B and the magnitude with W
//! frozen, the norm detached (DoRA §4.3, PEFT) or differentiated ([`NormGradient`]).

use super::{compose_backward, kernels, layer_products, reference, LoraShape};
use crate::linalg::elementwise::{elementwise, Op};
use crate::op::{Gpu, Resident};
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
    let _call = crate::call::Call::enter(OP);
    let shape = super::layer_args(ctx, OP, [x, w, a, b, magnitude], scale)?;
    let d_out = shape.d_out;
    let n = x.shape()[0];
    check_dy(ctx, OP, x, w, dy, [n, d_out])?;
    let layer = Layer {
        inputs: [x, w, a, b, magnitude].map(Input::Borrowed),
        shape,
        scale,
    };
    op::choose(
        ctx,
        || layer.backward_cpu(ctx, OP, dy, norm),
        |gpu| layer.backward_gpu(gpu, Products::new(gpu, &layer)?, dy, norm),
    )
}

/// What [`forward_saved`] kept for its backward: the layer's inputs (borrowed) and, on the
/// GPU path, the products the backward would otherwise recompute — `x·Wᵀ`, `x·Aᵀ`, lora
/// and the norm (`2·n·d_out + n·r + d_out` floats, the activations an autograd framework
/// saves); an exact backward forms the norm's `U = W·Aᵀ` and `B·G` itself. Used up by a
/// successful [`Saved::backward`].
pub struct Saved<'a> {
    ctx: Context,
    layer: Layer<'a>,
    /// `None` once a backward has used it.
    products: Option<Resident<(), Products>>,
}

/// [`forward`](super::forward), keeping what its backward needs: `(y, saved)`, then
/// `saved.backward(dy, mode)` gives [`backward`]'s gradients without recomputing the
/// forward's GEMMs and norm (on the CPU path the f64 reference recomputes everything, as
/// [`backward`] does). The inputs stay borrowed until then: update A, B and m after it.
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
/// let (y, mut saved) = dora::forward_saved(&ctx, &x, &w, &a, &b, &m, 1.0)?;
/// let dy = ctx.tensor(&[1.0, 1.0], &[1, 2])?;
/// let grads = saved.backward(&dy, NormGradient::Exact)?;
/// let again = dora::backward(&ctx, &x, &w, &a, &b, &m, 1.0, &dy, NormGradient::Exact)?;
/// assert_eq!(y.shape(), &[1, 2]);
/// assert_eq!(grads.a.to_vec()?, again.a.to_vec()?);
/// # Ok(())
/// # }
/// ```
pub fn forward_saved<'a>(
    ctx: &Context,
    x: &'a Tensor,
    w: &'a Tensor,
    a: &'a Tensor,
    b: &'a Tensor,
    magnitude: &'a Tensor,
    scale: f32,
) -> Result<(Tensor, Saved<'a>)> {
    const OP: &str = "dora::forward_saved";
    let _call = crate::call::Call::enter(OP);
    save(ctx, OP, [x, w, a, b, magnitude].map(Input::Borrowed), scale)
}

/// [`forward_saved`] owning its inputs, for a graph that keeps the saved state past the
/// caller's borrows (the burn operation).
#[cfg_attr(not(feature = "burn"), allow(dead_code))]
pub(crate) fn forward_saved_owning(
    ctx: &Context,
    op: &'static str,
    inputs: [Tensor; 5],
    scale: f32,
) -> Result<(Tensor, Saved<'static>)> {
    save(ctx, op, inputs.map(Input::Owned), scale)
}

fn save<'a>(
    ctx: &Context,
    op: &'static str,
    inputs: [Input<'a>; 5],
    scale: f32,
) -> Result<(Tensor, Saved<'a>)> {
    let [x, w, a, b, magnitude] = inputs.each_ref().map(|t| &**t);
    let shape = super::layer_args(ctx, op, [x, w, a, b, magnitude], scale)?;
    let layer = Layer {
        inputs,
        shape,
        scale,
    };
    let products = Resident::new(ctx, || Ok(()), |gpu| Products::new(gpu, &layer))?;
    let [x, w, a, b, magnitude] = layer.inputs();
    let y = products.with(
        ctx,
        |()| super::forward(ctx, x, w, a, b, magnitude, scale),
        |p, _| super::compose(ctx, &p.base, &p.lora, magnitude, &p.norm, scale),
    )?;
    let saved = Saved {
        ctx: ctx.clone(),
        layer,
        products: Some(products),
    };
    Ok((y, saved))
}

impl Saved<'_> {
    /// [`backward`] of the saved forward for `dy [n, d_out]`, reusing its products and
    /// freeing them as they are used: one backward per forward. A `dy` that is refused
    /// leaves the saved state as it was; a second backward is an `Err`.
    pub fn backward(&mut self, dy: &Tensor, norm: NormGradient) -> Result<LayerGrads> {
        const OP: &str = "dora::Saved::backward";
        let _call = crate::call::Call::enter(OP);
        let (ctx, layer) = (&self.ctx, &self.layer);
        let [x, w, ..] = layer.inputs();
        check_dy(ctx, OP, x, w, dy, [x.shape()[0], layer.shape.d_out])?;
        let products = self.products.take().ok_or(Error::InvalidArgument {
            op: OP,
            arg: "self",
            message: "was used by an earlier backward (one backward per forward_saved)".into(),
        })?;
        products.into_with(
            ctx,
            |()| layer.backward_cpu(ctx, OP, dy, norm),
            |p, gpu| layer.backward_gpu(gpu, p, dy, norm),
        )
    }
}

/// A checked DoRA layer: `[x, w, a, b, magnitude]`, its shape and scale.
struct Layer<'a> {
    inputs: [Input<'a>; 5],
    shape: LoraShape,
    scale: f32,
}

/// An input of a [`Layer`]: borrowed from the caller, or owned by a saved forward that
/// outlives the caller's borrows.
enum Input<'a> {
    Borrowed(&'a Tensor),
    Owned(Tensor),
}

impl std::ops::Deref for Input<'_> {
    type Target = Tensor;

    fn deref(&self) -> &Tensor {
        match self {
            Input::Borrowed(t) => t,
            Input::Owned(t) => t,
        }
    }
}

/// The forward's products the backward uses (see [`Saved`]).
struct Products {
    base: Tensor,
    xa: Tensor,
    lora: Tensor,
    norm: Tensor,
    /// `[U, B·G]` where the norm was factored (A larger than one binding), else `None`:
    /// the exact backward then forms them itself.
    low_rank: Option<[Tensor; 2]>,
}

impl Products {
    fn new(gpu: &Gpu<'_>, layer: &Layer<'_>) -> Result<Products> {
        let [x, w, a, b, _] = layer.inputs();
        let [base, xa, lora] = layer_products(gpu.ctx, [x, w, a, b])?;
        let norm = gpu.output(&[layer.shape.d_out])?;
        let low_rank = super::norm_into(gpu, layer.shape, layer.scale, [w, a, b], &norm)?;
        Ok(Products {
            base,
            xa,
            lora,
            norm,
            low_rank,
        })
    }
}

impl Layer<'_> {
    fn inputs(&self) -> [&Tensor; 5] {
        self.inputs.each_ref().map(|t| &**t)
    }

    /// The f64 reference of the layer's backward, rounded.
    fn backward_cpu(
        &self,
        ctx: &Context,
        op: &'static str,
        dy: &Tensor,
        norm: NormGradient,
    ) -> Result<LayerGrads> {
        let [x, w, a, b, magnitude] = self.inputs();
        let LoraShape { d_out, d_in, r } = self.shape;
        let n = x.shape()[0];
        let wide = |(arg, t)| op::widen(op, arg, t);
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
        op::reserve(op, "w", d_out * d_in)?;
        op::reserve(op, "x", n * d_in)?;
        let g = reference::layer_backward(
            &x64,
            &w64,
            &a64,
            &b64,
            &m64,
            self.shape,
            self.scale as f64,
            &dy64,
            norm == NormGradient::Exact,
        );
        Ok(LayerGrads {
            x: ctx.host_result(g.x, &[n, d_in])?,
            a: ctx.host_result(g.a, &[r, d_in])?,
            b: ctx.host_result(g.b, &[d_out, r])?,
            magnitude: ctx.host_result(g.magnitude, &[d_out])?,
        })
    }

    /// The GPU backward from the forward's products, each dropped once used.
    fn backward_gpu(
        &self,
        gpu: &Gpu<'_>,
        products: Products,
        dy: &Tensor,
        norm: NormGradient,
    ) -> Result<LayerGrads> {
        let ctx = gpu.ctx;
        let [x, w, a, b, magnitude] = self.inputs();
        let (shape, scale) = (self.shape, self.scale);
        let LoraShape { d_out, d_in, r } = shape;
        let Products {
            base,
            xa,
            lora,
            norm: row_norm,
            low_rank,
        } = products;
        // U and B·G are freed now where unused, and formed where the exact backward needs
        // them and the forward's fused norm did not leave them: U = W·Aᵀ is one skinny GEMM,
        // d_out·d_in·r FMAs against the step's 2·n·d_out·d_in.
        let low_rank = match (norm, low_rank) {
            (NormGradient::Detached, _) => None,
            (NormGradient::Exact, Some(terms)) => Some(terms),
            (NormGradient::Exact, None) if scale == 0.0 => None,
            (NormGradient::Exact, None) => {
                let u = linalg::matmul(ctx, w, a, false, true)?; // [d_out, r]
                super::low_rank_terms(ctx, u, [a, b], scale)?
            }
        };
        let grads = compose_backward(ctx, dy, &base, &lora, magnitude, &row_norm, scale)?;
        drop((base, lora));
        let [dx, mut da, db] = input_gradients(ctx, [x, w, a, b], &xa, &grads.base, &grads.lora)?;
        let add = |p: &Tensor, q: &Tensor, alpha: f32, shape: [usize; 2]| {
            elementwise(ctx, Op::Axpby(1.0, alpha), p, Some(q), shape, &shape)
        };
        // Through the norm, from U and B·G (None when s = 0: nothing flows there).
        if let Some([u, bg]) = &low_rank {
            let bc = gpu.output(&[d_out, r])?;
            let per_row = [magnitude, &row_norm, &grads.magnitude];
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
    }
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
    let _call = crate::call::Call::enter(OP);
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
