//! A tour of wgkernels: runs every kernel on the best device, checks each against the f64
//! CPU reference on fresh random inputs, and prints a table.
//!
//! `cargo run --release --example tour`

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wgkernels::attention::{self, Dims, FeatureMap};
use wgkernels::compare::{max_abs_error, relative_error};
use wgkernels::dora::{self, LoraShape, NormGradient};
use wgkernels::linalg::{self, Gemm};
use wgkernels::{mfac, roofline, Context, DType, Result};

mod equivariant;

/// A relative error above this fails the tour (f32 kernels land near 1e-7..1e-6).
const BOUND: f64 = 1e-5;

struct Check {
    kernel: &'static str,
    shape: String,
    relative: f64,
    max_abs: f64,
}

impl Check {
    fn new(kernel: &'static str, shape: String, got: &[f32], want: &[f64]) -> Check {
        Check {
            kernel,
            shape,
            relative: relative_error(got, want),
            max_abs: max_abs_error(got, want),
        }
    }
}

fn uniform(rng: &mut StdRng, len: usize) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
}

fn linalg_checks(ctx: &Context, rng: &mut StdRng, checks: &mut Vec<Check>) -> Result<()> {
    for (m, k, n, ta, tb) in [(129, 65, 257, false, false), (200, 33, 77, true, true)] {
        let (a, b) = (uniform(rng, m * k), uniform(rng, k * n));
        let a_shape = if ta { [k, m] } else { [m, k] };
        let b_shape = if tb { [n, k] } else { [k, n] };
        let want = linalg::reference::matmul(&a, &b, Gemm::of("tour", &a_shape, &b_shape, ta, tb)?);
        let (at, bt) = (ctx.tensor(&a, &a_shape)?, ctx.tensor(&b, &b_shape)?);
        let shape = format!(
            "{m}×{k}×{n}{}{}",
            if ta { " Aᵀ" } else { "" },
            if tb { " Bᵀ" } else { "" }
        );
        let tiled = linalg::matmul(ctx, &at, &bt, ta, tb)?.to_vec()?;
        let naive = linalg::matmul_naive(ctx, &at, &bt, ta, tb)?.to_vec()?;
        checks.push(Check::new("linalg::matmul", shape.clone(), &tiled, &want));
        checks.push(Check::new("linalg::matmul_naive", shape, &naive, &want));
    }
    Ok(())
}

fn dora_checks(ctx: &Context, rng: &mut StdRng, checks: &mut Vec<Check>) -> Result<()> {
    let shape = LoraShape {
        d_out: 97,
        d_in: 131,
        r: 8,
    };
    let (n, s) = (33, 0.5f32);
    let (w, a, b, x) = (
        uniform(rng, shape.d_out * shape.d_in),
        uniform(rng, shape.r * shape.d_in),
        uniform(rng, shape.d_out * shape.r),
        uniform(rng, n * shape.d_in),
    );
    let magnitude: Vec<f32> = (0..shape.d_out)
        .map(|_| rng.random_range(0.5..2.0))
        .collect();
    let (tw, ta) = (
        ctx.tensor(&w, &[shape.d_out, shape.d_in])?,
        ctx.tensor(&a, &[shape.r, shape.d_in])?,
    );
    let (tb, tx) = (
        ctx.tensor(&b, &[shape.d_out, shape.r])?,
        ctx.tensor(&x, &[n, shape.d_in])?,
    );
    let tm = ctx.tensor(&magnitude, &[shape.d_out])?;
    let label = format!("{}×{}, r={}", shape.d_out, shape.d_in, shape.r);
    let want_norm = dora::reference::weight_norm(&w, &a, &b, shape, s as f64);
    let norm = dora::weight_norm(ctx, &tw, &ta, &tb, s)?;
    checks.push(Check::new(
        "dora::weight_norm",
        label.clone(),
        &norm.to_vec()?,
        &want_norm,
    ));
    let factored = dora::weight_norm_factored(ctx, &tw, &ta, &tb, s)?.to_vec()?;
    checks.push(Check::new(
        "dora::weight_norm_factored",
        label.clone(),
        &factored,
        &want_norm,
    ));
    let dense = dora::weight_norm_dense(ctx, &tw, &ta, &tb, s)?.to_vec()?;
    checks.push(Check::new(
        "dora::weight_norm_dense",
        label.clone(),
        &dense,
        &want_norm,
    ));

    let (base, lora, dy) = (
        uniform(rng, n * shape.d_out),
        uniform(rng, n * shape.d_out),
        uniform(rng, n * shape.d_out),
    );
    let norm_host = norm.to_vec()?;
    let (tbase, tlora) = (
        ctx.tensor(&base, &[n, shape.d_out])?,
        ctx.tensor(&lora, &[n, shape.d_out])?,
    );
    let want = dora::reference::compose(&base, &lora, &magnitude, &norm_host, s as f64);
    let cshape = format!("{n}×{}", shape.d_out);
    let y = dora::compose(ctx, &tbase, &tlora, &tm, &norm, s)?.to_vec()?;
    checks.push(Check::new("dora::compose", cshape.clone(), &y, &want));
    let y = dora::compose_unfused(ctx, &tbase, &tlora, &tm, &norm, s)?.to_vec()?;
    checks.push(Check::new(
        "dora::compose_unfused",
        cshape.clone(),
        &y,
        &want,
    ));
    let bf = DType::BF16;
    let round = |v: &[f32]| v.iter().map(|&x| bf.round(x)).collect::<Vec<f32>>();
    let want_bf16 = dora::reference::compose(
        &round(&base),
        &round(&lora),
        &magnitude,
        &norm_host,
        s as f64,
    );
    let (hb, hl) = (
        ctx.tensor_as(&base, &[n, shape.d_out], bf)?,
        ctx.tensor_as(&lora, &[n, shape.d_out], bf)?,
    );
    let y = dora::compose(ctx, &hb, &hl, &tm, &norm, s)?.to_vec()?;
    checks.push(Check::new(
        "dora::compose (bf16 in)",
        cshape.clone(),
        &y,
        &want_bf16,
    ));
    let grads = dora::compose_backward(
        ctx,
        &ctx.tensor(&dy, &[n, shape.d_out])?,
        &tbase,
        &tlora,
        &tm,
        &norm,
        s,
    )?;
    let (db, _, dm) =
        dora::reference::compose_backward(&dy, &base, &lora, &magnitude, &norm_host, s as f64);
    checks.push(Check::new(
        "dora::compose_backward (d_base)",
        cshape.clone(),
        &grads.base.to_vec()?,
        &db,
    ));
    checks.push(Check::new(
        "dora::compose_backward (d_m)",
        cshape,
        &grads.magnitude.to_vec()?,
        &dm,
    ));
    let want = dora::reference::forward(&x, &w, &a, &b, &magnitude, shape, s as f64);
    let fshape = format!("n={n}, {label}");
    let y = dora::forward(ctx, &tx, &tw, &ta, &tb, &tm, s)?.to_vec()?;
    checks.push(Check::new("dora::forward", fshape.clone(), &y, &want));
    let y = dora::forward_dense(ctx, &tx, &tw, &ta, &tb, &tm, s)?.to_vec()?;
    checks.push(Check::new("dora::forward_dense", fshape.clone(), &y, &want));
    let layer_dy = uniform(rng, n * shape.d_out);
    let tdy = ctx.tensor(&layer_dy, &[n, shape.d_out])?;
    let wide = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    let modes = [
        (
            NormGradient::Detached,
            [
                "dora::backward (∂x, detached)",
                "dora::backward (∂A, detached)",
            ],
        ),
        (
            NormGradient::Exact,
            ["dora::backward (∂x, exact)", "dora::backward (∂A, exact)"],
        ),
    ];
    for (mode, names) in modes {
        let exact = mode == NormGradient::Exact;
        let grads = dora::backward(ctx, &tx, &tw, &ta, &tb, &tm, s, &tdy, mode)?;
        let want = dora::reference::layer_backward(
            &wide(&x),
            &wide(&w),
            &wide(&a),
            &wide(&b),
            &wide(&magnitude),
            shape,
            s as f64,
            &wide(&layer_dy),
            exact,
        );
        for (name, got, want) in [(names[0], &grads.x, &want.x), (names[1], &grads.a, &want.a)] {
            checks.push(Check::new(name, fshape.clone(), &got.to_vec()?, want));
        }
    }
    Ok(())
}

fn attention_checks(ctx: &Context, rng: &mut StdRng, checks: &mut Vec<Check>) -> Result<()> {
    let (b, h, n, dk, dv) = (2, 3, 97, 40, 33);
    let dims = Dims {
        heads: b * h,
        n,
        dk,
        dv,
    };
    let (q, k, v) = (
        uniform(rng, b * h * n * dk),
        uniform(rng, b * h * n * dk),
        uniform(rng, b * h * n * dv),
    );
    let (tq, tk) = (
        ctx.tensor(&q, &[b, h, n, dk])?,
        ctx.tensor(&k, &[b, h, n, dk])?,
    );
    let tv = ctx.tensor(&v, &[b, h, n, dv])?;
    let shape = format!("[{b},{h},{n}] {dk}→{dv}");
    for causal in [false, true] {
        for (name, map) in [
            ("attention::linear (elu+1)", FeatureMap::EluPlusOne),
            ("attention::linear (norm-aware)", FeatureMap::NormAware),
        ] {
            let got = attention::linear(ctx, &tq, &tk, &tv, map, causal)?.to_vec()?;
            let want = attention::reference::linear(&q, &k, &v, dims, map, causal);
            let shape = format!("{shape}{}", if causal { " causal" } else { "" });
            checks.push(Check::new(name, shape, &got, &want));
        }
        let got = attention::softmax(ctx, &tq, &tk, &tv, causal)?.to_vec()?;
        let want = attention::reference::softmax(&q, &k, &v, dims, causal);
        let shape = format!("{shape}{}", if causal { " causal" } else { "" });
        checks.push(Check::new("attention::softmax", shape.clone(), &got, &want));

        // The backwards: ∂v, whose reference has no near-cancelling rows.
        let g = uniform(rng, b * h * n * dv);
        let tg = ctx.tensor(&g, &[b, h, n, dv])?;
        for (name, map) in [
            ("attention::linear_backward (elu+1)", FeatureMap::EluPlusOne),
            (
                "attention::linear_backward (norm-aware)",
                FeatureMap::NormAware,
            ),
        ] {
            let got = attention::linear_backward(ctx, &tq, &tk, &tv, &tg, map, causal)?;
            let want = attention::reference::linear_backward(&q, &k, &v, &g, dims, map, causal);
            checks.push(Check::new(
                name,
                format!("{shape} ∂q"),
                &got.q.to_vec()?,
                &want.q,
            ));
            checks.push(Check::new(
                name,
                format!("{shape} ∂v"),
                &got.v.to_vec()?,
                &want.v,
            ));
        }
        let got = attention::softmax_backward(ctx, &tq, &tk, &tv, &tg, causal)?;
        let want = attention::reference::softmax_backward(&q, &k, &v, &g, dims, causal);
        checks.push(Check::new(
            "attention::softmax_backward",
            format!("{shape} ∂k"),
            &got.k.to_vec()?,
            &want.k,
        ));
    }
    Ok(())
}

fn mfac_checks(ctx: &Context, rng: &mut StdRng, checks: &mut Vec<Check>) -> Result<()> {
    let (m, d, damp) = (13, 301, 0.05);
    let grads = uniform(rng, m * d);
    let x = uniform(rng, d);
    let factors = mfac::reference::sherman_morrison(&grads, d, damp as f64);
    let inverse = mfac::StaticInverse::new(ctx, &ctx.tensor(&grads, &[m, d])?, damp)?;
    let shape = format!("m={m}, d={d}");
    let got = inverse.ihvp(&ctx.tensor(&x, &[d])?)?.to_vec()?;
    checks.push(Check::new(
        "mfac::StaticInverse::ihvp",
        shape.clone(),
        &got,
        &factors.ihvp(&x),
    ));
    let got = inverse.inverse_diagonal()?.to_vec()?;
    let want = factors.inverse_diagonal();
    checks.push(Check::new(
        "mfac::StaticInverse::inverse_diag.",
        shape.clone(),
        &got,
        &want,
    ));
    let mut window = mfac::SlidingInverse::new(ctx, d, 5, damp)?;
    for g in grads.chunks(d) {
        window.push(&ctx.tensor(g, &[d])?)?;
    }
    let live = &grads[(m - 5) * d..];
    let want = mfac::reference::sherman_morrison(live, d, damp as f64).ihvp(&x);
    let got = window.ihvp(&ctx.tensor(&x, &[d])?)?.to_vec()?;
    checks.push(Check::new(
        "mfac::SlidingInverse::ihvp",
        format!("m=5, d={d}, {m} pushes"),
        &got,
        &want,
    ));
    Ok(())
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let ctx = Context::new()?;
    println!("device: {}", ctx.device_name());
    if !ctx.is_gpu() {
        println!("(no GPU adapter: running the CPU reference path)");
    }
    let mut rng = StdRng::seed_from_u64(rand::random());
    let mut checks = Vec::new();
    linalg_checks(&ctx, &mut rng, &mut checks)?;
    dora_checks(&ctx, &mut rng, &mut checks)?;
    equivariant::so3_checks(&ctx, &mut rng, &mut checks)?;
    mfac_checks(&ctx, &mut rng, &mut checks)?;
    attention_checks(&ctx, &mut rng, &mut checks)?;

    println!(
        "\n{:<34} {:<22} {:>10} {:>12}  ok",
        "kernel", "shape", "rel. err", "max abs err"
    );
    let mut all_ok = true;
    for c in &checks {
        let ok = c.relative < BOUND;
        all_ok &= ok;
        println!(
            "{:<34} {:<22} {:>10.2e} {:>12.2e}  {}",
            c.kernel,
            c.shape,
            c.relative,
            c.max_abs,
            if ok { "yes" } else { "NO" }
        );
    }
    let rates = roofline::measure(&ctx)?;
    println!(
        "\ndevice ceilings: copy {:.1} GB/s, FMA {:.1} GFLOP/s",
        rates.copy_gbps, rates.fma_gflops
    );
    if !all_ok {
        return Err(format!("a kernel missed the {BOUND:e} bound").into());
    }
    Ok(())
}
