//! The CP-decomposed tensor product of Tensor Decomposition Networks: the path-summed
//! Clebsch–Gordan tensor `M[i,j,k]` (the table of [`cg_product`](super::cg_product)) is
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

use super::backward::ProductGrads;
use super::memo::Memo;
use super::products::{product_table, Coefficients};
use super::{product_args, reference, MAX_L};
use crate::graph::{self, Index};
use crate::linalg::elementwise::{elementwise, Op};
use crate::linalg::matmul;
use crate::{Context, Error, Result, Tensor};

/// Rank-R CP factors of the path-summed CG tensor of `0..=l1max ⊗ 0..=l2max → 0..=lmax_out`:
/// `A [d1, R]`, `B [d2, R]`, `C [d3, R]` (row-major, f64).
#[derive(Clone, Debug)]
pub struct CpProduct {
    degrees: [usize; 3],
    rank: usize,
    factors: Arc<[Vec<f64>; 3]>,
    fit_error: f64,
}

/// A fit: the factors `[A, B, C]` and their relative error.
type Fitted = ([Vec<f64>; 3], f64);

/// Most alternating-least-squares sweeps of a fit.
const SWEEPS: usize = 3000;

fn check_degrees(op: &'static str, [l1, l2, lo]: [usize; 3], rank: usize) -> Result<()> {
    for (arg, l) in [("l1max", l1), ("l2max", l2), ("lmax_out", lo)] {
        if l > MAX_L {
            return Err(Error::InvalidArgument {
                op,
                arg,
                message: format!("must be at most {MAX_L}, got {l}"),
            });
        }
    }
    if rank == 0 {
        return Err(Error::InvalidArgument {
            op,
            arg: "rank",
            message: "must be at least 1".into(),
        });
    }
    Ok(())
}

/// The nonzero entries `(i, j, k, M[i,j,k])` of the path-summed CG tensor.
fn entries([l1, l2, lo]: [usize; 3]) -> Vec<(usize, usize, usize, f64)> {
    let table = product_table(Coefficients::ClebschGordan, l1, l2, lo);
    let mut out = Vec::with_capacity(table.terms.len());
    for k in 0..table.starts.len() - 1 {
        for &(i, j, w) in &table.terms[table.starts[k] as usize..table.starts[k + 1] as usize] {
            out.push((i as usize, j as usize, k, w));
        }
    }
    out
}

/// `x` with `x·V = rhs` solved for each row of `rhs` (`[rows, R]`), V symmetric positive
/// semi-definite `[R, R]`: Cholesky with a ridge of 1e-13·trace/R (rank-deficient factors).
fn solve_rows(rhs: &[f64], v: &[f64], rank: usize) -> Vec<f64> {
    let trace: f64 = (0..rank).map(|r| v[r * rank + r]).sum();
    let ridge = 1e-13 * trace.max(1e-300) / rank as f64;
    let mut l = vec![0.0; rank * rank];
    for i in 0..rank {
        for j in 0..=i {
            let mut sum = v[i * rank + j] + if i == j { ridge } else { 0.0 };
            for p in 0..j {
                sum -= l[i * rank + p] * l[j * rank + p];
            }
            l[i * rank + j] = if i == j {
                sum.max(1e-300).sqrt()
            } else {
                sum / l[j * rank + j]
            };
        }
    }
    let mut out = rhs.to_vec();
    for row in out.chunks_mut(rank) {
        for i in 0..rank {
            let s: f64 = (0..i).map(|p| l[i * rank + p] * row[p]).sum();
            row[i] = (row[i] - s) / l[i * rank + i];
        }
        for i in (0..rank).rev() {
            let s: f64 = (i + 1..rank).map(|p| l[p * rank + i] * row[p]).sum();
            row[i] = (row[i] - s) / l[i * rank + i];
        }
    }
    out
}

/// `FᵀF` of a `[rows, R]` factor.
fn gram(f: &[f64], rank: usize) -> Vec<f64> {
    let mut g = vec![0.0; rank * rank];
    for row in f.chunks(rank) {
        for a in 0..rank {
            for b in 0..rank {
                g[a * rank + b] += row[a] * row[b];
            }
        }
    }
    g
}

/// `‖M − Σ_r a_r⊗b_r⊗c_r‖_F / ‖M‖_F`, by the dense residual (exact to f64 rounding, so that
/// a fit exact to 1e-10 reads as such).
fn relative_error(degrees: [usize; 3], [a, b, c]: &[Vec<f64>; 3], rank: usize) -> f64 {
    let [d1, d2, d3] = degrees.map(reference::dim);
    let mut dense = vec![0.0; d1 * d2 * d3];
    for (i, j, k, w) in entries(degrees) {
        dense[(i * d2 + j) * d3 + k] += w;
    }
    let norm: f64 = dense.iter().map(|x| x * x).sum();
    let mut residual = 0.0;
    for i in 0..d1 {
        for j in 0..d2 {
            for k in 0..d3 {
                let approx: f64 = (0..rank)
                    .map(|r| a[i * rank + r] * b[j * rank + r] * c[k * rank + r])
                    .sum();
                residual += (dense[(i * d2 + j) * d3 + k] - approx).powi(2);
            }
        }
    }
    (residual / norm).sqrt()
}

/// The fit itself: alternating least squares from a fixed-seed start.
fn fit_factors(degrees: [usize; 3], rank: usize) -> Fitted {
    let dims = degrees.map(reference::dim);
    let m = entries(degrees);
    let seed = 0x7d_c0de
        ^ ((degrees[0] << 16) | (degrees[1] << 8) | degrees[2]) as u64
        ^ ((rank as u64) << 32);
    // SplitMix64: a fixed, portable sequence (the start of the fit is part of its result).
    let mut state = seed;
    let mut uniform = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    };
    let mut factors: [Vec<f64>; 3] = dims.map(|d| (0..d * rank).map(|_| uniform()).collect());
    let mut previous = f64::INFINITY;
    for sweep in 0..SWEEPS {
        for mode in 0..3 {
            let (p, q) = ((mode + 1) % 3, (mode + 2) % 3);
            // MTTKRP: rhs[i, r] = Σ_{entries with index i in this mode} w·F_p[·, r]·F_q[·, r].
            let mut rhs = vec![0.0; dims[mode] * rank];
            for &(i, j, k, w) in &m {
                let index = [i, j, k];
                let (fp, fq) = (
                    &factors[p][index[p] * rank..][..rank],
                    &factors[q][index[q] * rank..][..rank],
                );
                for r in 0..rank {
                    rhs[index[mode] * rank + r] += w * fp[r] * fq[r];
                }
            }
            let (gp, gq) = (gram(&factors[p], rank), gram(&factors[q], rank));
            let v: Vec<f64> = gp.iter().zip(&gq).map(|(a, b)| a * b).collect();
            factors[mode] = solve_rows(&rhs, &v, rank);
        }
        // Balance the columns' norms across the three factors (ALS leaves them drifting).
        for r in 0..rank {
            let norms = factors.each_ref().map(|f| {
                f.iter()
                    .skip(r)
                    .step_by(rank)
                    .map(|x| x * x)
                    .sum::<f64>()
                    .sqrt()
            });
            let geometric = (norms[0] * norms[1] * norms[2]).cbrt();
            for (f, n) in factors.iter_mut().zip(norms) {
                if n > 0.0 {
                    f.iter_mut()
                        .skip(r)
                        .step_by(rank)
                        .for_each(|x| *x *= geometric / n);
                }
            }
        }
        if sweep % 25 == 24 {
            let e = relative_error(degrees, &factors, rank);
            if e < 1e-13 || (previous - e).abs() < 1e-10 * previous {
                return (factors, e);
            }
            previous = e;
        }
    }
    let e = relative_error(degrees, &factors, rank);
    (factors, e)
}

impl CpProduct {
    /// The rank-`rank` CP decomposition of the path-summed CG tensor of
    /// `0..=l1max ⊗ 0..=l2max → 0..=lmax_out` by alternating least squares in f64 from a
    /// fixed-seed start: the same factors, bit for bit, on every call and machine. Fits are
    /// cached per (degrees, rank) for the process.
    pub fn fit(l1max: usize, l2max: usize, lmax_out: usize, rank: usize) -> Result<CpProduct> {
        static CACHE: Memo<([usize; 3], usize), Fitted> = Memo::new();
        let degrees = [l1max, l2max, lmax_out];
        check_degrees("so3::CpProduct::fit", degrees, rank)?;
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
        let degrees = [l1max, l2max, lmax_out];
        check_degrees(OP, degrees, rank)?;
        for ((arg, f), l) in [("a", a), ("b", b), ("c", c)].into_iter().zip(degrees) {
            let want = reference::dim(l) * rank;
            if f.len() != want {
                return Err(Error::Shape {
                    op: OP,
                    message: format!(
                        "`{arg}` has {} entries, [(l+1)², R] = [{}, {rank}] needs {want}",
                        f.len(),
                        reference::dim(l)
                    ),
                });
            }
        }
        let factors = [a.to_vec(), b.to_vec(), c.to_vec()];
        let fit_error = relative_error(degrees, &factors, rank);
        Ok(CpProduct {
            degrees,
            rank,
            factors: Arc::new(factors),
            fit_error,
        })
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
            ctx.tensor(&data, &[reference::dim(self.degrees[i]), self.rank])
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
    /// `x2 [n,c,d2]` or `[n,1,d2]` → `[n,c,d3]`, ≈ [`cg_product`](super::cg_product) to the
    /// fit's error.
    pub fn apply(&self, ctx: &Context, x1: &Tensor, x2: &Tensor) -> Result<Tensor> {
        let shape = self.args(ctx, "so3::CpProduct::apply", x1, x2)?;
        let (n, c, _) = shape;
        let [a, b, cf] = self.tensors(ctx)?;
        let (p1, p2, _) = self.projections(ctx, [x1, x2], [&a, &b], shape)?;
        let rank = self.rank;
        let q = elementwise(ctx, Op::Mul, &p1, Some(&p2), [n * c, rank], &[n * c, rank])?;
        let d3 = reference::dim(self.degrees[2]);
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
        let shape = self.args(ctx, OP, x1, x2)?;
        let (n, c, broadcast) = shape;
        let d3 = reference::dim(self.degrees[2]);
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
