//! Attention rows: linear attention (elu+1 and norm-aware, causal and not) against exact
//! softmax attention at n = 64 … 16384, d = 64; the growth of each in n and the n from
//! which linear attention is faster.

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

pub fn rows(ctx: &Context, rng: &mut StdRng, report: &mut Report) -> Result<()> {
    // lavapipe runs one head; a GPU gets 8 so that small n still gives it work. On lavapipe
    // softmax at n = 16384 would take ~2 min a call: it stops at 4096 there.
    let on_cpu = ctx.device_type() == Some(wgkernels::wgpu::DeviceType::Cpu);
    let (batch, heads) = if on_cpu { (1, 1) } else { (1, 8) };
    let softmax_max_n = if on_cpu { 4096 } else { 16384 };
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
                    notes: "online softmax, O(n²)".into(),
                });
                Some(timing.median)
            } else {
                None
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
                    notes: format!("{} features", f as usize),
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
    for causal in [false, true] {
        let softmax = series(report, &softmax_name(causal));
        let exponent = |points: &[(f64, f64)]| {
            // The smallest sizes sit at the per-call cost; fit the upper three points.
            growth_exponent(&points[points.len().saturating_sub(3)..])
        };
        report.finding(format!(
            "{}: time ∝ n^{:.2} (fit over the largest three n measured)",
            softmax_name(causal),
            exponent(&softmax)
        ));
        for &map in maps {
            let name = linear_name(map, causal);
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
