//! Gradients of the SO(3) products: the f64 reference gradients (regrouped tables, path
//! gradient) against central finite differences of the f64 forward, then both paths against
//! them, with broadcast x2, shared weights, odd channel counts and every output poisoned.
//!
//! Bounds. Finite differences in f64 with step 1e-5 on a bilinear (in x, and linear in w)
//! function: exact up to rounding, ~1e-10 relative; checked at 1e-8. Device against the f64
//! reference: each gradient is a sum of up to a few thousand f32 terms of mixed sign, a
//! relative error of a few 1e-7 (the forwards' tests use 1e-5): checked at 1e-5 relative L2.
//! Grid and Fourier gradients add their transforms' rounding (the forwards' 1e-5 also holds).

mod common;

use common::{central_differences, sum_groups, wide};
use rand::rngs::StdRng;
use wgkernels::compare::relative_error;
use wgkernels::so3::products::{self, apply_weighted, grouped, path_table, Grouping, Weights};
use wgkernels::so3::{self, reference, Coefficients, GauntMethod};
use wgkernels::{Context, Error, GpuOptions, Tensor};

const FD_BOUND: f64 = 1e-8;
const BOUND: f64 = 1e-5;

/// The CPU path, the default GPU context, and one GPU context per sparse product form.
fn contexts() -> Vec<Context> {
    let mut all: Vec<Context> = [Some(Context::cpu()), common::gpu()]
        .into_iter()
        .flatten()
        .collect();
    all.extend(common::gpu_per_sparse_form());
    all
}

/// One product call: inputs, optional weights, its upstream gradient.
struct Case {
    x1: Vec<f32>,
    x2: Vec<f32>,
    w: Option<Vec<f32>>,
    g: Vec<f32>,
    n: usize,
    c: usize,
    degrees: [usize; 3],
    broadcast: bool,
    shared: bool,
}

fn case(
    rng: &mut StdRng,
    [n, c]: [usize; 2],
    degrees: [usize; 3],
    broadcast: bool,
    weights: Option<bool>,
) -> Case {
    let [l1, l2, lo] = degrees;
    let d = reference::dim;
    let c2 = if broadcast { 1 } else { c };
    let count = so3::paths(l1, l2, lo).len();
    let w = weights.map(|shared| common::uniform(rng, if shared { c } else { n * c } * count));
    Case {
        x1: common::uniform(rng, n * c * d(l1)),
        x2: common::uniform(rng, n * c2 * d(l2)),
        w,
        g: common::uniform(rng, n * c * d(lo)),
        n,
        c,
        degrees,
        broadcast,
        shared: weights == Some(true),
    }
}

impl Case {
    fn weights<'a>(&self, w: &'a [f64]) -> Weights<'a> {
        let [l1, l2, lo] = self.degrees;
        Weights {
            data: w,
            paths: so3::paths(l1, l2, lo).len(),
            shared_channels: self.shared.then_some(self.c),
        }
    }

    /// `L = Σ g·out` by the f64 forward at (x1, x2, w).
    fn loss(&self, kind: Coefficients, x1: &[f64], x2: &[f64], w: Option<&[f64]>) -> f64 {
        let [l1, l2, lo] = self.degrees;
        let table = grouped(kind, l1, l2, lo, Grouping::Output);
        let group = if self.broadcast { self.c } else { 1 };
        let weights = w.map(|w| self.weights(w));
        let out = apply_weighted(
            &table,
            x1,
            reference::dim(l1),
            x2,
            reference::dim(l2),
            group,
            weights.as_ref(),
        );
        out.iter().zip(&self.g).map(|(o, &g)| o * g as f64).sum()
    }

    /// The f64 reference gradients `[∂x1, ∂x2, ∂w]`: regrouped tables, summed over what was
    /// broadcast.
    fn reference(&self, kind: Coefficients) -> [Vec<f64>; 3] {
        let [l1, l2, lo] = self.degrees;
        let (d1, d2, d3) = (reference::dim(l1), reference::dim(l2), reference::dim(lo));
        let (x1, x2, g) = (wide(&self.x1), wide(&self.x2), wide(&self.g));
        let w = self.w.as_deref().map(wide);
        let weights = w.as_deref().map(|w| self.weights(w));
        let group = if self.broadcast { self.c } else { 1 };
        let dx1 = apply_weighted(
            &grouped(kind, l1, l2, lo, Grouping::X1),
            &g,
            d3,
            &x2,
            d2,
            group,
            weights.as_ref(),
        );
        let mut dx2 = apply_weighted(
            &grouped(kind, l1, l2, lo, Grouping::X2),
            &g,
            d3,
            &x1,
            d1,
            1,
            weights.as_ref(),
        );
        if self.broadcast {
            dx2 = sum_groups(&dx2, self.c, d2);
        }
        let mut dw = Vec::new();
        if self.w.is_some() {
            dw = products::path_gradient(
                &path_table(l1, l2, lo),
                (&x1, d1),
                (&x2, d2, group),
                (&g, d3),
            );
            if self.shared {
                let per_sample = self.c * so3::paths(l1, l2, lo).len();
                dw = (0..per_sample)
                    .map(|i| (0..self.n).map(|s| dw[s * per_sample + i]).sum())
                    .collect();
            }
        }
        [dx1, dx2, dw]
    }

    fn upload(&self, ctx: &Context) -> [Option<Tensor>; 4] {
        let [l1, l2, lo] = self.degrees;
        let (n, c) = (self.n, self.c);
        let count = so3::paths(l1, l2, lo).len();
        let c2 = if self.broadcast { 1 } else { c };
        let t = |data: &[f32], shape: &[usize]| Some(ctx.tensor(data, shape).unwrap());
        [
            t(&self.x1, &[n, c, reference::dim(l1)]),
            t(&self.x2, &[n, c2, reference::dim(l2)]),
            self.w
                .as_ref()
                .and_then(|w| t(w, &[if self.shared { 1 } else { n }, c, count])),
            t(&self.g, &[n, c, reference::dim(lo)]),
        ]
    }
}

#[test]
fn reference_gradients_match_finite_differences() {
    let mut rng = common::rng();
    for (kind, weights) in [
        (Coefficients::ClebschGordan, None),
        (Coefficients::Gaunt, None),
        (Coefficients::ClebschGordan, Some(false)),
        (Coefficients::ClebschGordan, Some(true)),
    ] {
        for broadcast in [false, true] {
            let x = case(&mut rng, [2, 3], [2, 1, 2], broadcast, weights);
            let [dx1, dx2, dw] = x.reference(kind);
            let (x1, x2) = (wide(&x.x1), wide(&x.x2));
            let w = x.w.as_deref().map(wide);
            let label = format!("{kind:?} weights {weights:?} broadcast {broadcast}");
            let fd = central_differences(|v| x.loss(kind, v, &x2, w.as_deref()), &x1);
            assert!(
                common::relative_error_f64(&dx1, &fd) < FD_BOUND,
                "{label} ∂x1"
            );
            let fd = central_differences(|v| x.loss(kind, &x1, v, w.as_deref()), &x2);
            assert!(
                common::relative_error_f64(&dx2, &fd) < FD_BOUND,
                "{label} ∂x2"
            );
            if let Some(w) = &w {
                let fd = central_differences(|v| x.loss(kind, &x1, &x2, Some(v)), w);
                assert!(
                    common::relative_error_f64(&dw, &fd) < FD_BOUND,
                    "{label} ∂w"
                );
            }
        }
    }
}

fn check(label: &str, got: &Tensor, want: &[f64]) {
    let got = got.to_vec().unwrap();
    assert!(
        got.iter().all(|x| x.is_finite()),
        "{label}: non-finite (an unwritten output?)"
    );
    let e = relative_error(&got, want);
    assert!(e < BOUND, "{label}: relative error {e:e}");
}

/// Every backward on both paths, odd channel counts, broadcast x2, per-sample and shared
/// weights; every output of every backward is checked (outputs are poisoned first).
#[test]
fn every_backward_matches_the_reference() {
    let mut rng = common::rng();
    for ctx in contexts() {
        for (shape, degrees) in [
            ([1, 1], [0, 0, 0]),
            ([3, 5], [2, 1, 3]),
            ([7, 3], [3, 3, 2]),
            ([2, 1], [4, 2, 4]),
        ] {
            for broadcast in [false, true] {
                let label = |what: &str| {
                    format!(
                        "{} {shape:?} {degrees:?} broadcast {broadcast} {what}",
                        ctx.device_name()
                    )
                };
                let [l1, l2, lo] = degrees;
                let x = case(&mut rng, shape, degrees, broadcast, None);
                let [x1, x2, _, g] = x.upload(&ctx).map(Option::unwrap_or_else_default);
                let want = x.reference(Coefficients::ClebschGordan);
                let got = so3::cg_product_backward(&ctx, &x1, &x2, lo, &g).unwrap();
                assert_eq!((got.x1.shape(), got.x2.shape()), (x1.shape(), x2.shape()));
                check(&label("cg ∂x1"), &got.x1, &want[0]);
                check(&label("cg ∂x2"), &got.x2, &want[1]);

                let want = x.reference(Coefficients::Gaunt);
                for method in [GauntMethod::Direct, GauntMethod::Grid, GauntMethod::Fourier] {
                    let got = so3::gaunt_product_backward(&ctx, &x1, &x2, lo, method, &g).unwrap();
                    check(&label(&format!("gaunt {method:?} ∂x1")), &got.x1, &want[0]);
                    check(&label(&format!("gaunt {method:?} ∂x2")), &got.x2, &want[1]);
                }

                for shared in [false, true] {
                    let x = case(&mut rng, shape, degrees, broadcast, Some(shared));
                    let [x1, x2, w, g] = x.upload(&ctx).map(Option::unwrap_or_else_default);
                    let want = x.reference(Coefficients::ClebschGordan);
                    let got =
                        so3::weighted_cg_product_backward(&ctx, &x1, &x2, &w, lo, &g).unwrap();
                    assert_eq!(got.weights.shape(), w.shape());
                    let what = |v: &str| label(&format!("weighted (shared {shared}) {v}"));
                    check(&what("∂x1"), &got.x1, &want[0]);
                    check(&what("∂x2"), &got.x2, &want[1]);
                    check(&what("∂w"), &got.weights, &want[2]);
                    // The forward: equal to the f64 forward with the same weights.
                    let out = so3::weighted_cg_product(&ctx, &x1, &x2, &w, lo).unwrap();
                    let wd = wide(x.w.as_ref().unwrap());
                    let weights = x.weights(&wd);
                    let table = grouped(Coefficients::ClebschGordan, l1, l2, lo, Grouping::Output);
                    let group = if broadcast { x.c } else { 1 };
                    let want = apply_weighted(
                        &table,
                        &wide(&x.x1),
                        reference::dim(l1),
                        &wide(&x.x2),
                        reference::dim(l2),
                        group,
                        Some(&weights),
                    );
                    check(&what("forward"), &out, &want);
                }
            }
        }
    }
}

/// Weights of 1 give the unweighted product; the paths are in the documented order.
#[test]
fn unit_weights_give_cg_product() {
    let mut rng = common::rng();
    for ctx in contexts() {
        let x = case(&mut rng, [4, 3], [2, 2, 3], false, None);
        let [x1, x2, _, _] = x.upload(&ctx).map(Option::unwrap_or_else_default);
        let count = so3::paths(2, 2, 3).len();
        let ones = ctx.tensor(&vec![1.0; 3 * count], &[1, 3, count]).unwrap();
        let a = so3::weighted_cg_product(&ctx, &x1, &x2, &ones, 3)
            .unwrap()
            .to_vec()
            .unwrap();
        let b = so3::cg_product(&ctx, &x1, &x2, 3)
            .unwrap()
            .to_vec()
            .unwrap();
        let e = relative_error(&a, &wide(&b));
        assert!(e < 1e-6, "{e:e}");
    }
    let p = so3::paths(2, 1, 2);
    assert_eq!(p.first(), Some(&[0, 0, 0]));
    assert!(p.windows(2).all(|w| w[0] < w[1]), "ascending (l1, l2, l3)");
    assert!(p
        .iter()
        .all(|&[a, b, c]| a.abs_diff(b) <= c && c <= (a + b).min(2)));
}

/// Samples over several 4 KiB bindings, and grids folded past a per-dimension limit of 7.
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
        let x = case(&mut rng, [60, 3], [2, 2, 2], false, Some(false));
        let [x1, x2, w, g] = x.upload(&ctx).map(Option::unwrap_or_else_default);
        let want = x.reference(Coefficients::ClebschGordan);
        let got = so3::weighted_cg_product_backward(&ctx, &x1, &x2, &w, 2, &g).unwrap();
        check("split ∂x1", &got.x1, &want[0]);
        check("split ∂x2", &got.x2, &want[1]);
        check("split ∂w", &got.weights, &want[2]);
        let x = case(&mut rng, [60, 3], [2, 2, 2], true, Some(true));
        let [x1, x2, w, g] = x.upload(&ctx).map(Option::unwrap_or_else_default);
        let want = x.reference(Coefficients::ClebschGordan);
        let got = so3::weighted_cg_product_backward(&ctx, &x1, &x2, &w, 2, &g).unwrap();
        check("split shared ∂x2", &got.x2, &want[1]);
        check("split shared ∂w", &got.weights, &want[2]);
    }
}

#[test]
fn bad_arguments_are_errors() {
    let mut rng = common::rng();
    for ctx in contexts() {
        let x = case(&mut rng, [3, 2], [1, 1, 2], false, Some(false));
        let [x1, x2, w, g] = x.upload(&ctx).map(Option::unwrap_or_else_default);
        let t = |shape: &[usize]| {
            ctx.tensor(&vec![0.5; shape.iter().product()], shape)
                .unwrap()
        };
        let shape_error = |r: wgkernels::Result<so3::WeightedGrads>| {
            assert!(matches!(r, Err(Error::Shape { .. })), "{r:?}");
        };
        let count = so3::paths(1, 1, 2).len();
        // Weights with the wrong path count, the wrong channels, or of rank 2.
        for bad in [
            t(&[3, 2, count + 1]),
            t(&[3, 3, count]),
            t(&[2, 2, count]),
            t(&[6, count]),
        ] {
            shape_error(so3::weighted_cg_product_backward(
                &ctx, &x1, &x2, &bad, 2, &g,
            ));
            assert!(matches!(
                so3::weighted_cg_product(&ctx, &x1, &x2, &bad, 2),
                Err(Error::Shape { .. })
            ));
        }
        // A d_out for another degree, or other samples.
        for bad in [t(&[3, 2, 4]), t(&[2, 2, 9]), t(&[3, 1, 9])] {
            shape_error(so3::weighted_cg_product_backward(
                &ctx, &x1, &x2, &w, 2, &bad,
            ));
            let r = so3::cg_product_backward(&ctx, &x1, &x2, 2, &bad);
            assert!(matches!(r, Err(Error::Shape { .. })), "{r:?}");
            let r = so3::gaunt_product_backward(&ctx, &x1, &x2, 2, GauntMethod::Grid, &bad);
            assert!(matches!(r, Err(Error::Shape { .. })), "{r:?}");
        }
        if ctx.is_gpu() {
            let foreign = Context::cpu().tensor(&x.g, &[3, 2, 9]).unwrap();
            let r = so3::cg_product_backward(&ctx, &x1, &x2, 2, &foreign);
            assert!(
                matches!(r, Err(Error::ContextMismatch { arg: "d_out", .. })),
                "{r:?}"
            );
            let foreign = Context::cpu()
                .tensor(x.w.as_ref().unwrap(), w.shape())
                .unwrap();
            let r = so3::weighted_cg_product(&ctx, &x1, &x2, &foreign, 2);
            assert!(
                matches!(r, Err(Error::ContextMismatch { arg: "weights", .. })),
                "{r:?}"
            );
        }
    }
}

trait UnwrapOrDefault {
    fn unwrap_or_else_default(self) -> Tensor;
}

impl UnwrapOrDefault for Option<Tensor> {
    /// A placeholder where a case has no weights (never passed to a call).
    fn unwrap_or_else_default(self) -> Tensor {
        self.unwrap_or_else(|| Context::cpu().tensor(&[0.0], &[1]).unwrap())
    }
}
