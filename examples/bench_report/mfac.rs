//! M-FAC rows: static precompute and ihvp against d and m (ihvp must grow as d·m), the
//! sliding push against a full rebuild per push, and ihvp against a dense F⁻¹ product.

use rand::rngs::StdRng;
use wgkernels::bench::time_calls;
use wgkernels::compare::{max_abs_error, relative_error};
use wgkernels::mfac::{reference, SlidingInverse, StaticInverse};
use wgkernels::{linalg, Context, Result};

use crate::report::{growth_exponent, Bound, Report, Row};
use crate::uniform;

const DAMP: f32 = 1e-2;

pub fn rows(ctx: &Context, rng: &mut StdRng, report: &mut Report) -> Result<()> {
    // lavapipe: m·d up to 4M and the precompute's O(d·m²) GEMMs bounded (m ≤ 256).
    let on_cpu = ctx.device_type() == Some(wgkernels::wgpu::DeviceType::Cpu);
    let (ds, ms): (&[usize], &[usize]) = if on_cpu {
        (&[1 << 14, 1 << 16, 1 << 18], &[16, 64, 256])
    } else {
        (&[1 << 14, 1 << 16, 1 << 18, 1 << 20], &[16, 64, 256, 1024])
    };
    let mut by_d = Vec::new();
    for &d in ds {
        by_d.push((d as f64, static_rows(ctx, rng, report, 16, d)?));
    }
    let mut by_m = Vec::new();
    for &m in ms {
        by_m.push((m as f64, static_rows(ctx, rng, report, m, 1 << 14)?));
    }
    report.finding(format!(
        "mfac::StaticInverse::ihvp: time ∝ d^{:.2} at m = 16 and ∝ m^{:.2} at d = 2^14 (O(d·m) expects 1 and 1)",
        growth_exponent(&by_d[by_d.len().saturating_sub(3)..]),
        growth_exponent(&by_m[by_m.len().saturating_sub(3)..]),
    ));
    sliding_rows(ctx, rng, report, ms)?;
    dense_row(ctx, rng, report)
}

/// Precompute and ihvp at (m, d); returns the ihvp median.
fn static_rows(
    ctx: &Context,
    rng: &mut StdRng,
    report: &mut Report,
    m: usize,
    d: usize,
) -> Result<f64> {
    let grads = uniform(rng, m * d);
    let x = uniform(rng, d);
    let (tg, tx) = (ctx.tensor(&grads, &[m, d])?, ctx.tensor(&x, &[d])?);
    let shape = format!("m={m}, d=2^{}", d.trailing_zeros());
    let precompute = time_calls(ctx, 1.0, || StaticInverse::new(ctx, &tg, DAMP).map(drop))?;
    let (dm, mm) = (d as f64, m as f64);
    report.push(Row {
        kernel: "mfac::StaticInverse::new".into(),
        shape: shape.clone(),
        timing: precompute,
        bytes: dm * mm * 4.0 * 2.0, // G read, V written
        flops: 2.0 * dm * mm * mm * 2.0 + mm * mm * mm / 3.0 * 2.0,
        bound: Bound::Compute,
        baseline: None,
        error: None,
        form: String::new(),
        notes: "G·Gᵀ, m×m LDLᵀ and L⁻¹, V = W·G".into(),
    });
    let inverse = StaticInverse::new(ctx, &tg, DAMP)?;
    let timing = time_calls(ctx, 1.0, || inverse.ihvp(&tx).map(drop))?;
    // The f64 check costs O(d·m²): only where that stays small.
    let error = if d * m * m <= 1 << 26 {
        let got = inverse.ihvp(&tx)?.to_vec()?;
        let want = reference::sherman_morrison(&grads, d, DAMP as f64).ihvp(&x);
        Some((relative_error(&got, &want), max_abs_error(&got, &want)))
    } else {
        None
    };
    report.push(Row {
        kernel: "mfac::StaticInverse::ihvp".into(),
        shape,
        timing,
        bytes: (mm * dm + 2.0 * dm) * 4.0, // V once, x, out
        flops: 4.0 * dm * mm,
        bound: Bound::Memory,
        baseline: None,
        error,
        form: String::new(),
        notes: "reads V twice (dots, then the combination): 2× the bytes counted".into(),
    });
    Ok(timing.median)
}

/// One push of a full window against rebuilding the static inverse of the window.
fn sliding_rows(ctx: &Context, rng: &mut StdRng, report: &mut Report, ms: &[usize]) -> Result<()> {
    let d = 1 << 16;
    for &m in ms {
        let mut window = SlidingInverse::new(ctx, d, m, DAMP)?;
        let grads = uniform(rng, m * d);
        for g in grads.chunks(d) {
            window.push(&ctx.tensor(g, &[d])?)?;
        }
        let g = ctx.tensor(&uniform(rng, d), &[d])?;
        let tg = ctx.tensor(&grads, &[m, d])?;
        let rebuild = time_calls(ctx, 1.0, || StaticInverse::new(ctx, &tg, DAMP).map(drop))?;
        let push = time_calls(ctx, 1.0, || window.push(&g))?;
        let (dm, mm) = (d as f64, m as f64);
        let shape = format!("m={m}, d=2^16");
        report.push(Row {
            kernel: "mfac::SlidingInverse::push".into(),
            shape: shape.clone(),
            timing: push,
            bytes: (mm * dm + 2.0 * dm) * 4.0,
            flops: 2.0 * dm * mm + mm * mm * mm / 3.0 * 2.0,
            bound: Bound::Memory,
            baseline: Some(("full rebuild (StaticInverse::new)".into(), rebuild.median)),
            error: None,
            form: String::new(),
            notes: "Gram row and column, then the m×m LDLᵀ and L⁻¹ (one workgroup)".into(),
        });
        let x = uniform(rng, d);
        let tx = ctx.tensor(&x, &[d])?;
        let timing = time_calls(ctx, 1.0, || window.ihvp(&tx).map(drop))?;
        report.push(Row {
            kernel: "mfac::SlidingInverse::ihvp".into(),
            shape,
            timing,
            bytes: (mm * dm + 2.0 * dm) * 4.0,
            flops: 4.0 * dm * mm + 2.0 * mm * mm,
            bound: Bound::Memory,
            baseline: None,
            error: None,
            form: String::new(),
            notes: "G·x, Wᵀ·D⁻¹·W (m²), x/λ − Gᵀ·c".into(),
        });
    }
    Ok(())
}

/// ihvp against the product with a dense, precomputed F⁻¹ at d = 4096 (the best a dense
/// method can do per vector: O(d²) reads).
fn dense_row(ctx: &Context, rng: &mut StdRng, report: &mut Report) -> Result<()> {
    let (m, d) = (64, 4096);
    let grads = uniform(rng, m * d);
    let x = uniform(rng, d);
    let dense: Vec<f32> = reference::dense_inverse(&grads, d, DAMP as f64)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let (tdense, txrow) = (ctx.tensor(&dense, &[d, d])?, ctx.tensor(&x, &[1, d])?);
    let baseline = time_calls(ctx, 1.0, || {
        linalg::matmul(ctx, &txrow, &tdense, false, false).map(drop)
    })?;
    let inverse = StaticInverse::new(ctx, &ctx.tensor(&grads, &[m, d])?, DAMP)?;
    let tx = ctx.tensor(&x, &[d])?;
    let timing = time_calls(ctx, 1.0, || inverse.ihvp(&tx).map(drop))?;
    let got = inverse.ihvp(&tx)?.to_vec()?;
    let want: Vec<f64> = (0..d)
        .map(|i| (0..d).map(|j| dense[j * d + i] as f64 * x[j] as f64).sum())
        .collect();
    report.push(Row {
        kernel: "mfac::StaticInverse::ihvp".into(),
        shape: format!("m={m}, d={d}"),
        timing,
        bytes: ((m * d + 2 * d) * 4) as f64,
        flops: (4 * d * m) as f64,
        bound: Bound::Memory,
        baseline: Some(("dense F⁻¹·x (d×d GEMM)".into(), baseline.median)),
        error: Some((relative_error(&got, &want), max_abs_error(&got, &want))),
        form: String::new(),
        notes: "error against the dense f64 inverse".into(),
    });
    Ok(())
}
