//! A product of one route at fixed degrees, as its derivatives use it. The products are
//! bilinear in (x1, x2) and linear in the path weights, so each input's gradient is a product
//! of the same kind with the roles exchanged — `∂x1 = T₁(g, x2)`, `∂x2 = T₂(g, x1)` — and a
//! backward, or a double backward, is a few calls of [`Bilinear`].

use super::forward::{gaunt_transformed, GauntMethod};
use super::launch::ProductShape;
use super::reference;
use super::sparse::{self, PathWeights, Sparse};
use super::tables::{path_table, Coefficients, Grouping};
use crate::linalg::reduce::sum_middle;
use crate::so3::degrees::dim;
use crate::{op, Context, Result, Tensor};

/// How a product is computed: a sparse table (CG, or Gaunt `Direct`), or the Gaunt
/// product's Grid or Fourier route.
#[derive(Clone, Copy, Debug)]
pub(super) enum Route {
    Sparse(Coefficients),
    Transformed(GauntMethod),
}

impl Route {
    pub fn gaunt(method: GauntMethod) -> Route {
        match method {
            GauntMethod::Direct => Route::Sparse(Coefficients::Gaunt),
            _ => Route::Transformed(method),
        }
    }
}

/// `out[n, c, ·] = T(w; x1[n, c, ·], x2[n, c or 1, ·])` at degrees `[l1, l2, lmax_out]` for
/// `n` samples of `c` channels, weighted by path when `weights` are given (CG only).
pub(super) struct Bilinear<'a> {
    pub route: Route,
    pub degrees: [usize; 3],
    pub samples: [usize; 2],
    pub broadcast: bool,
    pub weights: Option<PathWeights<'a>>,
}

impl<'a> Bilinear<'a> {
    /// The same product weighted by `weights` instead.
    pub fn weighted_by<'b>(&self, weights: PathWeights<'b>) -> Bilinear<'b> {
        Bilinear {
            route: self.route,
            degrees: self.degrees,
            samples: self.samples,
            broadcast: self.broadcast,
            weights: Some(weights),
        }
    }

    /// `T(w; a, b)`: a as x1, b as x2, `[n, c, (lmax_out+1)²]`.
    pub fn forward(&self, ctx: &Context, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        self.apply(ctx, Grouping::Output, [a, b], self.broadcast, 2)
    }

    /// `∂x1 = T₁(w; g, b)` for the upstream `g` and b as x2, of x1's shape.
    pub fn grad_x1(&self, ctx: &Context, g: &Tensor, b: &Tensor) -> Result<Tensor> {
        self.apply(ctx, Grouping::X1, [g, b], self.broadcast, 0)
    }

    /// `∂x2 = T₂(w; g, a)` for the upstream `g` and a as x1, of x2's shape (summed over the
    /// channels where x2 is broadcast).
    pub fn grad_x2(&self, ctx: &Context, g: &Tensor, a: &Tensor) -> Result<Tensor> {
        let [n, c] = self.samples;
        let d2 = dim(self.degrees[1]);
        let per_channel = self.apply(ctx, Grouping::X2, [g, a], false, 1)?;
        match self.broadcast {
            true => sum_middle(ctx, &per_channel, [n, c, d2], &[n, 1, d2]),
            false => Ok(per_channel),
        }
    }

    /// `∂x1` and `∂x2` together.
    pub fn input_gradients(&self, ctx: &Context, [x1, x2, g]: [&Tensor; 3]) -> Result<[Tensor; 2]> {
        Ok([self.grad_x1(ctx, g, x2)?, self.grad_x2(ctx, g, x1)?])
    }

    /// One product of the table grouped by `grouping` (sparse), or its transformed
    /// equivalent: Gaunt coefficients are symmetric in their three indices, so every
    /// gradient of a Gaunt product is a Gaunt product projected to the degree it sums into.
    fn apply(
        &self,
        ctx: &Context,
        grouping: Grouping,
        [a, b]: [&Tensor; 2],
        broadcast: bool,
        into: usize,
    ) -> Result<Tensor> {
        let [n, c] = self.samples;
        let shape = [n, c, dim(self.degrees[into])];
        match self.route {
            Route::Sparse(kind) => {
                let sparse = Sparse {
                    kind,
                    degrees: self.degrees,
                    grouping,
                };
                sparse.run(ctx, [a, b], broadcast, self.weights.as_ref(), &shape)
            }
            Route::Transformed(method) => {
                let op = "so3::gaunt_product";
                gaunt_transformed(ctx, op, a, b, self.degrees[into], method)
            }
        }
    }

    /// The path weights' gradient `∂w[n,c,p] = Σ_{terms of p} C·x1[i1]·x2[i2]·g[i3]` (CG),
    /// summed over the samples for weights shared by them.
    pub fn weight_gradient(
        &self,
        ctx: &Context,
        op: &'static str,
        [x1, x2, g]: [&Tensor; 3],
    ) -> Result<Tensor> {
        let [l1, l2, lmax_out] = self.degrees;
        let [n, c] = self.samples;
        let table = path_table(l1, l2, lmax_out);
        let count = table.starts.len() - 1;
        let broadcast = self.broadcast;
        let cpu = || {
            let group = if broadcast { c } else { 1 };
            let (d1, d2, d3) = (x1.shape()[2], x2.shape()[2], g.shape()[2]);
            Ok([reference::path_gradient(
                &table,
                (&op::widen(op, "x1", x1)?, d1),
                (&op::widen(op, "x2", x2)?, d2, group),
                (&op::widen(op, "d_out", g)?, d3),
            )])
        };
        let [dw] = op::run(ctx, op, [&[n, c, count]], cpu, |gpu, [dw]| {
            let key = format!("cg/{l1}/{l2}/{lmax_out}");
            let shape = ProductShape {
                channels: c,
                broadcast,
                d3: count,
            };
            sparse::path_gradient(gpu, key, &table, [x1, x2, g], &shape, dw)
        })?;
        match self.weights.as_ref().is_some_and(|w| w.shared) {
            true => sum_middle(ctx, &dw, [1, n, c * count], &[1, c, count]),
            false => Ok(dw),
        }
    }
}
