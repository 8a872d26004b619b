//! Criterion benches of the GEMM kernels: every form the tuner chooses among (each forced)
//! and the naive kernel, and a skinny product (DoRA's `U = W·Aᵀ` at 1024², r = 64: 16 tiles)
//! unsplit against split-K.
//!
//! Times are per call in steady state: `iters` calls issued back to back, then one wait.
//! 1024³ runs only on real GPUs (on lavapipe one naive call takes ~12 s).

use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use wgkernels::{linalg, Context, GpuOptions, Tensor, Tuning};

type MatmulFn = fn(&Context, &Tensor, &Tensor, bool, bool) -> wgkernels::Result<Tensor>;

fn matmul(c: &mut Criterion) {
    let ctx = Context::new().expect("context");
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    // One context per form, each forced to run it; the naive kernel on the default context.
    let mut runs: Vec<(String, Context, MatmulFn)> = Vec::new();
    if ctx.is_gpu() {
        for form in ["tiled", "rows32x8x16", "rows16x4x16", "rows8x2x16"] {
            let forced = Context::gpu_with(GpuOptions {
                tuning: Tuning::Force(form.into()),
                ..Default::default()
            })
            .expect("context");
            runs.push((form.into(), forced, linalg::matmul));
        }
    }
    runs.push(("naive".into(), ctx.clone(), linalg::matmul_naive));
    let mut sizes = vec![256usize];
    if ctx.device_type() != Some(wgkernels::wgpu::DeviceType::Cpu) && ctx.is_gpu() {
        sizes.push(1024);
    }
    eprintln!("device: {}", ctx.device_name());
    let mut group = c.benchmark_group("matmul");
    group.sample_size(10);
    for size in sizes {
        let data: Vec<f32> = (0..size * size)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        group.throughput(Throughput::Elements(2 * (size * size * size) as u64)); // flops
        for (name, ctx, kernel) in &runs {
            let a = ctx.tensor(&data, &[size, size]).unwrap();
            let b = ctx.tensor(&data, &[size, size]).unwrap();
            group.bench_function(BenchmarkId::new(name, size), |bench| {
                bench.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        kernel(ctx, &a, &b, false, false).unwrap();
                    }
                    ctx.synchronize().unwrap();
                    start.elapsed()
                })
            });
        }
    }
    group.finish();
}

fn skinny(c: &mut Criterion) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let (m, k, n) = (1024usize, 1024usize, 64usize);
    let w: Vec<f32> = (0..m * k).map(|_| rng.random_range(-1.0..1.0)).collect();
    let a: Vec<f32> = (0..n * k).map(|_| rng.random_range(-1.0..1.0)).collect();
    let mut group = c.benchmark_group("matmul_skinny");
    group.sample_size(10);
    group.throughput(Throughput::Elements(2 * (m * n * k) as u64));
    // Threshold 0: never split; u32::MAX: as many slices of ≥ 256 as k allows (4 here).
    for (name, below) in [("unsplit", 0), ("split_k", u32::MAX)] {
        let Ok(ctx) = Context::gpu_with(GpuOptions {
            split_k_below_tiles: Some(below),
            ..Default::default()
        }) else {
            return;
        };
        let (tw, ta) = (
            ctx.tensor(&w, &[m, k]).unwrap(),
            ctx.tensor(&a, &[n, k]).unwrap(),
        );
        group.bench_function(BenchmarkId::new(name, format!("{m}x{k}x{n}")), |bench| {
            bench.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    linalg::matmul(&ctx, &tw, &ta, false, true).unwrap();
                }
                ctx.synchronize().unwrap();
                start.elapsed()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, matmul, skinny);
criterion_main!(benches);
