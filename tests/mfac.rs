//! M-FAC on the GPU (and the CPU path) against a dense f64 inverse of
//! `F = λ·I + (1/m)·GᵀG` formed outright.
//!
//! Bounds. F's condition number is `κ = 1 + σ²_max/(m·λ)`; rounding the gradients to f32
//! alone moves F⁻¹x by up to ~κ·2⁻²⁴ relative, and the f32 paths (Gram matrix, m×m
//! factorisation, two passes over d) add a few times that. The tests check
//! `‖got − ref‖/‖ref‖ < 1e-5 + κ·1e-7` — 1e-5 for well-conditioned windows, looser exactly
//! where the problem itself is.

mod common;

use rand::Rng;
use wgkernels::compare::relative_error;
use wgkernels::mfac::{self, reference, Mfac, MfacConfig, SlidingInverse, StaticInverse};
use wgkernels::{Context, Error};

fn contexts() -> Vec<Context> {
    common::every_path()
}

/// `κ = 1 + σ²_max/(m·λ)`, σ²_max from the largest eigenvalue of the m×m Gram matrix.
fn condition(grads: &[f32], d: usize, damp: f64) -> f64 {
    let m = grads.len() / d;
    let gram = reference::gram(grads, d);
    // Power iteration on the Gram matrix.
    let mut x = vec![1.0; m];
    let mut lambda = 0.0;
    for _ in 0..200 {
        let y: Vec<f64> = (0..m)
            .map(|i| (0..m).map(|j| gram[i * m + j] * x[j]).sum())
            .collect();
        lambda = y.iter().map(|v| v * v).sum::<f64>().sqrt();
        x = y.iter().map(|v| v / lambda).collect();
    }
    1.0 + lambda / (m as f64 * damp)
}

fn bound(kappa: f64) -> f64 {
    1e-5 + kappa * 1e-7
}

fn matvec(a: &[f64], x: &[f32]) -> Vec<f64> {
    a.chunks(x.len())
        .map(|row| row.iter().zip(x).map(|(a, &x)| a * x as f64).sum())
        .collect()
}

/// ihvp (one vector and a batch of 3), the inverse diagonal and some entries, against the
/// dense inverse at d = 1000.
#[test]
fn static_inverse_matches_the_dense_inverse() {
    let mut rng = common::rng();
    let d = 1000;
    let damp = 0.1;
    // 130: past GRAM_BY_GEMM_FROM, the Gram matrix by GEMM rather than the dot kernel.
    for m in [1, 7, 32, 100, 130] {
        let grads = common::uniform(&mut rng, m * d);
        let dense = reference::dense_inverse(&grads, d, damp as f64);
        let kappa = condition(&grads, d, damp as f64);
        let xs = common::uniform(&mut rng, 3 * d);
        let want_ihvp: Vec<f64> = xs.chunks(d).flat_map(|x| matvec(&dense, x)).collect();
        let want_diagonal: Vec<f64> = (0..d).map(|k| dense[k * d + k]).collect();
        for ctx in contexts() {
            let label = format!("{} m={m} κ={kappa:.0}", ctx.device_name());
            let inverse =
                StaticInverse::new(&ctx, &ctx.tensor(&grads, &[m, d]).unwrap(), damp).unwrap();
            let one = inverse.ihvp(&ctx.tensor(&xs[..d], &[d]).unwrap()).unwrap();
            assert_eq!(one.shape(), [d]);
            let e = relative_error(&one.to_vec().unwrap(), &want_ihvp[..d]);
            assert!(e < bound(kappa), "{label} ihvp: {e:e}");
            let batch = inverse.ihvp(&ctx.tensor(&xs, &[3, d]).unwrap()).unwrap();
            let e = relative_error(&batch.to_vec().unwrap(), &want_ihvp);
            assert!(e < bound(kappa), "{label} batched ihvp: {e:e}");
            let diagonal = inverse.inverse_diagonal().unwrap().to_vec().unwrap();
            let e = relative_error(&diagonal, &want_diagonal);
            assert!(e < bound(kappa), "{label} diagonal: {e:e}");
            for _ in 0..5 {
                let (i, j) = (rng.random_range(0..d), rng.random_range(0..d));
                let got = inverse.inverse_entry(i, j).unwrap() as f64;
                let want = dense[i * d + j];
                // Off-diagonal entries are small against the diagonal ~1/λ they sit beside.
                let err = (got - want).abs() / want_diagonal[i];
                assert!(
                    err < bound(kappa),
                    "{label} entry ({i},{j}): {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn the_three_f64_forms_agree() {
    let mut rng = common::rng();
    let (m, d, damp) = (9, 40, 0.3);
    let grads = common::uniform(&mut rng, m * d);
    let x = common::uniform(&mut rng, d);
    let dense = matvec(&reference::dense_inverse(&grads, d, damp), &x);
    let recursion = reference::sherman_morrison(&grads, d, damp).ihvp(&x);
    let factors = reference::Factors::new(&reference::gram(&grads, d), m, damp);
    let woodbury = reference::woodbury_ihvp(&grads, d, &factors, &x, damp);
    let norm = dense.iter().map(|v| v * v).sum::<f64>().sqrt();
    for (name, got) in [("Sherman–Morrison", &recursion), ("Woodbury", &woodbury)] {
        let diff = got
            .iter()
            .zip(&dense)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(diff / norm < 1e-12, "{name}: {:e}", diff / norm);
    }
    // The pivots of M are the recursion's D_i.
    let sm = reference::sherman_morrison(&grads, d, damp);
    for (a, b) in sm.denominators.iter().zip(&factors.denominators) {
        assert!((a - b).abs() < 1e-9 * a.abs(), "{a} vs {b}");
    }
}

/// λ from 1e-5 to 10 with large-norm and nearly parallel gradients: the error follows κ.
#[test]
fn damping_sweep_with_hard_gradients() {
    let mut rng = common::rng();
    let (m, d) = (16, 300);
    let base = common::uniform(&mut rng, d);
    let cases: Vec<(&str, Vec<f32>)> = vec![
        (
            "large-norm ×100",
            common::uniform(&mut rng, m * d)
                .iter()
                .map(|x| 100.0 * x)
                .collect(),
        ),
        (
            "nearly parallel",
            (0..m * d)
                .map(|i| base[i % d] + 1e-3 * rng.random_range(-1.0f32..1.0))
                .collect(),
        ),
    ];
    for (name, grads) in &cases {
        for damp in [1e-5f32, 1e-3, 1e-1, 10.0] {
            let dense = reference::dense_inverse(grads, d, damp as f64);
            let kappa = condition(grads, d, damp as f64);
            let x = common::uniform(&mut rng, d);
            let want = matvec(&dense, &x);
            for ctx in contexts() {
                let inverse =
                    StaticInverse::new(&ctx, &ctx.tensor(grads, &[m, d]).unwrap(), damp).unwrap();
                let got = inverse
                    .ihvp(&ctx.tensor(&x, &[d]).unwrap())
                    .unwrap()
                    .to_vec()
                    .unwrap();
                let e = relative_error(&got, &want);
                eprintln!(
                    "{} {name} λ={damp:e} κ={kappa:.1e}: {e:.1e}",
                    ctx.device_name()
                );
                assert!(got.iter().all(|v| v.is_finite()), "{name} λ={damp}");
                assert!(
                    e < bound(kappa),
                    "{} {name} λ={damp:e} κ={kappa:.1e}: {e:e}",
                    ctx.device_name()
                );
            }
        }
    }
}

/// Gradients larger than one storage binding (4 KiB here) are split into blocks of rows, and
/// the dot products and the combination run once per block: d = 1000 (the vec4 passes, one
/// row per block) and d = 333 (the scalar passes, three rows per block), m = 11 and 20 (the
/// last block of rows partly full), for a static inverse and a sliding window. (The vectors
/// of one call must fit one binding.)
#[test]
fn gradients_larger_than_a_binding_are_split_into_row_blocks() {
    let Some(ctx) = common::gpu_with(wgkernels::GpuOptions {
        max_binding_bytes: Some(4096),
        ..Default::default()
    }) else {
        return;
    };
    let mut rng = common::rng();
    let damp = 0.1;
    for (m, d) in [(11, 1000), (20, 333)] {
        let grads = common::uniform(&mut rng, m * d);
        let dense = reference::dense_inverse(&grads, d, damp as f64);
        let kappa = condition(&grads, d, damp as f64);
        let x = common::uniform(&mut rng, d);
        let tx = ctx.tensor(&x, &[d]).unwrap();
        let want = matvec(&dense, &x);
        let label = format!("4 KiB bindings, m={m} d={d}");
        let inverse =
            StaticInverse::new(&ctx, &ctx.tensor(&grads, &[m, d]).unwrap(), damp).unwrap();
        let got = inverse.ihvp(&tx).unwrap();
        let e = relative_error(&got.to_vec().unwrap(), &want);
        assert!(e < bound(kappa), "{label} ihvp: {e:e}");
        let diagonal = inverse.inverse_diagonal().unwrap().to_vec().unwrap();
        let want_diagonal: Vec<f64> = (0..d).map(|k| dense[k * d + k]).collect();
        let e = relative_error(&diagonal, &want_diagonal);
        assert!(e < bound(kappa), "{label} diagonal: {e:e}");

        let mut window = SlidingInverse::new(&ctx, d, m, damp).unwrap();
        for g in grads.chunks(d) {
            window.push(&ctx.tensor(g, &[d]).unwrap()).unwrap();
        }
        let got = window.ihvp(&tx).unwrap();
        let e = relative_error(&got.to_vec().unwrap(), &want);
        assert!(e < bound(kappa), "{label} sliding ihvp: {e:e}");
    }
}

/// 2m+3 pushes; after each, ihvp equals the dense inverse of the window's gradients.
#[test]
fn sliding_window_tracks_the_dense_inverse() {
    let mut rng = common::rng();
    let (d, damp) = (150, 0.05f32);
    for m in [1, 5, 32] {
        for ctx in contexts() {
            let mut window = SlidingInverse::new(&ctx, d, m, damp).unwrap();
            let mut pushed: Vec<Vec<f32>> = Vec::new();
            let x = common::uniform(&mut rng, d);
            let tx = ctx.tensor(&x, &[d]).unwrap();
            // Before any push: F = λ·I.
            let got = window.ihvp(&tx).unwrap().to_vec().unwrap();
            let want: Vec<f64> = x.iter().map(|&v| v as f64 / damp as f64).collect();
            assert!(relative_error(&got, &want) < 1e-6);
            for step in 0..2 * m + 3 {
                let g = common::uniform(&mut rng, d);
                window.push(&ctx.tensor(&g, &[d]).unwrap()).unwrap();
                pushed.push(g);
                let live: Vec<f32> = pushed[pushed.len().saturating_sub(m)..].concat();
                assert_eq!(window.len(), live.len() / d);
                let dense = reference::dense_inverse(&live, d, damp as f64);
                let kappa = condition(&live, d, damp as f64);
                let got = window.ihvp(&tx).unwrap().to_vec().unwrap();
                let e = relative_error(&got, &matvec(&dense, &x));
                assert!(
                    e < bound(kappa),
                    "{} m={m} push {step}: {e:e}",
                    ctx.device_name()
                );
            }
        }
    }
}

/// Least squares ½‖A·p − b‖²: the GPU optimizer follows the CPU path step by step, and
/// M-FAC gets lower than plain SGD at the same learning rate.
#[test]
fn optimizer_follows_the_cpu_path_and_beats_sgd() {
    let mut rng = common::rng();
    let (rows, d) = (60, 12);
    // Columns of very different scales: an ill-conditioned problem SGD crawls on. Gradients
    // are ~0.1, so κ = 1 + |g|²/(m·λ) stays small and f32 steps match the f64 path to 1e-4;
    // F⁻¹ then rescales the step by up to ~1/(λ + |g|²/m) ≈ 90 where SGD's lr·‖AᵀA‖ ≈ 5e-3.
    let a: Vec<f32> = (0..rows * d)
        .map(|i| rng.random_range(-0.03f32..0.03) * (1.0 + 9.0 * ((i % d) as f32 / d as f32)))
        .collect();
    let b: Vec<f32> = common::uniform(&mut rng, rows)
        .iter()
        .map(|x| 0.05 * x)
        .collect();
    // A·p − b, its loss ½‖·‖² and the gradient Aᵀ(A·p − b).
    let residual = |p: &[f32]| -> Vec<f64> {
        let row = |i: usize| {
            (0..d)
                .map(|j| a[i * d + j] as f64 * p[j] as f64)
                .sum::<f64>()
        };
        (0..rows).map(|i| row(i) - b[i] as f64).collect()
    };
    let gradient = |p: &[f32]| -> Vec<f32> {
        let r = residual(p);
        (0..d)
            .map(|j| (0..rows).map(|i| a[i * d + j] as f64 * r[i]).sum::<f64>() as f32)
            .collect()
    };
    let loss = |p: &[f32]| -> f64 { residual(p).iter().map(|r| r * r).sum::<f64>() / 2.0 };
    let config = MfacConfig {
        lr: 1e-2,
        momentum: 0.5,
        weight_decay: 1e-3,
        window: 8,
        damp: 1e-2,
    };
    let steps = 40;
    // The CPU path's trajectory and the gradients it saw.
    let cpu = Context::cpu();
    let mut optimizer = Mfac::new(&cpu, d, config).unwrap();
    let mut params = cpu.tensor(&vec![0.0; d], &[d]).unwrap();
    let (mut trajectory, mut gradients) = (Vec::new(), Vec::new());
    for _ in 0..steps {
        let g = gradient(&params.to_vec().unwrap());
        optimizer
            .step(&mut params, &cpu.tensor(&g, &[d]).unwrap())
            .unwrap();
        gradients.push(g);
        trajectory.push(params.to_vec().unwrap());
    }
    // The GPU optimizer fed the same gradients lands on the same parameters, step by step.
    if let Some(gpu) = common::gpu() {
        let mut optimizer = Mfac::new(&gpu, d, config).unwrap();
        let mut params = gpu.tensor(&vec![0.0; d], &[d]).unwrap();
        for (step, (g, want)) in gradients.iter().zip(&trajectory).enumerate() {
            optimizer
                .step(&mut params, &gpu.tensor(g, &[d]).unwrap())
                .unwrap();
            let want: Vec<f64> = want.iter().map(|&v| v as f64).collect();
            let e = relative_error(&params.to_vec().unwrap(), &want);
            assert!(
                e < 1e-4,
                "step {step}: GPU and CPU optimizers differ by {e:e}"
            );
        }
    }
    let mut sgd = vec![0.0f32; d];
    for _ in 0..steps {
        let g = gradient(&sgd);
        sgd.iter_mut()
            .zip(&g)
            .for_each(|(p, g)| *p -= config.lr * g);
    }
    let (mfac_loss, sgd_loss) = (loss(trajectory.last().unwrap()), loss(&sgd));
    eprintln!(
        "loss after {steps} steps: M-FAC {mfac_loss:.4}, SGD {sgd_loss:.4}, start {:.4}",
        loss(&vec![0.0; d])
    );
    assert!(mfac_loss < sgd_loss, "M-FAC {mfac_loss} vs SGD {sgd_loss}");
}

#[test]
fn pruning_zeroes_the_lowest_scores_and_corrects_the_rest() {
    let mut rng = common::rng();
    let (m, d, damp) = (10, 50, 0.1f32);
    let grads = common::uniform(&mut rng, m * d);
    let w = common::uniform(&mut rng, d);
    let factors = reference::sherman_morrison(&grads, d, damp as f64);
    let diagonal = factors.inverse_diagonal();
    let scores: Vec<f64> = w
        .iter()
        .zip(&diagonal)
        .map(|(&w, h)| (w as f64).powi(2) / (2.0 * h))
        .collect();
    for ctx in contexts() {
        let inverse =
            StaticInverse::new(&ctx, &ctx.tensor(&grads, &[m, d]).unwrap(), damp).unwrap();
        let tw = ctx.tensor(&w, &[d]).unwrap();
        let got_scores = mfac::obs_scores(&inverse, &tw).unwrap();
        assert!(relative_error(&got_scores, &scores) < 1e-5);
        let (pruned, removed) = mfac::prune(&inverse, &tw, 10).unwrap();
        let pruned = pruned.to_vec().unwrap();
        assert_eq!(removed.len(), 10);
        let threshold = removed.iter().map(|&k| scores[k]).fold(0.0, f64::max);
        for k in 0..d {
            if removed.contains(&k) {
                assert_eq!(pruned[k], 0.0);
            } else {
                assert!(scores[k] >= threshold * (1.0 - 1e-6), "kept a lower score");
            }
        }
        // The correction is F⁻¹·t with t_k = −w_k/[F⁻¹]_kk on the removed weights.
        let mut t = vec![0.0f32; d];
        removed
            .iter()
            .for_each(|&k| t[k] = (-(w[k] as f64) / diagonal[k]) as f32);
        let delta = factors.ihvp(&t);
        let want: Vec<f64> = (0..d)
            .map(|k| {
                if removed.contains(&k) {
                    0.0
                } else {
                    w[k] as f64 + delta[k]
                }
            })
            .collect();
        assert!(
            relative_error(&pruned, &want) < 1e-5,
            "{}",
            ctx.device_name()
        );
    }
}

#[test]
fn bad_arguments_are_errors_and_change_nothing() {
    let mut rng = common::rng();
    for ctx in contexts() {
        let (m, d) = (4, 30);
        let grads = ctx
            .tensor(&common::uniform(&mut rng, m * d), &[m, d])
            .unwrap();
        for damp in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            assert!(matches!(
                StaticInverse::new(&ctx, &grads, damp),
                Err(Error::InvalidArgument { arg: "damp", .. })
            ));
            assert!(matches!(
                SlidingInverse::new(&ctx, d, m, damp),
                Err(Error::InvalidArgument { arg: "damp", .. })
            ));
        }
        assert!(matches!(
            SlidingInverse::new(&ctx, d, 0, 0.1),
            Err(Error::InvalidArgument { arg: "m", .. })
        ));
        assert!(matches!(
            SlidingInverse::new(&ctx, 0, 3, 0.1),
            Err(Error::InvalidArgument { arg: "d", .. })
        ));
        let flat = ctx.tensor(&vec![1.0; d], &[d]).unwrap();
        assert!(matches!(
            StaticInverse::new(&ctx, &flat, 0.1),
            Err(Error::Shape { .. })
        ));

        let inverse = StaticInverse::new(&ctx, &grads, 0.1).unwrap();
        let short = ctx.tensor(&vec![1.0; d - 1], &[d - 1]).unwrap();
        assert!(matches!(inverse.ihvp(&short), Err(Error::Shape { .. })));
        assert!(matches!(
            inverse.inverse_entry(d, 0),
            Err(Error::InvalidArgument { arg: "i", .. })
        ));
        assert!(matches!(
            inverse.inverse_entry(0, d + 5),
            Err(Error::InvalidArgument { arg: "j", .. })
        ));
        assert!(matches!(
            mfac::prune(&inverse, &flat, d + 1),
            Err(Error::InvalidArgument { .. })
        ));

        // A failed push leaves the window as it was.
        let mut window = SlidingInverse::new(&ctx, d, 3, 0.1).unwrap();
        let g = ctx.tensor(&common::uniform(&mut rng, d), &[d]).unwrap();
        window.push(&g).unwrap();
        let x = ctx.tensor(&common::uniform(&mut rng, d), &[d]).unwrap();
        let before = window.ihvp(&x).unwrap().to_vec().unwrap();
        assert!(matches!(window.push(&short), Err(Error::Shape { .. })));
        let half = ctx
            .tensor_as(&vec![1.0; d], &[d], wgkernels::DType::F16)
            .unwrap();
        assert!(matches!(
            window.push(&half),
            Err(Error::InvalidArgument { .. })
        ));
        if ctx.is_gpu() {
            let foreign = Context::cpu().tensor(&vec![1.0; d], &[d]).unwrap();
            assert!(matches!(
                window.push(&foreign),
                Err(Error::ContextMismatch { .. })
            ));
        }
        assert_eq!(window.len(), 1);
        assert_eq!(window.ihvp(&x).unwrap().to_vec().unwrap(), before);

        // NaN gradient: documented result, NaN products until it leaves the window.
        let nan = ctx.tensor(&vec![f32::NAN; d], &[d]).unwrap();
        window.push(&nan).unwrap();
        assert!(window
            .ihvp(&x)
            .unwrap()
            .to_vec()
            .unwrap()
            .iter()
            .all(|v| v.is_nan()));
        for _ in 0..3 {
            window
                .push(&ctx.tensor(&common::uniform(&mut rng, d), &[d]).unwrap())
                .unwrap();
        }
        assert!(window
            .ihvp(&x)
            .unwrap()
            .to_vec()
            .unwrap()
            .iter()
            .all(|v| v.is_finite()));

        let mut optimizer = Mfac::new(
            &ctx,
            d,
            MfacConfig {
                window: 2,
                ..Default::default()
            },
        )
        .unwrap();
        let mut params = ctx.tensor(&vec![0.5; d], &[d]).unwrap();
        assert!(matches!(
            optimizer.step(&mut params, &short),
            Err(Error::Shape { .. })
        ));
        assert_eq!(params.to_vec().unwrap(), vec![0.5; d]);
        assert!(optimizer.window().is_empty());
    }
}

/// The block-diagonal variant equals an independent inverse per block of coordinates
/// (d = 1000 in blocks of 300: the last block is 100 wide).
#[test]
fn block_inverse_is_one_inverse_per_block() {
    let mut rng = common::rng();
    let (m, d, block, damp) = (7, 1000, 300, 0.05);
    let grads = common::uniform(&mut rng, m * d);
    let xs = common::uniform(&mut rng, 2 * d);
    let mut want_ihvp = vec![0.0; 2 * d];
    let mut want_diagonal = vec![0.0; d];
    for c0 in (0..d).step_by(block) {
        let width = block.min(d - c0);
        let slice: Vec<f32> = grads
            .chunks(d)
            .flat_map(|g| g[c0..c0 + width].to_vec())
            .collect();
        let factors = reference::sherman_morrison(&slice, width, damp as f64);
        for (r, x) in xs.chunks(d).enumerate() {
            let y = factors.ihvp(&x[c0..c0 + width]);
            want_ihvp[r * d + c0..r * d + c0 + width].copy_from_slice(&y);
        }
        want_diagonal[c0..c0 + width].copy_from_slice(&factors.inverse_diagonal());
    }
    for ctx in contexts() {
        let tg = ctx.tensor(&grads, &[m, d]).unwrap();
        let inverse = mfac::BlockInverse::new(&ctx, &tg, damp, block).unwrap();
        assert_eq!(inverse.blocks().len(), 4);
        let got = inverse.ihvp(&ctx.tensor(&xs, &[2, d]).unwrap()).unwrap();
        assert_eq!(got.shape(), [2, d]);
        let e = relative_error(&got.to_vec().unwrap(), &want_ihvp);
        assert!(e < 1e-5, "{} blocked ihvp: {e:e}", ctx.device_name());
        let one = inverse.ihvp(&ctx.tensor(&xs[..d], &[d]).unwrap()).unwrap();
        assert_eq!(one.shape(), [d]);
        assert!(relative_error(&one.to_vec().unwrap(), &want_ihvp[..d]) < 1e-5);
        let diagonal = inverse.inverse_diagonal().unwrap().to_vec().unwrap();
        let e = relative_error(&diagonal, &want_diagonal);
        assert!(e < 1e-5, "{} blocked diagonal: {e:e}", ctx.device_name());
        let r = mfac::BlockInverse::new(&ctx, &tg, damp, 0);
        assert!(matches!(
            r,
            Err(Error::InvalidArgument { arg: "block", .. })
        ));
    }
}
