//! Bad input found by trying the library as a new user would (issue 19), each an `Err` on
//! both paths, or one documented answer on both: sizes that overflow, optimizer settings that
//! would ascend, a bf16 gradient, a non-finite edge vector, two contexts on one adapter.

mod common;

use wgkernels::attention::{FeatureMap, LinearDecoder};
use wgkernels::mfac::{Mfac, MfacConfig};
use wgkernels::{dora, so3, Context, DType, Error};

fn contexts() -> Vec<Context> {
    [Some(Context::cpu()), common::gpu()]
        .into_iter()
        .flatten()
        .collect()
}

#[test]
fn sizes_that_overflow_are_errors_not_wraps() {
    for ctx in contexts() {
        // batch·heads wraps to 0 in u64... and usize: an Err, not an empty decoder.
        let r = LinearDecoder::new(&ctx, 1 << 40, 1 << 30, 4, 4, FeatureMap::EluPlusOne);
        assert!(r.is_err(), "{}: Ok for 2^70 heads", ctx.device_name());
        let r = LinearDecoder::new(
            &ctx,
            1 << 20,
            1 << 20,
            1 << 12,
            1 << 12,
            FeatureMap::NormAware,
        );
        assert!(
            matches!(
                r,
                Err(Error::TooLarge {
                    arg: "batch" | "dk",
                    ..
                })
            ),
            "{}: {:?}",
            ctx.device_name(),
            r.map(|_| ())
        );
    }
}

#[test]
fn optimizer_settings_are_checked() {
    for ctx in contexts() {
        let config = MfacConfig::default();
        for (bad, arg) in [
            (MfacConfig { lr: -1.0, ..config }, "lr"),
            (MfacConfig { lr: 0.0, ..config }, "lr"),
            (
                MfacConfig {
                    momentum: 1.0,
                    ..config
                },
                "momentum",
            ),
            (
                MfacConfig {
                    momentum: -0.1,
                    ..config
                },
                "momentum",
            ),
            (
                MfacConfig {
                    weight_decay: -0.1,
                    ..config
                },
                "weight_decay",
            ),
            (
                MfacConfig {
                    window: 0,
                    ..config
                },
                "window",
            ),
        ] {
            let r = Mfac::new(&ctx, 8, bad);
            assert!(
                matches!(&r, Err(Error::InvalidArgument { arg: a, .. }) if *a == arg),
                "{arg}: {:?}",
                r.map(|_| ())
            );
        }
        // A bf16 gradient is refused whatever the weight decay (it was accepted with 0.1).
        for weight_decay in [0.0, 0.1] {
            let mut optimizer = Mfac::new(
                &ctx,
                4,
                MfacConfig {
                    weight_decay,
                    window: 2,
                    ..config
                },
            )
            .unwrap();
            let mut params = ctx.tensor(&[0.5; 4], &[4]).unwrap();
            let grad = ctx.tensor_as(&[0.25; 4], &[4], DType::BF16).unwrap();
            let r = optimizer.step(&mut params, &grad);
            assert!(
                matches!(r, Err(Error::InvalidArgument { arg: "grad", .. })),
                "wd {weight_decay}: {r:?}"
            );
            assert_eq!(params.to_vec().unwrap(), vec![0.5; 4]);
            assert!(optimizer.window().is_empty());
        }
    }
}

/// A non-finite edge vector: `Y_0 = 1` and NaN for every l ≥ 1 on both paths, and NaN
/// gradients; the other rows are untouched.
#[test]
fn non_finite_vectors_give_one_answer_on_both_paths() {
    for ctx in contexts() {
        let v = [f32::INFINITY, 0.0, 0.0, 0.0, f32::NAN, 1.0, 0.3, -0.2, 0.9];
        let tv = ctx.tensor(&v, &[3, 3]).unwrap();
        let y = so3::spherical_harmonics(&ctx, &tv, 2)
            .unwrap()
            .to_vec()
            .unwrap();
        for row in [0, 1] {
            assert_eq!(y[row * 9], 1.0, "{}", ctx.device_name());
            assert!(
                y[row * 9 + 1..(row + 1) * 9].iter().all(|x| x.is_nan()),
                "{}: {:?}",
                ctx.device_name(),
                &y[row * 9..(row + 1) * 9]
            );
        }
        assert!(y[18..].iter().all(|x| x.is_finite()));
        let g = ctx.tensor(&[0.5; 27], &[3, 9]).unwrap();
        let d = so3::spherical_harmonics_backward(&ctx, &tv, 2, &g)
            .unwrap()
            .to_vec()
            .unwrap();
        assert!(
            d[..6].iter().all(|x| x.is_nan()),
            "{}: {d:?}",
            ctx.device_name()
        );
        assert!(d[6..].iter().all(|x| x.is_finite()));
    }
}

/// Two GPU contexts on one adapter: the mismatch names two different contexts.
#[test]
fn a_mismatch_between_two_contexts_on_one_adapter_tells_them_apart() {
    let (Some(a), Some(b)) = (common::gpu(), common::gpu()) else {
        return;
    };
    let x = b.tensor(&[1.0; 4], &[1, 1, 4]).unwrap();
    let w = a.tensor(&[1.0; 2], &[2, 1, 1]).unwrap();
    match so3::linear(&a, &x, &w) {
        Err(Error::ContextMismatch {
            arg: "x",
            arg_device,
            device,
            ..
        }) => {
            assert_ne!(
                arg_device, device,
                "the message names the same context twice"
            );
        }
        other => panic!("{other:?}"),
    }
}

/// Requests too large for the host or the device are `Err(TooLarge)` naming the operation, on
/// both paths (the CPU path used to abort the process).
#[test]
fn over_large_requests_are_errors_on_both_paths() {
    // 16M vectors at MAX_L: 16M·625 outputs, 84 GB of f64 on the CPU path, 42 GB of f32 on
    // the GPU. Hosts with that much memory would compute it: the check is skipped there.
    let host_bytes: u64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .map(str::to_string)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(u64::MAX, |kb| kb * 1024);
    for ctx in contexts() {
        let r = ctx.zeros(&[1 << 33, 1 << 20]);
        assert!(
            matches!(r, Err(Error::TooLarge { .. } | Error::Shape { .. })),
            "{}: {r:?}",
            ctx.device_name()
        );
        if !ctx.is_gpu() && host_bytes > 64 << 30 {
            continue;
        }
        let vectors = ctx.zeros(&[1 << 24, 3]).unwrap();
        match so3::spherical_harmonics(&ctx, &vectors, so3::MAX_L) {
            Err(Error::TooLarge { op, .. }) => {
                assert_eq!(op, "so3::spherical_harmonics", "{}", ctx.device_name())
            }
            other => panic!("{}: {:?}", ctx.device_name(), other.map(|_| ())),
        }
    }
}

/// The sliding window's state too large for either path is an Err (the CPU path aborted).
#[test]
fn an_over_large_window_is_an_error() {
    for ctx in contexts() {
        let r = wgkernels::mfac::SlidingInverse::new(&ctx, 1 << 14, 1 << 20, 0.1);
        assert!(
            r.is_err(),
            "{}: a 2^20 window of 2^14 accepted",
            ctx.device_name()
        );
        let r = Mfac::new(
            &ctx,
            1 << 24,
            MfacConfig {
                window: 1 << 20,
                ..MfacConfig::default()
            },
        );
        assert!(
            r.is_err(),
            "{}: an optimizer of 2^44 state accepted",
            ctx.device_name()
        );
    }
}

/// Scratch a CPU body or a fit would make beyond its outputs is reserved fallibly too: an
/// output of 2^36 values gathered from a small table, a CP fit of rank 2^20 (3·2^40 f64 of
/// Gram and Cholesky factors), factors whose length would wrap.
#[test]
fn over_large_scratch_is_an_error_on_both_paths() {
    for ctx in contexts() {
        let table = ctx.zeros(&[1, 1 << 24]).unwrap();
        let index = wgkernels::graph::Index::new(&ctx, &[0; 4096], 1).unwrap();
        match wgkernels::graph::gather(&ctx, &table, &index) {
            Err(Error::TooLarge { op, .. }) => {
                assert_eq!(op, "graph::gather", "{}", ctx.device_name())
            }
            other => panic!("{}: {:?}", ctx.device_name(), other.map(|_| ())),
        }
    }
    match so3::CpProduct::fit(1, 1, 2, 1 << 20) {
        Err(Error::TooLarge { op, arg, .. }) => {
            assert_eq!((op, arg), ("so3::CpProduct::fit", "rank"))
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    let r = so3::CpProduct::from_factors(1, 1, 1, &[], &[], &[], 1 << 62);
    assert!(matches!(r, Err(Error::Shape { .. })), "{:?}", r.map(|_| ()));
}

/// A scale of 0 leaves `‖W_j‖`: the fused and factored norms read neither A nor B then, on
/// both paths, so a NaN or infinity there does not reach them; PEFT's dense baseline forms
/// `W + 0·B·A` and gets NaN, on both paths too.
#[test]
fn a_zero_scale_norm_never_reads_the_adapter() {
    for ctx in contexts() {
        let w = ctx.tensor(&[3.0, 4.0, 0.0, -2.0], &[2, 2]).unwrap();
        let a = ctx.tensor(&[f32::NAN, 1.0], &[1, 2]).unwrap();
        let b = ctx.tensor(&[f32::INFINITY, 1.0], &[2, 1]).unwrap();
        for weight_norm in [dora::weight_norm, dora::weight_norm_factored] {
            let norm = weight_norm(&ctx, &w, &a, &b, 0.0)
                .unwrap()
                .to_vec()
                .unwrap();
            assert_eq!(norm, vec![5.0, 2.0], "{}", ctx.device_name());
        }
        let dense = dora::weight_norm_dense(&ctx, &w, &a, &b, 0.0)
            .unwrap()
            .to_vec()
            .unwrap();
        assert!(
            dense.iter().all(|x| x.is_nan()),
            "{}: {dense:?}",
            ctx.device_name()
        );
    }
}
