//! Faults: a lost device, errors wgpu would otherwise hand to its (panicking) uncaptured-error
//! handler, waits that never end, and device memory running out — each an `Err` naming the
//! public call, never a panic or a hang.

mod common;

use std::time::{Duration, Instant};

use wgkernels::attention::{self, FeatureMap};
use wgkernels::dora::{self, NormGradient};
use wgkernels::so3::{self, GauntMethod};
use wgkernels::{graph, linalg, mfac, wgpu, Context, Error, GpuOptions, Tensor};

/// A wgpu device of the application's own, with wgpu's default uncaptured-error handler
/// (which panics) and lost-device callback left in place, as an application has them.
fn application_device() -> Option<(wgpu::Device, wgpu::Queue)> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle().with_env());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default())).ok();
    let Some(adapter) = adapter else {
        assert!(
            std::env::var("WGKERNELS_REQUIRE_GPU").as_deref() != Ok("1"),
            "WGKERNELS_REQUIRE_GPU=1 but no adapter"
        );
        return None;
    };
    pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        required_limits: adapter.limits(),
        ..Default::default()
    }))
    .ok()
}

/// Inputs for one call of every family, made while the device is alive.
struct Inputs {
    x: Tensor,
    w: Tensor,
    a: Tensor,
    b: Tensor,
    m: Tensor,
    dy: Tensor,
    vectors: Tensor,
    x1: Tensor,
    x2: Tensor,
    path_weights: Tensor,
    d_so3: Tensor,
    so3_w: Tensor,
    qkv: Tensor,
    edges: Tensor,
    grads: Tensor,
    grad_row: Tensor,
    index: graph::Index,
    inverse: mfac::StaticInverse,
    sliding: mfac::SlidingInverse,
    cp: so3::CpProduct,
}

fn inputs(ctx: &Context) -> Inputs {
    let mut rng = common::rng();
    let mut t = |shape: &[usize]| {
        let len = shape.iter().product();
        ctx.tensor(&common::uniform(&mut rng, len), shape).unwrap()
    };
    let (n, d_in, d_out, r) = (5, 7, 6, 3);
    let grads = t(&[4, 9]);
    let paths = so3::paths(1, 1, 1).len();
    let inputs = Inputs {
        x: t(&[n, d_in]),
        w: t(&[d_out, d_in]),
        a: t(&[r, d_in]),
        b: t(&[d_out, r]),
        m: t(&[d_out]),
        dy: t(&[n, d_out]),
        vectors: t(&[3, 3]),
        x1: t(&[3, 2, 4]),
        x2: t(&[3, 2, 4]),
        path_weights: t(&[3, 2, paths]),
        d_so3: t(&[3, 2, 4]),
        so3_w: t(&[2, 2, 2]),
        qkv: t(&[1, 2, 5, 4]),
        edges: t(&[4, 6]),
        grad_row: t(&[9]),
        index: graph::Index::new(ctx, &[0, 2, 1, 2], 3).unwrap(),
        inverse: mfac::StaticInverse::new(ctx, &grads, 0.1).unwrap(),
        sliding: mfac::SlidingInverse::new(ctx, 9, 3, 0.1).unwrap(),
        cp: so3::CpProduct::fit(1, 1, 1, 6).unwrap(),
        grads,
    };
    // Every kernel below has run once, so its pipeline is cached before the loss.
    ctx.synchronize().unwrap();
    inputs
}

/// Calls one public function of each family, naming each as its error must.
fn every_family(ctx: &Context, i: &mut Inputs) -> Vec<(&'static str, Result<(), Error>)> {
    let q = &i.qkv;
    let elu = FeatureMap::EluPlusOne;
    vec![
        ("tensor", ctx.tensor(&[1.0, 2.0], &[2]).map(drop)),
        ("zeros", ctx.zeros(&[3, 5]).map(drop)),
        ("Tensor::to_vec", i.x.to_vec().map(drop)),
        ("reshape", i.x.reshape(&[7, 5]).map(drop)),
        ("Context::synchronize", ctx.synchronize()),
        (
            "matmul",
            linalg::matmul(ctx, &i.x, &i.w, false, true).map(drop),
        ),
        (
            "dora::weight_norm",
            dora::weight_norm(ctx, &i.w, &i.a, &i.b, 0.5).map(drop),
        ),
        (
            "dora::forward",
            dora::forward(ctx, &i.x, &i.w, &i.a, &i.b, &i.m, 0.5).map(drop),
        ),
        (
            "dora::backward",
            dora::backward(
                ctx,
                &i.x,
                &i.w,
                &i.a,
                &i.b,
                &i.m,
                0.5,
                &i.dy,
                NormGradient::Exact,
            )
            .map(drop),
        ),
        (
            "so3::spherical_harmonics",
            so3::spherical_harmonics(ctx, &i.vectors, 2).map(drop),
        ),
        (
            "so3::cg_product",
            so3::cg_product(ctx, &i.x1, &i.x2, 1).map(drop),
        ),
        (
            "so3::gaunt_product",
            so3::gaunt_product(ctx, &i.x1, &i.x2, 1, GauntMethod::Grid).map(drop),
        ),
        (
            "so3::weighted_cg_product_backward",
            so3::weighted_cg_product_backward(ctx, &i.x1, &i.x2, &i.path_weights, 1, &i.d_so3)
                .map(drop),
        ),
        ("so3::linear", so3::linear(ctx, &i.x1, &i.so3_w).map(drop)),
        (
            "so3::CpProduct::apply",
            i.cp.apply(ctx, &i.x1, &i.x2).map(drop),
        ),
        (
            "graph::scatter_sum",
            graph::scatter_sum(ctx, &i.edges, &i.index).map(drop),
        ),
        (
            "graph::Index::new",
            graph::Index::new(ctx, &[1, 0], 2).map(drop),
        ),
        (
            "mfac::StaticInverse::ihvp",
            i.inverse.ihvp(&i.grad_row).map(drop),
        ),
        (
            "mfac::StaticInverse::new",
            mfac::StaticInverse::new(ctx, &i.grads, 0.1).map(drop),
        ),
        ("mfac::SlidingInverse::push", i.sliding.push(&i.grad_row)),
        (
            "attention::linear",
            attention::linear(ctx, q, q, q, elu, true).map(drop),
        ),
        (
            "attention::softmax_backward",
            attention::softmax_backward(ctx, q, q, q, q, false).map(drop),
        ),
    ]
}

/// Every call after `lose` fails with `DeviceLost` naming the call, and none panics.
fn check_lost_everywhere(ctx: &Context, inputs: &mut Inputs) {
    for (name, result) in every_family(ctx, inputs) {
        match result {
            Err(Error::DeviceLost(message)) => assert!(
                message.starts_with(&format!("{name}: the GPU device was lost")),
                "{name}: {message}"
            ),
            other => panic!("{name} after the device was lost: {other:?}"),
        }
    }
}

#[test]
fn a_destroyed_device_fails_every_call_on_our_own_device() {
    let Some(ctx) = common::gpu() else { return };
    let mut inputs = inputs(&ctx);
    let (device, _) = ctx.wgpu().unwrap();
    device.destroy();
    check_lost_everywhere(&ctx, &mut inputs);
}

#[test]
fn a_destroyed_device_fails_every_call_on_a_shared_device_without_panicking() {
    // The application keeps wgpu's default handler, which panics on any uncaptured error:
    // this test passes only if none of the library's work escapes its error scopes.
    let Some((device, queue)) = application_device() else {
        return;
    };
    let ctx = Context::from_wgpu(device.clone(), queue).unwrap();
    let mut inputs = inputs(&ctx);
    device.destroy();
    check_lost_everywhere(&ctx, &mut inputs);
    // The application may still make a new context and go on, on the GPU or the CPU.
    for fresh in [Context::new().unwrap(), Context::cpu()] {
        let x = fresh.tensor(&[1.0, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
        let y = linalg::matmul(&fresh, &x, &x, false, false).unwrap();
        assert_eq!(y.to_vec().unwrap(), vec![7.0, 10.0, 15.0, 22.0]);
    }
}

#[test]
fn work_queued_before_the_loss_fails_when_read() {
    let Some(ctx) = common::gpu() else { return };
    let x = ctx
        .tensor(&common::uniform(&mut common::rng(), 33 * 33), &[33, 33])
        .unwrap();
    // A chain of launches, none read back: still queued (or just run) when the device goes.
    let mut y = linalg::matmul(&ctx, &x, &x, false, false).unwrap();
    for _ in 0..3 {
        y = linalg::matmul(&ctx, &y, &x, false, false).unwrap();
    }
    let harmonics = so3::spherical_harmonics(&ctx, &x.reshape(&[363, 3]).unwrap(), 3).unwrap();
    ctx.wgpu().unwrap().0.destroy();
    for t in [&y, &harmonics] {
        match t.to_vec() {
            Err(Error::DeviceLost(message)) => {
                assert!(message.starts_with("Tensor::to_vec:"), "{message}")
            }
            other => panic!("read-back after the loss: {other:?}"),
        }
    }
}

#[test]
fn a_loss_during_a_wait_ends_the_wait() {
    let Some(ctx) = common::gpu() else { return };
    let n = 768;
    let x = ctx
        .tensor(&common::uniform(&mut common::rng(), n * n), &[n, n])
        .unwrap();
    let mut y = linalg::matmul(&ctx, &x, &x, false, false).unwrap();
    for _ in 0..5 {
        y = linalg::matmul(&ctx, &y, &x, false, false).unwrap();
    }
    let device = ctx.wgpu().unwrap().0.clone();
    let start = Instant::now();
    let destroyer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        device.destroy();
    });
    let result = y.to_vec();
    destroyer.join().unwrap();
    eprintln!(
        "read during the loss: {:?}",
        result.as_ref().map(|v| v.len())
    );
    // Work the device had already finished may be read; otherwise the loss is the answer.
    // Either way the wait ends, and the context is lost afterwards.
    if let Err(e) = &result {
        assert!(matches!(e, Error::DeviceLost(_)), "{e}");
    }
    assert!(start.elapsed() < Duration::from_secs(120));
    assert!(matches!(ctx.zeros(&[4]), Err(Error::DeviceLost(_))));
}

#[test]
fn a_wait_past_its_timeout_is_an_err() {
    let Some(ctx) = common::gpu_with(GpuOptions {
        wait_timeout: Duration::from_millis(1),
        ..Default::default()
    }) else {
        return;
    };
    let n = 512;
    let x = ctx
        .tensor(&common::uniform(&mut common::rng(), n * n), &[n, n])
        .unwrap();
    let mut y = linalg::matmul(&ctx, &x, &x, false, false).unwrap();
    for _ in 0..7 {
        y = linalg::matmul(&ctx, &y, &x, false, false).unwrap();
    }
    let waited = ctx.synchronize();
    eprintln!("synchronize with a 1 ms bound: {waited:?}");
    match waited {
        // A device this fast answers in time; lavapipe does not.
        Ok(()) => {}
        Err(Error::DeviceLost(message)) => {
            assert!(message.starts_with("Context::synchronize:"), "{message}");
            assert!(message.contains("no answer after"), "{message}");
        }
        Err(other) => panic!("{other}"),
    }
}

#[test]
fn an_uncaptured_error_of_the_application_on_our_device_is_reported_not_a_panic() {
    let Some(ctx) = common::gpu() else { return };
    let (device, queue) = ctx.wgpu().unwrap();
    // The application misuses the device outside any error scope: a copy past a buffer's end.
    let small = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("application's"),
        size: 16,
        usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    encoder.copy_buffer_to_buffer(&small, 0, &small, 8, 64);
    queue.submit([encoder.finish()]);
    // The next call reports it, naming itself; the one after runs.
    match ctx.zeros(&[3]) {
        Err(Error::Gpu(message)) => {
            assert!(message.starts_with("zeros: wgpu error:"), "{message}");
            assert!(message.contains("outside wgkernels"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(ctx.zeros(&[3]).unwrap().to_vec().unwrap(), vec![0.0; 3]);
}

#[test]
fn a_memory_budget_refuses_what_does_not_fit_and_keeps_the_pool_consistent() {
    const KIB: usize = 1024;
    let budget = 1024 * KIB as u64;
    let Some(ctx) = common::gpu_with(GpuOptions {
        memory_budget: Some(budget),
        ..Default::default()
    }) else {
        return;
    };
    let column = ctx.tensor(&[1.5; 256], &[256, 1]).unwrap();
    let row = ctx.tensor(&[2.0; 256], &[1, 256]).unwrap();
    // Tensors of 192 KiB each fit one by one but not all together.
    let data = vec![0.5f32; 48 * KIB];
    let mut live = Vec::new();
    let refused = loop {
        match ctx.tensor(&data, &[48 * KIB]) {
            Ok(t) => live.push(t),
            Err(e) => break e,
        }
        assert!(live.len() < 100, "the budget never refused");
    };
    let before = ctx.memory_stats();
    match &refused {
        Error::OutOfMemory {
            op: "tensor",
            arg: "data",
            budget: Some(b),
            ..
        } => assert_eq!(*b, budget),
        other => panic!("{other:?}"),
    }
    assert!(refused
        .to_string()
        .starts_with("tensor: out of device memory"));
    assert!(before.allocated <= budget);
    assert!(before.allocated + 192 * KIB as u64 > budget);
    // An operation whose output does not fit names itself and its output.
    let x = &live[0];
    let big = x.reshape(&[48 * KIB, 1]);
    match big.map(|_| ()) {
        Err(Error::OutOfMemory {
            op: "reshape",
            arg: "output",
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    // 256 KiB of output, more than the less than 192 KiB left.
    match linalg::matmul(&ctx, &column, &row, false, false) {
        Err(Error::OutOfMemory {
            op: "matmul",
            arg: "output",
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    // Nothing leaked: a failed call leaves the accounting as it was.
    assert_eq!(ctx.memory_stats().allocated, before.allocated);
    // Freed tensors go to the pool; a request of another size class frees the pool first.
    live.truncate(1);
    let cached = ctx.memory_stats().cached;
    assert!(cached >= 192 * KIB as u64);
    let other_class = ctx.zeros(&[40 * KIB]).unwrap();
    assert!(ctx.memory_stats().cached < cached);
    // Read-backs count against the budget too (their staging buffer).
    assert_eq!(other_class.to_vec().unwrap(), vec![0.0; 40 * KIB]);
    assert!(ctx.memory_stats().allocated + ctx.memory_stats().cached <= budget);
    assert_eq!(live[0].to_vec().unwrap(), data);
}

#[test]
fn errors_name_the_call_and_argument_on_both_paths_alike() {
    let Some(gpu) = common::gpu() else { return };
    for ctx in [Context::cpu(), gpu] {
        let name = ctx.device_name();
        match ctx.zeros(&[1 << 36]) {
            Err(
                e @ Error::TooLarge {
                    op: "zeros",
                    arg: "shape",
                    ..
                },
            ) => {
                assert!(
                    e.to_string().starts_with("zeros: `shape` needs"),
                    "{name}: {e}"
                )
            }
            other => panic!("{name}: {other:?}"),
        }
        // An operation whose output is too large for any one buffer or for the host.
        let rows = ctx.zeros(&[1 << 17, 1]).unwrap();
        let wide = ctx.zeros(&[1, 1 << 20]).unwrap();
        match linalg::matmul(&ctx, &rows, &wide, false, false) {
            Err(
                e @ Error::TooLarge {
                    op: "matmul",
                    arg: "output",
                    ..
                },
            ) => {
                assert!(
                    e.to_string().starts_with("matmul: `output` needs"),
                    "{name}: {e}"
                )
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}
