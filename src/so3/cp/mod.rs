//! The CP-decomposed tensor product of Tensor Decomposition Networks: the path-summed
//! Clebsch–Gordan tensor `M[i,j,k]` (the table of [`cg_product`](crate::so3::cg_product)) is
//! approximated by `Σ_r A_ir·B_jr·C_kr`, and the product of two coefficient rows becomes
//! `out_k = Σ_r C_kr·(Σ_i A_ir x1_i)·(Σ_j B_jr x2_j)`: two projections onto R components,
//! their element-wise product and a projection back — O(d·R) per row instead of the CG
//! product's sum over every nonzero coefficient. Approximately equivariant: its error is set
//! by the fit.
//!
//! On the device the three projections are [`linalg::matmul`](crate::linalg::matmul)s and the
//! product an element-wise step; a broadcast `[n, 1, ·]` x2 is spread over the channels by
//! [`graph::gather`](crate::graph::gather) (and its gradient summed back by `scatter_sum`).

use std::sync::Arc;

mod fit;

use fit::{fit_error, fit_factors, Fitted};

use crate::graph::{self, Index};
use crate::linalg::elementwise::{elementwise, Op};
use crate::linalg::matmul;
use crate::so3::degrees::{check_degree, dim};
use crate::so3::memo::Memo;
use crate::so3::products::{product_args, ProductGrads};
use crate::{op, Context, Error, Result, Tensor};

/// Rank-R CP factors of the path-summed CG tensor of `0..=l1max ⊗ 0..=l2max → 0..=lmax_out`:
/// `A [d1, R]`, `B [d2, R]`, `C [d3, R]` (row-major, f64).
#[derive(Clone, Debug)]
pub struct CpProduct {
    degrees: [usize; 3],
    rank: usize,
    factors: Arc<[Vec<f64>; 3]>,
    fit_error: f64,
}

fn check_degrees(op: &'static str, [l1, l2, lo]: [usize; 3], rank: usize) -> Result<()> {
    for (arg, l) in [("l1max", l1), ("l2max", l2), ("lmax_out", lo)] {
        check_degree(op, arg, l)?;
    }
    if rank == 0 {
        return Err(Error::InvalidArgument {
            op,
            arg: "rank",
            message: "must be at least 1".into(),
        });
    }
    // Both callers measure the fit against the dense target, d1·d2·d3 values in f64.
    op::reserve(op, "lmax_out", [l1, l2, lo].map(dim).iter().product())
}

impl CpProduct {
    /// The rank-`rank` CP decomposition of the path-summed CG tensor of
    /// `0..=l1max ⊗ 0..=l2max → 0..=lmax_out` by alternating least squares in f64 from a
    /// fixed-seed start: the same factors, bit for bit, on every call and machine. Fits are
    /// cached per (degrees, rank) for the process.
    pub fn fit(l1max: usize, l2max: usize, lmax_out: usize, rank: usize) -> Result<CpProduct> {
        static CACHE: Memo<([usize; 3], usize), Fitted> = Memo::new();
        const OP: &str = "so3::CpProduct::fit";
        let _call = crate::call::Call::enter(OP);
        let degrees = [l1max, l2max, lmax_out];
        check_degrees(OP, degrees, rank)?;
        // A fit holds, per mode, R×R Gram and Cholesky factors in f64.
        let squares = rank.checked_mul(rank).and_then(|r2| r2.checked_mul(3));
        op::reserve(OP, "rank", squares.unwrap_or(usize::MAX))?;
        let fitted = CACHE.get_or_build((degrees, rank), || fit_factors(degrees, rank));
        Ok(CpProduct {
            degrees,
            rank,
            factors: Arc::new(fitted.0.clone()),
            fit_error: fitted.1,
        })
    }

    /// Factors learned elsewhere: `a [d1, R]`, `b [d2, R]`, `c [d3, R]` row-major, d = (l+1)².
    pub fn from_factors(
        l1max: usize,
        l2max: usize,
        lmax_out: usize,
        a: &[f64],
        b: &[f64],
        c: &[f64],
        rank: usize,
    ) -> Result<CpProduct> {
        const OP: &str = "so3::CpProduct::from_factors";
        let _call = crate::call::Call::enter(OP);
        let degrees = [l1max, l2max, lmax_out];
        check_degrees(OP, degrees, rank)?;
        for ((arg, f), l) in [("a", a), ("b", b), ("c", c)].into_iter().zip(degrees) {
            let want = dim(l).checked_mul(rank);
            if Some(f.len()) != want {
                return Err(Error::Shape {
                    op: OP,
                    message: format!(
                        "`{arg}` has {} entries, [(l+1)², R] = [{}, {rank}] needs their product",
                        f.len(),
                        dim(l)
                    ),
                });
            }
        }
        let factors = [a.to_vec(), b.to_vec(), c.to_vec()];
        let fit_error = fit_error(degrees, &factors, rank);
        Ok(CpProduct {
            degrees,
            rank,
            factors: Arc::new(factors),
            fit_error,
        })
    }

    /// The factors `[A, B, C]`, `[d1, R]`, `[d2, R]`, `[d3, R]` row-major (f64), as
    /// [`from_factors`](Self::from_factors) takes them: to save a fit or to continue it.
    pub fn factors(&self) -> [&[f64]; 3] {
        let [a, b, c] = &*self.factors;
        [a, b, c]
    }

    /// The rank R.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// `‖M − Σ_r a_r⊗b_r⊗c_r‖_F / ‖M‖_F` of these factors.
    pub fn fit_error(&self) -> f64 {
        self.fit_error
    }

    /// Checks x1, x2 (and d_out) against the fit's degrees; returns `(n, c, broadcast)`.
    fn args(
        &self,
        ctx: &Context,
        op: &'static str,
        x1: &Tensor,
        x2: &Tensor,
    ) -> Result<(usize, usize, bool)> {
        let [l1, l2, lo] = self.degrees;
        let (n, c, g1, g2, broadcast) = product_args(ctx, op, x1, x2, lo)?;
        if [g1, g2] != [l1, l2] {
            return Err(Error::Shape {
                op,
                message: format!(
                    "`x1` {:?} and `x2` {:?} have degrees {g1} and {g2}; the fit is for {l1} ⊗ {l2} → {lo}",
                    x1.shape(),
                    x2.shape()
                ),
            });
        }
        Ok((n, c, broadcast))
    }

    /// The factors as `[d, R]` f32 tensors on `ctx`.
    fn tensors(&self, ctx: &Context) -> Result<[Tensor; 3]> {
        let f = &*self.factors;
        let t = |i: usize| {
            let data: Vec<f32> = f[i].iter().map(|&x| x as f32).collect();
            ctx.tensor(&data, &[dim(self.degrees[i]), self.rank])
        };
        Ok([t(0)?, t(1)?, t(2)?])
    }

    /// The projections `P1 = x1·A` (`[n·c, R]`) and `P2 = x2·B`, spread over the channels when
    /// x2 is broadcast; the index that spreads it.
    fn projections(
        &self,
        ctx: &Context,
        [x1, x2]: [&Tensor; 2],
        [a, b]: [&Tensor; 2],
        (n, c, broadcast): (usize, usize, bool),
    ) -> Result<(Tensor, Tensor, Option<Index>)> {
        let p1 = matmul(ctx, &x1.reshape(&[n * c, x1.shape()[2]])?, a, false, false)?;
        let rows2 = if broadcast { n } else { n * c };
        let p2 = matmul(ctx, &x2.reshape(&[rows2, x2.shape()[2]])?, b, false, false)?;
        if !broadcast {
            return Ok((p1, p2, None));
        }
        let spread: Vec<u32> = (0..n * c).map(|r| (r / c) as u32).collect();
        let index = Index::new(ctx, &spread, n)?;
        let p2 = graph::gather(ctx, &p2, &index)?;
        Ok((p1, p2, Some(index)))
    }

    /// `out_k = Σ_r C_kr·(Σ_i A_ir x1_i)·(Σ_j B_jr x2_j)` per (sample, channel): `x1 [n,c,d1]`,
    /// `x2 [n,c,d2]` or `[n,1,d2]` → `[n,c,d3]`, ≈ [`cg_product`](crate::so3::cg_product) to the
    /// fit's error.
    pub fn apply(&self, ctx: &Context, x1: &Tensor, x2: &Tensor) -> Result<Tensor> {
        let _call = crate::call::Call::enter("so3::CpProduct::apply");
        let shape = self.args(ctx, "so3::CpProduct::apply", x1, x2)?;
        let (n, c, _) = shape;
        let [a, b, cf] = self.tensors(ctx)?;
        let (p1, p2, _) = self.projections(ctx, [x1, x2], [&a, &b], shape)?;
        let rank = self.rank;
        let q = elementwise(ctx, Op::Mul, &p1, Some(&p2), [n * c, rank], &[n * c, rank])?;
        let d3 = dim(self.degrees[2]);
        matmul(ctx, &q, &cf, false, true)?.reshape(&[n, c, d3])
    }

    /// The gradients of [`apply`](Self::apply) for `d_out [n,c,d3]`: with `Q̄ = d_out·C`,
    /// `∂x1 = (Q̄ ⊙ P2)·Aᵀ`, `∂x2 = (Q̄ ⊙ P1)·Bᵀ` (summed over the channels for a broadcast x2).
    pub fn backward(
        &self,
        ctx: &Context,
        x1: &Tensor,
        x2: &Tensor,
        d_out: &Tensor,
    ) -> Result<ProductGrads> {
        const OP: &str = "so3::CpProduct::backward";
        let _call = crate::call::Call::enter(OP);
        let shape = self.args(ctx, OP, x1, x2)?;
        let (n, c, broadcast) = shape;
        let d3 = dim(self.degrees[2]);
        ctx.check_owns(OP, "d_out", d_out)?;
        if d_out.shape() != [n, c, d3] {
            return Err(Error::Shape {
                op: OP,
                message: format!(
                    "`d_out` {:?} must have the output's shape [{n}, {c}, {d3}]",
                    d_out.shape()
                ),
            });
        }
        let [a, b, cf] = self.tensors(ctx)?;
        let (p1, p2, spread) = self.projections(ctx, [x1, x2], [&a, &b], shape)?;
        let rank = self.rank;
        let dq = matmul(ctx, &d_out.reshape(&[n * c, d3])?, &cf, false, false)?;
        let mul = |x: &Tensor, y: &Tensor| {
            elementwise(ctx, Op::Mul, x, Some(y), [n * c, rank], &[n * c, rank])
        };
        let dx1 = matmul(ctx, &mul(&dq, &p2)?, &a, false, true)?.reshape(x1.shape())?;
        let mut dp2 = mul(&dq, &p1)?;
        if let Some(index) = spread {
            dp2 = graph::scatter_sum(ctx, &dp2, &index)?;
        }
        let dx2 = matmul(ctx, &dp2, &b, false, true)?.reshape(x2.shape())?;
        debug_assert!(broadcast || dx2.shape() == x2.shape());
        Ok(ProductGrads { x1: dx1, x2: dx2 })
    }
}
