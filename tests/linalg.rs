//! GEMM on the GPU against the f64 CPU reference, and the machinery under it: binding
//! splits, large grids, the buffer pool, errors.
//!
//! Bound: an f32 dot product of length k carries an error of about √k·2⁻²⁴ (≈ 1e-6 at
//! k = 300) relative to Σ|a_i·b_i|, not to the result, which can cancel to near zero (a
//! 1×300×1 product once did). So errors are measured as ‖C − C_ref‖ / ‖|A|·|B|‖; 1e-5 leaves
//! room for the summation order and still catches any wrong element.

mod common;

use wgkernels::compare::relative_error;
use wgkernels::linalg::{self, reference, Gemm};
use wgkernels::{Context, Error, GpuOptions, Tensor, Tuning};

const BOUND: f64 = 1e-5;
/// Every form of the GEMM the tuner chooses among.
const FORMS: [&str; 4] = ["tiled", "rows32x8x16", "rows16x4x16", "rows8x2x16"];

/// A context per form of the GEMM, each forced to run it, with `options` otherwise.
fn per_form(options: GpuOptions) -> Vec<(&'static str, Context)> {
    FORMS
        .into_iter()
        .filter_map(|form| {
            let tuning = Tuning::Force(form.into());
            let ctx = common::gpu_with(GpuOptions {
                tuning,
                ..options.clone()
            })?;
            let g = Gemm::of("t", &[3, 2], &[2, 5], false, false).unwrap();
            assert_eq!(g.form(&ctx), form);
            Some((form, ctx))
        })
        .collect()
}
const TRANSPOSES: [(bool, bool); 4] = [(false, false), (true, false), (false, true), (true, true)];

type MatmulFn = fn(&Context, &Tensor, &Tensor, bool, bool) -> wgkernels::Result<Tensor>;

/// Runs `op(A)[m,k]·op(B)[k,n]` on fresh random inputs and returns ‖C − C_ref‖ / ‖|A|·|B|‖.
fn check(ctx: &Context, matmul: MatmulFn, m: usize, k: usize, n: usize, ta: bool, tb: bool) -> f64 {
    let mut rng = common::rng();
    let a = common::uniform(&mut rng, m * k);
    let b = common::uniform(&mut rng, k * n);
    let a_shape = if ta { [k, m] } else { [m, k] };
    let b_shape = if tb { [n, k] } else { [k, n] };
    let g = Gemm::of("test", &a_shape, &b_shape, ta, tb).unwrap();
    let want = reference::matmul(&a, &b, g);
    let abs = |x: &[f32]| x.iter().map(|v| v.abs()).collect::<Vec<f32>>();
    let scale = reference::matmul(&abs(&a), &abs(&b), g);
    let c = matmul(
        ctx,
        &ctx.tensor(&a, &a_shape).unwrap(),
        &ctx.tensor(&b, &b_shape).unwrap(),
        ta,
        tb,
    )
    .unwrap();
    assert_eq!(c.shape(), &[m, n]);
    let got = c.to_vec().unwrap();
    if got.iter().any(|x| !x.is_finite()) {
        return f64::INFINITY;
    }
    let diff: f64 = got
        .iter()
        .zip(&want)
        .map(|(&g, w)| (g as f64 - w).powi(2))
        .sum();
    let norm: f64 = scale.iter().map(|x| x * x).sum();
    (diff / norm).sqrt()
}

#[test]
fn every_form_and_naive_match_the_reference_on_odd_shapes() {
    for (form, ctx) in per_form(GpuOptions::default()) {
        for (m, k, n) in [
            (1, 1, 1),
            (7, 13, 5),
            (129, 65, 257),
            (64, 16, 64),
            (1, 300, 1),
            (33, 7, 530),
            // k a multiple of 4: the rows form reads op(A) four k at a time where it can.
            (45, 20, 70),
            (3, 8, 1),
        ] {
            for (ta, tb) in TRANSPOSES {
                let mut runs = vec![(form, linalg::matmul as MatmulFn)];
                if form == "tiled" {
                    runs.push(("naive", linalg::matmul_naive));
                }
                for (name, matmul) in runs {
                    let err = check(&ctx, matmul, m, k, n, ta, tb);
                    assert!(err < BOUND, "{name} {m}x{k}x{n} ta={ta} tb={tb}: {err:e}");
                }
            }
        }
    }
}

#[test]
fn matrices_larger_than_a_binding_are_split_in_every_direction() {
    // A 4 KiB binding cap forces blocks along m, n and k (with accumulation) depending on
    // which operand is transposed.
    let small = GpuOptions {
        max_binding_bytes: Some(4096),
        ..Default::default()
    };
    for (form, ctx) in per_form(small) {
        for (m, k, n) in [(70, 50, 90), (130, 3, 7), (5, 200, 3)] {
            for (ta, tb) in TRANSPOSES {
                let err = check(&ctx, linalg::matmul, m, k, n, ta, tb);
                assert!(
                    err < BOUND,
                    "{form} split {m}x{k}x{n} ta={ta} tb={tb}: {err:e}"
                );
            }
        }
    }
}

/// Split-K forced on every product whose k allows it: the slices' partial products (poisoned
/// scratch, so an unwritten partial fails) summed in order into C. With a 16 KiB binding cap
/// the k-blocks and the slices combine, and C accumulates over blocks of split slices.
#[test]
fn split_k_slices_sum_to_the_product() {
    let forced = |max_binding_bytes| {
        common::gpu_with(GpuOptions {
            split_k_below_tiles: Some(u32::MAX),
            max_binding_bytes,
            ..Default::default()
        })
    };
    let Some(ctx) = forced(None) else { return };
    let every_form = per_form(GpuOptions {
        split_k_below_tiles: Some(u32::MAX),
        ..Default::default()
    });
    for (form, ctx) in &every_form {
        for (m, k, n) in [(1, 513, 1), (70, 1000, 9), (130, 777, 65), (3, 2100, 200)] {
            for (ta, tb) in TRANSPOSES {
                let g = Gemm {
                    m,
                    k,
                    n,
                    transpose_a: ta,
                    transpose_b: tb,
                };
                let slices = g.k_slices(ctx);
                assert!(slices >= 2, "{form} {m}x{k}x{n} was not split ({slices})");
                let err = check(ctx, linalg::matmul, m, k, n, ta, tb);
                assert!(
                    err < BOUND,
                    "{form} split-K {m}x{k}x{n} ta={ta} tb={tb} ({slices} slices): {err:e}"
                );
            }
        }
    }
    // Too short a k to split, and the device default on this adapter.
    assert_eq!(
        Gemm::of("t", &[70, 300], &[300, 9], false, false)
            .unwrap()
            .k_slices(&ctx),
        1
    );
    let plain = common::gpu().unwrap();
    let skinny = Gemm::of("t", &[1024, 1024], &[64, 1024], false, true).unwrap();
    let cpu_adapter = plain.device_type() == Some(wgkernels::wgpu::DeviceType::Cpu);
    assert_eq!(
        skinny.k_slices(&plain) > 1,
        !cpu_adapter,
        "{}",
        plain.device_name()
    );
    assert_eq!(skinny.k_slices(&Context::cpu()), 1);

    let Some(small) = forced(Some(16384)) else {
        return;
    };
    for (m, k, n) in [(5, 3000, 3), (2, 1200, 1), (9, 1500, 4)] {
        let g = Gemm::of("t", &[m, k], &[k, n], false, false).unwrap();
        assert!(
            g.k_slices(&small) >= 2,
            "{m}x{k}x{n} in blocks was not split"
        );
        for (ta, tb) in TRANSPOSES {
            let err = check(&small, linalg::matmul, m, k, n, ta, tb);
            assert!(
                err < BOUND,
                "split-K in blocks {m}x{k}x{n} ta={ta} tb={tb}: {err:e}"
            );
        }
    }
}

#[test]
fn an_operand_larger_than_the_device_binding_limit_is_split() {
    let Some(ctx) = common::gpu() else { return };
    let limit = ctx.max_binding_bytes().unwrap();
    if limit > 512 << 20 {
        eprintln!("binding limit {limit} B: too large to exceed in a test");
        return;
    }
    let (k, n) = (257, 3);
    let m = (limit / 4 / k as u64) as usize + 17; // A is just over one binding
    assert!((m * k * 4) as u64 > limit);
    let err = check(&ctx, linalg::matmul, m, k, n, false, false);
    assert!(err < BOUND, "{m}x{k}x{n}: {err:e}");
}

#[test]
fn grids_over_65535_workgroups_are_folded_into_two_dimensions() {
    let Some(ctx) = common::gpu() else { return };
    // 16×16 outputs per workgroup: 257² = 66049 workgroups, and the NaN poisoning fill of
    // the output needs 65 634 workgroups of 256 — both past the per-dimension limit.
    let (m, k, n) = (4099, 2, 4099);
    let err = check(&ctx, linalg::matmul_naive, m, k, n, false, true);
    assert!(err < BOUND, "{err:e}");
}

#[test]
fn cpu_and_gpu_contexts_agree() {
    let Some(gpu) = common::gpu() else { return };
    let cpu = Context::cpu();
    assert!(!cpu.is_gpu() && gpu.is_gpu());
    let mut rng = common::rng();
    let (m, k, n) = (33, 47, 29);
    let a = common::uniform(&mut rng, m * k);
    let b = common::uniform(&mut rng, n * k);
    let run = |ctx: &Context| {
        let a = ctx.tensor(&a, &[m, k]).unwrap();
        let b = ctx.tensor(&b, &[n, k]).unwrap();
        linalg::matmul(ctx, &a, &b, false, true)
            .unwrap()
            .to_vec()
            .unwrap()
    };
    let on_cpu: Vec<f64> = run(&cpu).iter().map(|&x| x as f64).collect();
    let err = relative_error(&run(&gpu), &on_cpu);
    assert!(err < BOUND, "{err:e}");
}

/// The default backends exclude OpenGL: a host without a Vulkan driver gets the CPU path from
/// `Context::new`, not wgpu's GL fallback (which once ran this suite unnoticed).
#[test]
fn the_default_context_is_never_opengl() {
    assert_eq!(
        GpuOptions::default().backends,
        wgkernels::wgpu::Backends::PRIMARY
    );
    let Some(gpu) = common::gpu() else { return };
    if std::env::var_os("WGPU_BACKEND").is_none() {
        assert!(!gpu.device_name().contains("Gl"), "{}", gpu.device_name());
    }
}

#[test]
fn the_pool_reuses_buffers_across_calls() {
    let Some(ctx) = common::gpu() else { return };
    let mut rng = common::rng();
    let a = ctx
        .tensor(&common::uniform(&mut rng, 50 * 40), &[50, 40])
        .unwrap();
    let b = ctx
        .tensor(&common::uniform(&mut rng, 40 * 30), &[40, 30])
        .unwrap();
    let first = linalg::matmul(&ctx, &a, &b, false, false).unwrap();
    drop(first);
    let settled = ctx.memory_stats();
    for _ in 0..100 {
        let c = linalg::matmul(&ctx, &a, &b, false, false).unwrap();
        assert_eq!(c.shape(), &[50, 30]);
    }
    ctx.synchronize().unwrap();
    let after = ctx.memory_stats();
    assert_eq!(after.allocated, settled.allocated, "live bytes grew");
    assert_eq!(
        after.allocated + after.cached,
        settled.allocated + settled.cached,
        "the pool allocated new buffers instead of reusing"
    );
}

#[test]
fn byte_accounting_tracks_live_and_peak_bytes() {
    for ctx in [Some(Context::cpu()), common::gpu()].into_iter().flatten() {
        let base = ctx.allocated_bytes();
        ctx.reset_peak_allocated_bytes();
        let t = ctx.zeros(&[1000, 1000]).unwrap();
        assert!(ctx.allocated_bytes() >= base + 4_000_000);
        drop(t);
        assert_eq!(ctx.allocated_bytes(), base, "{}", ctx.device_name());
        assert!(ctx.peak_allocated_bytes() >= base + 4_000_000);
        ctx.reset_peak_allocated_bytes();
        assert_eq!(ctx.peak_allocated_bytes(), base);
        ctx.trim_pool();
        assert_eq!(ctx.memory_stats().cached, 0);
    }
}

#[test]
fn tensors_round_trip_and_zeros_are_zero() {
    for ctx in [Some(Context::cpu()), common::gpu()].into_iter().flatten() {
        let data: Vec<f32> = (0..7 * 3).map(|i| i as f32 * 0.5 - 3.0).collect();
        let t = ctx.tensor(&data, &[7, 3]).unwrap();
        assert_eq!(t.shape(), &[7, 3]);
        assert_eq!(t.to_vec().unwrap(), data);
        assert_eq!(t.reshape(&[21]).unwrap().to_vec().unwrap(), data);
        assert!(ctx
            .zeros(&[5, 9])
            .unwrap()
            .to_vec()
            .unwrap()
            .iter()
            .all(|&x| x == 0.0));
    }
}

#[test]
fn a_shared_application_device_runs_kernels() {
    let Some(own) = common::gpu() else { return };
    let (device, queue) = own.wgpu().unwrap();
    let ctx = Context::from_wgpu(device.clone(), queue.clone()).unwrap();
    assert!(ctx.is_gpu());
    let err = check(&ctx, linalg::matmul, 9, 11, 13, false, false);
    assert!(err < BOUND, "{err:e}");
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    for ctx in [Some(Context::cpu()), common::gpu()].into_iter().flatten() {
        let a = ctx.tensor(&[1.0; 6], &[2, 3]).unwrap();
        let b = ctx.tensor(&[1.0; 8], &[4, 2]).unwrap();
        let v = ctx.tensor(&[1.0; 3], &[3]).unwrap();
        let e = linalg::matmul(&ctx, &a, &b, false, false).unwrap_err();
        assert!(matches!(e, Error::Shape { .. }), "{e}");
        assert!(e.to_string().contains("[2, 3]"), "{e}");
        assert!(matches!(
            linalg::matmul(&ctx, &a, &v, false, false),
            Err(Error::Shape { .. })
        ));
        assert!(matches!(
            ctx.tensor(&[1.0; 5], &[2, 3]),
            Err(Error::DataLength {
                len: 5,
                expected: 6,
                ..
            })
        ));
        assert!(matches!(ctx.tensor(&[], &[0, 3]), Err(Error::Empty { .. })));
        assert!(matches!(ctx.zeros(&[4, 0]), Err(Error::Empty { .. })));
        assert!(matches!(
            ctx.zeros(&[usize::MAX, 2]),
            Err(Error::Shape { .. })
        ));
        assert!(matches!(a.reshape(&[4]), Err(Error::Shape { .. })));
        let other = Context::cpu();
        let foreign = other.tensor(&[1.0; 6], &[3, 2]).unwrap();
        assert!(matches!(
            linalg::matmul(&ctx, &a, &foreign, false, false),
            Err(Error::ContextMismatch { arg: "b", .. })
        ));
        // The failed calls left the inputs as they were.
        assert_eq!(a.to_vec().unwrap(), vec![1.0; 6]);
    }
}

#[test]
fn a_tensor_over_the_device_buffer_limit_is_an_error() {
    let Some(ctx) = common::gpu() else { return };
    // Larger than any device's max_buffer_size, without allocating host memory for it.
    let e = ctx.zeros(&[1 << 31, 1 << 10]).unwrap_err();
    assert!(
        matches!(e, Error::TooLarge { .. } | Error::OutOfMemory { .. }),
        "{e}"
    );
}

#[test]
fn a_lost_device_is_an_error() {
    let Some(ctx) = common::gpu() else { return };
    let a = ctx.tensor(&[1.0; 4], &[2, 2]).unwrap();
    ctx.wgpu().unwrap().0.destroy();
    let _ = ctx.synchronize();
    let result = linalg::matmul(&ctx, &a, &a, false, false).and_then(|c| c.to_vec());
    assert!(result.is_err(), "a destroyed device still computed");
}

#[test]
fn half_precision_operands_are_widened_exactly() {
    use wgkernels::DType;
    let mut rng = common::rng();
    let contexts = [
        Some(Context::cpu()),
        common::gpu(),
        common::gpu_with(GpuOptions {
            max_binding_bytes: Some(4096), // odd element offsets in half-precision windows
            ..Default::default()
        }),
        common::gpu_with(GpuOptions {
            tuning: Tuning::Force("tiled".into()),
            ..Default::default()
        }),
        common::gpu_with(GpuOptions {
            tuning: Tuning::Force("rows8x2x16".into()),
            max_binding_bytes: Some(4096),
            ..Default::default()
        }),
    ];
    for ctx in contexts.into_iter().flatten() {
        for len in [1usize, 2, 3, 5, 1001] {
            for dtype in [DType::F16, DType::BF16] {
                let data = common::uniform(&mut rng, len);
                let t = ctx.tensor_as(&data, &[len], dtype).unwrap();
                assert_eq!(t.dtype(), dtype);
                let rounded: Vec<f32> = data.iter().map(|&x| dtype.round(x)).collect();
                assert_eq!(t.to_vec().unwrap(), rounded, "{dtype} round trip of {len}");
            }
        }
        let (m, k, n) = (33, 47, 29);
        for (a_dtype, b_dtype) in [
            (DType::F16, DType::F16),
            (DType::BF16, DType::BF16),
            (DType::F16, DType::F32),
        ] {
            for (ta, tb) in TRANSPOSES {
                let a = common::uniform(&mut rng, m * k);
                let b = common::uniform(&mut rng, k * n);
                let a_shape = if ta { [k, m] } else { [m, k] };
                let b_shape = if tb { [n, k] } else { [k, n] };
                let round = |x: &[f32], d: DType| x.iter().map(|&v| d.round(v)).collect::<Vec<_>>();
                let g = Gemm::of("test", &a_shape, &b_shape, ta, tb).unwrap();
                let want = reference::matmul(&round(&a, a_dtype), &round(&b, b_dtype), g);
                let c = linalg::matmul(
                    &ctx,
                    &ctx.tensor_as(&a, &a_shape, a_dtype).unwrap(),
                    &ctx.tensor_as(&b, &b_shape, b_dtype).unwrap(),
                    ta,
                    tb,
                )
                .unwrap();
                let err = relative_error(&c.to_vec().unwrap(), &want);
                assert!(
                    err < BOUND,
                    "{} {a_dtype}·{b_dtype} ta={ta} tb={tb}: {err:e}",
                    ctx.device_name()
                );
            }
        }
    }
}

#[test]
fn contexts_and_tensors_can_cross_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Context>();
    assert_send_sync::<Tensor>();
    let ctx = Context::cpu();
    let t = ctx.tensor(&[1.0, 2.0], &[2]).unwrap();
    let v = std::thread::spawn(move || t.to_vec().unwrap())
        .join()
        .unwrap();
    assert_eq!(v, vec![1.0, 2.0]);
}

/// Measuring: the first product of a shape class times every form and remembers the winner,
/// which a second context on the same adapter reads back from the cache file; the result is
/// right whichever form won. Under `Tuning::Defaults` nothing is timed or remembered.
#[test]
fn the_tuner_times_the_forms_once_and_remembers_the_winner() {
    if common::gpu().is_none() {
        return;
    }
    let cache = std::env::temp_dir()
        .join(format!("wgkernels-tune-{}", std::process::id()))
        .join("tune.json");
    let context = |tuning| {
        Context::gpu_with(GpuOptions {
            tuning,
            poison_outputs: true,
            ..Default::default()
        })
        .unwrap()
    };
    let measuring = || {
        context(Tuning::Measure {
            cache: Some(cache.clone()),
        })
    };
    let ctx = measuring();
    assert!(ctx.tuned_forms().is_empty());
    let err = check(&ctx, linalg::matmul, 70, 50, 90, false, true);
    assert!(err < BOUND, "{err:e}");
    let chosen = ctx.tuned_forms();
    assert_eq!(chosen.len(), 1, "{chosen:?}");
    let (class, form) = &chosen[0];
    assert_eq!(class, "matmul [128, 128, 64] NT f32 f32");
    assert!(FORMS.contains(&form.as_str()), "{form}");
    let g = Gemm::of("t", &[70, 50], &[90, 50], false, true).unwrap();
    assert_eq!(&g.form(&ctx), form);
    // The same class again: no new entry.
    check(&ctx, linalg::matmul, 100, 33, 65, false, true);
    assert_eq!(ctx.tuned_forms(), chosen);

    let again = measuring();
    assert_eq!(again.tuned_forms(), chosen, "not read back from {cache:?}");
    let defaults = context(Tuning::Defaults);
    check(&defaults, linalg::matmul, 70, 50, 90, false, true);
    assert!(defaults.tuned_forms().is_empty());
    let _ = std::fs::remove_dir_all(cache.parent().unwrap());
}
