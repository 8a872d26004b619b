//! Our operations as burn autodiff operations: burn's graph records them, and its backward
//! pass calls our backward kernels. A tensor on a device without autodiff takes the plain
//! path (views, our forward, the result handed to burn).

use std::sync::Arc;

use ::burn::backend::autodiff::checkpoint::base::Checkpointer;
use ::burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use ::burn::backend::autodiff::grads::Gradients;
use ::burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
type AutodiffTensor = ::burn::backend::tensor::FloatTensor<Autodiff<Wgpu>>;
use ::burn::backend::{Autodiff, Wgpu};
use ::burn::tensor::Tensor as BurnTensor;

use super::view::Fused;
use super::Bridge;
use crate::{Context, DType, Error, Result, Tensor};

/// What a forward keeps for its backward beyond its inputs (the DoRA layer's saved
/// products), taken by the one backward that uses it.
type Kept = Option<Box<dyn std::any::Any + Send>>;

/// The gradients towards each of `N` inputs from the inputs, the upstream gradient and what
/// the forward kept (`None` where an input gets none, such as a frozen weight).
type Gradient<const N: usize> =
    Arc<dyn Fn(&Context, &[Tensor; N], &Tensor, Kept) -> Result<[Option<Tensor>; N]> + Send + Sync>;

/// A node of burn's graph whose backward is ours.
#[derive(Clone)]
struct Ours<const N: usize> {
    bridge: Bridge,
    op: &'static str,
    gradient: Gradient<N>,
}

impl<const N: usize> std::fmt::Debug for Ours<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "wgkernels {} backward", self.op)
    }
}

/// The kept state in burn's graph: shared, because burn's state must be `Clone`; the
/// backward takes it.
#[derive(Clone)]
struct Keep(Arc<std::sync::Mutex<Kept>>);

impl std::fmt::Debug for Keep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "kept forward state")
    }
}

impl<const N: usize> Backward<Wgpu, N> for Ours<N> {
    /// The forward's inputs (fusion handles: no copy) and what it kept.
    type State = (Vec<Fused>, Keep);

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Wgpu>(&ops.node);
        let (inputs, keep) = ops.state;
        let kept = keep.0.lock().map(|mut k| k.take()).unwrap_or(None);
        let computed = self.bridge.run(|ctx| {
            let inputs = views(&self.bridge, inputs)?;
            let dy = self.bridge.view_fused(dy, DType::F32)?;
            let gradients = (self.gradient)(ctx, &inputs, &dy, kept)?;
            gradients
                .into_iter()
                .map(|g| g.map(|g| self.bridge.to_fused(g)).transpose())
                .collect::<Result<Vec<_>>>()
        });
        // burn's backward pass cannot return an error; every argument was checked by the
        // forward, so what fails here is the device itself.
        let computed =
            computed.unwrap_or_else(|e| panic!("{} inside burn's backward pass: {e}", self.op));
        for (parent, gradient) in ops.parents.iter().zip(computed) {
            if let (Some(parent), Some(gradient)) = (parent, gradient) {
                grads.register::<Wgpu>(parent.id, gradient);
            }
        }
    }
}

/// Our views of fusion primitives, as an array.
fn views<const N: usize>(bridge: &Bridge, inputs: Vec<Fused>) -> Result<[Tensor; N]> {
    let views = inputs
        .into_iter()
        .map(|p| {
            let dtype = match p.dtype {
                ::burn::tensor::DType::F16 => DType::F16,
                _ => DType::F32,
            };
            bridge.view_fused(p, dtype)
        })
        .collect::<Result<Vec<_>>>()?;
    views
        .try_into()
        .map_err(|_| Error::gpu("one view per input"))
}

/// An input of a differentiable operation: a burn float tensor of any rank.
pub(super) trait Input {
    /// Our view of it.
    fn view_on(&self, bridge: &Bridge) -> Result<Tensor>;
    /// Its autodiff primitive, or `None` on a device without autodiff.
    fn tracked(&self) -> Option<AutodiffTensor>;
}

impl<const D: usize> Input for BurnTensor<D> {
    fn view_on(&self, bridge: &Bridge) -> Result<Tensor> {
        bridge.view(self.clone())
    }

    fn tracked(&self) -> Option<AutodiffTensor> {
        if !self.device().is_autodiff() {
            return None;
        }
        self.clone().try_into_primitive::<Autodiff<Wgpu>>().ok()
    }
}

impl Bridge {
    /// Runs `forward` on views of `inputs` (burn tensors of rank `D`, all on this bridge's
    /// device) and, on an autodiff device, records a node whose backward is `gradient`.
    pub(super) fn differentiable<const N: usize, const E: usize>(
        &self,
        op: &'static str,
        inputs: [&dyn Input; N],
        forward: impl FnOnce(&Context, &[Tensor; N]) -> Result<Tensor>,
        gradient: impl Fn(&Context, &[Tensor; N], &Tensor) -> Result<[Option<Tensor>; N]>
            + Send
            + Sync
            + 'static,
    ) -> Result<BurnTensor<E>> {
        self.differentiable_keeping(
            op,
            inputs,
            |ctx, views| Ok((forward(ctx, &views)?, None)),
            Arc::new(move |ctx, inputs, dy, _| gradient(ctx, inputs, dy)),
        )
    }

    /// [`Self::differentiable`] whose forward takes its views and also returns what its
    /// backward needs beyond the inputs (kept in burn's graph until the backward).
    pub(super) fn differentiable_keeping<const N: usize, const E: usize>(
        &self,
        op: &'static str,
        inputs: [&dyn Input; N],
        forward: impl FnOnce(&Context, [Tensor; N]) -> Result<(Tensor, Kept)>,
        gradient: Gradient<N>,
    ) -> Result<BurnTensor<E>> {
        let _call = crate::call::Call::enter(op);
        let views = inputs
            .iter()
            .map(|t| t.view_on(self))
            .collect::<Result<Vec<_>>>()?;
        let views: [Tensor; N] = views
            .try_into()
            .map_err(|_| Error::gpu("one view per input"))?;
        let (out, kept) = self.run(|ctx| forward(ctx, views))?;
        let tracked: Option<Vec<AutodiffTensor>> = inputs.iter().map(|t| t.tracked()).collect();
        let Some(tracked) = tracked else {
            return self.to_burn(out);
        };
        let out = self.to_fused(out)?;
        let nodes: [_; N] = std::array::from_fn(|i| tracked[i].node());
        let state: Vec<Fused> = tracked.iter().map(|t| t.primitive().clone()).collect();
        let node = Ours {
            bridge: self.clone(),
            op,
            gradient,
        };
        let out = match node
            .prepare::<NoCheckpointing>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                prep.finish((state, Keep(Arc::new(std::sync::Mutex::new(kept)))), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(out),
        };
        Ok(BurnTensor::<E>::from_primitive::<Autodiff<Wgpu>>(out))
    }

    /// `a·b` (with `a` or `b` transposed when asked) as a burn operation, our GEMM forward
    /// and backward: `∂a = dy·bᵀ`, `∂b = aᵀ·dy` (for the untransposed case).
    pub fn matmul(
        &self,
        a: &BurnTensor<2>,
        b: &BurnTensor<2>,
        transpose_a: bool,
        transpose_b: bool,
    ) -> Result<BurnTensor<2>> {
        use crate::linalg::matmul;
        self.differentiable::<2, 2>(
            "burn::Bridge::matmul",
            [a, b],
            |ctx, [a, b]| matmul(ctx, a, b, transpose_a, transpose_b),
            move |ctx, [a, b], dy| {
                // C = op(a)·op(b): ∂op(a) = dy·op(b)ᵀ, ∂op(b) = op(a)ᵀ·dy.
                let da = if transpose_a {
                    matmul(ctx, b, dy, transpose_b, true)?
                } else {
                    matmul(ctx, dy, b, false, !transpose_b)?
                };
                let db = if transpose_b {
                    matmul(ctx, dy, a, true, transpose_a)?
                } else {
                    matmul(ctx, a, dy, !transpose_a, false)?
                };
                Ok([Some(da), Some(db)])
            },
        )
    }

    /// The DoRA layer `y = m/‖W + s·B·A‖_row ⊙ (x·Wᵀ + s·(x·Aᵀ)·Bᵀ)` as a burn operation,
    /// our [`dora::forward_saved`](crate::dora::forward_saved) and its
    /// [`Saved::backward`](crate::dora::Saved::backward) (the norm detached, as PEFT, or
    /// exact): gradients towards `x`, `a`, `b` and
    /// `magnitude`; `w` is frozen (an `Err` if it requires a gradient). `x [n, d_in]`,
    /// `w [d_out, d_in]`, `a [r, d_in]`, `b [d_out, r]`, `magnitude [d_out]`.
    #[allow(clippy::too_many_arguments)]
    pub fn dora_linear(
        &self,
        x: &BurnTensor<2>,
        w: &BurnTensor<2>,
        a: &BurnTensor<2>,
        b: &BurnTensor<2>,
        magnitude: &BurnTensor<1>,
        scale: f32,
        norm: crate::dora::NormGradient,
    ) -> Result<BurnTensor<2>> {
        use crate::dora;
        const OP: &str = "burn::Bridge::dora_linear";
        if w.tracked().is_some_and(|w| w.is_tracked()) {
            return Err(Error::InvalidArgument {
                op: OP,
                arg: "w",
                message: "requires a gradient; DoRA's base weight is frozen".into(),
            });
        }
        // The saved forward (its inputs and x·Wᵀ, x·Aᵀ, lora, the norm) is the checkpointed
        // state, as an autograd framework keeps activations: the backward recomputes no GEMM.
        self.differentiable_keeping::<5, 2>(
            OP,
            [x, w, a, b, magnitude],
            move |ctx, inputs| {
                let (y, saved) = dora::forward_saved_owning(ctx, OP, inputs, scale)?;
                Ok((y, Some(Box::new(saved) as Box<dyn std::any::Any + Send>)))
            },
            Arc::new(move |_, _, dy, kept| {
                let mut saved = kept
                    .and_then(|k| k.downcast::<dora::Saved<'static>>().ok())
                    .ok_or_else(|| Error::gpu("dora_linear: its saved forward is missing"))?;
                let g = saved.backward(dy, norm)?;
                Ok([Some(g.x), None, Some(g.a), Some(g.b), Some(g.magnitude)])
            }),
        )
    }
}
