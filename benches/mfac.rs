//! Criterion benches of M-FAC: static precompute and ihvp at m = 16, 64 and d = 2^14, 2^16;
//! a sliding-window push and ihvp. Times are per call in steady state: `iters` calls back
//! to back, then one wait. `examples/bench_report` runs the full sweep in d and m.

use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::{Rng, SeedableRng};
use wgkernels::mfac::{SlidingInverse, StaticInverse};
use wgkernels::Context;

fn mfac(c: &mut Criterion) {
    let ctx = Context::new().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let mut uniform =
        |len: usize| -> Vec<f32> { (0..len).map(|_| rng.random_range(-1.0..1.0)).collect() };
    let mut group = c.benchmark_group("mfac");
    group.sample_size(10);
    let steady = |iters: u64, call: &mut dyn FnMut()| {
        let start = Instant::now();
        for _ in 0..iters {
            call();
        }
        ctx.synchronize().unwrap();
        start.elapsed()
    };
    for (m, d) in [(16usize, 1usize << 14), (64, 1 << 14), (16, 1 << 16)] {
        let id = format!("m{m}_d{d}");
        let grads = ctx.tensor(&uniform(m * d), &[m, d]).unwrap();
        let x = ctx.tensor(&uniform(d), &[d]).unwrap();
        group.bench_function(BenchmarkId::new("static_new", &id), |b| {
            b.iter_custom(|iters| {
                steady(iters, &mut || {
                    drop(StaticInverse::new(&ctx, &grads, 1e-2).unwrap())
                })
            })
        });
        let inverse = StaticInverse::new(&ctx, &grads, 1e-2).unwrap();
        group.bench_function(BenchmarkId::new("static_ihvp", &id), |b| {
            b.iter_custom(|iters| steady(iters, &mut || drop(inverse.ihvp(&x).unwrap())))
        });
        let mut window = SlidingInverse::new(&ctx, d, m, 1e-2).unwrap();
        for _ in 0..m {
            window.push(&x).unwrap();
        }
        group.bench_function(BenchmarkId::new("sliding_push", &id), |b| {
            b.iter_custom(|iters| steady(iters, &mut || window.push(&x).unwrap()))
        });
        group.bench_function(BenchmarkId::new("sliding_ihvp", &id), |b| {
            b.iter_custom(|iters| steady(iters, &mut || drop(window.ihvp(&x).unwrap())))
        });
    }
    group.finish();
}

criterion_group!(benches, mfac);
criterion_main!(benches);
