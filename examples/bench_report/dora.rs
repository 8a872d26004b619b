//! DoRA rows: factored against dense norm (time and transient bytes), fused against unfused
//! compose, the fused backward, and the forward against the PEFT-style dense forward.

use rand::rngs::StdRng;
use rand::Rng;
use wgkernels::bench::{time_calls, Timing};
use wgkernels::compare::{max_abs_error, relative_error};
use wgkernels::dora::{self, reference, LoraShape};
use wgkernels::{Context, DType, Result, Tensor};

use crate::report::{Bound, Report, Row};
use crate::uniform;

/// Times `call` and measures the bytes it holds beyond what was live before it.
fn time_and_peak(
    ctx: &Context,
    mut call: impl FnMut() -> Result<Tensor>,
) -> Result<(Timing, u64, Tensor)> {
    ctx.synchronize()?;
    let before = ctx.allocated_bytes();
    ctx.reset_peak_allocated_bytes();
    let out = call()?;
    let peak = ctx.peak_allocated_bytes() - before;
    let timing = time_calls(ctx, 1.0, || call().map(drop))?;
    Ok((timing, peak, out))
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

pub fn rows(ctx: &Context, rng: &mut StdRng, report: &mut Report) -> Result<()> {
    weight_norm_rows(ctx, rng, report)?;
    compose_rows(ctx, rng, report)?;
    forward_rows(ctx, rng, report, [512, 1024, 1024, 64], true)?;
    // The training shapes: a 4096³ GEMM alone is ~30 s on lavapipe, and the f64
    // reference of the layer at that size takes minutes, so they run on real GPUs only and
    // are not checked against it (the tests check the same code at small sizes).
    if ctx.device_type() != Some(wgkernels::wgpu::DeviceType::Cpu) {
        for shape in [[4096, 4096, 4096, 64], [2048, 4096, 4096, 384]] {
            forward_rows(ctx, rng, report, shape, false)?;
        }
    }
    Ok(())
}

fn weight_norm_rows(ctx: &Context, rng: &mut StdRng, report: &mut Report) -> Result<()> {
    let s = 0.5f32;
    for (d_out, d_in, r) in [(1024usize, 1024usize, 64usize), (4096, 4096, 384)] {
        let shape = LoraShape { d_out, d_in, r };
        let (w, a, b) = (
            uniform(rng, d_out * d_in),
            uniform(rng, r * d_in),
            uniform(rng, d_out * r),
        );
        let tw = ctx.tensor(&w, &[d_out, d_in])?;
        let ta = ctx.tensor(&a, &[r, d_in])?;
        let tb = ctx.tensor(&b, &[d_out, r])?;
        let want = reference::weight_norm_dense(&w, &a, &b, shape, s as f64);
        let (dense_t, dense_peak, dense) =
            time_and_peak(ctx, || dora::weight_norm_dense(ctx, &tw, &ta, &tb, s))?;
        let (fused_t, fused_peak, fused) =
            time_and_peak(ctx, || dora::weight_norm(ctx, &tw, &ta, &tb, s))?;
        let (fact_t, fact_peak, fact) =
            time_and_peak(ctx, || dora::weight_norm_factored(ctx, &tw, &ta, &tb, s))?;
        let error = |t: Tensor| -> Result<(f64, f64)> {
            let got = t.to_vec()?;
            Ok((relative_error(&got, &want), max_abs_error(&got, &want)))
        };
        let bytes = ((d_out * d_in + r * d_in + d_out * r + d_out) * 4) as f64;
        let (dout, din, rr) = (d_out as f64, d_in as f64, r as f64);
        let shape_s = format!("{d_out}×{d_in}, r={r}");
        report.push(Row {
            kernel: "dora::weight_norm (fused)".into(),
            shape: shape_s.clone(),
            timing: fused_t,
            bytes,
            // B·A by tiles, then (W + s·BA)² per element
            flops: 2.0 * (dout * din * rr + dout * din),
            bound: Bound::Compute,
            baseline: Some(("weight_norm_dense".into(), dense_t.median)),
            error: Some(error(fused)?),
            form: String::new(),
            notes: format!(
                "transient {} vs dense {}; {:.2}× the factored route",
                mb(fused_peak),
                mb(dense_peak),
                fact_t.median / fused_t.median
            ),
        });
        report.push(Row {
            kernel: "dora::weight_norm_factored".into(),
            shape: shape_s.clone(),
            timing: fact_t,
            bytes,
            // U = W·Aᵀ, G = A·Aᵀ, B·G, then ‖W_j‖² and the r-term dot per row
            flops: 2.0
                * (dout * din * rr + rr * rr * din + dout * rr * rr + dout * din + dout * rr),
            bound: Bound::Compute,
            baseline: Some(("weight_norm_dense".into(), dense_t.median)),
            error: Some(error(fact)?),
            form: String::new(),
            notes: format!("transient {} vs dense {}", mb(fact_peak), mb(dense_peak)),
        });
        report.push(Row {
            kernel: "dora::weight_norm_dense (PEFT)".into(),
            shape: shape_s,
            timing: dense_t,
            bytes,
            flops: 2.0 * (dout * rr * din + 1.5 * dout * din),
            bound: Bound::Compute,
            baseline: None,
            error: Some(error(dense)?),
            form: String::new(),
            notes: format!("transient {}", mb(dense_peak)),
        });
    }
    Ok(())
}

fn compose_rows(ctx: &Context, rng: &mut StdRng, report: &mut Report) -> Result<()> {
    // Large enough (32M elements, 128 MiB per stream) that the kernel, not the submission,
    // sets the steady-state time on big GPUs; split into two bindings on lavapipe.
    let (n, d_out, s) = (4096usize, 8192usize, 0.5f32);
    let (base, lora, dy) = (
        uniform(rng, n * d_out),
        uniform(rng, n * d_out),
        uniform(rng, n * d_out),
    );
    let norm: Vec<f32> = (0..d_out).map(|_| rng.random_range(0.5..2.0)).collect();
    let magnitude: Vec<f32> = norm
        .iter()
        .map(|x| x * rng.random_range(0.9..1.1))
        .collect();
    let t = |x: &[f32], shape: &[usize]| ctx.tensor(x, shape);
    let (tb, tl, tm, tn) = (
        t(&base, &[n, d_out])?,
        t(&lora, &[n, d_out])?,
        t(&magnitude, &[d_out])?,
        t(&norm, &[d_out])?,
    );
    let tdy = t(&dy, &[n, d_out])?;
    let want = reference::compose(&base, &lora, &magnitude, &norm, s as f64);
    let error = |y: Tensor| -> Result<(f64, f64)> {
        let got = y.to_vec()?;
        Ok((relative_error(&got, &want), max_abs_error(&got, &want)))
    };
    let unfused = time_calls(ctx, 1.0, || {
        dora::compose_unfused(ctx, &tb, &tl, &tm, &tn, s).map(drop)
    })?;
    let fused = time_calls(ctx, 1.0, || {
        dora::compose(ctx, &tb, &tl, &tm, &tn, s).map(drop)
    })?;
    let elems = (n * d_out) as f64;
    let shape = format!("{n}×{d_out}");
    report.push(Row {
        kernel: "dora::compose (fused)".into(),
        shape: shape.clone(),
        timing: fused,
        bytes: 3.0 * elems * 4.0 + 2.0 * d_out as f64 * 4.0, // read base, lora (+ m, norm); write y
        flops: 5.0 * elems,
        bound: Bound::Memory,
        baseline: Some(("compose_unfused (7 kernels)".into(), unfused.median)),
        error: Some(error(dora::compose(ctx, &tb, &tl, &tm, &tn, s)?)?),
        form: String::new(),
        notes: "3 streams: read base, lora; write y".into(),
    });
    report.push(Row {
        kernel: "dora::compose_unfused (PEFT)".into(),
        shape: shape.clone(),
        timing: unfused,
        bytes: 3.0 * elems * 4.0 + 2.0 * d_out as f64 * 4.0,
        flops: 5.0 * elems,
        bound: Bound::Memory,
        baseline: None,
        error: Some(error(dora::compose_unfused(ctx, &tb, &tl, &tm, &tn, s)?)?),
        form: String::new(),
        notes: "same minimum bytes; moves ~14 streams".into(),
    });
    // The same compose with base and lora stored as bf16: 2 + 2 bytes read, 4 written.
    let (hb, hl) = (
        ctx.tensor_as(&base, &[n, d_out], DType::BF16)?,
        ctx.tensor_as(&lora, &[n, d_out], DType::BF16)?,
    );
    let round = |x: &[f32]| {
        x.iter()
            .map(|&v| DType::BF16.round(v))
            .collect::<Vec<f32>>()
    };
    let want_half = reference::compose(&round(&base), &round(&lora), &magnitude, &norm, s as f64);
    let half = time_calls(ctx, 1.0, || {
        dora::compose(ctx, &hb, &hl, &tm, &tn, s).map(drop)
    })?;
    let got_half = dora::compose(ctx, &hb, &hl, &tm, &tn, s)?.to_vec()?;
    report.push(Row {
        kernel: "dora::compose (fused, bf16 in, f32 out)".into(),
        shape: format!("{n}×{d_out}"),
        timing: half,
        bytes: 8.0 * elems + 2.0 * d_out as f64 * 4.0,
        flops: 5.0 * elems,
        bound: Bound::Memory,
        baseline: Some(("compose (f32)".into(), fused.median)),
        error: Some((
            relative_error(&got_half, &want_half),
            max_abs_error(&got_half, &want_half),
        )),
        form: String::new(),
        notes: "error against the reference on the bf16-rounded inputs".into(),
    });
    let backward = time_calls(ctx, 1.0, || {
        dora::compose_backward(ctx, &tdy, &tb, &tl, &tm, &tn, s).map(drop)
    })?;
    let (want_db, _, want_dm) =
        reference::compose_backward(&dy, &base, &lora, &magnitude, &norm, s as f64);
    let grads = dora::compose_backward(ctx, &tdy, &tb, &tl, &tm, &tn, s)?;
    let (got_db, got_dm) = (grads.base.to_vec()?, grads.magnitude.to_vec()?);
    report.push(Row {
        kernel: "dora::compose_backward (fused)".into(),
        shape,
        timing: backward,
        bytes: 5.0 * elems * 4.0,
        flops: 7.0 * elems,
        bound: Bound::Memory,
        baseline: None,
        error: Some((
            relative_error(&got_db, &want_db),
            max_abs_error(&got_db, &want_db),
        )),
        form: String::new(),
        notes: format!(
            "5 streams (3 read, 2 write); d_magnitude rel. err {:.1e}",
            relative_error(&got_dm, &want_dm)
        ),
    });
    Ok(())
}

/// The forward against the PEFT-style one at `[n, d_out, d_in, r]`, then the backward rows;
/// `check`: measure the error against the f64 reference.
fn forward_rows(
    ctx: &Context,
    rng: &mut StdRng,
    report: &mut Report,
    [n, d_out, d_in, r]: [usize; 4],
    check: bool,
) -> Result<()> {
    let s = 0.5f32;
    let shape = LoraShape { d_out, d_in, r };
    let (x, w, a, b) = (
        uniform(rng, n * d_in),
        uniform(rng, d_out * d_in),
        uniform(rng, r * d_in),
        uniform(rng, d_out * r),
    );
    let magnitude: Vec<f32> = (0..d_out).map(|_| rng.random_range(0.5..2.0)).collect();
    let t = |v: &[f32], shape: &[usize]| ctx.tensor(v, shape);
    let (tx, tw, ta, tb, tm) = (
        t(&x, &[n, d_in])?,
        t(&w, &[d_out, d_in])?,
        t(&a, &[r, d_in])?,
        t(&b, &[d_out, r])?,
        t(&magnitude, &[d_out])?,
    );
    let (dense_t, dense_peak, _) =
        time_and_peak(ctx, || dora::forward_dense(ctx, &tx, &tw, &ta, &tb, &tm, s))?;
    let (fused_t, fused_peak, y) =
        time_and_peak(ctx, || dora::forward(ctx, &tx, &tw, &ta, &tb, &tm, s))?;
    let got = y.to_vec()?;
    let (nf, dout, din, rr) = (n as f64, d_out as f64, d_in as f64, r as f64);
    let flops = 2.0 * (nf * dout * din + nf * din * rr + nf * rr * dout)
        + 2.0 * (dout * din * rr + rr * rr * din + dout * rr * rr);
    report.push(Row {
        kernel: "dora::forward".into(),
        shape: format!("n={n}, {d_out}×{d_in}, r={r}"),
        timing: fused_t,
        bytes: ((n * d_in + d_out * d_in + r * d_in + d_out * r + d_out + n * d_out) * 4) as f64,
        flops,
        bound: Bound::Compute,
        baseline: Some((
            "forward_dense (dense norm, unfused compose)".into(),
            dense_t.median,
        )),
        error: check.then(|| {
            let want = reference::forward(&x, &w, &a, &b, &magnitude, shape, s as f64);
            (relative_error(&got, &want), max_abs_error(&got, &want))
        }),
        form: String::new(),
        notes: format!("transient {} vs dense {}", mb(fused_peak), mb(dense_peak)),
    });
    backward_rows(ctx, rng, report, [n, d_out, d_in, r], fused_t.median, check)
}

/// The layer's backward in both norm modes against the PEFT-style one (dense norm, unfused
/// element-wise steps, the same GEMMs), with its time over the forward's.
fn backward_rows(
    ctx: &Context,
    rng: &mut StdRng,
    report: &mut Report,
    [n, d_out, d_in, r]: [usize; 4],
    forward_seconds: f64,
    check: bool,
) -> Result<()> {
    use dora::NormGradient;
    let (s, shape) = (0.5f32, LoraShape { d_out, d_in, r });
    let (x, w, a, b, dy) = (
        uniform(rng, n * d_in),
        uniform(rng, d_out * d_in),
        uniform(rng, r * d_in),
        uniform(rng, d_out * r),
        uniform(rng, n * d_out),
    );
    let magnitude: Vec<f32> = (0..d_out).map(|_| rng.random_range(0.5..2.0)).collect();
    let t = |v: &[f32], shape: &[usize]| ctx.tensor(v, shape);
    let (tx, tw, ta, tb, tm, tdy) = (
        t(&x, &[n, d_in])?,
        t(&w, &[d_out, d_in])?,
        t(&a, &[r, d_in])?,
        t(&b, &[d_out, r])?,
        t(&magnitude, &[d_out])?,
        t(&dy, &[n, d_out])?,
    );
    let (dense_t, dense_peak, _) = time_and_peak(ctx, || {
        dora::backward_dense(ctx, &tx, &tw, &ta, &tb, &tm, s, &tdy).map(|g| g.a)
    })?;
    let wide = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    let (nf, dout, din, rr) = (n as f64, d_out as f64, d_in as f64, r as f64);
    // The forward's three GEMMs again, the norm, then ∂x (two), d_lora·B, ∂A and ∂B.
    let detached_flops = 2.0
        * (2.0 * nf * dout * din
            + 3.0 * nf * din * rr
            + 3.0 * nf * rr * dout
            + dout * din * rr
            + rr * rr * din
            + dout * rr * rr);
    // Exact reuses the norm's U and B·G and adds bcᵀ·W, bcᵀ·B and (bcᵀ·B)·A.
    let exact_flops = detached_flops + 2.0 * (dout * din * rr + dout * rr * rr + rr * rr * din);
    // Inputs and dy read once, the gradients written once.
    let backward_bytes =
        ((2 * n * d_in + d_out * d_in + 2 * r * d_in + 2 * d_out * r + 2 * d_out + n * d_out) * 4)
            as f64;
    for (mode, flops) in [
        (NormGradient::Detached, detached_flops),
        (NormGradient::Exact, exact_flops),
    ] {
        let (timing, peak, ga) = time_and_peak(ctx, || {
            dora::backward(ctx, &tx, &tw, &ta, &tb, &tm, s, &tdy, mode).map(|g| g.a)
        })?;
        let got = ga.to_vec()?;
        let error = check.then(|| {
            let want = reference::layer_backward(
                &wide(&x),
                &wide(&w),
                &wide(&a),
                &wide(&b),
                &wide(&magnitude),
                shape,
                s as f64,
                &wide(&dy),
                mode == NormGradient::Exact,
            );
            (relative_error(&got, &want.a), max_abs_error(&got, &want.a))
        });
        report.push(Row {
            kernel: format!("dora::backward ({mode:?})"),
            shape: format!("n={n}, {d_out}×{d_in}, r={r}"),
            timing,
            bytes: backward_bytes,
            flops,
            bound: Bound::Compute,
            baseline: Some((
                "backward_dense (PEFT-style, detached)".into(),
                dense_t.median,
            )),
            error,
            form: String::new(),
            notes: format!(
                "{:.2}× the forward's time; transient {} vs dense {}; error of ∂A",
                timing.median / forward_seconds,
                mb(peak),
                mb(dense_peak)
            ),
        });
    }
    // One training step, forward then backward: with the forward's products saved
    // (`forward_saved` + `Saved::backward`) against the PEFT-style step, which recomputes them
    // as `backward_dense` does.
    let (peft_t, peft_peak, _) = time_and_peak(ctx, || {
        dora::forward_dense(ctx, &tx, &tw, &ta, &tb, &tm, s)?;
        dora::backward_dense(ctx, &tx, &tw, &ta, &tb, &tm, s, &tdy).map(|g| g.a)
    })?;
    for (mode, flops) in [
        (NormGradient::Detached, detached_flops),
        (NormGradient::Exact, exact_flops),
    ] {
        let (timing, peak, _) = time_and_peak(ctx, || {
            let (_, mut saved) = dora::forward_saved(ctx, &tx, &tw, &ta, &tb, &tm, s)?;
            saved.backward(&tdy, mode).map(|g| g.a)
        })?;
        // The saved backward skips the forward's GEMMs and norm, so the step does exactly the
        // work of the recomputing backward: the same FMA count.
        let backward_alone = timing.median - forward_seconds;
        report.push(Row {
            kernel: format!("dora training step (forward_saved + backward, {mode:?})"),
            shape: format!("n={n}, {d_out}×{d_in}, r={r}"),
            timing,
            // The backward's bytes and y.
            bytes: backward_bytes + (n * d_out * 4) as f64,
            flops,
            bound: Bound::Compute,
            baseline: Some((
                "forward_dense + backward_dense (PEFT-style)".into(),
                peft_t.median,
            )),
            error: None,
            form: String::new(),
            notes: format!(
                "backward from the saved products ≈ step − forward = {:.2}× the forward's time; \
                 transient {} vs {} (products saved across the step included); \
                 {:.1} GFLOP in all; the baseline's backward recomputes the forward's GEMMs \
                 (an autograd framework would save them)",
                backward_alone / forward_seconds,
                mb(peak),
                mb(peft_peak),
                flops / 1e9
            ),
        });
    }
    Ok(())
}
