//! Our SO(3), graph and attention operations as burn autodiff operations: each forward and
//! backward is the library's own (see the family modules for the mathematics).

use ::burn::tensor::Tensor as BurnTensor;

use super::Bridge;
use crate::attention::{self, FeatureMap};
use crate::so3::{self, CpProduct, GauntMethod};
use crate::{graph, Result};

impl Bridge {
    /// Real spherical harmonics `[n, 3] → [n, (lmax+1)²]` ([`so3::spherical_harmonics`]),
    /// differentiable in the vectors.
    pub fn spherical_harmonics(
        &self,
        vectors: &BurnTensor<2>,
        lmax: usize,
    ) -> Result<BurnTensor<2>> {
        self.differentiable::<1, 2>(
            "burn::Bridge::spherical_harmonics",
            [vectors],
            move |ctx, [v]| so3::spherical_harmonics(ctx, v, lmax),
            move |ctx, [v], dy| Ok([Some(so3::spherical_harmonics_backward(ctx, v, lmax, dy)?)]),
        )
    }

    /// The path-weighted Clebsch–Gordan product ([`so3::weighted_cg_product`]), differentiable
    /// in `x1`, `x2` and the weights.
    pub fn weighted_cg_product(
        &self,
        x1: &BurnTensor<3>,
        x2: &BurnTensor<3>,
        weights: &BurnTensor<3>,
        lmax_out: usize,
    ) -> Result<BurnTensor<3>> {
        self.differentiable::<3, 3>(
            "burn::Bridge::weighted_cg_product",
            [x1, x2, weights],
            move |ctx, [x1, x2, w]| so3::weighted_cg_product(ctx, x1, x2, w, lmax_out),
            move |ctx, [x1, x2, w], dy| {
                let g = so3::weighted_cg_product_backward(ctx, x1, x2, w, lmax_out, dy)?;
                Ok([Some(g.x1), Some(g.x2), Some(g.weights)])
            },
        )
    }

    /// The Gaunt product by any [`GauntMethod`] ([`so3::gaunt_product`]), differentiable in
    /// both inputs.
    pub fn gaunt_product(
        &self,
        x1: &BurnTensor<3>,
        x2: &BurnTensor<3>,
        lmax_out: usize,
        method: GauntMethod,
    ) -> Result<BurnTensor<3>> {
        self.differentiable::<2, 3>(
            "burn::Bridge::gaunt_product",
            [x1, x2],
            move |ctx, [x1, x2]| so3::gaunt_product(ctx, x1, x2, lmax_out, method),
            move |ctx, [x1, x2], dy| {
                let g = so3::gaunt_product_backward(ctx, x1, x2, lmax_out, method, dy)?;
                Ok([Some(g.x1), Some(g.x2)])
            },
        )
    }

    /// The CP-decomposed product ([`CpProduct::apply`]), differentiable in both inputs.
    pub fn cp_product(
        &self,
        product: &CpProduct,
        x1: &BurnTensor<3>,
        x2: &BurnTensor<3>,
    ) -> Result<BurnTensor<3>> {
        let (forward, backward) = (product.clone(), product.clone());
        self.differentiable::<2, 3>(
            "burn::Bridge::cp_product",
            [x1, x2],
            move |ctx, [x1, x2]| forward.apply(ctx, x1, x2),
            move |ctx, [x1, x2], dy| {
                let g = backward.backward(ctx, x1, x2, dy)?;
                Ok([Some(g.x1), Some(g.x2)])
            },
        )
    }

    /// The per-degree linear map ([`so3::linear`]), differentiable in `x` and `w`.
    pub fn so3_linear(&self, x: &BurnTensor<3>, w: &BurnTensor<3>) -> Result<BurnTensor<3>> {
        self.differentiable::<2, 3>(
            "burn::Bridge::so3_linear",
            [x, w],
            |ctx, [x, w]| so3::linear(ctx, x, w),
            |ctx, [x, w], dy| {
                let g = so3::linear_backward(ctx, x, w, dy)?;
                Ok([Some(g.x), Some(g.w)])
            },
        )
    }

    /// `table[index[e]]` ([`graph::gather`]); its backward is [`graph::scatter_sum`].
    pub fn gather<const D: usize>(
        &self,
        table: &BurnTensor<D>,
        index: &graph::Index,
    ) -> Result<BurnTensor<D>> {
        let (forward, backward) = (index.clone(), index.clone());
        self.differentiable::<1, D>(
            "burn::Bridge::gather",
            [table],
            move |ctx, [t]| graph::gather(ctx, t, &forward),
            move |ctx, [_], dy| Ok([Some(graph::scatter_sum(ctx, dy, &backward)?)]),
        )
    }

    /// `Σ_{e: index[e] = i} src[e]` ([`graph::scatter_sum`]); its backward is [`graph::gather`].
    pub fn scatter_sum<const D: usize>(
        &self,
        src: &BurnTensor<D>,
        index: &graph::Index,
    ) -> Result<BurnTensor<D>> {
        let (forward, backward) = (index.clone(), index.clone());
        self.differentiable::<1, D>(
            "burn::Bridge::scatter_sum",
            [src],
            move |ctx, [s]| graph::scatter_sum(ctx, s, &forward),
            move |ctx, [_], dy| Ok([Some(graph::gather(ctx, dy, &backward)?)]),
        )
    }

    /// Linear attention with either feature map, causal or not ([`attention::linear`]),
    /// differentiable in q, k and v.
    pub fn linear_attention(
        &self,
        q: &BurnTensor<4>,
        k: &BurnTensor<4>,
        v: &BurnTensor<4>,
        map: FeatureMap,
        causal: bool,
    ) -> Result<BurnTensor<4>> {
        self.differentiable::<3, 4>(
            "burn::Bridge::linear_attention",
            [q, k, v],
            move |ctx, [q, k, v]| attention::linear(ctx, q, k, v, map, causal),
            move |ctx, [q, k, v], dy| {
                let g = attention::linear_backward(ctx, q, k, v, dy, map, causal)?;
                Ok([Some(g.q), Some(g.k), Some(g.v)])
            },
        )
    }

    /// Exact softmax attention, causal or not ([`attention::softmax`]), differentiable in q, k
    /// and v.
    pub fn softmax_attention(
        &self,
        q: &BurnTensor<4>,
        k: &BurnTensor<4>,
        v: &BurnTensor<4>,
        causal: bool,
    ) -> Result<BurnTensor<4>> {
        self.differentiable::<3, 4>(
            "burn::Bridge::softmax_attention",
            [q, k, v],
            move |ctx, [q, k, v]| attention::softmax(ctx, q, k, v, causal),
            move |ctx, [q, k, v], dy| {
                let g = attention::softmax_backward(ctx, q, k, v, dy, causal)?;
                Ok([Some(g.q), Some(g.k), Some(g.v)])
            },
        )
    }
}
