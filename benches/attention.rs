//! Criterion benches of attention: linear (elu+1 and norm-aware, causal and not) and exact
//! softmax, `[1, 1, n, 64]`, forward and backward; each also in its other form (`_tiles` or
//! `_rows`: whichever this adapter's default is not; softmax's on lavapipe at n = 256 only).
//! Times are per call in steady state: `iters` calls back to back, then one wait. n = 4096 (softmax) and 16384 run only on real GPUs, where one
//! softmax call on lavapipe takes seconds; `examples/bench_report` covers the full sweep.

use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::{Rng, SeedableRng};
use wgkernels::attention::{self, FeatureMap};
use wgkernels::{wgpu, Context, GpuOptions, Tuning};

fn attention(c: &mut Criterion) {
    let ctx = Context::new().unwrap();
    let on_cpu = !ctx.is_gpu() || ctx.device_type() == Some(wgpu::DeviceType::Cpu);
    // Linear attention's other form: tiles on a CPU adapter, registers on a GPU.
    let other_form = if on_cpu { "tiles" } else { "rows" };
    let other = match ctx.is_gpu() {
        true => Some(
            Context::gpu_with(GpuOptions {
                tuning: Tuning::Force(other_form.into()),
                ..Default::default()
            })
            .unwrap(),
        ),
        false => None,
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let d = 64;
    let sizes: &[usize] = if on_cpu {
        &[256, 1024, 4096]
    } else {
        &[256, 1024, 4096, 16384]
    };
    let mut group = c.benchmark_group("attention");
    group.sample_size(10);
    for &n in sizes {
        let mut tensor = || {
            let data: Vec<f32> = (0..n * d).map(|_| rng.random_range(-1.0..1.0)).collect();
            ctx.tensor(&data, &[1, 1, n, d]).unwrap()
        };
        let (q, k, v, g) = (tensor(), tensor(), tensor(), tensor());
        for causal in [false, true] {
            let suffix = if causal { "_causal" } else { "" };
            let mut bench_on =
                |on: &Context, name: String, call: &dyn Fn() -> wgkernels::Result<()>| {
                    group.bench_function(BenchmarkId::new(name, n), |b| {
                        b.iter_custom(|iters| {
                            let start = Instant::now();
                            for _ in 0..iters {
                                call().unwrap();
                            }
                            on.synchronize().unwrap();
                            start.elapsed()
                        })
                    });
                };
            for (map, name) in [
                (FeatureMap::EluPlusOne, "linear_elu"),
                (FeatureMap::NormAware, "linear_norm_aware"),
            ] {
                bench_on(&ctx, format!("{name}{suffix}"), &|| {
                    attention::linear(&ctx, &q, &k, &v, map, causal).map(drop)
                });
                bench_on(&ctx, format!("{name}_backward{suffix}"), &|| {
                    attention::linear_backward(&ctx, &q, &k, &v, &g, map, causal).map(drop)
                });
                if let Some(on) = &other {
                    let to = |t: &wgkernels::Tensor| on.tensor(&t.to_vec().unwrap(), t.shape());
                    let [q, k, v, g] = [&q, &k, &v, &g].map(|t| to(t).unwrap());
                    bench_on(on, format!("{name}{suffix}_{other_form}"), &|| {
                        attention::linear(on, &q, &k, &v, map, causal).map(drop)
                    });
                    bench_on(on, format!("{name}_backward{suffix}_{other_form}"), &|| {
                        attention::linear_backward(on, &q, &k, &v, &g, map, causal).map(drop)
                    });
                }
            }
            if !on_cpu || n <= 1024 {
                bench_on(&ctx, format!("softmax{suffix}"), &|| {
                    attention::softmax(&ctx, &q, &k, &v, causal).map(drop)
                });
                bench_on(&ctx, format!("softmax_backward{suffix}"), &|| {
                    attention::softmax_backward(&ctx, &q, &k, &v, &g, causal).map(drop)
                });
            }
            if let Some(on) = other.as_ref().filter(|_| !on_cpu || n <= 256) {
                let to = |t: &wgkernels::Tensor| on.tensor(&t.to_vec().unwrap(), t.shape());
                let [q, k, v, g] = [&q, &k, &v, &g].map(|t| to(t).unwrap());
                bench_on(on, format!("softmax{suffix}_{other_form}"), &|| {
                    attention::softmax(on, &q, &k, &v, causal).map(drop)
                });
                bench_on(
                    on,
                    format!("softmax_backward{suffix}_{other_form}"),
                    &|| attention::softmax_backward(on, &q, &k, &v, &g, causal).map(drop),
                );
            }
        }
    }
    group.finish();
}

criterion_group!(benches, attention);
criterion_main!(benches);
