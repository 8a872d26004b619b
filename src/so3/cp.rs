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

use rayon::prelude::*;

use super::backward::ProductGrads;
use super::memo::Memo;
use super::products::{product_table, Coefficients};
use super::{product_args, reference, MAX_L};
use crate::graph::{self, Index};
use crate::linalg::elementwise::{elementwise, Op};
use crate::linalg::matmul;
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
    // Both callers measure the fit against the dense target, d1·d2·d3 values in f64.
    op::reserve(
        op,
        "lmax_out",
        [l1, l2, lo].map(reference::dim).iter().product(),
    )
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

/// `Σ a_i·b_i`, in four interleaved partial sums: the fits spend their time here, and one
/// running sum would serialise every addition (the order is fixed, so fits stay reproducible).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut partial = [0.0; 4];
    let (a4, b4) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = a4
        .remainder()
        .iter()
        .zip(b4.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a4.zip(b4) {
        for lane in 0..4 {
            partial[lane] += x[lane] * y[lane];
        }
    }
    (partial[0] + partial[1]) + (partial[2] + partial[3]) + tail
}

/// `x` with `x·V = rhs` solved for each row of `rhs` (`[rows, R]`), V symmetric positive
/// semi-definite `[R, R]`: Cholesky `V = L·Lᵀ` with a ridge of 1e-13·trace/R (rank-deficient
/// factors), then `y·Lᵀ = rhs`, `x·L = y` per row. L's rows and columns are both kept
/// row-major so that every inner product runs over contiguous memory.
fn solve_rows(rhs: &[f64], v: &[f64], rank: usize) -> Vec<f64> {
    let trace: f64 = (0..rank).map(|r| v[r * rank + r]).sum();
    let ridge = 1e-13 * trace.max(1e-300) / rank as f64;
    let mut l = vec![0.0; rank * rank];
    for i in 0..rank {
        for j in 0..=i {
            let diagonal = if i == j { ridge } else { 0.0 };
            let sum = v[i * rank + j] + diagonal - dot(&l[i * rank..][..j], &l[j * rank..][..j]);
            l[i * rank + j] = if i == j {
                sum.max(1e-300).sqrt()
            } else {
                sum / l[j * rank + j]
            };
        }
    }
    let mut lt = vec![0.0; rank * rank];
    for i in 0..rank {
        for j in 0..=i {
            lt[j * rank + i] = l[i * rank + j];
        }
    }
    let mut out = rhs.to_vec();
    out.par_chunks_mut(rank).for_each(|row| {
        for i in 0..rank {
            row[i] = (row[i] - dot(&l[i * rank..][..i], &row[..i])) / l[i * rank + i];
        }
        for i in (0..rank).rev() {
            let s = dot(&lt[i * rank + i + 1..(i + 1) * rank], &row[i + 1..]);
            row[i] = (row[i] - s) / l[i * rank + i];
        }
    });
    out
}

/// `FᵀF` of a `[rows, R]` factor (the upper triangle summed, then mirrored).
fn gram(f: &[f64], rank: usize) -> Vec<f64> {
    let mut g = vec![0.0; rank * rank];
    for row in f.chunks(rank) {
        for a in 0..rank {
            let x = row[a];
            for (out, y) in g[a * rank + a..(a + 1) * rank].iter_mut().zip(&row[a..]) {
                *out += x * y;
            }
        }
    }
    for a in 0..rank {
        for b in 0..a {
            g[a * rank + b] = g[b * rank + a];
        }
    }
    g
}

/// The tensor being fitted: its nonzero entries (for the MTTKRP) and its dense form (for the
/// residual).
struct Target {
    dims: [usize; 3],
    entries: Vec<(usize, usize, usize, f64)>,
    dense: Vec<f64>,
    norm_squared: f64,
}

impl Target {
    fn new(degrees: [usize; 3]) -> Target {
        let dims = degrees.map(reference::dim);
        let entries = entries(degrees);
        let mut dense = vec![0.0; dims.iter().product()];
        for &(i, j, k, w) in &entries {
            dense[(i * dims[1] + j) * dims[2] + k] += w;
        }
        let norm_squared = dense.iter().map(|x| x * x).sum();
        Target {
            dims,
            entries,
            dense,
            norm_squared,
        }
    }

    /// `‖M − Σ_r a_r⊗b_r⊗c_r‖_F / ‖M‖_F`, by the dense residual (exact to f64 rounding, so
    /// that a fit exact to 1e-10 reads as such).
    fn relative_error(&self, [a, b, c]: &[Vec<f64>; 3], rank: usize) -> f64 {
        let [_, d2, d3] = self.dims;
        let residual: f64 = self
            .dense
            .par_chunks(d3)
            .enumerate()
            .map(|(ij, want)| {
                let (a, b) = (&a[ij / d2 * rank..][..rank], &b[ij % d2 * rank..][..rank]);
                let ab: Vec<f64> = a.iter().zip(b).map(|(x, y)| x * y).collect();
                want.iter()
                    .zip(c.chunks(rank))
                    .map(|(w, c)| (w - dot(&ab, c)).powi(2))
                    .sum::<f64>()
            })
            .collect::<Vec<_>>()
            .iter()
            .sum();
        (residual / self.norm_squared).sqrt()
    }

    /// One ALS sweep: each factor in turn replaced by the least-squares solution with the other
    /// two fixed, `F_mode = M_(mode)·(F_q ⊙ F_p) · ((F_pᵀF_p) ∘ (F_qᵀF_q))⁻¹`.
    fn sweep(&self, factors: &mut [Vec<f64>; 3], grams: &mut [Vec<f64>; 3], rank: usize) {
        for mode in 0..3 {
            let (p, q) = ((mode + 1) % 3, (mode + 2) % 3);
            // MTTKRP: rhs[i, r] = Σ_{entries with index i in this mode} w·F_p[·, r]·F_q[·, r].
            let mut rhs = vec![0.0; self.dims[mode] * rank];
            for &(i, j, k, w) in &self.entries {
                let index = [i, j, k];
                let (fp, fq) = (
                    &factors[p][index[p] * rank..][..rank],
                    &factors[q][index[q] * rank..][..rank],
                );
                let row = &mut rhs[index[mode] * rank..][..rank];
                for ((out, x), y) in row.iter_mut().zip(fp).zip(fq) {
                    *out += w * x * y;
                }
            }
            let v: Vec<f64> = grams[p].iter().zip(&grams[q]).map(|(a, b)| a * b).collect();
            factors[mode] = solve_rows(&rhs, &v, rank);
            grams[mode] = gram(&factors[mode], rank);
        }
    }
}

/// `a^(1/3)` for `a ≥ 0` by Newton's iteration from a power-of-two start: only `+ − × ÷`, so
/// the same bits on every machine (libm's `cbrt` need not be correctly rounded, and the fit
/// promises the same factors everywhere).
fn cube_root(a: f64) -> f64 {
    if !(a > 0.0 && a.is_finite()) {
        return a.max(0.0);
    }
    // a = m·2^e with m in [1, 2): start at 2^⌊e/3⌋, within a factor 2 of the root.
    let exponent = ((a.to_bits() >> 52) & 0x7ff) as i64 - 1023;
    let mut x = 2f64.powi(exponent.div_euclid(3) as i32);
    for _ in 0..8 {
        x = (2.0 * x + a / (x * x)) / 3.0;
    }
    x
}

/// Balances the columns' norms across the three factors (ALS leaves them drifting), keeping
/// the grams in step.
fn balance(factors: &mut [Vec<f64>; 3], grams: &mut [Vec<f64>; 3], rank: usize) {
    for r in 0..rank {
        let norms = grams.each_ref().map(|g| g[r * rank + r].sqrt());
        let geometric = cube_root(norms[0] * norms[1] * norms[2]);
        for ((f, g), n) in factors.iter_mut().zip(grams.iter_mut()).zip(norms) {
            if n > 0.0 {
                let scale = geometric / n;
                f.iter_mut().skip(r).step_by(rank).for_each(|x| *x *= scale);
                // Column r of F scaled: row and column r of FᵀF scale alike.
                g.iter_mut().skip(r).step_by(rank).for_each(|x| *x *= scale);
                g[r * rank..][..rank].iter_mut().for_each(|x| *x *= scale);
            }
        }
    }
}

/// The fit itself: alternating least squares from a fixed-seed start, each sweep followed by
/// Bro's line search — the step the sweep took, extrapolated by `(sweep+1)^(1/3)` and kept
/// where it lowers the residual (plain ALS crawls through the long plateaus of near-exact
/// ranks, ×3 per 200 sweeps at L = 3).
fn fit_factors(degrees: [usize; 3], rank: usize) -> Fitted {
    let target = Target::new(degrees);
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
    let mut factors: [Vec<f64>; 3] = target
        .dims
        .map(|d| (0..d * rank).map(|_| uniform()).collect());
    let mut grams = factors.each_ref().map(|f| gram(f, rank));
    let mut error = target.relative_error(&factors, rank);
    let mut checkpoint = error;
    for sweep in 0..SWEEPS {
        let before = factors.clone();
        target.sweep(&mut factors, &mut grams, rank);
        balance(&mut factors, &mut grams, rank);
        error = target.relative_error(&factors, rank);
        if sweep >= 2 {
            let step = cube_root((sweep + 1) as f64);
            let tried: [Vec<f64>; 3] = std::array::from_fn(|f| {
                let (old, new) = (&before[f], &factors[f]);
                old.iter()
                    .zip(new)
                    .map(|(o, n)| o + step * (n - o))
                    .collect()
            });
            let tried_error = target.relative_error(&tried, rank);
            if tried_error < error {
                factors = tried;
                grams = factors.each_ref().map(|f| gram(f, rank));
                error = tried_error;
            }
        }
        if error < 1e-12 {
            break;
        }
        if sweep % 25 == 24 {
            // Stalled: under a 1e-4 relative gain over the last 25 sweeps.
            if checkpoint - error < 1e-4 * checkpoint {
                break;
            }
            checkpoint = error;
        }
    }
    (factors, error)
}

impl CpProduct {
    /// The rank-`rank` CP decomposition of the path-summed CG tensor of
    /// `0..=l1max ⊗ 0..=l2max → 0..=lmax_out` by alternating least squares in f64 from a
    /// fixed-seed start: the same factors, bit for bit, on every call and machine. Fits are
    /// cached per (degrees, rank) for the process.
    pub fn fit(l1max: usize, l2max: usize, lmax_out: usize, rank: usize) -> Result<CpProduct> {
        static CACHE: Memo<([usize; 3], usize), Fitted> = Memo::new();
        const OP: &str = "so3::CpProduct::fit";
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
        let degrees = [l1max, l2max, lmax_out];
        check_degrees(OP, degrees, rank)?;
        for ((arg, f), l) in [("a", a), ("b", b), ("c", c)].into_iter().zip(degrees) {
            let want = reference::dim(l).checked_mul(rank);
            if Some(f.len()) != want {
                return Err(Error::Shape {
                    op: OP,
                    message: format!(
                        "`{arg}` has {} entries, [(l+1)², R] = [{}, {rank}] needs their product",
                        f.len(),
                        reference::dim(l)
                    ),
                });
            }
        }
        let factors = [a.to_vec(), b.to_vec(), c.to_vec()];
        let fit_error = Target::new(degrees).relative_error(&factors, rank);
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

#[cfg(test)]
mod tests {
    use super::cube_root;

    #[test]
    fn cube_root_is_libm_cbrt_to_an_ulp_or_two() {
        for a in [1e-300, 1e-12, 0.3, 1.0, 2.0, 7.0, 8.0, 1000.0, 3.7e5, 1e200] {
            let (got, want) = (cube_root(a), f64::cbrt(a));
            assert!(
                (got - want).abs() <= 4.0 * f64::EPSILON * want,
                "{a}: {got} vs {want}"
            );
        }
        assert_eq!(cube_root(0.0), 0.0);
    }
}
