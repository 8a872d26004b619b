//! The f64 CPU reference of linear and softmax attention, written as DESIGN.md states it.
//!
//! Tensors are row-major `[heads, n, d]` slices (batch and heads flattened: every head is
//! independent). [`linear`] is the explicit quadratic form `Σ_j s_ij v_j / (Σ_j s_ij + ε_i)`;
//! [`linear_recurrent`] is the O(n) state form `S_i = Σ_{j≤i} φ_k(k_j) v_jᵀ` that the GPU's
//! chunked kernels and the decoder compute. They agree to f64 rounding, which the tests check.

use rayon::prelude::*;

use super::FeatureMap;

/// The ε of the normaliser: `1e-6` for elu+1, `count·1e-6` for NormAware.
pub const EPS: f64 = 1e-6;

/// Length of φ(x) for a `d`-dimensional x: `d` for elu+1, `2d` for NormAware.
pub fn feature_len(map: FeatureMap, d: usize) -> usize {
    match map {
        FeatureMap::EluPlusOne => d,
        FeatureMap::NormAware => 2 * d,
    }
}

/// max(x, 0), but NaN stays NaN (f64::max would drop it).
fn relu(x: f64) -> f64 {
    if x.is_nan() {
        x
    } else {
        x.max(0.0)
    }
}

fn elu_plus_one(x: f64) -> f64 {
    if x > 0.0 {
        x + 1.0
    } else {
        x.exp()
    }
}

/// φ_k(k): `elu(k)+1`, or `[relu(k³), relu(−k³)]`.
pub fn key_features(map: FeatureMap, k: &[f32]) -> Vec<f64> {
    match map {
        FeatureMap::EluPlusOne => k.iter().map(|&x| elu_plus_one(x as f64)).collect(),
        FeatureMap::NormAware => {
            let cube = |x: f64| relu(x).powi(3);
            let pos = k.iter().map(|&x| cube(x as f64));
            let neg = k.iter().map(|&x| cube(-x as f64));
            pos.chain(neg).collect()
        }
    }
}

/// φ_q(q): `elu(q)+1`, or `[(relu(q)/‖q‖)^p, (relu(−q)/‖q‖)^p]` with `p = 3·(0.5 + tanh‖q‖)`;
/// a zero q maps to zero features (the ratio has no limit there).
pub fn query_features(map: FeatureMap, q: &[f32]) -> Vec<f64> {
    match map {
        FeatureMap::EluPlusOne => q.iter().map(|&x| elu_plus_one(x as f64)).collect(),
        FeatureMap::NormAware => {
            let norm = q.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
            let p = 3.0 * (0.5 + norm.tanh());
            let power = |x: f64| {
                if norm > 0.0 && x > 0.0 {
                    (x / norm).powf(p)
                } else {
                    0.0
                }
            };
            let pos = q.iter().map(|&x| power(x as f64));
            let neg = q.iter().map(|&x| power(-x as f64));
            pos.chain(neg).collect()
        }
    }
}

/// The normaliser's ε for a query attending `count` keys.
pub fn epsilon(map: FeatureMap, count: usize) -> f64 {
    match map {
        FeatureMap::EluPlusOne => EPS,
        FeatureMap::NormAware => count as f64 * EPS,
    }
}

/// Shape of one call: `heads` independent `[n, dk]`, `[n, dk]`, `[n, dv]` triples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// batch × heads.
    pub heads: usize,
    /// Sequence length.
    pub n: usize,
    /// Query and key width.
    pub dk: usize,
    /// Value width.
    pub dv: usize,
}

/// Runs `head(q, k, v, out)` on every head in parallel, on `[n, d]` slices.
fn per_head(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    dims: Dims,
    head: impl Fn(&[f32], &[f32], &[f32], &mut [f64]) + Sync,
) -> Vec<f64> {
    let Dims { heads, n, dk, dv } = dims;
    let mut out = vec![0.0; heads * n * dv];
    if n * dv == 0 {
        return out;
    }
    out.par_chunks_mut(n * dv).enumerate().for_each(|(h, o)| {
        let qk = h * n * dk..(h + 1) * n * dk;
        head(&q[qk.clone()], &k[qk], &v[h * n * dv..(h + 1) * n * dv], o)
    });
    out
}

/// Linear attention as the explicit quadratic form: for every query i, over keys j (j ≤ i
/// when causal), `s_ij = φ_q(q_i)·φ_k(k_j)`, `out_i = Σ_j s_ij v_j / (Σ_j s_ij + ε_i)`.
/// O(n²·(dk + dv)) per head.
pub fn linear(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    dims: Dims,
    map: FeatureMap,
    causal: bool,
) -> Vec<f64> {
    let Dims { n, dk, dv, .. } = dims;
    per_head(q, k, v, dims, |q, k, v, out| {
        let phi_k: Vec<Vec<f64>> = k.chunks(dk).map(|k| key_features(map, k)).collect();
        for i in 0..n {
            let phi_q = query_features(map, &q[i * dk..(i + 1) * dk]);
            let keys = if causal { i + 1 } else { n };
            let mut numerator = vec![0.0; dv];
            let mut denominator = 0.0;
            for j in 0..keys {
                let s: f64 = phi_q.iter().zip(&phi_k[j]).map(|(a, b)| a * b).sum();
                for (o, &x) in numerator.iter_mut().zip(&v[j * dv..(j + 1) * dv]) {
                    *o += s * x as f64;
                }
                denominator += s;
            }
            let denominator = denominator + epsilon(map, keys);
            for (o, x) in out[i * dv..(i + 1) * dv].iter_mut().zip(numerator) {
                *o = x / denominator;
            }
        }
    })
}

/// The state of one head after some keys: `S = Σ_j φ_k(k_j) v_jᵀ` (`[f, dv]`),
/// `z = Σ_j φ_k(k_j)` and the number of keys.
#[derive(Clone, Debug)]
pub struct State {
    map: FeatureMap,
    dv: usize,
    s: Vec<f64>,
    z: Vec<f64>,
    count: usize,
}

impl State {
    /// The empty state of a head with key width `dk` and value width `dv`.
    pub fn new(map: FeatureMap, dk: usize, dv: usize) -> State {
        let f = feature_len(map, dk);
        State {
            map,
            dv,
            s: vec![0.0; f * dv],
            z: vec![0.0; f],
            count: 0,
        }
    }

    /// `S += φ_k(k) vᵀ`, `z += φ_k(k)`.
    pub fn push(&mut self, k: &[f32], v: &[f32]) {
        let phi_k = key_features(self.map, k);
        for ((row, z), &p) in self.s.chunks_mut(self.dv).zip(&mut self.z).zip(&phi_k) {
            for (s, &x) in row.iter_mut().zip(v) {
                *s += p * x as f64;
            }
            *z += p;
        }
        self.count += 1;
    }

    /// `φ_q(q)ᵀS / (φ_q(q)·z + ε)` over the keys pushed so far.
    pub fn query(&self, q: &[f32]) -> Vec<f64> {
        let phi_q = query_features(self.map, q);
        let mut numerator = vec![0.0; self.dv];
        let mut denominator = epsilon(self.map, self.count);
        for ((row, z), p) in self.s.chunks(self.dv).zip(&self.z).zip(&phi_q) {
            for (o, s) in numerator.iter_mut().zip(row) {
                *o += p * s;
            }
            denominator += p * z;
        }
        numerator.into_iter().map(|x| x / denominator).collect()
    }
}

/// Linear attention in the O(n) state form: causal pushes key i before answering query i;
/// non-causal pushes every key first. Equals [`linear`] up to f64 rounding.
pub fn linear_recurrent(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    dims: Dims,
    map: FeatureMap,
    causal: bool,
) -> Vec<f64> {
    let Dims { n, dk, dv, .. } = dims;
    per_head(q, k, v, dims, |q, k, v, out| {
        let mut state = State::new(map, dk, dv);
        let push = |state: &mut State, j: usize| {
            state.push(&k[j * dk..(j + 1) * dk], &v[j * dv..(j + 1) * dv])
        };
        if !causal {
            (0..n).for_each(|j| push(&mut state, j));
        }
        for i in 0..n {
            if causal {
                push(&mut state, i);
            }
            out[i * dv..(i + 1) * dv].copy_from_slice(&state.query(&q[i * dk..(i + 1) * dk]));
        }
    })
}

/// Exact softmax attention: `out_i = Σ_j softmax_j(q_i·k_j/√dk) v_j` over j (j ≤ i when causal).
pub fn softmax(q: &[f32], k: &[f32], v: &[f32], dims: Dims, causal: bool) -> Vec<f64> {
    let Dims { n, dk, dv, .. } = dims;
    let scale = 1.0 / (dk as f64).sqrt();
    per_head(q, k, v, dims, |q, k, v, out| {
        for i in 0..n {
            let keys = if causal { i + 1 } else { n };
            let qi = &q[i * dk..(i + 1) * dk];
            let scores: Vec<f64> = (0..keys)
                .map(|j| {
                    let kj = &k[j * dk..(j + 1) * dk];
                    scale
                        * qi.iter()
                            .zip(kj)
                            .map(|(&a, &b)| a as f64 * b as f64)
                            .sum::<f64>()
                })
                .collect();
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let total: f64 = weights.iter().sum();
            let o = &mut out[i * dv..(i + 1) * dv];
            for (j, w) in weights.iter().enumerate() {
                for (o, &x) in o.iter_mut().zip(&v[j * dv..(j + 1) * dv]) {
                    *o += w / total * x as f64;
                }
            }
        }
    })
}

mod backward;
pub use backward::{
    key_features_backward, linear_backward, query_features_backward, softmax_backward,
    softmax_log_sum_exp, Gradients,
};
