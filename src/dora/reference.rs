//! CPU reference for DoRA, accumulating in f64. Each function reads like its formula in
//! DESIGN.md; the GPU kernels in `shaders/dora/` follow the same steps.

use rayon::prelude::*;

use super::LoraShape;

/// Smallest norm divided by, so that all-zero rows of W give a finite g.
pub const NORM_EPS: f64 = 1e-12;

fn dot(x: impl Iterator<Item = f64>, y: impl Iterator<Item = f64>) -> f64 {
    x.zip(y).map(|(a, b)| a * b).sum()
}

/// Factored norm, never forming B·A:
/// `norm_j² = ‖W_j‖² + 2s·B_j·U_j + s²·B_j G B_jᵀ`, `U = W·Aᵀ`, `G = A·Aᵀ`, clamped at 0.
pub fn weight_norm(w: &[f32], a: &[f32], b: &[f32], shape: LoraShape, s: f64) -> Vec<f64> {
    let LoraShape { d_out, d_in, r } = shape;
    let a_row = |t: usize| &a[t * d_in..(t + 1) * d_in];
    let gram: Vec<f64> = (0..r * r)
        .into_par_iter()
        .map(|tu| dot(f64s(a_row(tu / r)), f64s(a_row(tu % r))))
        .collect();
    (0..d_out)
        .into_par_iter()
        .map(|j| {
            let w_j = &w[j * d_in..(j + 1) * d_in];
            let b_j = &b[j * r..(j + 1) * r];
            let base = dot(f64s(w_j), f64s(w_j));
            if s == 0.0 {
                return base.sqrt();
            }
            let u_j: Vec<f64> = (0..r).map(|t| dot(f64s(w_j), f64s(a_row(t)))).collect();
            let cross = 2.0 * s * dot(f64s(b_j), u_j.iter().copied());
            let gram_term: f64 = (0..r)
                .map(|t| b_j[t] as f64 * dot(f64s(b_j), (0..r).map(|u| gram[t * r + u])))
                .sum();
            (base + cross + s * s * gram_term).max(0.0).sqrt()
        })
        .collect()
}

/// The definition, materialising B·A row by row: `norm_j = ‖W_j + s·(B·A)_j‖₂`.
pub fn weight_norm_dense(w: &[f32], a: &[f32], b: &[f32], shape: LoraShape, s: f64) -> Vec<f64> {
    let LoraShape { d_out, d_in, r } = shape;
    (0..d_out)
        .into_par_iter()
        .map(|j| {
            (0..d_in)
                .map(|i| {
                    let ba: f64 = (0..r)
                        .map(|t| b[j * r + t] as f64 * a[t * d_in + i] as f64)
                        .sum();
                    (w[j * d_in + i] as f64 + s * ba).powi(2)
                })
                .sum::<f64>()
                .sqrt()
        })
        .collect()
}

/// `g = magnitude / max(norm, 1e-12)`.
pub fn gain(magnitude: &[f32], norm: &[f32]) -> Vec<f64> {
    magnitude
        .iter()
        .zip(norm)
        .map(|(&m, &n)| m as f64 / (n as f64).max(NORM_EPS))
        .collect()
}

/// `y = base + (g−1)⊙base + g⊙(s·lora)`, g broadcast along rows of `[n, d_out]`.
pub fn compose(base: &[f32], lora: &[f32], magnitude: &[f32], norm: &[f32], s: f64) -> Vec<f64> {
    let g = gain(magnitude, norm);
    let d_out = g.len();
    base.iter()
        .zip(lora)
        .enumerate()
        .map(|(i, (&x, &l))| {
            let (x, g) = (x as f64, g[i % d_out]);
            x + (g - 1.0) * x + g * (s * l as f64)
        })
        .collect()
}

/// Gradients of `L = Σ dy⊙y` for the compose, norm held constant:
/// `d_base = g·dy`, `d_lora = g·s·dy`, `d_magnitude_j = Σ_n dy·(base + s·lora) / max(norm_j, 1e-12)`.
pub fn compose_backward(
    dy: &[f32],
    base: &[f32],
    lora: &[f32],
    magnitude: &[f32],
    norm: &[f32],
    s: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let g = gain(magnitude, norm);
    let d_out = g.len();
    let d_base = dy
        .iter()
        .enumerate()
        .map(|(i, &d)| g[i % d_out] * d as f64)
        .collect();
    let d_lora = dy
        .iter()
        .enumerate()
        .map(|(i, &d)| g[i % d_out] * s * d as f64)
        .collect();
    let mut d_magnitude = vec![0.0; d_out];
    for (i, &d) in dy.iter().enumerate() {
        d_magnitude[i % d_out] += d as f64 * (base[i] as f64 + s * lora[i] as f64);
    }
    for (dm, &n) in d_magnitude.iter_mut().zip(norm) {
        *dm /= (n as f64).max(NORM_EPS);
    }
    (d_base, d_lora, d_magnitude)
}

/// The DoRA layer: compose with `base = x·Wᵀ`, `lora = (x·Aᵀ)·Bᵀ`, `norm = ‖W + s·B·A‖_row`
/// ([`layer_forward`] on the inputs widened to f64).
pub fn forward(
    x: &[f32],
    w: &[f32],
    a: &[f32],
    b: &[f32],
    magnitude: &[f32],
    shape: LoraShape,
    s: f64,
) -> Vec<f64> {
    let wide = |v: &[f32]| f64s(v).collect::<Vec<f64>>();
    layer_forward(
        &wide(x),
        &wide(w),
        &wide(a),
        &wide(b),
        &wide(magnitude),
        shape,
        s,
    )
}

fn f64s(x: &[f32]) -> impl Iterator<Item = f64> + '_ {
    x.iter().map(|&v| v as f64)
}

/// Gradients of the DoRA layer (see [`layer_backward`]), in f64.
#[derive(Clone, Debug)]
pub struct LayerGradients {
    /// `∂L/∂x`, `[n, d_in]`.
    pub x: Vec<f64>,
    /// `∂L/∂A`, `[r, d_in]`.
    pub a: Vec<f64>,
    /// `∂L/∂B`, `[d_out, r]`.
    pub b: Vec<f64>,
    /// `∂L/∂m`, `[d_out]`.
    pub magnitude: Vec<f64>,
}

/// `y = g⊙(x·Wᵀ + s·(x·Aᵀ)·Bᵀ)`, `g = m / max(‖W + s·B·A‖_row, 1e-12)`, every input and
/// every step in f64, the norm by its definition: the function [`layer_backward`]
/// differentiates, for finite differences.
pub fn layer_forward(
    x: &[f64],
    w: &[f64],
    a: &[f64],
    b: &[f64],
    magnitude: &[f64],
    shape: LoraShape,
    s: f64,
) -> Vec<f64> {
    let LoraShape { d_out, d_in, r } = shape;
    let n = x.len() / d_in;
    let merged = merged_weight(w, a, b, shape, s);
    let norm = row_norms(&merged, d_in);
    let mut y = vec![0.0; n * d_out];
    for row in 0..n {
        let x_row = &x[row * d_in..(row + 1) * d_in];
        let xa: Vec<f64> = (0..r)
            .map(|t| dot_f64(x_row, &a[t * d_in..(t + 1) * d_in]))
            .collect();
        for j in 0..d_out {
            let base = dot_f64(x_row, &w[j * d_in..(j + 1) * d_in]);
            let lora = dot_f64(&b[j * r..(j + 1) * r], &xa);
            y[row * d_out + j] = magnitude[j] / norm[j].max(NORM_EPS) * (base + s * lora);
        }
    }
    y
}

/// Gradients of `L = Σ dy⊙y` for [`layer_forward`], W frozen. With `exact = false` the norm
/// is held constant (DoRA §4.3, PEFT):
/// `∂m_j = Σ_n dy_nj·(base + s·lora)_nj / norm_j`, `d_lora = s·g⊙dy`,
/// `∂x = (g⊙dy)·W + (d_lora·B)·A`, `∂A = (d_lora·B)ᵀ·x`, `∂B = d_loraᵀ·(x·Aᵀ)`.
/// With `exact = true` the path through `norm_j = ‖M_j‖`, `M_j = W_j + s·B_j·A`, is added:
/// with `κ_j = −(m_j/norm_j²)·Σ_n dy_nj·(base + s·lora)_nj` (0 where the norm is clamped),
/// `∂B_j += κ_j·s·M_j·Aᵀ/norm_j` and `∂A += s·Σ_j κ_j·B_jᵀ·M_j/norm_j`.
#[allow(clippy::too_many_arguments)]
pub fn layer_backward(
    x: &[f64],
    w: &[f64],
    a: &[f64],
    b: &[f64],
    magnitude: &[f64],
    shape: LoraShape,
    s: f64,
    dy: &[f64],
    exact: bool,
) -> LayerGradients {
    let LoraShape { d_out, d_in, r } = shape;
    let n = x.len() / d_in;
    let merged = merged_weight(w, a, b, shape, s);
    let norm = row_norms(&merged, d_in);
    let g: Vec<f64> = (0..d_out)
        .map(|j| magnitude[j] / norm[j].max(NORM_EPS))
        .collect();
    let mut grads = LayerGradients {
        x: vec![0.0; n * d_in],
        a: vec![0.0; r * d_in],
        b: vec![0.0; d_out * r],
        magnitude: vec![0.0; d_out],
    };
    let mut sums = vec![0.0; d_out]; // Σ_n dy·(base + s·lora)
    for row in 0..n {
        let x_row = &x[row * d_in..(row + 1) * d_in];
        let xa: Vec<f64> = (0..r)
            .map(|t| dot_f64(x_row, &a[t * d_in..(t + 1) * d_in]))
            .collect();
        let mut lora_back = vec![0.0; r]; // (d_lora·B) of this row
        for j in 0..d_out {
            let dy_j = dy[row * d_out + j];
            let base = dot_f64(x_row, &w[j * d_in..(j + 1) * d_in]);
            let lora = dot_f64(&b[j * r..(j + 1) * r], &xa);
            sums[j] += dy_j * (base + s * lora);
            let (d_base, d_lora) = (g[j] * dy_j, s * g[j] * dy_j);
            for i in 0..d_in {
                grads.x[row * d_in + i] += d_base * w[j * d_in + i];
            }
            for t in 0..r {
                lora_back[t] += d_lora * b[j * r + t];
                grads.b[j * r + t] += d_lora * xa[t];
            }
        }
        for t in 0..r {
            for i in 0..d_in {
                grads.x[row * d_in + i] += lora_back[t] * a[t * d_in + i];
                grads.a[t * d_in + i] += lora_back[t] * x_row[i];
            }
        }
    }
    for j in 0..d_out {
        grads.magnitude[j] = sums[j] / norm[j].max(NORM_EPS);
    }
    if exact {
        for j in 0..d_out {
            if norm[j] <= NORM_EPS {
                continue; // the clamp: g does not depend on the norm there
            }
            let kappa = -magnitude[j] / (norm[j] * norm[j]) * sums[j];
            let m_j = &merged[j * d_in..(j + 1) * d_in];
            for t in 0..r {
                let m_a = dot_f64(m_j, &a[t * d_in..(t + 1) * d_in]);
                grads.b[j * r + t] += kappa * s * m_a / norm[j];
                let grad_a = &mut grads.a[t * d_in..(t + 1) * d_in];
                for (g, &m_ji) in grad_a.iter_mut().zip(m_j) {
                    *g += s * kappa * b[j * r + t] * m_ji / norm[j];
                }
            }
        }
    }
    grads
}

/// `M = W + s·B·A`, `[d_out, d_in]` (the reference only: the kernels never form it).
fn merged_weight(w: &[f64], a: &[f64], b: &[f64], shape: LoraShape, s: f64) -> Vec<f64> {
    let LoraShape { d_out, d_in, r } = shape;
    (0..d_out * d_in)
        .map(|at| {
            let (j, i) = (at / d_in, at % d_in);
            w[at] + s * (0..r).map(|t| b[j * r + t] * a[t * d_in + i]).sum::<f64>()
        })
        .collect()
}

fn row_norms(m: &[f64], cols: usize) -> Vec<f64> {
    m.chunks(cols).map(|row| dot_f64(row, row).sqrt()).collect()
}

fn dot_f64(x: &[f64], y: &[f64]) -> f64 {
    x.iter().zip(y).map(|(a, b)| a * b).sum()
}
