//! One sparse product on either path: a coefficient table applied to two inputs (the forward,
//! or an input gradient with the table regrouped), weighted by path or not.

mod kernels;
mod unrolled;

pub(crate) use kernels::{path_gradient, PathWeights};

use super::launch::ProductShape;
use super::reference::{apply_weighted, Weights};
use super::tables::{grouped, Coefficients, Grouping};
use crate::{op, Context, Result, Tensor};

/// One sparse product of the table of `kind` for `degrees = [l1, l2, lmax_out]`, grouped by
/// `grouping`: the forward (`Output`) or one of its input gradients (see
/// [`ProductTable`](super::tables::ProductTable)), on either path.
pub(crate) struct Sparse {
    pub kind: Coefficients,
    pub degrees: [usize; 3],
    pub grouping: Grouping,
}

impl Sparse {
    /// `out = table(a, b)`, b broadcast over channels when `broadcast`, times the path
    /// weights when given.
    pub fn run(
        &self,
        ctx: &Context,
        [a, b]: [&Tensor; 2],
        broadcast: bool,
        weights: Option<&PathWeights<'_>>,
        shape: &[usize],
    ) -> Result<Tensor> {
        let [l1, l2, lmax_out] = self.degrees;
        let table = grouped(self.kind, l1, l2, lmax_out, self.grouping);
        let c = shape[1];
        let cpu = || {
            let group = if broadcast { c } else { 1 };
            let (da, db) = (a.shape()[2], b.shape()[2]);
            let data = weights
                .map(|w| op::widen("so3::product", "weights", w.tensor))
                .transpose()?;
            let w = weights.zip(data.as_ref()).map(|(w, data)| Weights {
                data,
                paths: w.paths,
                shared_channels: w.shared.then_some(c),
            });
            Ok([apply_weighted(
                &table,
                &op::widen("so3::product", "x1", a)?,
                da,
                &op::widen("so3::product", "x2", b)?,
                db,
                group,
                w.as_ref(),
            )])
        };
        let [y] = op::run(ctx, "so3::product", [shape], cpu, |gpu, [y]| {
            let key = format!("{:?}/{l1}/{l2}/{lmax_out}/{:?}", self.kind, self.grouping);
            let product_shape = ProductShape {
                channels: c,
                broadcast,
                d3: shape[2],
            };
            kernels::sparse_product(gpu, key, &table, [a, b], weights, &product_shape, y)
        })?;
        Ok(y)
    }
}
