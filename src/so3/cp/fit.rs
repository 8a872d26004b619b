//! The fit of the CP factors: alternating least squares in f64 on the path-summed CG tensor,
//! from a fixed-seed start, with a line search after each sweep.

use rayon::prelude::*;

use crate::so3::degrees::dim;
use crate::so3::products::{product_table, Coefficients};

/// A fit: the factors `[A, B, C]` and their relative error.
pub(super) type Fitted = ([Vec<f64>; 3], f64);

/// Most alternating-least-squares sweeps of a fit.
const SWEEPS: usize = 3000;

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
        let dims = degrees.map(dim);
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
pub(super) fn fit_factors(degrees: [usize; 3], rank: usize) -> Fitted {
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

/// The relative error `‖M − Σ_r A_r⊗B_r⊗C_r‖ / ‖M‖` of given factors.
pub(super) fn fit_error(degrees: [usize; 3], factors: &[Vec<f64>; 3], rank: usize) -> f64 {
    Target::new(degrees).relative_error(factors, rank)
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
