//! DoRA on the GPU (and the CPU path) against the f64 reference.
//!
//! Bounds: GEMM-based outputs are f32 sums of a few hundred terms of mixed sign, relative
//! error ≈ √d·2⁻²⁴ ≈ 1e-6, checked at 1e-5 (relative L2). The weight norms are checked
//! against the size of the terms they sum (see `norm_error`), since the factored form can
//! cancel. The compose is element-wise, a handful of roundings per element: checked in ulps.

mod common;

use rand::rngs::StdRng;
use rand::Rng;
use wgkernels::compare::relative_error;
use wgkernels::dora::{self, reference, LoraShape};
use wgkernels::{Context, DType, Error, GpuOptions, Tensor};

const BOUND: f64 = 1e-5;

fn contexts() -> Vec<Context> {
    [Some(Context::cpu()), common::gpu()]
        .into_iter()
        .flatten()
        .collect()
}

struct Adapter {
    w: Vec<f32>,
    a: Vec<f32>,
    b: Vec<f32>,
    shape: LoraShape,
}

fn adapter(rng: &mut StdRng, d_out: usize, d_in: usize, r: usize) -> Adapter {
    Adapter {
        w: common::uniform(rng, d_out * d_in),
        a: common::uniform(rng, r * d_in),
        b: common::uniform(rng, d_out * r),
        shape: LoraShape { d_out, d_in, r },
    }
}

impl Adapter {
    fn upload(&self, ctx: &Context) -> [Tensor; 3] {
        let LoraShape { d_out, d_in, r } = self.shape;
        [
            ctx.tensor(&self.w, &[d_out, d_in]).unwrap(),
            ctx.tensor(&self.a, &[r, d_in]).unwrap(),
            ctx.tensor(&self.b, &[d_out, r]).unwrap(),
        ]
    }
}

/// Bound of [`norm_error`]: f32 sums of a few hundred terms, ≈ √k·2⁻²⁴ of their size, with
/// room for the order of summation (the paper tests fp32 at 2e-5 too).
const NORM_BOUND: f64 = 2e-5;

/// `max_j |got_j² − want_j²| / S_j` with `S_j = ‖ |W_j| + |s|·|B_j|·|A| ‖²`, the size of the
/// terms the squared norm sums. The factored form `‖W_j‖² + 2s·B_j·U_j + s²·B_j G B_jᵀ`
/// cancels when `W_j + s·(B·A)_j` is small against them (a 1×1 weight with r = 384 once lost
/// three digits), so f32 bounds the error against `S_j`, not against the norm itself.
fn norm_error(
    got: &[f32],
    want: &[f64],
    w: &[f32],
    a: &[f32],
    b: &[f32],
    shape: LoraShape,
    s: f32,
) -> f64 {
    let LoraShape { d_in, r, .. } = shape;
    got.iter()
        .zip(want)
        .enumerate()
        .map(|(j, (&g, &n))| {
            let size: f64 = (0..d_in)
                .map(|i| {
                    let lowrank: f64 = (0..r)
                        .map(|t| (b[j * r + t] as f64 * a[t * d_in + i] as f64).abs())
                        .sum();
                    ((w[j * d_in + i] as f64).abs() + (s as f64).abs() * lowrank).powi(2)
                })
                .sum();
            if !g.is_finite() {
                return f64::INFINITY;
            }
            ((g as f64).powi(2) - n * n).abs() / size.max(f64::MIN_POSITIVE)
        })
        .fold(0.0, f64::max)
}

#[test]
fn factored_and_dense_norms_match_the_reference() {
    let mut rng = common::rng();
    for ctx in contexts() {
        for (d_out, d_in) in [(67, 131), (1, 1), (300, 257)] {
            for r in [1, 8, 33, 384] {
                let ad = adapter(&mut rng, d_out, d_in, r);
                let [w, a, b] = ad.upload(&ctx);
                for s in [0.0f32, 0.1, 1.0] {
                    let want =
                        reference::weight_norm_dense(&ad.w, &ad.a, &ad.b, ad.shape, s as f64);
                    let factored_f64 =
                        reference::weight_norm(&ad.w, &ad.a, &ad.b, ad.shape, s as f64);
                    let f64_gap = factored_f64
                        .iter()
                        .zip(&want)
                        .map(|(x, y)| (x - y).abs() / y.abs().max(1e-300))
                        .fold(0.0, f64::max);
                    assert!(f64_gap < 1e-10, "f64 factored vs dense {f64_gap:e}");
                    let label = format!("{} {d_out}x{d_in} r={r} s={s}", ctx.device_name());
                    let factored = dora::weight_norm(&ctx, &w, &a, &b, s)
                        .unwrap()
                        .to_vec()
                        .unwrap();
                    let dense = dora::weight_norm_dense(&ctx, &w, &a, &b, s)
                        .unwrap()
                        .to_vec()
                        .unwrap();
                    let error =
                        |got: &[f32]| norm_error(got, &want, &ad.w, &ad.a, &ad.b, ad.shape, s);
                    let (ef, ed) = (error(&factored), error(&dense));
                    assert!(ef < NORM_BOUND, "factored {label}: {ef:e}");
                    assert!(ed < NORM_BOUND, "dense {label}: {ed:e}");
                }
            }
        }
    }
}

/// Largest `|got − want|` in units of f32 epsilon times the size of the terms summed.
fn max_ulps(got: &[f32], want: &[f64], scale: &[f64]) -> f64 {
    got.iter()
        .zip(want)
        .zip(scale)
        .map(|((&g, &w), &s)| (g as f64 - w).abs() / (f32::EPSILON as f64 * s))
        .fold(0.0, f64::max)
}

#[test]
fn compose_matches_the_reference_within_a_few_ulp_near_unity() {
    let mut rng = common::rng();
    // d_out = 129 takes the scalar kernel, 128 the vec4 one.
    for (ctx, (n, d_out)) in contexts()
        .into_iter()
        .flat_map(|c| [(c.clone(), (37, 129)), (c, (37, 128))])
    {
        let s = 0.5f32;
        let base = common::uniform(&mut rng, n * d_out);
        let lora: Vec<f32> = common::uniform(&mut rng, n * d_out)
            .iter()
            .map(|x| x * 1e-2)
            .collect();
        let norm: Vec<f32> = (0..d_out).map(|_| rng.random_range(0.5f32..4.0)).collect();
        // g = m / norm swept over [0.9, 1.1], with a third of the columns within 1e-4 of 1.
        let magnitude: Vec<f32> = norm
            .iter()
            .enumerate()
            .map(|(j, &nj)| {
                let g = if j % 3 == 0 {
                    1.0 + rng.random_range(-1e-4..1e-4)
                } else {
                    rng.random_range(0.9..1.1)
                };
                nj * g
            })
            .collect();
        let want = reference::compose(&base, &lora, &magnitude, &norm, s as f64);
        let g = reference::gain(&magnitude, &norm);
        let terms: Vec<f64> = (0..n * d_out)
            .map(|i| (base[i] as f64).abs() + (g[i % d_out] * s as f64 * lora[i] as f64).abs())
            .collect();
        let t = |x: &[f32], shape: &[usize]| ctx.tensor(x, shape).unwrap();
        let (tb, tl, tm, tn) = (
            t(&base, &[n, d_out]),
            t(&lora, &[n, d_out]),
            t(&magnitude, &[d_out]),
            t(&norm, &[d_out]),
        );
        for (name, compose) in [
            ("fused", dora::compose as ComposeFn),
            ("unfused", dora::compose_unfused),
        ] {
            let y = compose(&ctx, &tb, &tl, &tm, &tn, s)
                .unwrap()
                .to_vec()
                .unwrap();
            let ulps = max_ulps(&y, &want, &terms);
            assert!(
                ulps <= 4.0,
                "{}: {name} compose {ulps:.2} ulp",
                ctx.device_name()
            );
        }
    }
}

#[test]
fn the_naive_form_loses_digits_of_the_dora_update_where_the_stable_form_does_not() {
    // The DoRA update δ = y − base in f32: stable (g−1)·base + g·(s·lora) against naive
    // g·(base + s·lora) − base, on a near-unity sweep; errors relative to the f64 update.
    let mut rng = common::rng();
    let (count, s) = (4096, 0.5f32);
    let (mut stable_err, mut naive_err) = (Vec::new(), Vec::new());
    for _ in 0..count {
        let base = rng.random_range(0.5f32..2.0);
        let lora = rng.random_range(-1e-3f32..1e-3);
        let g = 1.0f32 + rng.random_range(-1e-3f32..1e-3);
        let exact = (g as f64 - 1.0) * base as f64 + g as f64 * (s as f64 * lora as f64);
        let stable = (g - 1.0) * base + g * (s * lora);
        let naive = g * (base + s * lora) - base;
        stable_err.push(((stable as f64 - exact) / exact).abs());
        naive_err.push(((naive as f64 - exact) / exact).abs());
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (stable, naive) = (median(&mut stable_err), median(&mut naive_err));
    eprintln!("median relative error of the update: stable {stable:.2e}, naive {naive:.2e}");
    assert!(stable < 1e-6, "stable form {stable:e}");
    assert!(
        naive > 30.0 * stable,
        "naive {naive:e} vs stable {stable:e}"
    );
}

#[test]
fn compose_backward_matches_the_reference_and_finite_differences() {
    let mut rng = common::rng();
    let (n, d_out, s) = (70, 33, 0.7f32); // 70 rows: two chunks of the backward kernel
    for ctx in contexts() {
        let dy = common::uniform(&mut rng, n * d_out);
        let base = common::uniform(&mut rng, n * d_out);
        let lora = common::uniform(&mut rng, n * d_out);
        let norm: Vec<f32> = (0..d_out).map(|_| rng.random_range(0.5f32..2.0)).collect();
        let magnitude: Vec<f32> = (0..d_out).map(|_| rng.random_range(0.5f32..2.0)).collect();
        let t = |x: &[f32], shape: &[usize]| ctx.tensor(x, shape).unwrap();
        let grads = dora::compose_backward(
            &ctx,
            &t(&dy, &[n, d_out]),
            &t(&base, &[n, d_out]),
            &t(&lora, &[n, d_out]),
            &t(&magnitude, &[d_out]),
            &t(&norm, &[d_out]),
            s,
        )
        .unwrap();
        let (db, dl, dm) =
            reference::compose_backward(&dy, &base, &lora, &magnitude, &norm, s as f64);
        let label = ctx.device_name();
        for (name, got, want) in [
            ("d_base", &grads.base, &db),
            ("d_lora", &grads.lora, &dl),
            ("d_magnitude", &grads.magnitude, &dm),
        ] {
            let err = relative_error(&got.to_vec().unwrap(), want);
            assert!(err < BOUND, "{label} {name}: {err:e}");
        }
        // L = Σ dy ⊙ compose(...) is linear in each argument, so a central difference with the
        // actual (rounded) step is exact up to f64 rounding.
        let loss = |base: &[f32], lora: &[f32], magnitude: &[f32]| -> f64 {
            let y = reference::compose(base, lora, magnitude, &norm, s as f64);
            y.iter().zip(&dy).map(|(y, &d)| y * d as f64).sum()
        };
        let fd = |x: &[f32], i: usize, eval: &dyn Fn(&[f32]) -> f64| -> f64 {
            let (mut up, mut down) = (x.to_vec(), x.to_vec());
            up[i] += 0.01;
            down[i] -= 0.01;
            (eval(&up) - eval(&down)) / (up[i] as f64 - down[i] as f64)
        };
        let got_db = grads.base.to_vec().unwrap();
        let got_dl = grads.lora.to_vec().unwrap();
        let got_dm = grads.magnitude.to_vec().unwrap();
        for i in [0, 5, n * d_out / 2, n * d_out - 1] {
            let want_b = fd(&base, i, &|b| loss(b, &lora, &magnitude));
            let want_l = fd(&lora, i, &|l| loss(&base, l, &magnitude));
            assert!(
                (got_db[i] as f64 - want_b).abs() <= 1e-5 * want_b.abs().max(1.0),
                "{label} d_base[{i}]"
            );
            assert!(
                (got_dl[i] as f64 - want_l).abs() <= 1e-5 * want_l.abs().max(1.0),
                "{label} d_lora[{i}]"
            );
        }
        for j in [0, d_out / 2, d_out - 1] {
            let want_m = fd(&magnitude, j, &|m| loss(&base, &lora, m));
            assert!(
                (got_dm[j] as f64 - want_m).abs() <= 1e-5 * want_m.abs().max(1.0),
                "{label} d_m[{j}]"
            );
        }
    }
}

#[test]
fn forward_matches_the_reference_and_the_dense_forward() {
    let mut rng = common::rng();
    let (n, d_out, d_in, r, s) = (19, 45, 37, 5, 0.5f32);
    for ctx in contexts() {
        let ad = adapter(&mut rng, d_out, d_in, r);
        let [w, a, b] = ad.upload(&ctx);
        let x = common::uniform(&mut rng, n * d_in);
        let magnitude: Vec<f32> = (0..d_out).map(|_| rng.random_range(0.5f32..2.0)).collect();
        let want = reference::forward(&x, &ad.w, &ad.a, &ad.b, &magnitude, ad.shape, s as f64);
        let (tx, tm) = (
            ctx.tensor(&x, &[n, d_in]).unwrap(),
            ctx.tensor(&magnitude, &[d_out]).unwrap(),
        );
        for (name, forward) in [
            ("forward", dora::forward as ForwardFn),
            ("forward_dense", dora::forward_dense),
        ] {
            let y = forward(&ctx, &tx, &w, &a, &b, &tm, s).unwrap();
            assert_eq!(y.shape(), &[n, d_out]);
            let err = relative_error(&y.to_vec().unwrap(), &want);
            assert!(err < BOUND, "{} {name}: {err:e}", ctx.device_name());
        }
    }
}

type ComposeFn = fn(&Context, &Tensor, &Tensor, &Tensor, &Tensor, f32) -> wgkernels::Result<Tensor>;

type ForwardFn =
    fn(&Context, &Tensor, &Tensor, &Tensor, &Tensor, &Tensor, f32) -> wgkernels::Result<Tensor>;

#[test]
fn zero_rows_give_finite_results() {
    let mut rng = common::rng();
    let (n, d_out, d_in, r) = (5, 9, 11, 3);
    for ctx in contexts() {
        let mut ad = adapter(&mut rng, d_out, d_in, r);
        for j in [0, 4] {
            ad.w[j * d_in..(j + 1) * d_in].fill(0.0);
            ad.b[j * r..(j + 1) * r].fill(0.0);
        }
        let [w, a, b] = ad.upload(&ctx);
        let norm = dora::weight_norm(&ctx, &w, &a, &b, 1.0)
            .unwrap()
            .to_vec()
            .unwrap();
        assert_eq!((norm[0], norm[4]), (0.0, 0.0));
        let x = ctx
            .tensor(&common::uniform(&mut rng, n * d_in), &[n, d_in])
            .unwrap();
        let m = ctx.tensor(&[1.0; 9], &[d_out]).unwrap();
        let y = dora::forward(&ctx, &x, &w, &a, &b, &m, 1.0)
            .unwrap()
            .to_vec()
            .unwrap();
        assert!(
            y.iter().all(|v| v.is_finite()),
            "{}: {y:?}",
            ctx.device_name()
        );
    }
}

/// Checks compose, compose_unfused and compose_backward against the f64 reference, with
/// `[dy, base, lora]` (values already representable in `dtype`) stored as `dtype` and
/// `[magnitude, norm]` as f32.
fn check_compose_family(
    ctx: &Context,
    dtype: DType,
    n: usize,
    d_out: usize,
    s: f32,
    [dy, base, lora, magnitude, norm]: [&[f32]; 5],
    label: &str,
) {
    let half = |x: &[f32]| ctx.tensor_as(x, &[n, d_out], dtype).unwrap();
    let (tdy, tb, tl) = (half(dy), half(base), half(lora));
    let (tm, tn) = (
        ctx.tensor(magnitude, &[d_out]).unwrap(),
        ctx.tensor(norm, &[d_out]).unwrap(),
    );
    let want = reference::compose(base, lora, magnitude, norm, s as f64);
    for y in [
        dora::compose(ctx, &tb, &tl, &tm, &tn, s),
        dora::compose_unfused(ctx, &tb, &tl, &tm, &tn, s),
    ] {
        let err = relative_error(&y.unwrap().to_vec().unwrap(), &want);
        assert!(err < BOUND, "{label} compose: {err:e}");
    }
    let grads = dora::compose_backward(ctx, &tdy, &tb, &tl, &tm, &tn, s).unwrap();
    let (db, dl, dm) = reference::compose_backward(dy, base, lora, magnitude, norm, s as f64);
    for (got, want) in [
        (&grads.base, &db),
        (&grads.lora, &dl),
        (&grads.magnitude, &dm),
    ] {
        let err = relative_error(&got.to_vec().unwrap(), want);
        assert!(err < BOUND, "{label} backward: {err:e}");
    }
}

#[test]
fn inputs_larger_than_a_binding_are_split_into_row_blocks() {
    let Some(ctx) = common::gpu_with(GpuOptions {
        max_binding_bytes: Some(4096),
        ..Default::default()
    }) else {
        return;
    };
    let mut rng = common::rng();
    let ad = adapter(&mut rng, 70, 50, 9);
    let [w, a, b] = ad.upload(&ctx);
    for s in [0.0f32, 0.3] {
        let want = reference::weight_norm(&ad.w, &ad.a, &ad.b, ad.shape, s as f64);
        for norm in [
            dora::weight_norm(&ctx, &w, &a, &b, s),
            dora::weight_norm_dense(&ctx, &w, &a, &b, s),
        ] {
            let err = relative_error(&norm.unwrap().to_vec().unwrap(), &want);
            assert!(err < BOUND, "s={s}: {err:e}");
        }
    }
    let (n, d_out, s) = (200, 32, 0.4f32); // vec4 compose; the unfused and backward are scalar
    let [dy, base, lora] = [0, 1, 2].map(|_| common::uniform(&mut rng, n * d_out));
    let magnitude = common::uniform(&mut rng, d_out);
    let norm: Vec<f32> = (0..d_out).map(|_| rng.random_range(0.5f32..2.0)).collect();
    let inputs = [dy.as_slice(), &base, &lora, &magnitude, &norm];
    check_compose_family(&ctx, DType::F32, n, d_out, s, inputs, "split");
}

#[test]
fn the_factored_norm_never_holds_a_dense_product() {
    let Some(ctx) = common::gpu() else { return };
    let mut rng = common::rng();
    let (d, r) = (4096, 64);
    let ad = adapter(&mut rng, d, d, r);
    let [w, a, b] = ad.upload(&ctx);
    let dense_bytes = (d * d * 4) as u64;

    ctx.synchronize().unwrap();
    let before = ctx.allocated_bytes();
    ctx.reset_peak_allocated_bytes();
    let factored = dora::weight_norm(&ctx, &w, &a, &b, 0.5).unwrap();
    let factored_peak = ctx.peak_allocated_bytes() - before;

    ctx.reset_peak_allocated_bytes();
    let before_dense = ctx.allocated_bytes();
    let dense = dora::weight_norm_dense(&ctx, &w, &a, &b, 0.5).unwrap();
    let dense_peak = ctx.peak_allocated_bytes() - before_dense;
    eprintln!("transient bytes: factored {factored_peak}, dense {dense_peak}, d_out·d_in·4 = {dense_bytes}");
    assert!(
        factored_peak < dense_bytes / 8,
        "factored held {factored_peak} bytes"
    );
    assert!(
        dense_peak >= dense_bytes,
        "the dense baseline should hold B·A"
    );
    let dense: Vec<f64> = dense.to_vec().unwrap().iter().map(|&x| x as f64).collect();
    let err = relative_error(&factored.to_vec().unwrap(), &dense);
    assert!(err < BOUND, "{err:e}");
}

#[test]
fn bad_shapes_and_scales_are_errors() {
    for ctx in contexts() {
        let t = |shape: &[usize]| {
            ctx.tensor(&vec![0.5; shape.iter().product()], shape)
                .unwrap()
        };
        let (w, a, b) = (t(&[4, 6]), t(&[2, 6]), t(&[4, 2]));
        let shape_err = |r: wgkernels::Result<Tensor>| matches!(r, Err(Error::Shape { .. }));
        assert!(shape_err(dora::weight_norm(&ctx, &t(&[24]), &a, &b, 1.0)));
        assert!(shape_err(dora::weight_norm(&ctx, &w, &t(&[2, 5]), &b, 1.0)));
        assert!(shape_err(dora::weight_norm(&ctx, &w, &a, &t(&[4, 3]), 1.0)));
        assert!(shape_err(dora::weight_norm_dense(
            &ctx,
            &w,
            &a,
            &t(&[2, 4]),
            1.0
        )));
        let e = dora::weight_norm(&ctx, &w, &a, &b, f32::NAN).unwrap_err();
        assert!(
            matches!(e, Error::InvalidArgument { arg: "scale", .. }),
            "{e}"
        );
        let (base, m) = (t(&[3, 4]), t(&[4]));
        assert!(shape_err(dora::compose(
            &ctx,
            &base,
            &t(&[3, 5]),
            &m,
            &m,
            1.0
        )));
        assert!(shape_err(dora::compose(
            &ctx,
            &base,
            &base,
            &t(&[5]),
            &m,
            1.0
        )));
        assert!(shape_err(dora::compose(
            &ctx,
            &base,
            &base,
            &m,
            &t(&[3]),
            1.0
        )));
        assert!(shape_err(dora::compose(
            &ctx,
            &t(&[12]),
            &t(&[12]),
            &m,
            &m,
            1.0
        )));
        assert!(shape_err(dora::compose_unfused(
            &ctx,
            &base,
            &t(&[4, 3]),
            &m,
            &m,
            1.0
        )));
        assert!(matches!(
            dora::compose_backward(&ctx, &t(&[4, 4]), &base, &base, &m, &m, 1.0),
            Err(Error::Shape { .. })
        ));
        assert!(shape_err(dora::forward(
            &ctx,
            &t(&[3, 5]),
            &w,
            &a,
            &b,
            &m,
            1.0
        )));
        assert!(shape_err(dora::forward(
            &ctx,
            &t(&[3, 6]),
            &w,
            &a,
            &b,
            &t(&[3]),
            1.0
        )));
        let other = Context::cpu();
        let foreign = other.tensor(&[0.5; 12], &[2, 6]).unwrap();
        assert!(matches!(
            dora::weight_norm(&ctx, &w, &foreign, &b, 1.0),
            Err(Error::ContextMismatch { arg: "a", .. })
        ));
        assert_eq!(
            w.to_vec().unwrap(),
            vec![0.5; 24],
            "a failed call changed an input"
        );
    }
}

/// f16 and bf16 storage: against the f64 reference on the same (rounded) inputs the error is
/// that of f32 arithmetic (1e-5); against the reference on the unrounded f32 inputs it is the
/// storage rounding, 2⁻¹¹ (f16) or 2⁻⁸ (bf16) per element, averaged down by the sums: bounded
/// here at 2e-3 and 1e-2 (the paper's tests use 5e-3 for both).
#[test]
fn half_precision_storage_accumulates_in_f32() {
    let mut rng = common::rng();
    for ctx in contexts() {
        for (dtype, storage_bound) in [(DType::F16, 2e-3), (DType::BF16, 1e-2)] {
            let round = |x: &[f32]| x.iter().map(|&v| dtype.round(v)).collect::<Vec<f32>>();
            let label = format!("{} {dtype}", ctx.device_name());
            let up = |x: &[f32], shape: &[usize]| ctx.tensor_as(x, shape, dtype).unwrap();
            // weight norms
            for r in [1, 8, 33, 384] {
                let ad = adapter(&mut rng, 67, 131, r);
                let LoraShape { d_out, d_in, r } = ad.shape;
                let (w, a, b) = (
                    up(&ad.w, &[d_out, d_in]),
                    up(&ad.a, &[r, d_in]),
                    up(&ad.b, &[d_out, r]),
                );
                for s in [0.0f32, 0.1, 1.0] {
                    let exact = reference::weight_norm(
                        &round(&ad.w),
                        &round(&ad.a),
                        &round(&ad.b),
                        ad.shape,
                        s as f64,
                    );
                    let unrounded = reference::weight_norm(&ad.w, &ad.a, &ad.b, ad.shape, s as f64);
                    for (name, norm) in [
                        ("factored", dora::weight_norm(&ctx, &w, &a, &b, s)),
                        ("dense", dora::weight_norm_dense(&ctx, &w, &a, &b, s)),
                    ] {
                        let got = norm.unwrap().to_vec().unwrap();
                        let (w, a, b) = (round(&ad.w), round(&ad.a), round(&ad.b));
                        let (e, e_storage) = (
                            norm_error(&got, &exact, &w, &a, &b, ad.shape, s),
                            relative_error(&got, &unrounded),
                        );
                        assert!(e < NORM_BOUND, "{label} {name} r={r} s={s}: {e:e}");
                        assert!(
                            e_storage < storage_bound,
                            "{label} {name} r={r} s={s} vs unrounded: {e_storage:e}"
                        );
                    }
                }
            }
            // compose and its backward, with base, lora and dy stored in half precision
            let (n, d, s) = (45, 77, 0.5f32);
            let [dy, base, lora] = [0, 1, 2].map(|_| round(&common::uniform(&mut rng, n * d)));
            let norm: Vec<f32> = (0..d).map(|_| rng.random_range(0.5f32..2.0)).collect();
            let magnitude: Vec<f32> = norm
                .iter()
                .map(|x| x * rng.random_range(0.9f32..1.1))
                .collect();
            let inputs = [dy.as_slice(), &base, &lora, &magnitude, &norm];
            check_compose_family(&ctx, dtype, n, d, s, inputs, &label);
            // the whole layer
            let ad = adapter(&mut rng, 45, 37, 5);
            let LoraShape { d_out, d_in, r } = ad.shape;
            let (w, a, b) = (
                up(&ad.w, &[d_out, d_in]),
                up(&ad.a, &[r, d_in]),
                up(&ad.b, &[d_out, r]),
            );
            let x = round(&common::uniform(&mut rng, 9 * d_in));
            let m: Vec<f32> = (0..d_out).map(|_| rng.random_range(0.5f32..2.0)).collect();
            let want = reference::forward(
                &x,
                &round(&ad.w),
                &round(&ad.a),
                &round(&ad.b),
                &m,
                ad.shape,
                0.5,
            );
            let y = dora::forward(
                &ctx,
                &up(&x, &[9, d_in]),
                &w,
                &a,
                &b,
                &ctx.tensor(&m, &[d_out]).unwrap(),
                0.5,
            )
            .unwrap();
            let err = relative_error(&y.to_vec().unwrap(), &want);
            assert!(err < BOUND, "{label} forward: {err:e}");
        }
    }
}
