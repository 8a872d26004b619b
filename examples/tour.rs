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
use wgkernels::{mfac, roofline, so3, Context, DType, Result};

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

fn so3_checks(ctx: &Context, rng: &mut StdRng, checks: &mut Vec<Check>) -> Result<()> {
    let (n, lmax) = (1000, 12);
    let v = uniform(rng, 3 * n);
    let y = so3::spherical_harmonics(ctx, &ctx.tensor(&v, &[n, 3])?, lmax)?.to_vec()?;
    let want = so3::reference::spherical_harmonics(&v, lmax);
    checks.push(Check::new(
        "so3::spherical_harmonics",
        format!("n={n}, lmax={lmax}"),
        &y,
        &want,
    ));

    let (n, c, l1, l2, lout) = (17, 5, 3, 2, 4);
    let (d1, d2) = (so3::reference::dim(l1), so3::reference::dim(l2));
    let (x1, x2) = (uniform(rng, n * c * d1), uniform(rng, n * d2));
    let (t1, t2) = (ctx.tensor(&x1, &[n, c, d1])?, ctx.tensor(&x2, &[n, 1, d2])?);
    let wide = |x: &[f32]| x.iter().map(|&v| v as f64).collect::<Vec<f64>>();
    let shape = format!("{n}×{c}, {l1}⊗{l2}→{lout}");
    for (name, kind) in [
        ("so3::cg_product", so3::Coefficients::ClebschGordan),
        ("so3::gaunt_product (Direct)", so3::Coefficients::Gaunt),
    ] {
        let table = so3::products::product_table(kind, l1, l2, lout);
        let want = so3::products::apply(&table, &wide(&x1), d1, &wide(&x2), d2, c);
        let got = match kind {
            so3::Coefficients::ClebschGordan => so3::cg_product(ctx, &t1, &t2, lout)?,
            so3::Coefficients::Gaunt => {
                so3::gaunt_product(ctx, &t1, &t2, lout, so3::GauntMethod::Direct)?
            }
        };
        checks.push(Check::new(name, shape.clone(), &got.to_vec()?, &want));
        if kind == so3::Coefficients::Gaunt {
            for (name, method) in [
                ("so3::gaunt_product (Fourier)", so3::GauntMethod::Fourier),
                ("so3::gaunt_product (Grid)", so3::GauntMethod::Grid),
            ] {
                let got = so3::gaunt_product(ctx, &t1, &t2, lout, method)?;
                checks.push(Check::new(name, shape.clone(), &got.to_vec()?, &want));
            }
        }
    }
    training_checks(ctx, rng, checks)
}

/// The blocks of an equivariant layer's training: the products' gradients, the weighted
/// product, the harmonics' gradient, linear and the graph operations.
fn training_checks(ctx: &Context, rng: &mut StdRng, checks: &mut Vec<Check>) -> Result<()> {
    use so3::products::{apply_weighted, grouped, Grouping, Weights};
    let wide = |x: &[f32]| x.iter().map(|&v| v as f64).collect::<Vec<f64>>();
    let (n, c, l1, l2, lout) = (17, 5, 3, 2, 4);
    let (d1, d2, d3) = (
        so3::reference::dim(l1),
        so3::reference::dim(l2),
        so3::reference::dim(lout),
    );
    let count = so3::paths(l1, l2, lout).len();
    let (x1, x2, w, g) = (
        uniform(rng, n * c * d1),
        uniform(rng, n * d2),
        uniform(rng, n * c * count),
        uniform(rng, n * c * d3),
    );
    let (t1, t2) = (ctx.tensor(&x1, &[n, c, d1])?, ctx.tensor(&x2, &[n, 1, d2])?);
    let (tw, tg) = (
        ctx.tensor(&w, &[n, c, count])?,
        ctx.tensor(&g, &[n, c, d3])?,
    );
    let shape = format!("{n}×{c}, {l1}⊗{l2}→{lout}");
    let ww = wide(&w);
    let weights_of = Weights {
        data: &ww,
        paths: count,
        shared_channels: None,
    };
    let kind = so3::Coefficients::ClebschGordan;
    let want = apply_weighted(
        &grouped(kind, l1, l2, lout, Grouping::Output),
        &wide(&x1),
        d1,
        &wide(&x2),
        d2,
        c,
        Some(&weights_of),
    );
    let got = so3::weighted_cg_product(ctx, &t1, &t2, &tw, lout)?.to_vec()?;
    checks.push(Check::new(
        "so3::weighted_cg_product",
        shape.clone(),
        &got,
        &want,
    ));
    let grads = so3::weighted_cg_product_backward(ctx, &t1, &t2, &tw, lout, &tg)?;
    let want = apply_weighted(
        &grouped(kind, l1, l2, lout, Grouping::X1),
        &wide(&g),
        d3,
        &wide(&x2),
        d2,
        c,
        Some(&weights_of),
    );
    checks.push(Check::new(
        "so3::weighted_cg_product_backward",
        format!("{shape} ∂x1"),
        &grads.x1.to_vec()?,
        &want,
    ));
    let table = so3::products::path_table(l1, l2, lout);
    let want = so3::products::path_gradient(
        &table,
        (&wide(&x1), d1),
        (&wide(&x2), d2, c),
        (&wide(&g), d3),
    );
    checks.push(Check::new(
        "so3::weighted_cg_product_backward",
        format!("{shape} ∂w"),
        &grads.weights.to_vec()?,
        &want,
    ));
    let gaunt = so3::Coefficients::Gaunt;
    let want = apply_weighted(
        &grouped(gaunt, l1, l2, lout, Grouping::X1),
        &wide(&g),
        d3,
        &wide(&x2),
        d2,
        c,
        None,
    );
    for (name, method) in [
        (
            "so3::gaunt_product_backward (Direct)",
            so3::GauntMethod::Direct,
        ),
        ("so3::gaunt_product_backward (Grid)", so3::GauntMethod::Grid),
        (
            "so3::gaunt_product_backward (Fourier)",
            so3::GauntMethod::Fourier,
        ),
    ] {
        let got = so3::gaunt_product_backward(ctx, &t1, &t2, lout, method, &tg)?
            .x1
            .to_vec()?;
        checks.push(Check::new(name, format!("{shape} ∂x1"), &got, &want));
    }

    let (n, lmax) = (1000, 6);
    let d = so3::reference::dim(lmax);
    let (v, dy) = (uniform(rng, 3 * n), uniform(rng, n * d));
    let got = so3::spherical_harmonics_backward(
        ctx,
        &ctx.tensor(&v, &[n, 3])?,
        lmax,
        &ctx.tensor(&dy, &[n, d])?,
    )?
    .to_vec()?;
    let want = so3::reference::spherical_harmonics_backward(&v, lmax, &dy);
    checks.push(Check::new(
        "so3::spherical_harmonics_backward",
        format!("n={n}, lmax={lmax}"),
        &got,
        &want,
    ));

    let (n, c_in, c_out, lmax) = (50, 7, 9, 3);
    let d = so3::reference::dim(lmax);
    let (x, w, g) = (
        uniform(rng, n * c_in * d),
        uniform(rng, (lmax + 1) * c_in * c_out),
        uniform(rng, n * c_out * d),
    );
    let (tx, tw, tg) = (
        ctx.tensor(&x, &[n, c_in, d])?,
        ctx.tensor(&w, &[lmax + 1, c_in, c_out])?,
        ctx.tensor(&g, &[n, c_out, d])?,
    );
    let shape = format!("{n}, {c_in}→{c_out}, lmax={lmax}");
    let got = so3::linear(ctx, &tx, &tw)?.to_vec()?;
    checks.push(Check::new(
        "so3::linear",
        shape.clone(),
        &got,
        &so3::reference::linear(&x, &w, [n, c_in, c_out], lmax, false),
    ));
    let grads = so3::linear_backward(ctx, &tx, &tw, &tg)?;
    let want = so3::reference::linear_weight_gradient(&x, &g, [n, c_in, c_out], lmax);
    checks.push(Check::new(
        "so3::linear_backward",
        format!("{shape} ∂w"),
        &grads.w.to_vec()?,
        &want,
    ));

    // The CP product at an exact rank (L = 1: rank 8 fits to ~1e-12) equals cg_product.
    let cp = so3::CpProduct::fit(1, 1, 1, 8)?;
    let (x1, x2) = (uniform(rng, 64 * 3 * 4), uniform(rng, 64 * 3 * 4));
    let (t1, t2) = (ctx.tensor(&x1, &[64, 3, 4])?, ctx.tensor(&x2, &[64, 3, 4])?);
    let table = grouped(so3::Coefficients::ClebschGordan, 1, 1, 1, Grouping::Output);
    let want = apply_weighted(&table, &wide(&x1), 4, &wide(&x2), 4, 1, None);
    let got = cp.apply(ctx, &t1, &t2)?.to_vec()?;
    checks.push(Check::new(
        "so3::CpProduct::apply",
        format!("64×3, 1⊗1→1, rank {}", cp.rank()),
        &got,
        &want,
    ));

    let (edges, nodes, width) = (5000, 333, 6);
    let index: Vec<u32> = (0..edges)
        .map(|_| rng.random_range(0..nodes as u32))
        .collect();
    let idx = wgkernels::graph::Index::new(ctx, &index, nodes)?;
    let src = uniform(rng, edges * width);
    let got =
        wgkernels::graph::scatter_sum(ctx, &ctx.tensor(&src, &[edges, width])?, &idx)?.to_vec()?;
    let segments = wgkernels::graph::reference::Segments::new(&index, nodes);
    let want = wgkernels::graph::reference::scatter_sum(&src, width, &segments);
    checks.push(Check::new(
        "graph::scatter_sum",
        format!("{edges}→{nodes} × {width}"),
        &got,
        &want,
    ));
    let table = uniform(rng, nodes * width);
    let got =
        wgkernels::graph::gather(ctx, &ctx.tensor(&table, &[nodes, width])?, &idx)?.to_vec()?;
    let want = wgkernels::graph::reference::gather(&table, width, &index);
    checks.push(Check::new(
        "graph::gather",
        format!("{nodes}→{edges} × {width}"),
        &got,
        &want,
    ));
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
    so3_checks(&ctx, &mut rng, &mut checks)?;
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
