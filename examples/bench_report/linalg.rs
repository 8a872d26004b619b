//! GEMM rows: the tiled kernel against the naive one-output-per-thread kernel, and the
//! skinny products of DoRA split into k-slices (split-K) against the same product unsplit.

use rand::rngs::StdRng;
use wgkernels::bench::time_calls;
use wgkernels::compare::{max_abs_error, relative_error};
use wgkernels::linalg::{self, reference, Gemm};
use wgkernels::{Context, GpuOptions, Result, Tuning};

use crate::report::{Bound, Report, Row};
use crate::uniform;

pub fn rows(ctx: &Context, rng: &mut StdRng, report: &mut Report) -> Result<()> {
    // The tiled form forced, as the baseline of the form the tuner chose (the default before
    // there were forms).
    let tiled = crate::forced(ctx, "tiled")?;
    for size in [256usize, 1024] {
        let (m, k, n) = (size, size, size);
        let (a, b) = (uniform(rng, m * k), uniform(rng, k * n));
        let (ta, tb) = (ctx.tensor(&a, &[m, k])?, ctx.tensor(&b, &[k, n])?);
        let g = Gemm::of("bench", &[m, k], &[k, n], false, false)?;
        let want = reference::matmul(&a, &b, g);
        let budget = 1.0;
        let naive = time_calls(ctx, budget, || {
            linalg::matmul_naive(ctx, &ta, &tb, false, false).map(drop)
        })?;
        let chosen = time_calls(ctx, budget, || {
            linalg::matmul(ctx, &ta, &tb, false, false).map(drop)
        })?;
        let tiled_median = match &tiled {
            Some(on) => {
                let (ta, tb) = (on.tensor(&a, &[m, k])?, on.tensor(&b, &[k, n])?);
                let timing = time_calls(on, budget, || {
                    linalg::matmul(on, &ta, &tb, false, false).map(drop)
                })?;
                Some(("matmul, tiled form".to_string(), timing.median))
            }
            None => None,
        };
        let error = |c: Vec<f32>| (relative_error(&c, &want), max_abs_error(&c, &want));
        let shape = format!("{m}×{k}×{n}");
        let bytes = ((m * k + k * n + m * n) * 4) as f64;
        let flops = 2.0 * g.fmas() as f64;
        report.push(Row {
            kernel: "matmul".into(),
            shape: shape.clone(),
            timing: chosen,
            bytes,
            flops,
            bound: Bound::Compute,
            baseline: tiled_median.or(Some(("matmul_naive".into(), naive.median))),
            error: Some(error(
                linalg::matmul(ctx, &ta, &tb, false, false)?.to_vec()?,
            )),
            form: g.form(ctx),
            notes: String::new(),
        });
        report.push(Row {
            kernel: "matmul_naive (1 output/thread)".into(),
            shape,
            timing: naive,
            bytes,
            flops,
            bound: Bound::Compute,
            baseline: None,
            error: Some(error(
                linalg::matmul_naive(ctx, &ta, &tb, false, false)?.to_vec()?,
            )),
            form: "naive".into(),
            notes: String::new(),
        });
    }
    split_k_rows(ctx, rng, report)
}

/// DoRA's skinny products, `(label, m, k, n, transpose_a, transpose_b)`: U = W·Aᵀ of the
/// factored norm and the adapter gradients ∂B = d_loraᵀ·xa, ∂A = (d_lora·B)ᵀ·x, at the
/// issue's shapes (the larger ones on real GPUs only).
fn skinny_products(real_gpu: bool) -> Vec<(&'static str, usize, usize, usize, bool, bool)> {
    let mut shapes = vec![
        ("U = W·Aᵀ, 1024² r64", 1024, 1024, 64, false, true),
        (
            "∂B = d_loraᵀ·xa, n 4096 d_out 1024 r64",
            1024,
            4096,
            64,
            true,
            false,
        ),
    ];
    if real_gpu {
        shapes.extend([
            ("U = W·Aᵀ, 4096² r64", 4096, 4096, 64, false, true),
            ("U = W·Aᵀ, 4096² r384", 4096, 4096, 384, false, true),
            (
                "∂B = d_loraᵀ·xa, n 4096 4096² r64",
                4096,
                4096,
                64,
                true,
                false,
            ),
            (
                "∂A = (d_lora·B)ᵀ·x, n 4096 4096² r64",
                64,
                4096,
                4096,
                true,
                false,
            ),
            (
                "∂B = d_loraᵀ·xa, n 2048 4096² r384",
                4096,
                2048,
                384,
                true,
                false,
            ),
        ]);
    }
    shapes
}

/// Each skinny product with k cut into S slices (a context whose split-K threshold is S × the
/// product's tiles gives exactly S), against S = 1 in the same run: real GPUs sweep S to size
/// the default (`GpuOptions::split_k_below_tiles`), lavapipe shows the cost of one split.
fn split_k_rows(ctx: &Context, rng: &mut StdRng, report: &mut Report) -> Result<()> {
    let Some(device_type) = ctx.device_type() else {
        return Ok(());
    };
    let real_gpu = device_type != wgkernels::wgpu::DeviceType::Cpu;
    let slice_counts: &[usize] = if real_gpu { &[2, 4, 8, 16] } else { &[4] };
    let with_threshold = |tiles: u32| {
        // The tiled form, whose 64×64 tiles the thresholds count.
        Context::gpu_with(GpuOptions {
            split_k_below_tiles: Some(tiles),
            tuning: Tuning::Force("tiled".into()),
            ..Default::default()
        })
    };
    let unsplit = with_threshold(0)?;
    for (label, m, k, n, ta, tb) in skinny_products(real_gpu) {
        let (a, b) = (uniform(rng, m * k), uniform(rng, k * n));
        let a_shape = if ta { [k, m] } else { [m, k] };
        let b_shape = if tb { [n, k] } else { [k, n] };
        let g = Gemm::of("bench", &a_shape, &b_shape, ta, tb)?;
        let want = reference::matmul(&a, &b, g);
        let tiles = g.tiles() as u32;
        let shape = format!("{m}×{k}×{n} ({label})");
        let bytes = ((m * k + k * n + m * n) * 4) as f64;
        let flops = 2.0 * g.fmas() as f64;
        let time = |on: &Context| -> Result<_> {
            let (ta_, tb_) = (on.tensor(&a, &a_shape)?, on.tensor(&b, &b_shape)?);
            let timing = time_calls(on, 1.0, || linalg::matmul(on, &ta_, &tb_, ta, tb).map(drop))?;
            let c = linalg::matmul(on, &ta_, &tb_, ta, tb)?.to_vec()?;
            Ok((
                timing,
                (relative_error(&c, &want), max_abs_error(&c, &want)),
            ))
        };
        let (base, base_error) = time(&unsplit)?;
        let default_slices = g.k_slices(ctx);
        report.push(Row {
            kernel: "matmul, k unsplit".into(),
            shape: shape.clone(),
            timing: base,
            bytes,
            flops,
            bound: Bound::Memory,
            baseline: None,
            error: Some(base_error),
            form: "tiled".into(),
            notes: format!("{tiles} workgroups; this device's default: {default_slices} slice(s)"),
        });
        for &slices in slice_counts {
            let split = with_threshold(tiles * slices as u32)?;
            let got = g.k_slices(&split);
            if got != slices {
                continue; // k too short for this many slices of ≥ 256
            }
            let (timing, error) = time(&split)?;
            report.push(Row {
                kernel: format!("matmul split-K, {got} slices"),
                shape: shape.clone(),
                timing,
                bytes,
                flops,
                bound: Bound::Memory,
                baseline: Some(("k unsplit".into(), base.median)),
                error: Some(error),
                form: "tiled".into(),
                notes: format!(
                    "{} workgroups; partials {:.1} MB written and read",
                    tiles as usize * got,
                    (got * m * n * 4) as f64 / 1e6
                ),
            });
        }
    }
    Ok(())
}
