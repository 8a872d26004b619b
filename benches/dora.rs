//! Criterion benches of the DoRA kernels: the fused and factored norms against the dense one,
//! fused against unfused compose, the fused compose backward, forward against the PEFT-style
//! forward, and the layer's backward (both norm modes) against the PEFT-style backward.
//!
//! Times are per call in steady state: `iters` calls issued back to back, then one wait.
//! The (4096, 4096, 384) norm and the backward at the training shapes (n, d_out, d_in, r) =
//! (4096, 4096, 4096, 64) and (2048, 4096, 4096, 384) run only on real GPUs (on lavapipe one
//! call takes ~20 s or more); `examples/bench_report` measures the norm everywhere.

use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wgkernels::{dora, Context, Tensor};

fn uniform(ctx: &Context, rng: &mut StdRng, shape: &[usize]) -> Tensor {
    let data: Vec<f32> = (0..shape.iter().product())
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    ctx.tensor(&data, shape).unwrap()
}

/// Times `iters` calls of `call` with one wait at the end.
fn steady(ctx: &Context, iters: u64, mut call: impl FnMut()) -> std::time::Duration {
    let start = Instant::now();
    for _ in 0..iters {
        call();
    }
    ctx.synchronize().unwrap();
    start.elapsed()
}

fn on_real_gpu(ctx: &Context) -> bool {
    ctx.is_gpu() && ctx.device_type() != Some(wgkernels::wgpu::DeviceType::Cpu)
}

type WeightNormFn = fn(&Context, &Tensor, &Tensor, &Tensor, f32) -> wgkernels::Result<Tensor>;

fn weight_norm(c: &mut Criterion) {
    let ctx = Context::new().unwrap();
    let mut rng = StdRng::seed_from_u64(2);
    let mut shapes = vec![(1024usize, 1024usize, 64usize)];
    if on_real_gpu(&ctx) {
        shapes.push((4096, 4096, 384));
    }
    let mut group = c.benchmark_group("dora_weight_norm");
    group.sample_size(10);
    for (d_out, d_in, r) in shapes {
        let w = uniform(&ctx, &mut rng, &[d_out, d_in]);
        let a = uniform(&ctx, &mut rng, &[r, d_in]);
        let b = uniform(&ctx, &mut rng, &[d_out, r]);
        let id = format!("{d_out}x{d_in}_r{r}");
        let routes = [
            ("fused", dora::weight_norm as WeightNormFn),
            ("factored", dora::weight_norm_factored),
            ("dense", dora::weight_norm_dense),
        ];
        for (name, weight_norm) in routes {
            group.bench_function(BenchmarkId::new(name, &id), |bench| {
                bench.iter_custom(|iters| {
                    steady(&ctx, iters, || {
                        drop(weight_norm(&ctx, &w, &a, &b, 0.5).unwrap())
                    })
                })
            });
        }
    }
    group.finish();
}

fn compose(c: &mut Criterion) {
    let ctx = Context::new().unwrap();
    let mut rng = StdRng::seed_from_u64(3);
    let (n, d_out) = (4096usize, 8192usize); // 32M elements: kernel time above submission cost
    let [dy, base, lora] = [0, 1, 2].map(|_| uniform(&ctx, &mut rng, &[n, d_out]));
    let norm = ctx.tensor(&vec![1.5; d_out], &[d_out]).unwrap();
    let magnitude = ctx.tensor(&vec![1.4; d_out], &[d_out]).unwrap();
    let mut group = c.benchmark_group("dora_compose");
    group.sample_size(10);
    group.throughput(Throughput::Bytes((3 * n * d_out * 4) as u64)); // minimum: read 2, write 1
    group.bench_function("fused", |bench| {
        bench.iter_custom(|iters| {
            steady(&ctx, iters, || {
                drop(dora::compose(&ctx, &base, &lora, &magnitude, &norm, 0.5).unwrap())
            })
        })
    });
    group.bench_function("unfused", |bench| {
        bench.iter_custom(|iters| {
            steady(&ctx, iters, || {
                drop(dora::compose_unfused(&ctx, &base, &lora, &magnitude, &norm, 0.5).unwrap())
            })
        })
    });
    group.throughput(Throughput::Bytes((5 * n * d_out * 4) as u64));
    group.bench_function("backward_fused", |bench| {
        bench.iter_custom(|iters| {
            steady(&ctx, iters, || {
                drop(
                    dora::compose_backward(&ctx, &dy, &base, &lora, &magnitude, &norm, 0.5)
                        .unwrap(),
                )
            })
        })
    });
    group.finish();
}

fn forward(c: &mut Criterion) {
    let ctx = Context::new().unwrap();
    let mut rng = StdRng::seed_from_u64(4);
    let (n, d_out, d_in, r) = (512usize, 1024usize, 1024usize, 64usize);
    let x = uniform(&ctx, &mut rng, &[n, d_in]);
    let w = uniform(&ctx, &mut rng, &[d_out, d_in]);
    let a = uniform(&ctx, &mut rng, &[r, d_in]);
    let b = uniform(&ctx, &mut rng, &[d_out, r]);
    let m = ctx.tensor(&vec![1.0; d_out], &[d_out]).unwrap();
    let mut group = c.benchmark_group("dora_forward");
    group.sample_size(10);
    group.bench_function("factored_fused", |bench| {
        bench.iter_custom(|iters| {
            steady(&ctx, iters, || {
                drop(dora::forward(&ctx, &x, &w, &a, &b, &m, 0.5).unwrap())
            })
        })
    });
    group.bench_function("dense_unfused", |bench| {
        bench.iter_custom(|iters| {
            steady(&ctx, iters, || {
                drop(dora::forward_dense(&ctx, &x, &w, &a, &b, &m, 0.5).unwrap())
            })
        })
    });
    group.finish();
}

/// The layer's backward, both norm modes, against the PEFT-style dense, unfused one (and the
/// forward, for the ratio).
fn backward(c: &mut Criterion) {
    use dora::NormGradient;
    let ctx = Context::new().unwrap();
    let mut rng = StdRng::seed_from_u64(5);
    let mut shapes = vec![[512usize, 1024, 1024, 64]];
    if on_real_gpu(&ctx) {
        shapes.extend([[4096, 4096, 4096, 64], [2048, 4096, 4096, 384]]);
    }
    let mut group = c.benchmark_group("dora_backward");
    group.sample_size(10);
    for [n, d_out, d_in, r] in shapes {
        let x = uniform(&ctx, &mut rng, &[n, d_in]);
        let w = uniform(&ctx, &mut rng, &[d_out, d_in]);
        let a = uniform(&ctx, &mut rng, &[r, d_in]);
        let b = uniform(&ctx, &mut rng, &[d_out, r]);
        let dy = uniform(&ctx, &mut rng, &[n, d_out]);
        let m = ctx.tensor(&vec![1.0; d_out], &[d_out]).unwrap();
        let id = format!("n{n}_{d_out}x{d_in}_r{r}");
        for (name, mode) in [
            ("detached", NormGradient::Detached),
            ("exact", NormGradient::Exact),
        ] {
            group.bench_function(BenchmarkId::new(name, &id), |bench| {
                bench.iter_custom(|iters| {
                    steady(&ctx, iters, || {
                        drop(dora::backward(&ctx, &x, &w, &a, &b, &m, 0.5, &dy, mode).unwrap())
                    })
                })
            });
        }
        group.bench_function(BenchmarkId::new("dense_unfused", &id), |bench| {
            bench.iter_custom(|iters| {
                steady(&ctx, iters, || {
                    drop(dora::backward_dense(&ctx, &x, &w, &a, &b, &m, 0.5, &dy).unwrap())
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, weight_norm, compose, forward, backward);
criterion_main!(benches);
