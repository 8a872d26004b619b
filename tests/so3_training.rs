//! The gradient of the spherical harmonics with respect to the vectors, and so3::linear with
//! its backward: f64 references against central finite differences, both paths against the
//! references, equivariance, edges and errors.
//!
//! Bounds. Finite differences in f64, step 1e-6 (harmonics: smooth away from 0, truncation
//! ~1e-12·|Y'''|): checked at 1e-7. Device against f64: the harmonics' backward runs the
//! recursion in f32 (its forward's error is ~1e-7 per degree) and back, ~l·1e-7: checked at
//! 1e-5; linear is a sum of c_in (or n·(2l+1)) f32 products: checked at 1e-6.

mod common;

use common::random_rotation;
use wgkernels::compare::relative_error;
use wgkernels::so3::{self, reference, MAX_L};
use wgkernels::{Context, Error, GpuOptions};

fn contexts() -> Vec<Context> {
    [Some(Context::cpu()), common::gpu()]
        .into_iter()
        .flatten()
        .collect()
}

#[test]
fn harmonics_gradient_matches_finite_differences() {
    let mut rng = common::rng();
    for lmax in [1, 2, 5, MAX_L] {
        let n = 4;
        let v = common::uniform(&mut rng, 3 * n);
        let g = common::uniform(&mut rng, n * reference::dim(lmax));
        let got = reference::spherical_harmonics_backward(&v, lmax, &g);
        let loss = |v: &[f64]| -> f64 {
            let y = reference::spherical_harmonics_f64(v, lmax);
            y.iter().zip(&g).map(|(y, &g)| y * g as f64).sum()
        };
        let x: Vec<f64> = v.iter().map(|&x| x as f64).collect();
        let h = 1e-6;
        let fd: Vec<f64> = (0..x.len())
            .map(|i| {
                let (mut plus, mut minus) = (x.clone(), x.clone());
                plus[i] += h;
                minus[i] -= h;
                (loss(&plus) - loss(&minus)) / (2.0 * h)
            })
            .collect();
        let e = common::relative_error_f64(&got, &fd);
        assert!(e < 1e-7, "lmax {lmax}: {e:e}");
        // Orthogonal to the vector: the harmonics see only its direction.
        for (v, d) in v.chunks(3).zip(got.chunks(3)) {
            let along: f64 = v.iter().zip(d).map(|(&a, b)| a as f64 * b).sum();
            let scale = d.iter().map(|x| x.abs()).sum::<f64>() * 2.0;
            assert!(along.abs() < 1e-12 * scale.max(1.0), "{along}");
        }
    }
}

#[test]
fn harmonics_gradient_on_both_paths() {
    let mut rng = common::rng();
    for ctx in contexts() {
        for (n, lmax) in [(1, 0), (37, 1), (257, 4), (70, MAX_L)] {
            let mut v = common::uniform(&mut rng, 3 * n);
            if n > 3 {
                v[..3].fill(0.0); // a zero vector gets 0
                v[3..6].iter_mut().for_each(|x| *x *= 1e30); // large and small lengths
                v[6..9].iter_mut().for_each(|x| *x *= 1e-30);
            }
            let d = reference::dim(lmax);
            let g = common::uniform(&mut rng, n * d);
            let tv = ctx.tensor(&v, &[n, 3]).unwrap();
            let tg = ctx.tensor(&g, &[n, d]).unwrap();
            let got = so3::spherical_harmonics_backward(&ctx, &tv, lmax, &tg).unwrap();
            assert_eq!(got.shape(), [n, 3]);
            let got = got.to_vec().unwrap();
            let want = reference::spherical_harmonics_backward(&v, lmax, &g);
            assert!(
                got.iter().all(|x| x.is_finite()),
                "{} lmax {lmax}: non-finite",
                ctx.device_name()
            );
            if n > 3 {
                assert_eq!(&got[..3], &[0.0; 3]);
                // The gradient scales as 1/|v|: compare the rescaled rows on their own.
                let rows = |x: &[f32], w: &[f64], scale: f64| {
                    let e = relative_error(
                        &x.iter()
                            .map(|&a| (a as f64 * scale) as f32)
                            .collect::<Vec<_>>(),
                        &w.iter().map(|b| b * scale).collect::<Vec<_>>(),
                    );
                    assert!(
                        e < 1e-5,
                        "{} lmax {lmax} scaled rows: {e:e}",
                        ctx.device_name()
                    );
                };
                rows(&got[3..6], &want[3..6], 1e30);
                rows(&got[6..9], &want[6..9], 1e-30);
            }
            let skip = if n > 3 { 9 } else { 0 };
            let e = relative_error(&got[skip..], &want[skip..]);
            assert!(e < 1e-5, "{} n {n} lmax {lmax}: {e:e}", ctx.device_name());
        }
    }
}

#[test]
fn linear_and_its_gradients() {
    let mut rng = common::rng();
    for ctx in contexts() {
        for (n, c_in, c_out, lmax) in [(1, 1, 1, 0), (5, 3, 7, 2), (33, 8, 5, 4), (3, 17, 2, MAX_L)]
        {
            let d = reference::dim(lmax);
            let x = common::uniform(&mut rng, n * c_in * d);
            let w = common::uniform(&mut rng, (lmax + 1) * c_in * c_out);
            let g = common::uniform(&mut rng, n * c_out * d);
            let (tx, tw, tg) = (
                ctx.tensor(&x, &[n, c_in, d]).unwrap(),
                ctx.tensor(&w, &[lmax + 1, c_in, c_out]).unwrap(),
                ctx.tensor(&g, &[n, c_out, d]).unwrap(),
            );
            let label = format!("{} [{n},{c_in}→{c_out}, l ≤ {lmax}]", ctx.device_name());
            let out = so3::linear(&ctx, &tx, &tw).unwrap();
            assert_eq!(out.shape(), [n, c_out, d]);
            let want = reference::linear(&x, &w, [n, c_in, c_out], lmax, false);
            let e = relative_error(&out.to_vec().unwrap(), &want);
            assert!(e < 1e-6, "{label} forward: {e:e}");
            let grads = so3::linear_backward(&ctx, &tx, &tw, &tg).unwrap();
            let want_x = reference::linear(&g, &w, [n, c_in, c_out], lmax, true);
            let want_w = reference::linear_weight_gradient(&x, &g, [n, c_in, c_out], lmax);
            let e = relative_error(&grads.x.to_vec().unwrap(), &want_x);
            assert!(e < 1e-6, "{label} ∂x: {e:e}");
            let e = relative_error(&grads.w.to_vec().unwrap(), &want_w);
            assert!(e < 1e-6, "{label} ∂w: {e:e}");
            // The reference gradients are those of L = Σ g·out (linear: exact identities).
            let loss = |x: &[f32], w: &[f32]| -> f64 {
                reference::linear(x, w, [n, c_in, c_out], lmax, false)
                    .iter()
                    .zip(&g)
                    .map(|(o, &g)| o * g as f64)
                    .sum()
            };
            let base = loss(&x, &w);
            let mut bumped = w.clone();
            bumped[0] += 0.5;
            let slope = (loss(&x, &bumped) - base) / (bumped[0] - w[0]) as f64;
            assert!(
                (slope - want_w[0]).abs() < 1e-6 * want_w[0].abs().max(1.0),
                "{slope} vs {}",
                want_w[0]
            );
        }
    }
}

#[test]
fn linear_commutes_with_rotations() {
    let mut rng = common::rng();
    for ctx in contexts() {
        let (n, c_in, c_out, lmax) = (4, 3, 2, 3);
        let d = reference::dim(lmax);
        let x = ctx
            .tensor(&common::uniform(&mut rng, n * c_in * d), &[n, c_in, d])
            .unwrap();
        let w = ctx
            .tensor(
                &common::uniform(&mut rng, (lmax + 1) * c_in * c_out),
                &[lmax + 1, c_in, c_out],
            )
            .unwrap();
        let r = random_rotation(&mut rng);
        let a = so3::rotate(&ctx, &so3::linear(&ctx, &x, &w).unwrap(), &r)
            .unwrap()
            .to_vec()
            .unwrap();
        let b = so3::linear(&ctx, &so3::rotate(&ctx, &x, &r).unwrap(), &w)
            .unwrap()
            .to_vec()
            .unwrap();
        let e = relative_error(&a, &b.iter().map(|&v| v as f64).collect::<Vec<_>>());
        assert!(e < 1e-5, "{e:e}");
    }
}

#[test]
fn split_bindings_and_folded_grids() {
    let mut rng = common::rng();
    for options in [
        GpuOptions {
            max_binding_bytes: Some(4096),
            ..Default::default()
        },
        GpuOptions {
            max_workgroups_per_dimension: Some(7),
            ..Default::default()
        },
    ] {
        let Some(ctx) = common::gpu_with(options) else {
            return;
        };
        let (n, c_in, c_out, lmax) = (50, 3, 4, 2);
        let d = reference::dim(lmax);
        let x = common::uniform(&mut rng, n * c_in * d);
        let w = common::uniform(&mut rng, (lmax + 1) * c_in * c_out);
        let g = common::uniform(&mut rng, n * c_out * d);
        let (tx, tw, tg) = (
            ctx.tensor(&x, &[n, c_in, d]).unwrap(),
            ctx.tensor(&w, &[lmax + 1, c_in, c_out]).unwrap(),
            ctx.tensor(&g, &[n, c_out, d]).unwrap(),
        );
        let grads = so3::linear_backward(&ctx, &tx, &tw, &tg).unwrap();
        let want = reference::linear_weight_gradient(&x, &g, [n, c_in, c_out], lmax);
        assert!(
            relative_error(&grads.w.to_vec().unwrap(), &want) < 1e-6,
            "∂w over blocks"
        );
        let want = reference::linear(&g, &w, [n, c_in, c_out], lmax, true);
        assert!(
            relative_error(&grads.x.to_vec().unwrap(), &want) < 1e-6,
            "∂x over blocks"
        );
        let v = common::uniform(&mut rng, 3 * 300);
        let dy = common::uniform(&mut rng, 300 * 9);
        let got = so3::spherical_harmonics_backward(
            &ctx,
            &ctx.tensor(&v, &[300, 3]).unwrap(),
            2,
            &ctx.tensor(&dy, &[300, 9]).unwrap(),
        )
        .unwrap();
        let want = reference::spherical_harmonics_backward(&v, 2, &dy);
        assert!(
            relative_error(&got.to_vec().unwrap(), &want) < 1e-5,
            "harmonics over blocks"
        );
    }
}

#[test]
fn bad_arguments_are_errors() {
    for ctx in contexts() {
        let t = |shape: &[usize]| {
            ctx.tensor(&vec![0.5; shape.iter().product()], shape)
                .unwrap()
        };
        let shape_error = |r: wgkernels::Result<so3::LinearGrads>| {
            assert!(matches!(r, Err(Error::Shape { .. })), "{r:?}")
        };
        let (x, w, g) = (t(&[2, 3, 9]), t(&[3, 3, 4]), t(&[2, 4, 9]));
        // Degrees mismatched between x and w, channels mismatched, a d_out for another degree.
        shape_error(so3::linear_backward(&ctx, &x, &t(&[2, 3, 4]), &g));
        shape_error(so3::linear_backward(&ctx, &x, &t(&[3, 2, 4]), &g));
        shape_error(so3::linear_backward(&ctx, &x, &w, &t(&[2, 4, 4])));
        shape_error(so3::linear_backward(&ctx, &x, &w, &t(&[2, 3, 9])));
        assert!(matches!(
            so3::linear(&ctx, &t(&[2, 3, 8]), &w),
            Err(Error::Shape { .. })
        ));
        let v = t(&[5, 3]);
        for bad in [t(&[5, 4]), t(&[4, 9]), t(&[5])] {
            let r = so3::spherical_harmonics_backward(&ctx, &v, 2, &bad);
            assert!(matches!(r, Err(Error::Shape { .. })), "{r:?}");
        }
        let r = so3::spherical_harmonics_backward(&ctx, &v, MAX_L + 1, &t(&[5, 9]));
        assert!(
            matches!(r, Err(Error::InvalidArgument { arg: "lmax", .. })),
            "{r:?}"
        );
        if ctx.is_gpu() {
            let foreign = Context::cpu().tensor(&[0.5; 27], &[3, 3, 3]).unwrap();
            let r = so3::linear(&ctx, &x, &foreign);
            assert!(
                matches!(r, Err(Error::ContextMismatch { arg: "w", .. })),
                "{r:?}"
            );
        }
    }
}

/// Degrees 17 ..= MAX_L on the GPU: the harmonics, and a product and its backward whose
/// rows are wider than four fit in one workgroup's staging memory.
#[test]
fn the_highest_degrees_run_on_both_paths() {
    let mut rng = common::rng();
    for ctx in contexts() {
        let n = 5;
        let v = common::uniform(&mut rng, 3 * n);
        let y = so3::spherical_harmonics(&ctx, &ctx.tensor(&v, &[n, 3]).unwrap(), MAX_L).unwrap();
        let e = relative_error(
            &y.to_vec().unwrap(),
            &reference::spherical_harmonics(&v, MAX_L),
        );
        assert!(e < 1e-5, "{} harmonics at MAX_L: {e:e}", ctx.device_name());

        let (l1, l2, lo) = (MAX_L, 1, MAX_L);
        let (d1, d2, d3) = (reference::dim(l1), reference::dim(l2), reference::dim(lo));
        let x1 = common::uniform(&mut rng, n * 2 * d1);
        let x2 = common::uniform(&mut rng, n * 2 * d2);
        let g = common::uniform(&mut rng, n * 2 * d3);
        let (t1, t2, tg) = (
            ctx.tensor(&x1, &[n, 2, d1]).unwrap(),
            ctx.tensor(&x2, &[n, 2, d2]).unwrap(),
            ctx.tensor(&g, &[n, 2, d3]).unwrap(),
        );
        use so3::products::{apply, grouped, Grouping};
        let wide = |x: &[f32]| x.iter().map(|&v| v as f64).collect::<Vec<_>>();
        let kind = so3::Coefficients::ClebschGordan;
        let out = so3::cg_product(&ctx, &t1, &t2, lo).unwrap();
        let want = apply(
            &grouped(kind, l1, l2, lo, Grouping::Output),
            &wide(&x1),
            d1,
            &wide(&x2),
            d2,
            1,
        );
        let e = relative_error(&out.to_vec().unwrap(), &want);
        assert!(
            e < 1e-5,
            "{} cg_product {l1}⊗{l2}→{lo}: {e:e}",
            ctx.device_name()
        );
        let grads = so3::cg_product_backward(&ctx, &t1, &t2, lo, &tg).unwrap();
        let want = apply(
            &grouped(kind, l1, l2, lo, Grouping::X1),
            &wide(&g),
            d3,
            &wide(&x2),
            d2,
            1,
        );
        let e = relative_error(&grads.x1.to_vec().unwrap(), &want);
        assert!(e < 1e-5, "{} cg ∂x1 at MAX_L: {e:e}", ctx.device_name());
        let want = apply(
            &grouped(kind, l1, l2, lo, Grouping::X2),
            &wide(&g),
            d3,
            &wide(&x1),
            d1,
            1,
        );
        let e = relative_error(&grads.x2.to_vec().unwrap(), &want);
        assert!(e < 1e-5, "{} cg ∂x2 at MAX_L: {e:e}", ctx.device_name());
    }
}
