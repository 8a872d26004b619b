//! The spherical-grid route of the Gaunt product (The Price of Freedom): sample both
//! functions on a Gauss–Legendre × uniform grid, multiply, project back — in the separable
//! form, O(L³) per product.
//!
//! In e3nn-jax's basis the polar axis is y: with `u = (sin β sin α, cos β, sin β cos α)`,
//! `Y_lm(u) = Θ_lm(β)·Φ_m(α)`, `Φ_m = cos(mα)` (m > 0), `1` (m = 0), `sin(|m|α)` (m < 0).
//! Synthesis on ring i: `A_i[m] = Σ_l Θ_lm(β_i)·x_lm`, then `f(β_i, α_j) = Σ_m A_i[m]·Φ_m(α_j)`.
//! Analysis: `B_i[m] = (1/n_α)·Σ_j h_ij·Φ_m(α_j)`, then `out_lm = Σ_i (w_i/2)·Θ_lm(β_i)·B_i[m]`
//! with Gauss–Legendre weights w_i in cos β (summing to 2). The rule is exact when
//! `n_β ≥ T/2 + 1` and `n_α ≥ T + 1` for `T = l1 + l2 + lmax_out`, the degree of `f1·f2·Y_lm`.
//!
//! Along α each ring is a Fourier series of degree l, so the sample–multiply–project steps
//! in α equal a convolution of the two series' coefficients ([`ring_product`]): O(l1·l2)
//! per ring instead of O(n_α·L). Both paths use it; the sampled form stays for the tests.

use std::sync::Arc;

use crate::so3::degrees::dim;
use crate::so3::harmonics::reference::spherical_harmonics_f64;
use crate::so3::memo::Memo;
use crate::so3::quadrature::gauss_legendre;

/// The grid and its tables for products of degrees `l1 ⊗ l2 → lmax_out`.
#[derive(Clone, Debug)]
pub struct GridPlan {
    /// Input and output degrees.
    pub l1: usize,
    pub l2: usize,
    pub lmax_out: usize,
    /// Rings (Gauss–Legendre nodes in cos β).
    pub n_beta: usize,
    /// Points per ring (uniform in α).
    pub n_alpha: usize,
    /// Largest degree of any table: `max(l1, l2, lmax_out)`.
    pub l_table: usize,
    /// `Θ_lm(β_i)`, `[n_beta][dim(l_table)]`.
    pub theta: Vec<f64>,
    /// `(w_i/2)·Θ_lm(β_i)`, `[n_beta][dim(l_table)]`: the analysis weights folded in.
    pub theta_weighted: Vec<f64>,
    /// `Φ_m(α_j)`, `[n_alpha][2·l_table + 1]`, column `m + l_table`.
    pub phi: Vec<f64>,
}

/// `Φ_m(α)`.
fn phi(m: i64, alpha: f64) -> f64 {
    match m {
        0 => 1.0,
        m if m > 0 => (m as f64 * alpha).cos(),
        m => (m.unsigned_abs() as f64 * alpha).sin(),
    }
}

/// `Θ_lm(β)` for every (l, m) up to `l_table` (`[dim(l_table)]`), the β factor of
/// `Y_lm(u(β, α)) = Θ_lm(β)·Φ_m(α)`: Y_lm at an azimuth where `Φ_m = 1` — α = 0 serves every
/// m ≥ 0 and α = π/(2k) serves m = −k, one evaluation of all the harmonics per azimuth.
/// A negative `sin_beta` (β > π) gives the 2π-periodic continuation `(−1)^m Θ_lm(2π − β)`.
pub(crate) fn ring_factors(sin_beta: f64, cos_beta: f64, l_table: usize) -> Vec<f64> {
    let mut out = vec![0.0; dim(l_table)];
    for k in 0..=l_table {
        let alpha = if k == 0 {
            0.0
        } else {
            std::f64::consts::PI / (2.0 * k as f64)
        };
        let point = [sin_beta * alpha.sin(), cos_beta, sin_beta * alpha.cos()];
        let y = spherical_harmonics_f64(&point, l_table);
        for l in k as i64..=l_table as i64 {
            let ms = if k == 0 {
                0..=l
            } else {
                -(k as i64)..=-(k as i64)
            };
            for m in ms {
                let index = (l * l + m + l) as usize;
                out[index] = y[index];
            }
        }
    }
    out
}

impl GridPlan {
    /// The smallest exact grid for `l1 ⊗ l2 → lmax_out`.
    pub fn new(l1: usize, l2: usize, lmax_out: usize) -> GridPlan {
        let degree = l1 + l2 + lmax_out;
        let (n_beta, n_alpha) = (degree / 2 + 1, degree + 1);
        let l_table = l1.max(l2).max(lmax_out);
        let d = dim(l_table);
        let (nodes, weights) = gauss_legendre(n_beta);
        let mut theta = vec![0.0; n_beta * d];
        let mut theta_weighted = vec![0.0; n_beta * d];
        for (i, (&z, &w)) in nodes.iter().zip(&weights).enumerate() {
            let ring = ring_factors((1.0 - z * z).max(0.0).sqrt(), z, l_table);
            for (index, &value) in ring.iter().enumerate() {
                theta[i * d + index] = value;
                theta_weighted[i * d + index] = w / 2.0 * value;
            }
        }
        let width = 2 * l_table + 1;
        let mut phi_table = vec![0.0; n_alpha * width];
        for j in 0..n_alpha {
            let alpha = 2.0 * std::f64::consts::PI * j as f64 / n_alpha as f64;
            for m in -(l_table as i64)..=l_table as i64 {
                phi_table[j * width + (m + l_table as i64) as usize] = phi(m, alpha);
            }
        }
        GridPlan {
            l1,
            l2,
            lmax_out,
            n_beta,
            n_alpha,
            l_table,
            theta,
            theta_weighted,
            phi: phi_table,
        }
    }

    /// [`new`](Self::new), built once per process for each degree triple (a plan at
    /// 10 ⊗ 10 → 20 takes ~20 ms to build).
    pub fn shared(l1: usize, l2: usize, lmax_out: usize) -> Arc<GridPlan> {
        static PLANS: Memo<(usize, usize, usize), GridPlan> = Memo::new();
        PLANS.get_or_build((l1, l2, lmax_out), || GridPlan::new(l1, l2, lmax_out))
    }

    /// The kernel's table: `Θ_lm(β_i)`, then `(w_i/2)·Θ_lm(β_i)`, as f32.
    pub(crate) fn gpu_table(&self) -> Vec<f32> {
        [&self.theta, &self.theta_weighted]
            .into_iter()
            .flat_map(|t| t.iter().map(|&v| v as f32))
            .collect()
    }

    /// The Legendre step: `A_i[m] = Σ_l Θ_lm(β_i)·x_lm` for ring i, m = −l..=l.
    pub fn ring(&self, x: &[f64], l: usize, i: usize) -> Vec<f64> {
        let d = dim(self.l_table);
        (-(l as i64)..=l as i64)
            .map(|m| {
                (m.unsigned_abs() as i64..=l as i64)
                    .map(|k| {
                        let index = (k * k + m + k) as usize;
                        self.theta[i * d + index] * x[index]
                    })
                    .sum()
            })
            .collect()
    }

    /// `f(β_i, α_j)` of the coefficients `x` of degree ≤ `l`, `[n_beta][n_alpha]`.
    pub fn to_grid(&self, x: &[f64], l: usize) -> Vec<f64> {
        let (width, lt) = (2 * self.l_table + 1, self.l_table as i64);
        let mut out = vec![0.0; self.n_beta * self.n_alpha];
        for i in 0..self.n_beta {
            let ring = self.ring(x, l, i);
            for j in 0..self.n_alpha {
                out[i * self.n_alpha + j] = ring
                    .iter()
                    .zip(-(l as i64)..)
                    .map(|(a, m)| a * self.phi[j * width + (m + lt) as usize])
                    .sum();
            }
        }
        out
    }

    /// The coefficients of degree ≤ `lmax_out` of a function sampled on the grid.
    pub fn from_grid(&self, h: &[f64]) -> Vec<f64> {
        let (width, lt) = (2 * self.l_table + 1, self.l_table as i64);
        let lo = self.lmax_out as i64;
        let rings: Vec<Vec<f64>> = (0..self.n_beta)
            .map(|i| {
                let row = &h[i * self.n_alpha..(i + 1) * self.n_alpha];
                (-lo..=lo)
                    .map(|m| {
                        let sum: f64 = row
                            .iter()
                            .enumerate()
                            .map(|(j, v)| v * self.phi[j * width + (m + lt) as usize])
                            .sum();
                        sum / self.n_alpha as f64
                    })
                    .collect()
            })
            .collect();
        self.from_rings(&rings)
    }

    /// The Legendre analysis: `out_lm = Σ_i (w_i/2)·Θ_lm(β_i)·B_i[m]` from every ring's
    /// `B_i[m]`, m = −lmax_out..=lmax_out.
    pub fn from_rings(&self, rings: &[Vec<f64>]) -> Vec<f64> {
        let d = dim(self.l_table);
        let lo = self.lmax_out as i64;
        let mut out = vec![0.0; dim(self.lmax_out)];
        for (i, b) in rings.iter().enumerate() {
            for m in -lo..=lo {
                for k in m.unsigned_abs() as i64..=lo {
                    let index = (k * k + m + k) as usize;
                    out[index] += self.theta_weighted[i * d + index] * b[(m + lo) as usize];
                }
            }
        }
        out
    }
}

/// The product of two real Fourier series in α, `f = Σ_m A[m]·Φ_m(α)` (m = −l..=l), projected
/// back onto `Φ_m`, |m| ≤ lmax: `B[m] = (1/2π)∫ f1·f2·Φ_m dα`, by convolving their complex
/// coefficients `c_0 = A[0]`, `c_{±k} = (A[k] ∓ i·A[−k])/2`:
/// `e_k = Σ c1_{k1}·c2_{k−k1}`, then `B[0] = e_0`, `B[k] = Re e_k`, `B[−k] = −Im e_k`.
/// Exactly what sampling both on the ring, multiplying and projecting gives, in
/// O(l1·l2) instead of O(n_α·(l1 + l2 + lmax)).
pub fn ring_product(a1: &[f64], a2: &[f64], lmax: usize) -> Vec<f64> {
    let (l1, l2) = ((a1.len() / 2) as i64, (a2.len() / 2) as i64);
    // (re, im) of c_k for a ring of degree l
    let complex = |a: &[f64], l: i64, k: i64| -> (f64, f64) {
        let at = |m: i64| a[(m + l) as usize];
        match k {
            0 => (at(0), 0.0),
            k if k > 0 => (at(k) / 2.0, -at(-k) / 2.0),
            k => (at(-k) / 2.0, at(k) / 2.0),
        }
    };
    let lo = lmax as i64;
    let mut b = vec![0.0; 2 * lmax + 1];
    for k in 0..=lo {
        let (mut re, mut im) = (0.0, 0.0);
        for k1 in (-l1).max(k - l2)..=l1.min(k + l2) {
            let (x, y) = complex(a1, l1, k1);
            let (u, v) = complex(a2, l2, k - k1);
            re += x * u - y * v;
            im += x * v + y * u;
        }
        b[(k + lo) as usize] = re;
        if k > 0 {
            b[(lo - k) as usize] = -im;
        }
    }
    b
}

/// The Gaunt product by the grid, for rows of `x1 [rows, dim(l1)]` and `x2`, with `group`
/// consecutive x1 rows sharing one x2 row (channel broadcast; 1 otherwise). f64. Each ring's
/// product in α is [`ring_product`] (the pointwise product on the ring's n_α points, done
/// on its Fourier coefficients); [`GridPlan::to_grid`] / [`GridPlan::from_grid`] are the
/// sampled form, which the tests compare with it.
pub fn gaunt_grid(plan: &GridPlan, x1: &[f64], x2: &[f64], group: usize) -> Vec<f64> {
    let (d1, d2) = (dim(plan.l1), dim(plan.l2));
    x1.chunks(d1)
        .enumerate()
        .flat_map(|(r, a)| {
            let b = &x2[(r / group) * d2..(r / group + 1) * d2];
            let rings: Vec<Vec<f64>> = (0..plan.n_beta)
                .map(|i| {
                    ring_product(
                        &plan.ring(a, plan.l1, i),
                        &plan.ring(b, plan.l2, i),
                        plan.lmax_out,
                    )
                })
                .collect();
            plan.from_rings(&rings)
        })
        .collect()
}
