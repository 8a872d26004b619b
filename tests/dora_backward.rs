//! The DoRA layer's backward (`dora::backward`), both norm modes, on the GPU and the CPU path:
//! against the f64 reference, the reference against central finite differences of the f64
//! forward, zero rows, half-precision inputs, inputs split across bindings, and errors.
//!
//! Bound: each gradient is a sum of GEMM products in f32 (a few hundred terms of mixed sign,
//! ≈ √k·2⁻²⁴ ≈ 1e-6 relative) plus, in Exact mode, terms scaled by 1/norm² that cancel
//! partly against the detached ones; checked at 1e-4 relative L2 per gradient.

mod common;

use common::dora::*;
use wgkernels::dora::{self, reference, LayerGrads, LoraShape, NormGradient};
use wgkernels::{Context, DType, Error, GpuOptions, Tensor};

const GRAD_BOUND: f64 = 1e-4;
const MODES: [NormGradient; 2] = [NormGradient::Detached, NormGradient::Exact];

/// One layer's inputs as f32 (values representable in the dtype they are stored as).
struct Layer {
    ad: Adapter,
    x: Vec<f32>,
    m: Vec<f32>,
    dy: Vec<f32>,
    n: usize,
    s: f32,
}

fn layer(rng: &mut rand::rngs::StdRng, [n, d_out, d_in, r]: [usize; 4], s: f32) -> Layer {
    let ad = adapter(rng, d_out, d_in, r);
    let m = common::uniform(rng, d_out)
        .iter()
        .map(|v| 1.0 + v)
        .collect();
    Layer {
        x: common::uniform(rng, n * d_in),
        dy: common::uniform(rng, n * d_out),
        m,
        ad,
        n,
        s,
    }
}

fn wide(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

impl Layer {
    fn reference(&self, mode: NormGradient) -> reference::LayerGradients {
        reference::layer_backward(
            &wide(&self.x),
            &wide(&self.ad.w),
            &wide(&self.ad.a),
            &wide(&self.ad.b),
            &wide(&self.m),
            self.ad.shape,
            self.s as f64,
            &wide(&self.dy),
            mode == NormGradient::Exact,
        )
    }

    /// The backward on `ctx`, every input stored as `dtype` except `dy`.
    fn run(
        &self,
        ctx: &Context,
        dtype: DType,
        mode: NormGradient,
    ) -> wgkernels::Result<LayerGrads> {
        let LoraShape { d_out, d_in, r } = self.ad.shape;
        let t = |data: &[f32], shape: &[usize]| ctx.tensor_as(data, shape, dtype).unwrap();
        let (x, w, a, b) = (
            t(&self.x, &[self.n, d_in]),
            t(&self.ad.w, &[d_out, d_in]),
            t(&self.ad.a, &[r, d_in]),
            t(&self.ad.b, &[d_out, r]),
        );
        let m = t(&self.m, &[d_out]);
        let dy = ctx.tensor(&self.dy, &[self.n, d_out]).unwrap();
        dora::backward(ctx, &x, &w, &a, &b, &m, self.s, &dy, mode)
    }

    /// Every gradient within `bound` of the reference; returns the largest error. Errors are
    /// relative to the larger of the gradient and its detached part: where the path through
    /// the norm cancels the rest (a 1×1 layer's ∂A is exactly 0), the terms summed are what
    /// f32 rounds.
    fn check(
        &self,
        ctx: &Context,
        dtype: DType,
        mode: NormGradient,
        bound: f64,
        label: &str,
    ) -> f64 {
        let got = self.run(ctx, dtype, mode).unwrap();
        let (want, detached) = (self.reference(mode), self.reference(NormGradient::Detached));
        let LoraShape { d_out, d_in, r } = self.ad.shape;
        let mut worst: f64 = 0.0;
        for (name, t, w, scale, shape) in [
            ("x", &got.x, &want.x, &detached.x, vec![self.n, d_in]),
            ("a", &got.a, &want.a, &detached.a, vec![r, d_in]),
            ("b", &got.b, &want.b, &detached.b, vec![d_out, r]),
            (
                "magnitude",
                &got.magnitude,
                &want.magnitude,
                &detached.magnitude,
                vec![d_out],
            ),
        ] {
            assert_eq!(t.shape(), &shape[..], "{label}: ∂{name} shape");
            let got = t.to_vec().unwrap();
            assert!(
                got.iter().all(|v| v.is_finite()),
                "{label} {mode:?} ∂{name} not finite"
            );
            let l2 = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
            let diff = l2(&got
                .iter()
                .zip(w)
                .map(|(&g, w)| g as f64 - w)
                .collect::<Vec<_>>());
            let size = l2(w).max(l2(scale));
            let err = if size == 0.0 { diff } else { diff / size };
            assert!(
                err < bound,
                "{label} {mode:?} ∂{name}: {err:e} ({})",
                ctx.device_name()
            );
            worst = worst.max(err);
        }
        worst
    }
}

/// The same inputs rounded to `dtype`.
fn rounded(l: &Layer, dtype: DType) -> Layer {
    let r = |v: &[f32]| v.iter().map(|&x| dtype.round(x)).collect::<Vec<f32>>();
    Layer {
        ad: Adapter {
            w: r(&l.ad.w),
            a: r(&l.ad.a),
            b: r(&l.ad.b),
            shape: l.ad.shape,
        },
        x: r(&l.x),
        m: r(&l.m),
        dy: l.dy.clone(),
        n: l.n,
        s: l.s,
    }
}

#[test]
fn backward_matches_the_reference_in_both_modes() {
    let mut rng = common::rng();
    for ctx in contexts() {
        for dims in [
            [1, 1, 1, 1],
            [1, 5, 7, 1],
            [9, 33, 70, 8],
            [4, 13, 19, 384],
            [70, 65, 257, 3],
        ] {
            for s in [0.0, 0.7, 2.0] {
                let l = layer(&mut rng, dims, s);
                for mode in MODES {
                    let label = format!("{dims:?} s={s}");
                    let err = l.check(&ctx, DType::F32, mode, GRAD_BOUND, &label);
                    eprintln!("{} {label} {mode:?}: {err:.1e}", ctx.device_name());
                }
            }
        }
    }
}

/// `L = Σ dy⊙y`, the norm either recomputed (Exact) or frozen at `frozen` (Detached).
fn loss(l: &[Vec<f64>; 6], shape: LoraShape, s: f64, frozen: Option<&[f64]>) -> f64 {
    let [x, w, a, b, m, dy] = l;
    let m_eff: Vec<f64> = match frozen {
        // With the norm frozen, y = (m/frozen)·(base + s·lora): the layer with the norm of
        // the current weights undone and the frozen one applied.
        Some(norm) => {
            let current = current_norm(w, a, b, shape, s);
            (0..shape.d_out)
                .map(|j| m[j] * current[j].max(1e-12) / norm[j].max(1e-12))
                .collect()
        }
        None => m.clone(),
    };
    let y = reference::layer_forward(x, w, a, b, &m_eff, shape, s);
    y.iter().zip(dy).map(|(y, d)| y * d).sum()
}

fn current_norm(w: &[f64], a: &[f64], b: &[f64], shape: LoraShape, s: f64) -> Vec<f64> {
    let LoraShape { d_out, d_in, r } = shape;
    (0..d_out)
        .map(|j| {
            (0..d_in)
                .map(|i| {
                    let ba: f64 = (0..r).map(|t| b[j * r + t] * a[t * d_in + i]).sum();
                    (w[j * d_in + i] + s * ba).powi(2)
                })
                .sum::<f64>()
                .sqrt()
        })
        .collect()
}

/// The f64 reference gradients equal central differences of the f64 forward, in both modes
/// (Detached: with the norm frozen at its value), to 1e-6 relative: h = 1e-5 leaves a
/// truncation error of order h² and a rounding error of order 1e-16/h.
#[test]
fn the_reference_equals_central_finite_differences() {
    let mut rng = common::rng();
    let l = layer(&mut rng, [3, 6, 5, 2], 0.8);
    let shape = l.ad.shape;
    let s = l.s as f64;
    let inputs = [&l.x, &l.ad.w, &l.ad.a, &l.ad.b, &l.m, &l.dy].map(|v| wide(v));
    let norm = current_norm(&inputs[1], &inputs[2], &inputs[3], shape, s);
    for mode in MODES {
        let g = l.reference(mode);
        let frozen = (mode == NormGradient::Detached).then_some(&norm[..]);
        // (input index in `inputs`, the gradient)
        for (k, grad, name) in [
            (0, &g.x, "x"),
            (2, &g.a, "a"),
            (3, &g.b, "b"),
            (4, &g.magnitude, "m"),
        ] {
            let mut fd = vec![0.0; grad.len()];
            for (i, out) in fd.iter_mut().enumerate() {
                let h = 1e-5;
                let mut plus = inputs.clone();
                plus[k][i] += h;
                let mut minus = inputs.clone();
                minus[k][i] -= h;
                *out = (loss(&plus, shape, s, frozen) - loss(&minus, shape, s, frozen)) / (2.0 * h);
            }
            let diff: f64 = fd
                .iter()
                .zip(grad.iter())
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f64>()
                .sqrt();
            let size: f64 = grad.iter().map(|v| v * v).sum::<f64>().sqrt();
            assert!(
                diff <= 1e-6 * size.max(1.0),
                "{mode:?} ∂{name}: |fd − grad| = {diff:e} of {size:e}"
            );
        }
    }
    // The modes differ only through the norm: equal in x and m, not in A and B.
    let (d, e) = (
        l.reference(NormGradient::Detached),
        l.reference(NormGradient::Exact),
    );
    assert_eq!(d.x, e.x);
    assert_eq!(d.magnitude, e.magnitude);
    assert_ne!(d.a, e.a);
}

/// All-zero rows of W + s·B·A (the norm clamped at 1e-12) give finite gradients.
#[test]
fn zero_rows_give_finite_gradients() {
    let mut rng = common::rng();
    for ctx in contexts() {
        let mut l = layer(&mut rng, [5, 9, 11, 3], 0.5);
        for j in [0, 4] {
            l.ad.w[j * 11..(j + 1) * 11].fill(0.0);
            l.ad.b[j * 3..(j + 1) * 3].fill(0.0);
        }
        for mode in MODES {
            let g = l.run(&ctx, DType::F32, mode).unwrap();
            for t in [&g.x, &g.a, &g.b, &g.magnitude] {
                assert!(
                    t.to_vec().unwrap().iter().all(|v| v.is_finite()),
                    "{mode:?}"
                );
            }
            l.check(&ctx, DType::F32, mode, GRAD_BOUND, "zero rows");
        }
    }
}

/// f16 and bf16 inputs: against the reference on the same rounded inputs, the error of f32
/// arithmetic.
#[test]
fn half_precision_inputs_accumulate_in_f32() {
    let mut rng = common::rng();
    let Some(ctx) = common::gpu() else { return };
    for dtype in [DType::F16, DType::BF16] {
        let l = rounded(&layer(&mut rng, [7, 21, 33, 5], 0.6), dtype);
        for mode in MODES {
            l.check(&ctx, dtype, mode, GRAD_BOUND, &format!("{dtype}"));
        }
    }
    let cpu = Context::cpu();
    let l = rounded(&layer(&mut rng, [3, 5, 4, 2], 0.6), DType::BF16);
    l.check(
        &cpu,
        DType::BF16,
        NormGradient::Exact,
        GRAD_BOUND,
        "cpu bf16",
    );
}

/// Inputs over 4 KiB bindings are split into row blocks by every kernel of the backward. In
/// the second layer A itself (1350 floats) is over one binding, so the norm is the factored
/// one and the exact backward reuses its U and B·G instead of forming them.
#[test]
fn inputs_larger_than_a_binding_are_split() {
    let mut rng = common::rng();
    let Some(ctx) = common::gpu_with(GpuOptions {
        max_binding_bytes: Some(4096),
        ..Default::default()
    }) else {
        return;
    };
    // x, W, ∂x: 2590–3150 floats; then 5550–6750.
    for dims in [[37, 45, 70, 9], [37, 45, 150, 9]] {
        let l = layer(&mut rng, dims, 0.9);
        for mode in MODES {
            l.check(&ctx, DType::F32, mode, GRAD_BOUND, "4 KiB bindings");
        }
    }
}

/// Grids past a per-dimension limit (capped at 7 here, 65535 on real devices) are folded
/// into two dimensions by every kernel of the backward, both modes.
#[test]
fn grids_past_a_dimension_limit_are_folded() {
    let mut rng = common::rng();
    let Some(ctx) = common::gpu_with_folded_grids() else {
        return;
    };
    // x·Wᵀ and (g⊙dy)·W 12 tiles each, B·A 12, the element-wise passes over 30 000 values.
    let l = layer(&mut rng, [150, 200, 150, 9], 0.7);
    for mode in MODES {
        l.check(&ctx, DType::F32, mode, GRAD_BOUND, "folded grids");
    }
}

/// Split-K forced: every skinny GEMM of the forward and backward with k ≥ 512 (U = W·Aᵀ over
/// d_in, ∂B = d_loraᵀ·xa and ∂A = (d_lora·B)ᵀ·x over n) sums its k-slices' partial products.
#[test]
fn split_k_gives_the_same_gradients() {
    let mut rng = common::rng();
    let Some(ctx) = common::gpu_with(GpuOptions {
        split_k_below_tiles: Some(u32::MAX),
        ..Default::default()
    }) else {
        return;
    };
    let l = layer(&mut rng, [520, 33, 600, 5], 0.7);
    let u = wgkernels::linalg::Gemm::of("t", &[33, 600], &[5, 600], false, true).unwrap();
    assert!(u.k_slices(&ctx) > 1, "U = W·Aᵀ was not split");
    for mode in MODES {
        l.check(&ctx, DType::F32, mode, GRAD_BOUND, "split-K");
    }
}

#[test]
fn bad_arguments_are_errors() {
    let mut rng = common::rng();
    for ctx in contexts() {
        let l = layer(&mut rng, [3, 4, 5, 2], 1.0);
        let [w, a, b] = l.ad.upload(&ctx);
        let x = ctx.tensor(&l.x, &[3, 5]).unwrap();
        let m = ctx.tensor(&l.m, &[4]).unwrap();
        let dy = ctx.tensor(&l.dy, &[3, 4]).unwrap();
        let mode = NormGradient::Exact;
        let call = |x: &Tensor, m: &Tensor, dy: &Tensor, s: f32| {
            dora::backward(&ctx, x, &w, &a, &b, m, s, dy, mode)
        };
        assert!(call(&x, &m, &dy, 1.0).is_ok());
        let bad_dy = ctx.tensor(&[0.5; 6], &[3, 2]).unwrap();
        assert!(
            matches!(call(&x, &m, &bad_dy, 1.0), Err(Error::Shape { message, .. }) if message.contains("`dy`"))
        );
        let bad_x = ctx.tensor(&[0.5; 12], &[3, 4]).unwrap();
        assert!(
            matches!(call(&bad_x, &m, &dy, 1.0), Err(Error::Shape { message, .. }) if message.contains("`x`"))
        );
        let bad_m = ctx.tensor(&[0.5; 3], &[3]).unwrap();
        assert!(
            matches!(call(&x, &bad_m, &dy, 1.0), Err(Error::Shape { message, .. }) if message.contains("`magnitude`"))
        );
        assert!(matches!(
            call(&x, &m, &dy, f32::NAN),
            Err(Error::InvalidArgument { arg: "scale", .. })
        ));
        let other = Context::cpu();
        let foreign = other.tensor(&l.dy, &[3, 4]).unwrap();
        assert!(matches!(
            call(&x, &m, &foreign, 1.0),
            Err(Error::ContextMismatch { arg: "dy", .. })
        ));
    }
}

/// The PEFT-style baseline gives the detached gradients.
#[test]
fn the_dense_baseline_gives_the_detached_gradients() {
    let mut rng = common::rng();
    for ctx in contexts() {
        let l = layer(&mut rng, [9, 21, 34, 5], 0.7);
        let LoraShape { d_out, d_in, r } = l.ad.shape;
        let [w, a, b] = l.ad.upload(&ctx);
        let x = ctx.tensor(&l.x, &[l.n, d_in]).unwrap();
        let m = ctx.tensor(&l.m, &[d_out]).unwrap();
        let dy = ctx.tensor(&l.dy, &[l.n, d_out]).unwrap();
        let got = dora::backward_dense(&ctx, &x, &w, &a, &b, &m, l.s, &dy).unwrap();
        let want = l.reference(NormGradient::Detached);
        for (name, t, w, shape) in [
            ("x", &got.x, &want.x, vec![l.n, d_in]),
            ("a", &got.a, &want.a, vec![r, d_in]),
            ("b", &got.b, &want.b, vec![d_out, r]),
            ("magnitude", &got.magnitude, &want.magnitude, vec![d_out]),
        ] {
            assert_eq!(t.shape(), &shape[..]);
            let err = wgkernels::compare::relative_error(&t.to_vec().unwrap(), w);
            assert!(
                err < GRAD_BOUND,
                "dense ∂{name}: {err:e} ({})",
                ctx.device_name()
            );
        }
        let bad_dy = ctx.tensor(&[0.5; 6], &[3, 2]).unwrap();
        assert!(dora::backward_dense(&ctx, &x, &w, &a, &b, &m, l.s, &bad_dy).is_err());
    }
}

/// `forward_saved` + `Saved::backward` give `forward`'s output and `backward`'s gradients bit
/// for bit (the same kernels on the same products, in both modes and at s = 0), on both
/// paths; a `dy` of the wrong shape or from another context is an `Err` naming `dy`.
#[test]
fn the_saved_forward_gives_the_same_gradients() {
    let mut rng = common::rng();
    for ctx in contexts() {
        for (dims, s) in [
            ([1, 1, 1, 1], 0.7),
            ([9, 33, 70, 8], 0.0),
            ([70, 65, 257, 3], 2.0),
        ] {
            let l = layer(&mut rng, dims, s);
            let LoraShape { d_out, d_in, .. } = l.ad.shape;
            let [w, a, b] = l.ad.upload(&ctx);
            let x = ctx.tensor(&l.x, &[l.n, d_in]).unwrap();
            let m = ctx.tensor(&l.m, &[d_out]).unwrap();
            let dy = ctx.tensor(&l.dy, &[l.n, d_out]).unwrap();
            let y_plain = dora::forward(&ctx, &x, &w, &a, &b, &m, s).unwrap();
            for mode in MODES {
                let (y, mut saved) = dora::forward_saved(&ctx, &x, &w, &a, &b, &m, s).unwrap();
                assert_eq!(y.to_vec().unwrap(), y_plain.to_vec().unwrap(), "{dims:?} y");
                let got = saved.backward(&dy, mode).unwrap();
                let want = dora::backward(&ctx, &x, &w, &a, &b, &m, s, &dy, mode).unwrap();
                for (name, g, w) in [
                    ("x", &got.x, &want.x),
                    ("a", &got.a, &want.a),
                    ("b", &got.b, &want.b),
                    ("magnitude", &got.magnitude, &want.magnitude),
                ] {
                    assert_eq!(g.shape(), w.shape());
                    let (g, w) = (g.to_vec().unwrap(), w.to_vec().unwrap());
                    assert!(
                        g.iter().zip(&w).all(|(p, q)| p.to_bits() == q.to_bits()),
                        "{} {dims:?} s={s} {mode:?} ∂{name}",
                        ctx.device_name()
                    );
                }
            }
        }
        let l = layer(&mut rng, [3, 4, 5, 2], 1.0);
        let [w, a, b] = l.ad.upload(&ctx);
        let x = ctx.tensor(&l.x, &[3, 5]).unwrap();
        let m = ctx.tensor(&l.m, &[4]).unwrap();
        let bad_m = ctx.tensor(&[0.5; 3], &[3]).unwrap();
        assert!(dora::forward_saved(&ctx, &x, &w, &a, &b, &bad_m, 1.0).is_err());
        let (_, mut saved) = dora::forward_saved(&ctx, &x, &w, &a, &b, &m, 1.0).unwrap();
        let bad_dy = ctx.tensor(&[0.5; 6], &[3, 2]).unwrap();
        assert!(
            matches!(saved.backward(&bad_dy, NormGradient::Exact), Err(Error::Shape { message, .. }) if message.contains("`dy`"))
        );
        let foreign = Context::cpu().tensor(&l.dy, &[3, 4]).unwrap();
        assert!(matches!(
            saved.backward(&foreign, NormGradient::Detached),
            Err(Error::ContextMismatch { arg: "dy", .. })
        ));
        // The refused calls left it usable; it serves one backward.
        let dy = ctx.tensor(&l.dy, &[3, 4]).unwrap();
        let want = dora::backward(&ctx, &x, &w, &a, &b, &m, 1.0, &dy, NormGradient::Exact).unwrap();
        let got = saved.backward(&dy, NormGradient::Exact).unwrap();
        assert_eq!(got.b.to_vec().unwrap(), want.b.to_vec().unwrap());
        assert!(matches!(
            saved.backward(&dy, NormGradient::Exact),
            Err(Error::InvalidArgument { arg: "self", .. })
        ));
    }
}

/// Byte accounting: the backward (both modes, and from a saved forward) holds nothing of
/// `[d_out, d_in]` size besides W, while the PEFT-style baseline holds B·A. With n = 8 and
/// r = 16 every product the backward makes is ≤ 1/16 of d_out·d_in; the bound, 1/4 of it,
/// leaves room for the pool's size classes.
#[test]
fn the_backward_never_holds_a_dense_product() {
    let Some(ctx) = common::gpu() else { return };
    let mut rng = common::rng();
    let (n, d, r) = (8, 1024, 16);
    let l = layer(&mut rng, [n, d, d, r], 0.5);
    let [w, a, b] = l.ad.upload(&ctx);
    let x = ctx.tensor(&l.x, &[n, d]).unwrap();
    let m = ctx.tensor(&l.m, &[d]).unwrap();
    let dy = ctx.tensor(&l.dy, &[n, d]).unwrap();
    let dense_bytes = (d * d * 4) as u64;
    let peak = |call: &dyn Fn() -> LayerGrads| {
        ctx.synchronize().unwrap();
        let before = ctx.allocated_bytes();
        ctx.reset_peak_allocated_bytes();
        drop(call());
        ctx.peak_allocated_bytes() - before
    };
    for mode in MODES {
        let held = peak(&|| dora::backward(&ctx, &x, &w, &a, &b, &m, l.s, &dy, mode).unwrap());
        assert!(held < dense_bytes / 4, "{mode:?} held {held} bytes");
        let held = peak(&|| {
            let (_, mut saved) = dora::forward_saved(&ctx, &x, &w, &a, &b, &m, l.s).unwrap();
            saved.backward(&dy, mode).unwrap()
        });
        assert!(held < dense_bytes / 4, "saved {mode:?} held {held} bytes");
    }
    let held = peak(&|| dora::backward_dense(&ctx, &x, &w, &a, &b, &m, l.s, &dy).unwrap());
    assert!(
        held >= dense_bytes,
        "the baseline should hold B·A ({held} bytes)"
    );
}
