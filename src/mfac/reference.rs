//! The f64 CPU reference of M-FAC, written as the paper and DESIGN.md state it.
//!
//! `F = λ·I + (1/m)·Σ_i g_i g_iᵀ` over m gradients `g_i` (rows of a row-major `[m, d]` slice).
//! [`sherman_morrison`] is the static recursion of the paper; [`Factors`] is the same inverse
//! reached through the m×m matrix `M = m·I + G·Gᵀ/λ` (Woodbury), which the GPU path computes
//! and which the sliding window refactors after every push; [`dense_inverse`] forms the d×d
//! inverse outright, for tests at small d.

/// The static factors `v_i`, `D_i` of the Sherman–Morrison recursion:
/// `v_i = g_i/λ − Σ_{j<i} (v_jᵀg_i / D_j)·v_j`, `D_i = m + g_iᵀv_i`, so that
/// `F⁻¹ = I/λ − Σ_i v_i v_iᵀ / D_i`. O(d·m²).
#[derive(Clone, Debug)]
pub struct StaticFactors {
    /// `[m, d]`, row i is v_i.
    pub v: Vec<f64>,
    /// `[m]`, D_i.
    pub denominators: Vec<f64>,
    /// λ.
    pub damp: f64,
    /// d.
    pub d: usize,
}

/// Runs the recursion on `grads [m, d]`.
pub fn sherman_morrison(grads: &[f32], d: usize, damp: f64) -> StaticFactors {
    let m = grads.len() / d;
    let mut v = vec![0.0; m * d];
    let mut denominators = vec![0.0; m];
    for i in 0..m {
        let g = &grads[i * d..(i + 1) * d];
        let mut vi: Vec<f64> = g.iter().map(|&x| x as f64 / damp).collect();
        for j in 0..i {
            let vj = &v[j * d..(j + 1) * d];
            let c = dot_f32(vj, g) / denominators[j];
            vi.iter_mut().zip(vj).for_each(|(a, b)| *a -= c * b);
        }
        denominators[i] = m as f64 + dot_f32(&vi, g);
        v[i * d..(i + 1) * d].copy_from_slice(&vi);
    }
    StaticFactors {
        v,
        denominators,
        damp,
        d,
    }
}

fn dot_f32(a: &[f64], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, &y)| x * y as f64).sum()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl StaticFactors {
    /// `F⁻¹x = x/λ − Σ_i (v_iᵀx / D_i)·v_i`. O(d·m).
    pub fn ihvp(&self, x: &[f32]) -> Vec<f64> {
        let mut out: Vec<f64> = x.iter().map(|&x| x as f64 / self.damp).collect();
        for (vi, di) in self.v.chunks(self.d).zip(&self.denominators) {
            let c = dot_f32(vi, x) / di;
            out.iter_mut().zip(vi).for_each(|(o, v)| *o -= c * v);
        }
        out
    }

    /// `[F⁻¹]_kk = 1/λ − Σ_i v_ik² / D_i`. O(d·m).
    pub fn inverse_diagonal(&self) -> Vec<f64> {
        let mut out = vec![1.0 / self.damp; self.d];
        for (vi, di) in self.v.chunks(self.d).zip(&self.denominators) {
            out.iter_mut().zip(vi).for_each(|(o, v)| *o -= v * v / di);
        }
        out
    }

    /// `[F⁻¹]_ij = δ_ij/λ − Σ_t v_ti v_tj / D_t`. O(m).
    pub fn inverse_entry(&self, i: usize, j: usize) -> f64 {
        let diagonal = if i == j { 1.0 / self.damp } else { 0.0 };
        let d = self.d;
        diagonal
            - self
                .v
                .chunks(d)
                .zip(&self.denominators)
                .map(|(v, den)| v[i] * v[j] / den)
                .sum::<f64>()
    }
}

/// The Woodbury form: with `M = c·I + G·Gᵀ/λ` (`c` gradients, `G` their `[c, d]` matrix)
/// factored as `M = L·diag(D)·Lᵀ` (L unit lower triangular) and `W = L⁻¹/λ`,
/// `F⁻¹x = x/λ − Gᵀ·Wᵀ·diag(D)⁻¹·W·G·x`; the static `v_i` are the rows of `W·G` and
/// the `D_i` are the same numbers as in [`sherman_morrison`].
#[derive(Clone, Debug)]
pub struct Factors {
    /// `[c, c]`, `W = L⁻¹/λ` (lower triangular).
    pub w: Vec<f64>,
    /// `[c]`, the pivots D_i of M.
    pub denominators: Vec<f64>,
}

impl Factors {
    /// Factors `M = c·I + gram/λ` for the `[c, c]` Gram matrix `G·Gᵀ` of c gradients.
    pub fn new(gram: &[f64], c: usize, damp: f64) -> Factors {
        // LDLᵀ, right-looking, on a copy of M.
        let mut a: Vec<f64> = gram.iter().map(|g| g / damp).collect();
        for i in 0..c {
            a[i * c + i] += c as f64;
        }
        let mut denominators = vec![0.0; c];
        for k in 0..c {
            let pivot = a[k * c + k];
            denominators[k] = pivot;
            for i in k + 1..c {
                let lik = a[i * c + k] / pivot;
                for j in k + 1..=i {
                    a[i * c + j] -= lik * a[j * c + k];
                }
            }
            for i in k + 1..c {
                a[i * c + k] /= pivot;
            }
        }
        // W = L⁻¹/λ by forward substitution, one column at a time.
        let mut w = vec![0.0; c * c];
        for j in 0..c {
            w[j * c + j] = 1.0;
            for i in j + 1..c {
                let s: f64 = (j..i).map(|t| a[i * c + t] * w[t * c + j]).sum();
                w[i * c + j] = -s;
            }
        }
        w.iter_mut().for_each(|x| *x /= damp);
        Factors { w, denominators }
    }

    /// The coefficients `Wᵀ·diag(D)⁻¹·W·a` applied to the dots `a = G·x`.
    pub fn coefficients(&self, a: &[f64]) -> Vec<f64> {
        let c = self.denominators.len();
        let y: Vec<f64> = (0..c)
            .map(|i| dot(&self.w[i * c..(i + 1) * c], a) / self.denominators[i])
            .collect();
        (0..c)
            .map(|j| (0..c).map(|i| self.w[i * c + j] * y[i]).sum())
            .collect()
    }
}

/// `G·Gᵀ` of `grads [c, d]`.
pub fn gram(grads: &[f32], d: usize) -> Vec<f64> {
    let c = grads.len() / d;
    let rows: Vec<Vec<f64>> = grads
        .chunks(d)
        .map(|g| g.iter().map(|&x| x as f64).collect())
        .collect();
    let mut out = vec![0.0; c * c];
    for i in 0..c {
        for j in 0..=i {
            let s = dot(&rows[i], &rows[j]);
            out[i * c + j] = s;
            out[j * c + i] = s;
        }
    }
    out
}

/// `F⁻¹x` for the gradients `grads [c, d]` through [`Factors`]: O(d·c + c²) once factored.
pub fn woodbury_ihvp(grads: &[f32], d: usize, factors: &Factors, x: &[f32], damp: f64) -> Vec<f64> {
    let a: Vec<f64> = grads
        .chunks(d)
        .map(|g| g.iter().zip(x).map(|(&g, &x)| g as f64 * x as f64).sum())
        .collect();
    let coefficients = factors.coefficients(&a);
    let mut out: Vec<f64> = x.iter().map(|&x| x as f64 / damp).collect();
    for (g, c) in grads.chunks(d).zip(&coefficients) {
        out.iter_mut().zip(g).for_each(|(o, &g)| *o -= c * g as f64);
    }
    out
}

/// The dense `[d, d]` inverse of `F = λ·I + (1/m)·GᵀG` by Cholesky, O(d³): for tests.
pub fn dense_inverse(grads: &[f32], d: usize, damp: f64) -> Vec<f64> {
    let m = grads.len() / d;
    let mut f = vec![0.0; d * d];
    for g in grads.chunks(d) {
        for i in 0..d {
            let gi = g[i] as f64 / m as f64;
            for j in 0..d {
                f[i * d + j] += gi * g[j] as f64;
            }
        }
    }
    for i in 0..d {
        f[i * d + i] += damp;
    }
    // Cholesky F = R·Rᵀ (lower R in place), then F⁻¹ column by column.
    for k in 0..d {
        let pivot = (f[k * d + k] - (0..k).map(|t| f[k * d + t].powi(2)).sum::<f64>()).sqrt();
        f[k * d + k] = pivot;
        for i in k + 1..d {
            let s: f64 = (0..k).map(|t| f[i * d + t] * f[k * d + t]).sum();
            f[i * d + k] = (f[i * d + k] - s) / pivot;
        }
    }
    let mut inverse = vec![0.0; d * d];
    let mut column = vec![0.0; d];
    for j in 0..d {
        // R y = e_j, then Rᵀ x = y.
        for i in 0..d {
            let s: f64 = (0..i).map(|t| f[i * d + t] * column[t]).sum();
            column[i] = (if i == j { 1.0 } else { 0.0 } - s) / f[i * d + i];
        }
        for i in (0..d).rev() {
            let s: f64 = (i + 1..d).map(|t| f[t * d + i] * column[t]).sum();
            column[i] = (column[i] - s) / f[i * d + i];
        }
        for i in 0..d {
            inverse[i * d + j] = column[i];
        }
    }
    inverse
}
