//! The products' double backwards, and every double backward's argument errors.

use super::*;

/// A product call with its upstream gradient and the cotangents of its backward's outputs.
struct Case {
    /// x1, x2, weights (empty when unweighted), d_out.
    inputs: [Vec<f64>; 4],
    /// Cotangents of ∂x1, ∂x2, ∂w.
    dd: [Vec<f64>; 3],
    samples: [usize; 2],
    degrees: [usize; 3],
    broadcast: bool,
    shared: bool,
}

impl Case {
    fn new(
        rng: &mut StdRng,
        samples: [usize; 2],
        degrees: [usize; 3],
        broadcast: bool,
        weights: Option<bool>,
    ) -> Case {
        let [n, c] = samples;
        let [l1, l2, lo] = degrees;
        let d = reference::dim;
        let c2 = if broadcast { 1 } else { c };
        let count = so3::paths(l1, l2, lo).len();
        let w_len = weights.map_or(0, |shared| if shared { c } else { n * c } * count);
        let mut draw = |len| wide(&common::uniform(rng, len));
        Case {
            inputs: [
                draw(n * c * d(l1)),
                draw(n * c2 * d(l2)),
                draw(w_len),
                draw(n * c * d(lo)),
            ],
            dd: [draw(n * c * d(l1)), draw(n * c2 * d(l2)), draw(w_len)],
            samples,
            degrees,
            broadcast,
            shared: weights == Some(true),
        }
    }

    fn weighted(&self) -> bool {
        !self.inputs[2].is_empty()
    }

    /// The f64 backward `[∂x1, ∂x2, ∂w]` at `[x1, x2, w, g]` (w empty: unweighted).
    fn backward(&self, kind: Coefficients, [x1, x2, w, g]: [&[f64]; 4]) -> [Vec<f64>; 3] {
        let [n, c] = self.samples;
        let [l1, l2, lo] = self.degrees;
        let (d1, d2, d3) = (reference::dim(l1), reference::dim(l2), reference::dim(lo));
        let count = so3::paths(l1, l2, lo).len();
        let weights = (!w.is_empty()).then(|| so3::products::Weights {
            data: w,
            paths: count,
            shared_channels: self.shared.then_some(c),
        });
        let group = if self.broadcast { c } else { 1 };
        let table = |grouping| grouped(kind, l1, l2, lo, grouping);
        let dx1 = apply_weighted(&table(Grouping::X1), g, d3, x2, d2, group, weights.as_ref());
        let mut dx2 = apply_weighted(&table(Grouping::X2), g, d3, x1, d1, 1, weights.as_ref());
        if self.broadcast {
            dx2 = common::sum_groups(&dx2, c, d2);
        }
        let mut dw = Vec::new();
        if weights.is_some() {
            let table = path_table(l1, l2, lo);
            dw = path_gradient(&table, (x1, d1), (x2, d2, group), (g, d3));
            if self.shared {
                dw = sum_samples(&dw, n, c * count);
            }
        }
        [dx1, dx2, dw]
    }

    /// `⟨dd, backward(inputs)⟩`.
    fn pairing(&self, kind: Coefficients, inputs: [&[f64]; 4]) -> f64 {
        let grads = self.backward(kind, inputs);
        (0..3).map(|i| dot(&self.dd[i], &grads[i])).sum()
    }

    /// The double backward `[x1', x2', w', d_out']` by central differences of the pairing.
    fn finite_differences(&self, kind: Coefficients) -> [Vec<f64>; 4] {
        std::array::from_fn(|which| {
            let at = |x: &[f64]| {
                let mut args: [&[f64]; 4] = std::array::from_fn(|i| &self.inputs[i][..]);
                args[which] = x;
                self.pairing(kind, args)
            };
            central_differences(at, &self.inputs[which])
        })
    }

    /// The double backward `[x1', x2', w', d_out']` by the formulas of so3::products::second,
    /// in f64: each a product of the backward's kind.
    fn reference(&self, kind: Coefficients) -> [Vec<f64>; 4] {
        let [x1, x2, w, g] = self.inputs.each_ref().map(|v| &v[..]);
        let [dd1, dd2, ddw] = self.dd.each_ref().map(|v| &v[..]);
        let [_, c] = self.samples;
        let [l1, l2, lo] = self.degrees;
        let (d1, d2) = (reference::dim(l1), reference::dim(l2));
        let count = so3::paths(l1, l2, lo).len();
        let group = if self.broadcast { c } else { 1 };
        let forward = |a: &[f64], b: &[f64], w: &[f64]| {
            let weights = (!w.is_empty()).then(|| so3::products::Weights {
                data: w,
                paths: count,
                shared_channels: self.shared.then_some(c),
            });
            let table = grouped(kind, l1, l2, lo, Grouping::Output);
            apply_weighted(&table, a, d1, b, d2, group, weights.as_ref())
        };
        let add = |a: Vec<f64>, b: Vec<f64>| a.iter().zip(&b).map(|(x, y)| x + y).collect();
        let mut d_out = add(forward(dd1, x2, w), forward(x1, dd2, w));
        let [mut x1s, _, _] = self.backward(kind, [x1, dd2, w, g]);
        let [_, mut x2s, _] = self.backward(kind, [dd1, x2, w, g]);
        let mut ws = Vec::new();
        if self.weighted() {
            d_out = add(d_out, forward(x1, x2, ddw));
            let [a, b, _] = self.backward(kind, [x1, x2, ddw, g]);
            x1s = add(x1s, a);
            x2s = add(x2s, b);
            let [_, _, p] = self.backward(kind, [dd1, x2, w, g]);
            let [_, _, q] = self.backward(kind, [x1, dd2, w, g]);
            ws = add(p, q);
        }
        [x1s, x2s, ws, d_out]
    }

    fn upload(&self, ctx: &Context) -> ([Tensor; 4], [Tensor; 3]) {
        let [n, c] = self.samples;
        let [l1, l2, lo] = self.degrees;
        let count = so3::paths(l1, l2, lo).len();
        let c2 = if self.broadcast { 1 } else { c };
        let shapes = [
            vec![n, c, reference::dim(l1)],
            vec![n, c2, reference::dim(l2)],
            vec![if self.shared { 1 } else { n }, c, count],
            vec![n, c, reference::dim(lo)],
        ];
        let t = |data: &[f64], shape: &[usize]| {
            let data: Vec<f32> = data.iter().map(|&x| x as f32).collect();
            match data.is_empty() {
                true => ctx.tensor(&[0.5], &[1]).unwrap(), // no weights: never passed
                false => ctx.tensor(&data, shape).unwrap(),
            }
        };
        (
            std::array::from_fn(|i| t(&self.inputs[i], &shapes[i])),
            std::array::from_fn(|i| t(&self.dd[i], &shapes[i])),
        )
    }
}

/// `[n, per]` summed over n.
fn sum_samples(x: &[f64], n: usize, per: usize) -> Vec<f64> {
    (0..per)
        .map(|i| (0..n).map(|s| x[s * per + i]).sum())
        .collect()
}

/// The second-order formulas against finite differences of the f64 backward, for CG and
/// Gaunt, unweighted, per-sample and shared weights, broadcast or not.
#[test]
fn product_references_match_finite_differences() {
    let mut rng = common::rng();
    for (kind, weights) in [
        (Coefficients::ClebschGordan, None),
        (Coefficients::Gaunt, None),
        (Coefficients::ClebschGordan, Some(false)),
        (Coefficients::ClebschGordan, Some(true)),
    ] {
        for broadcast in [false, true] {
            let case = Case::new(&mut rng, [2, 3], [2, 1, 2], broadcast, weights);
            let want = case.finite_differences(kind);
            let got = case.reference(kind);
            for (i, what) in ["x1", "x2", "weights", "d_out"].iter().enumerate() {
                let e = common::relative_error_f64(&got[i], &want[i]);
                assert!(
                    e < FD_BOUND || (got[i].is_empty() && want[i].is_empty()),
                    "{kind:?} weights {weights:?} broadcast {broadcast} {what}: {e:e}"
                );
            }
        }
    }
}

fn check_second(label: &str, got: [&Tensor; 3], want: &[Vec<f64>; 4]) {
    check(&format!("{label} x1"), got[0], &want[0], BOUND);
    check(&format!("{label} x2"), got[1], &want[1], BOUND);
    check(&format!("{label} d_out"), got[2], &want[3], BOUND);
}

/// Every product's double backward on both paths, odd channel counts, broadcast x2,
/// per-sample and shared weights, every Gaunt method; every output checked.
#[test]
fn every_product_double_backward_matches_the_reference() {
    let mut rng = common::rng();
    for ctx in contexts() {
        for (samples, degrees) in [
            ([1, 1], [0, 0, 0]),
            ([3, 5], [2, 1, 3]),
            ([7, 3], [3, 2, 2]),
        ] {
            for broadcast in [false, true] {
                let label = |what: &str| {
                    format!(
                        "{} {samples:?} {degrees:?} broadcast {broadcast} {what}",
                        ctx.device_name()
                    )
                };
                let lo = degrees[2];
                let case = Case::new(&mut rng, samples, degrees, broadcast, None);
                let ([x1, x2, _, g], [dd1, dd2, _]) = case.upload(&ctx);
                let dd = so3::ProductGrads { x1: dd1, x2: dd2 };
                let want = case.reference(Coefficients::ClebschGordan);
                let got = so3::cg_product_double_backward(&ctx, &x1, &x2, lo, &g, &dd).unwrap();
                check_second(&label("cg"), [&got.x1, &got.x2, &got.d_out], &want);
                let want = case.reference(Coefficients::Gaunt);
                for method in [GauntMethod::Direct, GauntMethod::Grid, GauntMethod::Fourier] {
                    let got =
                        so3::gaunt_product_double_backward(&ctx, &x1, &x2, lo, method, &g, &dd)
                            .unwrap();
                    let what = label(&format!("gaunt {method:?}"));
                    check_second(&what, [&got.x1, &got.x2, &got.d_out], &want);
                }
                for shared in [false, true] {
                    let case = Case::new(&mut rng, samples, degrees, broadcast, Some(shared));
                    let ([x1, x2, w, g], [dd1, dd2, ddw]) = case.upload(&ctx);
                    let dd = so3::WeightedGrads {
                        x1: dd1,
                        x2: dd2,
                        weights: ddw,
                    };
                    let want = case.reference(Coefficients::ClebschGordan);
                    let got =
                        so3::weighted_cg_product_double_backward(&ctx, &x1, &x2, &w, lo, &g, &dd)
                            .unwrap();
                    let what = label(&format!("weighted (shared {shared})"));
                    check_second(&what, [&got.x1, &got.x2, &got.d_out], &want);
                    check(&format!("{what} weights"), &got.weights, &want[2], BOUND);
                }
            }
        }
    }
}

/// Samples over several 4 KiB bindings.
#[test]
fn product_double_backward_over_split_bindings() {
    let mut rng = common::rng();
    let Some(ctx) = common::gpu_with(GpuOptions {
        max_binding_bytes: Some(4096),
        ..Default::default()
    }) else {
        return;
    };
    for shared in [false, true] {
        let case = Case::new(&mut rng, [60, 3], [2, 2, 2], shared, Some(shared));
        let ([x1, x2, w, g], [dd1, dd2, ddw]) = case.upload(&ctx);
        let dd = so3::WeightedGrads {
            x1: dd1,
            x2: dd2,
            weights: ddw,
        };
        let want = case.reference(Coefficients::ClebschGordan);
        let got = so3::weighted_cg_product_double_backward(&ctx, &x1, &x2, &w, 2, &g, &dd).unwrap();
        let label = format!("split (shared {shared})");
        check_second(&label, [&got.x1, &got.x2, &got.d_out], &want);
        check(&format!("{label} weights"), &got.weights, &want[2], BOUND);
    }
}

#[test]
fn bad_cotangents_are_errors_on_both_paths() {
    let mut rng = common::rng();
    for ctx in contexts() {
        let case = Case::new(&mut rng, [3, 2], [1, 1, 2], false, Some(false));
        let ([x1, x2, w, g], _) = case.upload(&ctx);
        let t = |shape: &[usize]| {
            ctx.tensor(&vec![0.5; shape.iter().product()], shape)
                .unwrap()
        };
        let count = so3::paths(1, 1, 2).len();
        let shape_error = |r: &wgkernels::Result<so3::WeightedSecondGrads>, arg: &str| {
            assert!(
                matches!(r, Err(Error::Shape { message, .. }) if message.contains(arg)),
                "{arg}: {r:?}"
            );
        };
        let good = || so3::WeightedGrads {
            x1: t(&[3, 2, 4]),
            x2: t(&[3, 2, 4]),
            weights: t(&[3, 2, count]),
        };
        let mut bad = good();
        bad.x1 = t(&[3, 2, 9]);
        shape_error(
            &so3::weighted_cg_product_double_backward(&ctx, &x1, &x2, &w, 2, &g, &bad),
            "dd.x1",
        );
        let mut bad = good();
        bad.x2 = t(&[3, 1, 4]);
        shape_error(
            &so3::weighted_cg_product_double_backward(&ctx, &x1, &x2, &w, 2, &g, &bad),
            "dd.x2",
        );
        let mut bad = good();
        bad.weights = t(&[1, 2, count]);
        shape_error(
            &so3::weighted_cg_product_double_backward(&ctx, &x1, &x2, &w, 2, &g, &bad),
            "dd.weights",
        );
        let plain = so3::ProductGrads {
            x1: t(&[3, 2, 4]),
            x2: t(&[3, 2, 1]),
        };
        let r = so3::cg_product_double_backward(&ctx, &x1, &x2, 2, &g, &plain);
        assert!(matches!(r, Err(Error::Shape { .. })), "{r:?}");
        let r = so3::gaunt_product_double_backward(
            &ctx,
            &x1,
            &x2,
            2,
            GauntMethod::Fourier,
            &t(&[3, 2, 4]),
            &plain,
        );
        assert!(matches!(r, Err(Error::Shape { .. })), "d_out: {r:?}");
        // The harmonics: dd_vectors of the wrong shape; d_y of another degree.
        let v = t(&[4, 3]);
        let r = so3::spherical_harmonics_double_backward(&ctx, &v, 2, &t(&[4, 9]), &t(&[4, 2]));
        assert!(
            matches!(&r, Err(Error::Shape { message, .. }) if message.contains("dd_vectors")),
            "{r:?}"
        );
        let r = so3::spherical_harmonics_double_backward(&ctx, &v, 2, &t(&[4, 4]), &t(&[4, 3]));
        assert!(
            matches!(&r, Err(Error::Shape { message, .. }) if message.contains("d_y")),
            "{r:?}"
        );
        let r = so3::spherical_harmonics_double_backward(&ctx, &v, 99, &t(&[4, 4]), &t(&[4, 3]));
        assert!(
            matches!(r, Err(Error::InvalidArgument { arg: "lmax", .. })),
            "{r:?}"
        );
        // linear: a cotangent for other channels.
        let (x, lw, lg) = (t(&[2, 3, 4]), t(&[2, 3, 5]), t(&[2, 5, 4]));
        let dd = so3::LinearGrads {
            x: t(&[2, 3, 4]),
            w: t(&[2, 3, 4]),
        };
        let r = so3::linear_double_backward(&ctx, &x, &lw, &lg, &dd);
        assert!(
            matches!(&r, Err(Error::Shape { message, .. }) if message.contains("dd.w")),
            "{r:?}"
        );
        if ctx.is_gpu() {
            let cpu = Context::cpu();
            let foreign = so3::ProductGrads {
                x1: cpu.tensor(&[0.5; 24], &[3, 2, 4]).unwrap(),
                x2: t(&[3, 2, 4]),
            };
            let r = so3::cg_product_double_backward(&ctx, &x1, &x2, 2, &g, &foreign);
            assert!(
                matches!(r, Err(Error::ContextMismatch { arg: "dd.x1", .. })),
                "{r:?}"
            );
            let r = so3::spherical_harmonics_double_backward(
                &ctx,
                &v,
                1,
                &t(&[4, 4]),
                &cpu.tensor(&[0.5; 12], &[4, 3]).unwrap(),
            );
            assert!(
                matches!(
                    r,
                    Err(Error::ContextMismatch {
                        arg: "dd_vectors",
                        ..
                    })
                ),
                "{r:?}"
            );
        }
    }
}
