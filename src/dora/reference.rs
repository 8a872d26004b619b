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

/// The DoRA layer: compose with `base = x·Wᵀ`, `lora = (x·Aᵀ)·Bᵀ`, `norm = weight_norm(W, A, B, s)`.
pub fn forward(
    x: &[f32],
    w: &[f32],
    a: &[f32],
    b: &[f32],
    magnitude: &[f32],
    shape: LoraShape,
    s: f64,
) -> Vec<f64> {
    let LoraShape { d_out, d_in, r } = shape;
    let rows = x.len() / d_in;
    let norm = weight_norm(w, a, b, shape, s);
    let g: Vec<f64> = magnitude
        .iter()
        .zip(&norm)
        .map(|(&m, &n)| m as f64 / n.max(NORM_EPS))
        .collect();
    (0..rows * d_out)
        .into_par_iter()
        .map(|at| {
            let (row, j) = (at / d_out, at % d_out);
            let x_row = &x[row * d_in..(row + 1) * d_in];
            let base = dot(f64s(x_row), f64s(&w[j * d_in..(j + 1) * d_in]));
            let lora: f64 = (0..r)
                .map(|t| b[j * r + t] as f64 * dot(f64s(x_row), f64s(&a[t * d_in..(t + 1) * d_in])))
                .sum();
            base + (g[j] - 1.0) * base + g[j] * (s * lora)
        })
        .collect()
}

fn f64s(x: &[f32]) -> impl Iterator<Item = f64> + '_ {
    x.iter().map(|&v| v as f64)
}
