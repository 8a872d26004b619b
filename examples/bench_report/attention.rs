//! Attention rows: linear attention (elu+1 and norm-aware, causal and not) against exact
//! softmax attention at n = 64 … 16384, d = 64, forward and backward; the growth of each in
//! n, the n from which linear attention is faster, and each backward's time over its forward.

use rand::rngs::StdRng;
use wgkernels::attention::{self, reference, Dims, FeatureMap};
use wgkernels::bench::time_calls;
use wgkernels::compare::{max_abs_error, relative_error};
use wgkernels::{Context, Result};

use crate::report::{crossover, growth_exponent, Bound, Report, Row};
use crate::uniform;

const D: usize = 64;
/// The n, and two smaller ones to locate the crossover below 256.
const SIZES: [usize; 6] = [64, 128, 256, 1024, 4096, 16384];
/// Chunk length of the causal kernels (TILE in shaders/attention).
const CHUNK: f64 = 32.0;

fn linear_name(map: FeatureMap, causal: bool) -> String {
    let map = match map {
        FeatureMap::EluPlusOne => "elu+1",
        FeatureMap::NormAware => "norm-aware",
    };
    format!(
        "attention::linear ({map}{})",
        if causal { ", causal" } else { "" }
    )
}

fn softmax_name(causal: bool) -> String {
    format!(
        "attention::softmax{}",
        if causal { " (causal)" } else { "" }
    )
}

/// The backward's row name for a forward's.
fn backward_name(forward: &str) -> String {
    forward
        .replacen("attention::linear", "attention::linear_backward", 1)
        .replacen("attention::softmax", "attention::softmax_backward", 1)
}

/// The worst relative error over ∂q, ∂k, ∂v and the largest absolute one.
fn gradient_error(
    got: &attention::AttentionGrads,
    want: &reference::Gradients,
) -> Result<(f64, f64)> {
    let mut worst = (0.0f64, 0.0f64);
    for (got, want) in [(&got.q, &want.q), (&got.k, &want.k), (&got.v, &want.v)] {
        let got = got.to_vec()?;
        worst.0 = worst.0.max(relative_error(&got, want));
        worst.1 = worst.1.max(max_abs_error(&got, want));
    }
    Ok(worst)
}

/// The largest n whose backward is checked against the f64 quadratic reference (O(n²·d)).
const BACKWARD_CHECK_MAX_N: usize = 1024;

pub fn rows(ctx: &Context, rng: &mut StdRng, report: &mut Report) -> Result<()> {
    // lavapipe runs one head; a GPU gets 8 so that small n still gives it work. On lavapipe
    // softmax at n = 16384 would take ~2 min a call: it stops at 4096 there.
    let on_cpu = ctx.device_type() == Some(wgkernels::wgpu::DeviceType::Cpu);
    let (batch, heads) = if on_cpu { (1, 1) } else { (1, 8) };
    let softmax_max_n = if on_cpu { 4096 } else { 16384 };
    // The softmax backward is ~3× its forward: on lavapipe it stops at 1024 (~1 s a call).
    let softmax_backward_max_n = if on_cpu { 1024 } else { 16384 };
    let maps = [FeatureMap::EluPlusOne, FeatureMap::NormAware];
    for causal in [false, true] {
        for n in SIZES {
            let dims = Dims {
                heads: batch * heads,
                n,
                dk: D,
                dv: D,
            };
            let len = batch * heads * n * D;
            let (q, k, v) = (uniform(rng, len), uniform(rng, len), uniform(rng, len));
            let shape = [batch, heads, n, D];
            let (tq, tk, tv) = (
                ctx.tensor(&q, &shape)?,
                ctx.tensor(&k, &shape)?,
                ctx.tensor(&v, &shape)?,
            );
            let shape_s = format!("[{batch},{heads},{n},{D}]");
            let bytes = (4 * len * 4) as f64; // q, k, v read once, out written once

            let softmax = if n <= softmax_max_n {
                let timing = time_calls(ctx, 1.0, || {
                    attention::softmax(ctx, &tq, &tk, &tv, causal).map(drop)
                })?;
                // The f64 reference is O(n²·d) on one core per head: checked up to n = 4096.
                let error = if n <= 4096 {
                    let got = attention::softmax(ctx, &tq, &tk, &tv, causal)?.to_vec()?;
                    let want = reference::softmax(&q, &k, &v, dims, causal);
                    Some((relative_error(&got, &want), max_abs_error(&got, &want)))
                } else {
                    None
                };
                let pairs = (n * n) as f64 * if causal { 0.5 } else { 1.0 };
                report.push(Row {
                    kernel: softmax_name(causal),
                    shape: shape_s.clone(),
                    timing,
                    bytes,
                    flops: (batch * heads) as f64 * pairs * (2 * D + 2 * D) as f64,
                    bound: Bound::Compute,
                    baseline: None,
                    error,
                    form: form(ctx, "attention::softmax", n, "", causal),
                    notes: "online softmax, O(n²)".into(),
                });
                Some(timing.median)
            } else {
                None
            };
            let tg = ctx.tensor(&uniform(rng, len), &shape)?;
            let softmax_backward = match softmax {
                Some(forward) if n <= softmax_backward_max_n => {
                    let timing = time_calls(ctx, 1.0, || {
                        attention::softmax_backward(ctx, &tq, &tk, &tv, &tg, causal).map(drop)
                    })?;
                    let error = if n <= BACKWARD_CHECK_MAX_N {
                        let got = attention::softmax_backward(ctx, &tq, &tk, &tv, &tg, causal)?;
                        let g = tg.to_vec()?;
                        let want = reference::softmax_backward(&q, &k, &v, &g, dims, causal);
                        Some(gradient_error(&got, &want)?)
                    } else {
                        None
                    };
                    let pairs = (n * n) as f64 * if causal { 0.5 } else { 1.0 };
                    report.push(Row {
                        kernel: backward_name(&softmax_name(causal)),
                        shape: shape_s.clone(),
                        timing,
                        bytes: (7 * len * 4) as f64,
                        // QKᵀ and dP = g·vᵀ three times (the query kernel's two passes and
                        // the key kernel), dQ, dK and dV: 2 flops per pair and column each.
                        flops: (batch * heads) as f64 * pairs * (9 * 2 * D) as f64,
                        bound: Bound::Compute,
                        baseline: None,
                        error,
                        form: form(ctx, "attention::softmax_backward", n, "", causal),
                        notes: format!(
                            "{:.2}× its forward; an lse/Δ + ∂q pass and a ∂k/∂v pass",
                            timing.median / forward
                        ),
                    });
                    Some(timing.median)
                }
                _ => None,
            };

            for map in maps {
                let timing = time_calls(ctx, 1.0, || {
                    attention::linear(ctx, &tq, &tk, &tv, map, causal).map(drop)
                })?;
                let got = attention::linear(ctx, &tq, &tk, &tv, map, causal)?.to_vec()?;
                let want = reference::linear_recurrent(&q, &k, &v, dims, map, causal);
                let f = reference::feature_len(map, D) as f64;
                let rows = (batch * heads * n) as f64;
                // State φ(K)ᵀ[V, 1] and queries φ(q)ᵀ[S, z]; causal adds the 32-key block.
                let block = if causal { CHUNK * (f + D as f64) } else { 0.0 };
                let flops = rows * (2.0 * 2.0 * f * (D as f64 + 1.0) + 2.0 * block);
                report.push(Row {
                    kernel: linear_name(map, causal),
                    shape: shape_s.clone(),
                    timing,
                    bytes,
                    flops,
                    bound: if causal {
                        Bound::Compute
                    } else {
                        Bound::Memory
                    },
                    baseline: softmax.map(|t| (softmax_name(causal), t)),
                    error: Some((relative_error(&got, &want), max_abs_error(&got, &want))),
                    form: form(ctx, "attention::linear", n, &format!("{map:?} "), causal),
                    notes: format!("{} features", f as usize),
                });
                let forward = timing.median;
                let timing = time_calls(ctx, 1.0, || {
                    attention::linear_backward(ctx, &tq, &tk, &tv, &tg, map, causal).map(drop)
                })?;
                let error = if n <= BACKWARD_CHECK_MAX_N {
                    let got = attention::linear_backward(ctx, &tq, &tk, &tv, &tg, map, causal)?;
                    let g = tg.to_vec()?;
                    let want = reference::linear_backward(&q, &k, &v, &g, dims, map, causal);
                    Some(gradient_error(&got, &want)?)
                } else {
                    None
                };
                // Four chunked products (the forward's numerator and normaliser, ∂φ_q, ∂v,
                // ∂φ_k), each a state pass and an output pass of inner × columns per row.
                let e = D as f64 + 1.0;
                let products = [(f, e), (e, f), (f, D as f64), (e, f)];
                let flops: f64 = products
                    .iter()
                    .map(|(inner, cols)| {
                        rows * (2.0 * 2.0 * inner * cols
                            + if causal {
                                2.0 * CHUNK * (inner + cols)
                            } else {
                                0.0
                            })
                    })
                    .sum();
                report.push(Row {
                    kernel: backward_name(&linear_name(map, causal)),
                    shape: shape_s.clone(),
                    timing,
                    bytes: (7 * len * 4) as f64,
                    flops,
                    bound: Bound::Compute,
                    baseline: softmax_backward.map(|t| (backward_name(&softmax_name(causal)), t)),
                    error,
                    form: form(
                        ctx,
                        "attention::linear_backward",
                        n,
                        &format!("{map:?} "),
                        causal,
                    ),
                    notes: format!("{:.2}× its forward", timing.median / forward),
                });
            }
        }
    }
    findings(report, &maps, batch, heads)
}

/// Growth exponents in n and the crossovers of linear over softmax.
fn findings(report: &mut Report, maps: &[FeatureMap], batch: usize, heads: usize) -> Result<()> {
    let series = |report: &Report, kernel: &str| -> Vec<(f64, f64)> {
        SIZES
            .iter()
            .filter_map(|&n| {
                let shape = format!("[{batch},{heads},{n},{D}]");
                report.median(kernel, &shape).map(|t| (n as f64, t))
            })
            .collect()
    };
    for (causal, backward) in [(false, false), (true, false), (false, true), (true, true)] {
        let name_of = |forward: String| {
            if backward {
                backward_name(&forward)
            } else {
                forward
            }
        };
        let softmax_kernel = name_of(softmax_name(causal));
        let softmax = series(report, &softmax_kernel);
        let exponent = |points: &[(f64, f64)]| {
            // The smallest sizes sit at the per-call cost; fit the upper three points.
            growth_exponent(&points[points.len().saturating_sub(3)..])
        };
        report.finding(format!(
            "{softmax_kernel}: time ∝ n^{:.2} (fit over the largest three n measured)",
            exponent(&softmax)
        ));
        for &map in maps {
            let name = name_of(linear_name(map, causal));
            let linear = series(report, &name);
            let cross = match crossover(&linear, &softmax) {
                Err(first) => {
                    format!("faster than softmax from the smallest n measured ({first:.0})")
                }
                Ok(Some(n)) => format!("overtakes softmax at n ≈ {n:.0}"),
                Ok(None) => "slower than softmax at every n measured".to_string(),
            };
            report.finding(format!(
                "{name}: time ∝ n^{:.2}; {cross}",
                exponent(&linear)
            ));
        }
    }
    Ok(())
}

/// The form the tuner chose for `op` at `[batch·heads, n, D, D]` (`map` "" for softmax).
fn form(ctx: &Context, op: &str, n: usize, map: &str, causal: bool) -> String {
    let heads = if ctx.device_type() == Some(wgkernels::wgpu::DeviceType::Cpu) {
        1
    } else {
        8
    };
    let class = format!(
        "{op} [{heads}, {}, {D}, {D}] {map}causal {causal} ",
        n.next_power_of_two()
    );
    crate::tuned_form(ctx, &class)
}
