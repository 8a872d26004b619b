//! The DoRA compose and its backward on the GPU (and the CPU path) against the f64
//! reference and finite differences, the cancellation the stable form avoids, and bad
//! arguments. Bounds: see tests/common/dora.rs.

mod common;

use common::dora::*;
use rand::Rng;
use wgkernels::compare::relative_error;
use wgkernels::dora::{self, reference};
use wgkernels::{Context, DType, Error, Tensor};

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

/// Half-precision operands (every one may be f16 or bf16) give, on both paths, the f32
/// answer for their rounded values. (A half-precision `norm` once failed on the GPU only: the
/// magnitude kernel had no loader to read it.)
#[test]
fn compose_backward_reads_half_precision_operands() {
    let mut rng = common::rng();
    let (n, d_out, s) = (9, 13, 0.7f32);
    let dy = common::uniform(&mut rng, n * d_out);
    let base = common::uniform(&mut rng, n * d_out);
    let lora = common::uniform(&mut rng, n * d_out);
    let norm: Vec<f32> = (0..d_out).map(|_| rng.random_range(0.5f32..2.0)).collect();
    let magnitude: Vec<f32> = (0..d_out).map(|_| rng.random_range(0.5f32..2.0)).collect();
    for ctx in contexts() {
        for dtype in [DType::F16, DType::BF16] {
            let t = |x: &[f32], shape: &[usize]| ctx.tensor_as(x, shape, dtype).unwrap();
            let (dy, base, lora) = (
                t(&dy, &[n, d_out]),
                t(&base, &[n, d_out]),
                t(&lora, &[n, d_out]),
            );
            let (magnitude, norm) = (t(&magnitude, &[d_out]), t(&norm, &[d_out]));
            let grads =
                dora::compose_backward(&ctx, &dy, &base, &lora, &magnitude, &norm, s).unwrap();
            let rounded = |x: &Tensor| x.to_vec().unwrap();
            let (db, dl, dm) = reference::compose_backward(
                &rounded(&dy),
                &rounded(&base),
                &rounded(&lora),
                &rounded(&magnitude),
                &rounded(&norm),
                s as f64,
            );
            for (name, got, want) in [
                ("d_base", &grads.base, &db),
                ("d_lora", &grads.lora, &dl),
                ("d_magnitude", &grads.magnitude, &dm),
            ] {
                let err = relative_error(&got.to_vec().unwrap(), want);
                assert!(
                    err < BOUND,
                    "{} {dtype:?} {name}: {err:e}",
                    ctx.device_name()
                );
            }
        }
    }
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
        for weight_norm in [
            dora::weight_norm,
            dora::weight_norm_factored,
            dora::weight_norm_dense,
        ] {
            assert!(shape_err(weight_norm(&ctx, &t(&[24]), &a, &b, 1.0)));
            assert!(shape_err(weight_norm(&ctx, &w, &t(&[2, 5]), &b, 1.0)));
            assert!(shape_err(weight_norm(&ctx, &w, &a, &t(&[4, 3]), 1.0)));
            assert!(shape_err(weight_norm(&ctx, &w, &a, &t(&[2, 4]), 1.0)));
            let e = weight_norm(&ctx, &w, &a, &b, f32::NAN).unwrap_err();
            assert!(
                matches!(e, Error::InvalidArgument { arg: "scale", .. }),
                "{e}"
            );
        }
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
        for weight_norm in [dora::weight_norm, dora::weight_norm_factored] {
            assert!(matches!(
                weight_norm(&ctx, &w, &foreign, &b, 1.0),
                Err(Error::ContextMismatch { arg: "a", .. })
            ));
        }
        assert_eq!(
            w.to_vec().unwrap(),
            vec![0.5; 24],
            "a failed call changed an input"
        );
    }
}
