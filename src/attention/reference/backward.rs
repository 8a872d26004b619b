//! The f64 reference of the attention gradients: vector–Jacobian products `∂L/∂q, ∂L/∂k,
//! ∂L/∂v` for an upstream `g = ∂L/∂out`, written as the quadratic forms they differentiate.
//!
//! Linear attention, per query i over its keys J(i), with `a_i = φ_q(q_i)`, `b_j = φ_k(k_j)`,
//! `s_ij = a_i·b_j`, `D_i = Σ_j s_ij + ε_i`, `out_i = Σ_j s_ij v_j / D_i`, `δ_i = g_i·out_i`:
//! `∂s_ij = (g_i·v_j − δ_i)/D_i`, `∂a_i = Σ_j ∂s_ij b_j`, `∂b_j = Σ_i ∂s_ij a_i`,
//! `∂v_j = Σ_i s_ij g_i/D_i`, then through the feature maps.
//!
//! Softmax attention, with `P_ij = exp(q_i·k_j/√dk − lse_i)` and `Δ_i = g_i·out_i`:
//! `∂v_j = Σ_i P_ij g_i`, `∂S_ij = P_ij (g_i·v_j − Δ_i)`, `∂q_i = Σ_j ∂S_ij k_j/√dk`,
//! `∂k_j = Σ_i ∂S_ij q_i/√dk`.

use rayon::prelude::*;

use super::{epsilon, key_features, query_features, Dims, FeatureMap};

/// `∂L/∂q`, `∂L/∂k` (`[heads, n, dk]`) and `∂L/∂v` (`[heads, n, dv]`), row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Gradients {
    pub q: Vec<f64>,
    pub k: Vec<f64>,
    pub v: Vec<f64>,
}

/// One head's slices: q, k (`[n, dk]`), v and g (`[n, dv]`).
struct Head<'a> {
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    g: &'a [f32],
}

/// Runs `head` on every head in parallel and concatenates its `(∂q, ∂k, ∂v)`.
fn per_head(
    [q, k, v, g]: [&[f32]; 4],
    dims: Dims,
    head: impl Fn(Head<'_>) -> [Vec<f64>; 3] + Sync,
) -> Gradients {
    let Dims { heads, n, dk, dv } = dims;
    let parts: Vec<[Vec<f64>; 3]> = (0..heads)
        .into_par_iter()
        .map(|h| {
            let qk = h * n * dk..(h + 1) * n * dk;
            let vg = h * n * dv..(h + 1) * n * dv;
            head(Head {
                q: &q[qk.clone()],
                k: &k[qk],
                v: &v[vg.clone()],
                g: &g[vg],
            })
        })
        .collect();
    let mut grads = Gradients {
        q: Vec::with_capacity(heads * n * dk),
        k: Vec::with_capacity(heads * n * dk),
        v: Vec::with_capacity(heads * n * dv),
    };
    for [dq, dk, dv] in parts {
        grads.q.extend(dq);
        grads.k.extend(dk);
        grads.v.extend(dv);
    }
    grads
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn dot32(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

/// `y += alpha·x`.
fn axpy(y: &mut [f64], alpha: f64, x: impl IntoIterator<Item = f64>) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += alpha * x;
    }
}

/// Row `i` of a row-major `[·, width]` slice.
fn row(x: &[f32], width: usize, i: usize) -> &[f32] {
    &x[i * width..(i + 1) * width]
}

/// The keys query i attends: j ≤ i when causal, all n otherwise.
fn keys(n: usize, i: usize, causal: bool) -> usize {
    if causal {
        i + 1
    } else {
        n
    }
}

/// The vector–Jacobian product of [`key_features`] at `k` for `d = ∂L/∂φ_k(k)`:
/// elu+1: `d·(1 if k > 0 else e^k)`; norm-aware: `3·(d⁺·relu(k)² − d⁻·relu(−k)²)`.
pub fn key_features_backward(map: FeatureMap, k: &[f32], d: &[f64]) -> Vec<f64> {
    let dk = k.len();
    match map {
        FeatureMap::EluPlusOne => elu_backward(k, d),
        FeatureMap::NormAware => k
            .iter()
            .enumerate()
            .map(|(f, &x)| {
                let x = x as f64;
                let square = |y: f64| if y > 0.0 { y * y } else { 0.0 };
                3.0 * (d[f] * square(x) - d[dk + f] * square(-x))
            })
            .collect(),
    }
}

fn elu_backward(x: &[f32], d: &[f64]) -> Vec<f64> {
    x.iter()
        .zip(d)
        .map(|(&x, &d)| if x > 0.0 { d } else { d * (x as f64).exp() })
        .collect()
}

/// The vector–Jacobian product of [`query_features`] at `q` for `d = ∂L/∂φ_q(q)`.
/// Norm-aware, with `r = ‖q‖`, `u_f = relu(±q)/r`, `a_f = u_f^p`, `p = 3·(0.5 + tanh r)`:
/// `∂q_g = (Σ_{f on g} ±p·d_f·u_f^(p−1) − (q_g/r)·(p·Σ_f d_f a_f − 3·sech²(r)·r·Σ_f d_f a_f ln u_f)) / r`;
/// 0 for a zero query, where the map has no derivative (it is 0 there and not continuous).
pub fn query_features_backward(map: FeatureMap, q: &[f32], d: &[f64]) -> Vec<f64> {
    let dk = q.len();
    match map {
        FeatureMap::EluPlusOne => elu_backward(q, d),
        FeatureMap::NormAware => {
            let r = q.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
            if r == 0.0 {
                return vec![0.0; dk];
            }
            let p = 3.0 * (0.5 + r.tanh());
            let sech2 = 1.0 - r.tanh().powi(2);
            // u_f for the 2·dk features: relu(q)/r, then relu(−q)/r.
            let u = |f: usize| {
                let x = q[f % dk] as f64;
                let y = if f < dk { x } else { -x };
                if y > 0.0 {
                    y / r
                } else {
                    0.0
                }
            };
            let (mut t1, mut t2) = (0.0, 0.0);
            for (f, &df) in d.iter().enumerate() {
                let uf = u(f);
                if uf > 0.0 {
                    let a = uf.powf(p);
                    t1 += df * a;
                    t2 += df * a * uf.ln();
                }
            }
            (0..dk)
                .map(|g| {
                    let direct =
                        p * (d[g] * u(g).powf(p - 1.0) - d[dk + g] * u(dk + g).powf(p - 1.0));
                    let unit = q[g] as f64 / r;
                    (direct - unit * (p * t1 - 3.0 * sech2 * r * t2)) / r
                })
                .collect()
        }
    }
}

/// The gradients of [`linear`](super::linear) for `d_out` (`[heads, n, dv]`), by the
/// quadratic form: O(n²·(dk + dv)) per head.
pub fn linear_backward(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    d_out: &[f32],
    dims: Dims,
    map: FeatureMap,
    causal: bool,
) -> Gradients {
    let Dims { n, dk, dv, .. } = dims;
    per_head([q, k, v, d_out], dims, |head| {
        let a: Vec<Vec<f64>> = (0..n)
            .map(|i| query_features(map, row(head.q, dk, i)))
            .collect();
        let b: Vec<Vec<f64>> = (0..n)
            .map(|j| key_features(map, row(head.k, dk, j)))
            .collect();
        let f = a.first().map_or(0, Vec::len);
        let (mut da, mut db) = (vec![vec![0.0; f]; n], vec![vec![0.0; f]; n]);
        let mut dv_grad = vec![0.0; n * dv];
        for i in 0..n {
            let count = keys(n, i, causal);
            let s: Vec<f64> = (0..count).map(|j| dot(&a[i], &b[j])).collect();
            let denominator = s.iter().sum::<f64>() + epsilon(map, count);
            let mut out = vec![0.0; dv];
            for (j, &sij) in s.iter().enumerate() {
                axpy(
                    &mut out,
                    sij / denominator,
                    head.v[j * dv..(j + 1) * dv].iter().map(|&x| x as f64),
                );
            }
            let gi = &head.g[i * dv..(i + 1) * dv];
            let delta: f64 = gi.iter().zip(&out).map(|(&g, o)| g as f64 * o).sum();
            for (j, &sij) in s.iter().enumerate() {
                let vj = &head.v[j * dv..(j + 1) * dv];
                let ds = (dot32(gi, vj) - delta) / denominator;
                axpy(&mut da[i], ds, b[j].iter().copied());
                axpy(&mut db[j], ds, a[i].iter().copied());
                axpy(
                    &mut dv_grad[j * dv..(j + 1) * dv],
                    sij / denominator,
                    gi.iter().map(|&x| x as f64),
                );
            }
        }
        let dq = (0..n).flat_map(|i| query_features_backward(map, row(head.q, dk, i), &da[i]));
        let dk_grad = (0..n).flat_map(|j| key_features_backward(map, row(head.k, dk, j), &db[j]));
        [dq.collect(), dk_grad.collect(), dv_grad]
    })
}

/// The per-row log-sum-exp of the scaled scores that softmax attention normalises by:
/// `lse_i = ln Σ_j exp(q_i·k_j/√dk)` over the keys of query i (`[heads, n]`).
pub fn softmax_log_sum_exp(q: &[f32], k: &[f32], dims: Dims, causal: bool) -> Vec<f64> {
    let Dims { heads, n, dk, .. } = dims;
    (0..heads * n)
        .into_par_iter()
        .map(|row| {
            let (h, i) = (row / n, row % n);
            let scores = scores(
                &q[row * dk..(row + 1) * dk],
                &k[h * n * dk..(h + 1) * n * dk],
                keys(n, i, causal),
            );
            log_sum_exp(&scores)
        })
        .collect()
}

/// `q·k_j/√dk` for the first `count` keys.
fn scores(q: &[f32], k: &[f32], count: usize) -> Vec<f64> {
    let dk = q.len();
    let scale = 1.0 / (dk as f64).sqrt();
    (0..count)
        .map(|j| scale * dot32(q, &k[j * dk..(j + 1) * dk]))
        .collect()
}

fn log_sum_exp(scores: &[f64]) -> f64 {
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    max + scores.iter().map(|s| (s - max).exp()).sum::<f64>().ln()
}

/// The gradients of [`softmax`](super::softmax) for `d_out` (`[heads, n, dv]`).
pub fn softmax_backward(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    d_out: &[f32],
    dims: Dims,
    causal: bool,
) -> Gradients {
    let Dims { n, dk, dv, .. } = dims;
    let scale = 1.0 / (dk as f64).sqrt();
    per_head([q, k, v, d_out], dims, |head| {
        let (mut dq, mut dk_grad, mut dv_grad) =
            (vec![0.0; n * dk], vec![0.0; n * dk], vec![0.0; n * dv]);
        for i in 0..n {
            let qi = &head.q[i * dk..(i + 1) * dk];
            let s = scores(qi, head.k, keys(n, i, causal));
            let lse = log_sum_exp(&s);
            let weights: Vec<f64> = s.iter().map(|s| (s - lse).exp()).collect();
            let gi = &head.g[i * dv..(i + 1) * dv];
            let mut out = vec![0.0; dv];
            for (j, &w) in weights.iter().enumerate() {
                axpy(
                    &mut out,
                    w,
                    head.v[j * dv..(j + 1) * dv].iter().map(|&x| x as f64),
                );
            }
            let delta: f64 = gi.iter().zip(&out).map(|(&g, o)| g as f64 * o).sum();
            for (j, &w) in weights.iter().enumerate() {
                let vj = &head.v[j * dv..(j + 1) * dv];
                let kj = &head.k[j * dk..(j + 1) * dk];
                let ds = w * (dot32(gi, vj) - delta) * scale;
                axpy(
                    &mut dq[i * dk..(i + 1) * dk],
                    ds,
                    kj.iter().map(|&x| x as f64),
                );
                axpy(
                    &mut dk_grad[j * dk..(j + 1) * dk],
                    ds,
                    qi.iter().map(|&x| x as f64),
                );
                axpy(
                    &mut dv_grad[j * dv..(j + 1) * dv],
                    w,
                    gi.iter().map(|&x| x as f64),
                );
            }
        }
        [dq, dk_grad, dv_grad]
    })
}
