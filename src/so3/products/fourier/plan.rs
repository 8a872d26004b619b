//! The 2D-Fourier route of the Gaunt product (Luo et al., ICLR 2024), f64 reference.
//!
//! With the polar axis y of e3nn-jax's basis, `u(β, α) = (sin β sin α, cos β, sin β cos α)`
//! for β, α ∈ [0, 2π) covers the sphere twice, and `f̃(β, α) = f(u(β, α))` is a 2D
//! trigonometric polynomial of degree ≤ L in each angle: `Y_lm(u(β, α)) = Θ̃_lm(β)·Φ_m(α)`,
//! `Θ̃_lm(β) = Σ_u t^{lm}_u e^{iuβ}` (for β > π, `Θ̃_lm(β) = (−1)^m Θ_lm(2π − β)`: the
//! "sign flip for odd m" of The Price of Freedom), `Φ_m(α) = Σ_v a^m_v e^{ivα}`.
//! The product of two functions is the 2D convolution of their coefficient grids, and
//! `out_lm = (1/4π)∫₀^π∫₀^{2π} h·Y_lm sin β dα dβ` is a linear map of h's coefficients:
//! `Σ_{u,v} H_uv·(Σ_{u'} t^{lm}_{u'} J(u + u'))·(∫ e^{ivα}Φ_m dα)/4π` with
//! `J(k) = ∫₀^π e^{ikβ} sin β dβ` = `2/(1 − k²)` (k even), `±iπ/2` (k = ±1), 0 otherwise.

use std::sync::Arc;

use num_complex::Complex64;

use crate::so3::degrees::dim;
use crate::so3::memo::Memo;
use crate::so3::products::fft::{fft2_reference, smooth_length, FftDirection};
use crate::so3::products::grid::ring_factors;

/// `t^{lm}_u` for every (l, m) up to `lmax`: `[dim(lmax)][2·lmax + 1]`, column `u + lmax`.
fn theta_coefficients(lmax: usize) -> Vec<Complex64> {
    let (n, width) = (2 * lmax + 1, 2 * lmax + 1);
    let d = dim(lmax);
    // Θ̃_lm(β_j) at β_j = 2πj/n, the continuation past π included.
    let samples: Vec<f64> = (0..n)
        .flat_map(|j| {
            let beta = 2.0 * std::f64::consts::PI * j as f64 / n as f64;
            ring_factors(beta.sin(), beta.cos(), lmax)
        })
        .collect();
    let mut t = vec![Complex64::new(0.0, 0.0); d * width];
    for index in 0..d {
        for u in -(lmax as i64)..=lmax as i64 {
            let sum: Complex64 = (0..n)
                .map(|j| {
                    let beta = 2.0 * std::f64::consts::PI * j as f64 / n as f64;
                    samples[j * d + index] * Complex64::from_polar(1.0, -(u as f64) * beta)
                })
                .sum();
            t[index * width + (u + lmax as i64) as usize] = sum / n as f64;
        }
    }
    t
}

/// `a^m_v`: Φ_m(α) = Σ_v a^m_v e^{ivα} (nonzero for v = ±m only).
fn phi_coefficient(m: i64, v: i64) -> Complex64 {
    let zero = Complex64::new(0.0, 0.0);
    match m {
        0 if v == 0 => Complex64::new(1.0, 0.0),
        m if m > 0 && v.abs() == m => Complex64::new(0.5, 0.0),
        m if m < 0 && v == -m => Complex64::new(0.0, -0.5), // sin = (e^{ikα} − e^{−ikα})/2i
        m if m < 0 && v == m => Complex64::new(0.0, 0.5),
        _ => zero,
    }
}

/// The frequencies v with `a^m_v ≠ 0`: ±m, or 0 alone.
fn frequencies(m: i64) -> impl Iterator<Item = i64> {
    std::iter::once(m).chain((m != 0).then_some(-m))
}

/// `J(k) = ∫₀^π e^{ikβ} sin β dβ`.
fn half_period_weight(k: i64) -> Complex64 {
    match k {
        1 => Complex64::new(0.0, std::f64::consts::FRAC_PI_2),
        -1 => Complex64::new(0.0, -std::f64::consts::FRAC_PI_2),
        k if k % 2 == 0 => Complex64::new(2.0 / (1.0 - (k * k) as f64), 0.0),
        _ => Complex64::new(0.0, 0.0),
    }
}

/// The tables of one `l1 ⊗ l2 → lmax_out` product.
#[derive(Clone, Debug)]
pub struct FourierPlan {
    /// Input and output degrees.
    pub l1: usize,
    pub l2: usize,
    pub lmax_out: usize,
    /// `t^{lm}_u` up to `max(l1, l2, lmax_out)`, `[dim][2·l_table + 1]`.
    pub theta: Vec<Complex64>,
    pub l_table: usize,
    /// The GPU's zero-padded grid, `n_u × n_v`. The projection runs over half a period in β,
    /// so every u of the product counts: `n_u ≥ 2(l1 + l2) + 1`. Along α
    /// `n_v ≥ l1 + l2 + lmax_out + 1` would do (aliases fall outside |v| ≤ lmax_out), but the
    /// grid is square: one pipeline per padded length instead of per pair — 22 instead of 109
    /// for l ≤ 10, at ~1 s of shader compilation each on lavapipe — for at most 1.33× the
    /// α work. Lengths have prime factors 2, 3, 5 only.
    pub n_u: usize,
    pub n_v: usize,
}

impl FourierPlan {
    /// Builds the change-of-basis tables.
    pub fn new(l1: usize, l2: usize, lmax_out: usize) -> FourierPlan {
        let l_table = l1.max(l2).max(lmax_out);
        let degree = l1 + l2;
        let square = smooth_length((2 * degree + 1).max(degree + lmax_out + 1));
        FourierPlan {
            l1,
            l2,
            lmax_out,
            theta: theta_coefficients(l_table),
            l_table,
            n_u: square,
            n_v: square,
        }
    }

    /// [`new`](Self::new), built once per process for each degree triple (a plan at
    /// 10 ⊗ 10 → 20 takes ~80 ms to build).
    pub fn shared(l1: usize, l2: usize, lmax_out: usize) -> Arc<FourierPlan> {
        static PLANS: Memo<(usize, usize, usize), FourierPlan> = Memo::new();
        PLANS.get_or_build((l1, l2, lmax_out), || FourierPlan::new(l1, l2, lmax_out))
    }

    /// The kernel's table: `t^{lm}_u`, then `K^{lm}_u` with the ½ of the real part and the
    /// FFTs' `1/(n_u·n_v)` folded in, as f32 (re, im) pairs.
    pub(crate) fn gpu_table(&self) -> Vec<[f32; 2]> {
        let scale = 0.5 / (self.n_u * self.n_v) as f64;
        let theta = self.theta.iter().map(|z| [z.re as f32, z.im as f32]);
        let projection = self
            .projection()
            .into_iter()
            .map(|z| [(z.re * scale) as f32, (z.im * scale) as f32]);
        theta.chain(projection).collect()
    }

    /// The half-period projection `K^{lm}_u = Σ_{u'} t^{lm}_{u'}·J(u + u')` for l ≤ lmax_out,
    /// u = −(l1 + l2)..=l1 + l2: `[dim(lmax_out)][2(l1 + l2) + 1]`. With
    /// `S = Σ_u H_{u,m}·K^{lm}_u`, [`from_fourier`](Self::from_fourier) is `½·Re S` (m ≥ 0)
    /// or `½·Im S` (m < 0), H being Hermitian.
    pub fn projection(&self) -> Vec<Complex64> {
        let (width, lt) = (2 * self.l_table + 1, self.l_table as i64);
        let degree = (self.l1 + self.l2) as i64;
        let mut out = Vec::with_capacity(dim(self.lmax_out) * (2 * degree as usize + 1));
        for index in 0..dim(self.lmax_out) {
            let l = (index as f64).sqrt() as i64;
            for u in -degree..=degree {
                out.push(
                    (-l..=l)
                        .map(|u2| {
                            self.theta[index * width + (u2 + lt) as usize]
                                * half_period_weight(u + u2)
                        })
                        .sum(),
                );
            }
        }
        out
    }

    /// The 2D coefficients `X_uv = Σ_lm x_lm t^{lm}_u a^m_v`, `[2l+1][2l+1]` (row u, column v).
    pub fn to_fourier(&self, x: &[f64], l: usize) -> Vec<Complex64> {
        let (w, width, lt) = (2 * l + 1, 2 * self.l_table + 1, self.l_table as i64);
        let li = l as i64;
        let mut out = vec![Complex64::new(0.0, 0.0); w * w];
        for k in 0..=li {
            for m in -k..=k {
                let index = (k * k + m + k) as usize;
                for u in -k..=k {
                    let t = self.theta[index * width + (u + lt) as usize] * x[index];
                    for v in frequencies(m) {
                        out[((u + li) as usize) * w + (v + li) as usize] +=
                            t * phi_coefficient(m, v);
                    }
                }
            }
        }
        out
    }

    /// `out_lm = (1/4π)∫₀^π∫₀^{2π} h·Y_lm sin β dα dβ` from h's coefficients `[2L+1][2L+1]`.
    pub fn from_fourier(&self, h: &[Complex64], big_l: usize) -> Vec<f64> {
        let (w, width, lt) = (2 * big_l + 1, 2 * self.l_table + 1, self.l_table as i64);
        let bl = big_l as i64;
        let lo = self.lmax_out as i64;
        let mut out = vec![0.0; dim(self.lmax_out)];
        for l in 0..=lo {
            for m in -l..=l {
                let index = (l * l + m + l) as usize;
                let mut sum = Complex64::new(0.0, 0.0);
                for v in frequencies(m) {
                    if v.abs() > bl {
                        continue;
                    }
                    // ∫₀^{2π} e^{ivα} Φ_m(α) dα = 2π·a^m_{−v}
                    let alpha = 2.0 * std::f64::consts::PI * phi_coefficient(m, -v);
                    for u in -bl..=bl {
                        let beta: Complex64 = (-l..=l)
                            .map(|u2| {
                                self.theta[index * width + (u2 + lt) as usize]
                                    * half_period_weight(u + u2)
                            })
                            .sum();
                        sum += h[((u + bl) as usize) * w + (v + bl) as usize] * beta * alpha;
                    }
                }
                out[index] = sum.re / (4.0 * std::f64::consts::PI);
            }
        }
        out
    }
}

/// The 2D convolution of `[2a+1]²` and `[2b+1]²` coefficient grids, `[2(a+b)+1]²`.
pub fn convolve(x: &[Complex64], a: usize, y: &[Complex64], b: usize) -> Vec<Complex64> {
    let (wa, wb, wc) = (2 * a + 1, 2 * b + 1, 2 * (a + b) + 1);
    let mut out = vec![Complex64::new(0.0, 0.0); wc * wc];
    for (i, row) in x.chunks(wa).enumerate() {
        for (j, &p) in row.iter().enumerate() {
            for (k, row2) in y.chunks(wb).enumerate() {
                for (l, &q) in row2.iter().enumerate() {
                    out[(i + k) * wc + j + l] += p * q;
                }
            }
        }
    }
    out
}

/// [`convolve`] by FFT (rustfft): both grids zero-padded to `[2(a+b)+1]²`, inverse
/// transformed, multiplied pointwise, transformed forward.
pub fn convolve_fft(x: &[Complex64], a: usize, y: &[Complex64], b: usize) -> Vec<Complex64> {
    let n = 2 * (a + b) + 1;
    let wrap = |i: i64| i.rem_euclid(n as i64) as usize;
    let padded = |grid: &[Complex64], l: usize| {
        let mut out = vec![Complex64::new(0.0, 0.0); n * n];
        let w = 2 * l + 1;
        for (at, &value) in grid.iter().enumerate() {
            let (u, v) = ((at / w) as i64 - l as i64, (at % w) as i64 - l as i64);
            out[wrap(u) * n + wrap(v)] = value;
        }
        fft2_reference(&out, n, n, FftDirection::Inverse)
    };
    let samples: Vec<Complex64> = padded(x, a)
        .iter()
        .zip(padded(y, b))
        .map(|(p, q)| p * q / (n * n) as f64)
        .collect();
    let spectrum = fft2_reference(&samples, n, n, FftDirection::Forward);
    let c = (a + b) as i64;
    (-c..=c)
        .flat_map(|u| (-c..=c).map(move |v| (u, v)))
        .map(|(u, v)| spectrum[wrap(u) * n + wrap(v)])
        .collect()
}

/// The Gaunt product by the 2D-Fourier route, rows as in
/// [`grid::gaunt_grid`](crate::so3::products::grid::gaunt_grid): change of basis, [`convolve_fft`],
/// projection back. f64.
pub fn gaunt_fourier(plan: &FourierPlan, x1: &[f64], x2: &[f64], group: usize) -> Vec<f64> {
    let (d1, d2) = (dim(plan.l1), dim(plan.l2));
    x1.chunks(d1)
        .enumerate()
        .flat_map(|(r, a)| {
            let b = &x2[(r / group) * d2..(r / group + 1) * d2];
            let h = convolve_fft(
                &plan.to_fourier(a, plan.l1),
                plan.l1,
                &plan.to_fourier(b, plan.l2),
                plan.l2,
            );
            plan.from_fourier(&h, plan.l1 + plan.l2)
        })
        .collect()
}
