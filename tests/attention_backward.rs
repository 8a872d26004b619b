//! The attention backwards: the f64 reference against central finite differences of the f64
//! forward, and both paths (CPU, GPU) against the reference.
//!
//! Bounds. Finite differences: step 1e-6 (as actually represented in f32; the forward runs
//! in f64, so rounding adds only ~1e-10), truncation O(h²·f'''): checked at 1e-5 relative
//! L2; seen ≤ 1.4e-8 over 16 seeds. (At a step of 1e-4 a seed sweep drew a causal norm-aware case at
//! 2.1e-5: the first query's single score s can be ~1e-6, where `s/(s + 1e-6)` curves on a
//! scale of 1e-6; at 1e-5 the same case is 2.1e-7.)
//! GPU against the f64 reference: each
//! gradient is a few f32 sums of up to n·(features + dv) terms whose upstream factor
//! `g·v − δ` cancels partly (δ is a weighted mean of the g·v), so relative errors of ~1e-6
//! to ~1e-5 are expected; with the norm-aware map's `pow`/`log` (a few ulp on Vulkan):
//! checked at 1e-4 relative L2 per gradient. Relative to `‖want‖`, or to 1% of `‖d_out‖`
//! where the gradient is smaller than that: with one key (n = 1) ∂q and ∂k are O(ε) for
//! linear attention and 0 for softmax, and their f32 value is all cancellation of
//! `g·v − δ`, an absolute error of a few ulp of g·v.

mod common;

use rand::rngs::StdRng;
use rand::Rng;
use wgkernels::attention::{self, reference, AttentionGrads, Dims, FeatureMap};
use wgkernels::compare::relative_error;
use wgkernels::{Context, Error, GpuOptions, Tensor};

const FD_BOUND: f64 = 1e-5;
const BOUND: f64 = 1e-4;
const MAPS: [FeatureMap; 2] = [FeatureMap::EluPlusOne, FeatureMap::NormAware];

/// The CPU path, the default GPU context, and one with the other forms (tiles on a CPU
/// adapter, registers on a GPU).
fn contexts() -> Vec<Context> {
    common::every_path()
}

/// q, k, v and an upstream gradient for `[b, h, n, dk]`, `[b, h, n, dv]`.
#[derive(Clone)]
struct Case {
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    g: Vec<f32>,
    shape: [usize; 3],
    dims: Dims,
}

fn case(rng: &mut StdRng, [b, h, n, dk, dv]: [usize; 5]) -> Case {
    let heads = b * h;
    Case {
        q: common::uniform(rng, heads * n * dk),
        k: common::uniform(rng, heads * n * dk),
        v: common::uniform(rng, heads * n * dv),
        g: common::uniform(rng, heads * n * dv),
        shape: [b, h, n],
        dims: Dims { heads, n, dk, dv },
    }
}

/// Which attention a check is about.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Linear(FeatureMap),
    Softmax,
}

impl Case {
    fn upload(&self, ctx: &Context) -> [Tensor; 4] {
        let [b, h, n] = self.shape;
        let Dims { dk, dv, .. } = self.dims;
        [
            ctx.tensor(&self.q, &[b, h, n, dk]).unwrap(),
            ctx.tensor(&self.k, &[b, h, n, dk]).unwrap(),
            ctx.tensor(&self.v, &[b, h, n, dv]).unwrap(),
            ctx.tensor(&self.g, &[b, h, n, dv]).unwrap(),
        ]
    }

    fn backward(
        &self,
        ctx: &Context,
        kind: Kind,
        causal: bool,
    ) -> wgkernels::Result<AttentionGrads> {
        let [q, k, v, g] = self.upload(ctx);
        match kind {
            Kind::Linear(map) => attention::linear_backward(ctx, &q, &k, &v, &g, map, causal),
            Kind::Softmax => attention::softmax_backward(ctx, &q, &k, &v, &g, causal),
        }
    }

    fn reference(&self, kind: Kind, causal: bool) -> reference::Gradients {
        match kind {
            Kind::Linear(map) => reference::linear_backward(
                &self.q, &self.k, &self.v, &self.g, self.dims, map, causal,
            ),
            Kind::Softmax => {
                reference::softmax_backward(&self.q, &self.k, &self.v, &self.g, self.dims, causal)
            }
        }
    }

    /// `L = Σ g·out` by the f64 forward.
    fn loss(&self, kind: Kind, causal: bool) -> f64 {
        let out = match kind {
            Kind::Linear(map) => {
                reference::linear(&self.q, &self.k, &self.v, self.dims, map, causal)
            }
            Kind::Softmax => reference::softmax(&self.q, &self.k, &self.v, self.dims, causal),
        };
        out.iter().zip(&self.g).map(|(o, &g)| o * g as f64).sum()
    }
}

/// Central differences of the loss along every element of q, k and v.
fn finite_differences(x: &Case, kind: Kind, causal: bool) -> [Vec<f64>; 3] {
    let h = 1e-6f32;
    let along = |pick: fn(&mut Case) -> &mut Vec<f32>| -> Vec<f64> {
        let len = pick(&mut x.clone()).len();
        (0..len)
            .map(|e| {
                let (mut plus, mut minus) = (x.clone(), x.clone());
                let centre = pick(&mut plus)[e];
                pick(&mut plus)[e] = centre + h;
                pick(&mut minus)[e] = centre - h;
                // The step as f32 represents it.
                let step = (centre + h) as f64 - (centre - h) as f64;
                (plus.loss(kind, causal) - minus.loss(kind, causal)) / step
            })
            .collect()
    };
    [
        along(|c| &mut c.q),
        along(|c| &mut c.k),
        along(|c| &mut c.v),
    ]
}

fn kinds() -> [Kind; 3] {
    [
        Kind::Linear(FeatureMap::EluPlusOne),
        Kind::Linear(FeatureMap::NormAware),
        Kind::Softmax,
    ]
}

#[test]
fn reference_gradients_match_finite_differences() {
    let mut rng = common::rng();
    for kind in kinds() {
        for causal in [false, true] {
            let x = case(&mut rng, [1, 2, 7, 3, 2]);
            let want = finite_differences(&x, kind, causal);
            let got = x.reference(kind, causal);
            for (name, got, want) in [
                ("q", &got.q, &want[0]),
                ("k", &got.k, &want[1]),
                ("v", &got.v, &want[2]),
            ] {
                let e = common::relative_error_f64(got, want);
                assert!(
                    e < FD_BOUND,
                    "{kind:?} causal={causal} ∂{name}: {e:e} vs finite differences"
                );
            }
        }
    }
}

fn check(label: &str, x: &Case, got: &AttentionGrads, want: &reference::Gradients) {
    let floor = 1e-2 * x.g.iter().map(|&g| (g as f64).powi(2)).sum::<f64>().sqrt();
    for (name, got, want) in [
        ("q", &got.q, &want.q),
        ("k", &got.k, &want.k),
        ("v", &got.v, &want.v),
    ] {
        let got = got.to_vec().unwrap();
        assert!(
            got.iter().all(|x| x.is_finite()),
            "{label} ∂{name}: non-finite"
        );
        let got: Vec<f64> = got.iter().map(|&g| g as f64).collect();
        let norm = want.iter().map(|w| w * w).sum::<f64>().sqrt();
        let diff = got
            .iter()
            .zip(want)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            .sqrt();
        let e = diff / norm.max(floor);
        assert!(e < BOUND, "{label} ∂{name}: relative error {e:e}");
    }
}

/// Every n of the issue with dk ≠ dv drawn from {1, 60, 129}, both maps and softmax,
/// causal and not, (b, h) > 1.
#[test]
fn gradients_match_the_reference() {
    let mut rng = common::rng();
    let shapes = [
        [2, 3, 1, 60, 1],
        [1, 2, 31, 1, 60],
        [2, 1, 32, 129, 60],
        [1, 3, 33, 60, 129],
        [1, 2, 257, 60, 1],
        [1, 1, 257, 1, 129],
        // dk and dv multiples of 4: the register forms read q, k, v and g as vec4s.
        [1, 2, 37, 8, 68],
    ];
    for ctx in contexts() {
        for shape in shapes {
            let x = case(&mut rng, shape);
            for kind in kinds() {
                for causal in [false, true] {
                    let label = format!("{} {shape:?} {kind:?} causal={causal}", ctx.device_name());
                    check(
                        &label,
                        &x,
                        &x.backward(&ctx, kind, causal).unwrap(),
                        &x.reference(kind, causal),
                    );
                }
            }
        }
    }
}

/// The log-sum-exp that softmax_with_lse returns beside the output.
#[test]
fn softmax_with_lse_returns_the_rows_log_sum_exp() {
    let mut rng = common::rng();
    for ctx in contexts() {
        let x = case(&mut rng, [2, 2, 45, 19, 7]);
        let [q, k, v, _] = x.upload(&ctx);
        for causal in [false, true] {
            let (out, lse) = attention::softmax_with_lse(&ctx, &q, &k, &v, causal).unwrap();
            assert_eq!(lse.shape(), [2, 2, 45]);
            let want = reference::softmax_log_sum_exp(&x.q, &x.k, x.dims, causal);
            let e = relative_error(&lse.to_vec().unwrap(), &want);
            assert!(e < 1e-6, "lse causal={causal}: {e:e}");
            let want = reference::softmax(&x.q, &x.k, &x.v, x.dims, causal);
            let e = relative_error(&out.to_vec().unwrap(), &want);
            assert!(e < 1e-5, "out causal={causal}: {e:e}");
        }
    }
}

/// Heads over several 4 KiB bindings, and grids folded past a per-dimension limit of 7.
#[test]
fn heads_split_over_bindings_and_folded_grids() {
    let mut rng = common::rng();
    let x = case(&mut rng, [3, 5, 20, 8, 7]);
    for (label, options) in [
        (
            "4 KiB bindings",
            GpuOptions {
                max_binding_bytes: Some(4096),
                ..Default::default()
            },
        ),
        (
            "folded grids",
            GpuOptions {
                max_workgroups_per_dimension: Some(7),
                ..Default::default()
            },
        ),
    ] {
        let Some(ctx) = common::gpu_with(options) else {
            return;
        };
        for kind in kinds() {
            for causal in [false, true] {
                let label = format!("{label} {kind:?} causal={causal}");
                check(
                    &label,
                    &x,
                    &x.backward(&ctx, kind, causal).unwrap(),
                    &x.reference(kind, causal),
                );
            }
        }
        if label == "4 KiB bindings" {
            let big = case(&mut rng, [1, 1, 300, 8, 8]); // 2400 floats per head: over 4 KiB
            for kind in kinds() {
                let r = big.backward(&ctx, kind, true);
                assert!(matches!(r, Err(Error::TooLarge { .. })), "{kind:?}: {r:?}");
            }
        }
    }
}

/// The norm-aware guards: a zero query has zero gradient and finite neighbours; keys of any
/// finite size give finite gradients, equal to the reference.
#[test]
fn norm_aware_gradients_stay_finite() {
    let mut rng = common::rng();
    let kind = Kind::Linear(FeatureMap::NormAware);
    for ctx in contexts() {
        for key_size in [1.0f32, 1e6, 1e13] {
            let mut x = case(&mut rng, [1, 2, 37, 6, 4]);
            x.k.iter_mut().for_each(|v| *v *= key_size);
            x.q[..6].fill(0.0); // query 0 of head 0
            for causal in [false, true] {
                let label = format!("{} |k| ~ {key_size:e} causal={causal}", ctx.device_name());
                let got = x.backward(&ctx, kind, causal).unwrap();
                let dq = got.q.to_vec().unwrap();
                assert!(
                    dq[..6].iter().all(|&d| d == 0.0),
                    "{label}: zero query {:?}",
                    &dq[..6]
                );
                check(&label, &x, &got, &x.reference(kind, causal));
            }
        }
    }
}

/// NaN in one key: the other head's gradients stay finite, and (causal) so do the query
/// gradients of the positions before it; those after it are NaN.
#[test]
fn nan_in_one_key_reaches_only_what_depends_on_it() {
    let mut rng = common::rng();
    let Some(ctx) = common::gpu() else { return };
    let (n, d) = (70, 5);
    for kind in kinds() {
        let mut x = case(&mut rng, [1, 2, n, d, d]);
        let j = 40;
        x.k[j * d + 2] = f32::NAN; // head 0, key 40
        let grads = x.backward(&ctx, kind, true).unwrap();
        let [dq, dk, dv] = [&grads.q, &grads.k, &grads.v].map(|t| t.to_vec().unwrap());
        for (name, grad) in [("q", &dq), ("k", &dk), ("v", &dv)] {
            assert!(
                grad[n * d..].iter().all(|g| g.is_finite()),
                "{kind:?} ∂{name}: other head"
            );
        }
        for i in 0..n {
            let row = &dq[i * d..(i + 1) * d];
            if i < j {
                assert!(
                    row.iter().all(|g| g.is_finite()),
                    "{kind:?} ∂q row {i} before the NaN"
                );
            } else {
                assert!(
                    row.iter().any(|g| g.is_nan()),
                    "{kind:?} ∂q row {i} after the NaN: {row:?}"
                );
            }
        }
    }
}

#[test]
fn bad_arguments_are_errors() {
    let mut rng = common::rng();
    for ctx in contexts() {
        let x = case(&mut rng, [2, 3, 5, 4, 6]);
        let [q, k, v, g] = x.upload(&ctx);
        let t = |shape: &[usize]| {
            let len = shape.iter().product();
            ctx.tensor(&vec![rng_value(); len], shape).unwrap()
        };
        let shape_error = |r: wgkernels::Result<AttentionGrads>| {
            assert!(matches!(r, Err(Error::Shape { .. })), "{r:?}");
        };
        for causal in [false, true] {
            for bad_g in [
                t(&[2, 3, 5, 4]),
                t(&[2, 3, 6, 6]),
                t(&[2, 3, 5]),
                t(&[1, 3, 5, 6]),
            ] {
                for map in MAPS {
                    shape_error(attention::linear_backward(
                        &ctx, &q, &k, &v, &bad_g, map, causal,
                    ));
                }
                shape_error(attention::softmax_backward(
                    &ctx, &q, &k, &v, &bad_g, causal,
                ));
            }
            shape_error(attention::linear_backward(
                &ctx,
                &q,
                &t(&[2, 3, 5, 5]),
                &v,
                &g,
                MAPS[0],
                causal,
            ));
            shape_error(attention::softmax_backward(
                &ctx,
                &q,
                &k,
                &t(&[2, 3, 4, 6]),
                &g,
                causal,
            ));
        }
        if ctx.is_gpu() {
            let foreign = Context::cpu().tensor(&x.g, &[2, 3, 5, 6]).unwrap();
            let r = attention::linear_backward(&ctx, &q, &k, &v, &foreign, MAPS[1], true);
            assert!(
                matches!(r, Err(Error::ContextMismatch { arg: "d_out", .. })),
                "{r:?}"
            );
        }
    }
}

fn rng_value() -> f32 {
    rand::rng().random_range(0.25..1.0)
}
