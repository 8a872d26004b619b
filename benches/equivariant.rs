//! Criterion benches of the blocks of an equivariant layer and their backwards: the
//! harmonics' gradient (4096 vectors), the CG and Gaunt (Direct, Grid) backwards at
//! n·c = 4096, the weighted product with per-edge weights and its backward, so3::linear and
//! its backward, gather / scatter_sum at 10⁶ edges, and the double backwards (harmonics at
//! 4096 vectors, CG and Gaunt Grid at n·c = 4096, the weighted product, linear). Times are per call in steady state:
//! `iters` calls back to back, then one wait.

use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::{Rng, SeedableRng};
use wgkernels::graph::{self, Index};
use wgkernels::{so3, Context, Tensor};

/// Times `call` per iteration, one wait at the end.
fn bench(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    ctx: &Context,
    id: BenchmarkId,
    call: &dyn Fn(),
) {
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                call();
            }
            ctx.synchronize().unwrap();
            start.elapsed()
        })
    });
}

fn random(ctx: &Context, rng: &mut impl Rng, shape: &[usize]) -> Tensor {
    let v: Vec<f32> = (0..shape.iter().product())
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    ctx.tensor(&v, shape).unwrap()
}

fn backwards(c: &mut Criterion) {
    let ctx = Context::new().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let mut group = c.benchmark_group("so3_backward");
    group.sample_size(10);
    let vectors = random(&ctx, &mut rng, &[4096, 3]);
    for lmax in [2usize, 4, 8] {
        let d_y = random(&ctx, &mut rng, &[4096, (lmax + 1) * (lmax + 1)]);
        bench(
            &mut group,
            &ctx,
            BenchmarkId::new("harmonics", lmax),
            &|| drop(so3::spherical_harmonics_backward(&ctx, &vectors, lmax, &d_y).unwrap()),
        );
    }
    for l in [2usize, 4, 6] {
        let d = (l + 1) * (l + 1);
        let (x1, x2, g) = (
            random(&ctx, &mut rng, &[1024, 4, d]),
            random(&ctx, &mut rng, &[1024, 4, d]),
            random(&ctx, &mut rng, &[1024, 4, d]),
        );
        bench(&mut group, &ctx, BenchmarkId::new("cg", l), &|| {
            drop(so3::cg_product_backward(&ctx, &x1, &x2, l, &g).unwrap())
        });
        for (name, method) in [
            ("gaunt_direct", so3::GauntMethod::Direct),
            ("gaunt_grid", so3::GauntMethod::Grid),
        ] {
            bench(&mut group, &ctx, BenchmarkId::new(name, l), &|| {
                drop(so3::gaunt_product_backward(&ctx, &x1, &x2, l, method, &g).unwrap())
            });
        }
    }
    group.finish();
}

fn layer(c: &mut Criterion) {
    let ctx = Context::new().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(10);
    let mut group = c.benchmark_group("equivariant_layer");
    group.sample_size(10);
    let (edges, ch) = (30_000usize, 8usize);
    let paths = so3::paths(2, 2, 2).len();
    let (x1, y, w, g) = (
        random(&ctx, &mut rng, &[edges, ch, 9]),
        random(&ctx, &mut rng, &[edges, 1, 9]),
        random(&ctx, &mut rng, &[edges, ch, paths]),
        random(&ctx, &mut rng, &[edges, ch, 9]),
    );
    bench(
        &mut group,
        &ctx,
        BenchmarkId::new("weighted_cg", edges),
        &|| drop(so3::weighted_cg_product(&ctx, &x1, &y, &w, 2).unwrap()),
    );
    bench(
        &mut group,
        &ctx,
        BenchmarkId::new("weighted_cg_backward", edges),
        &|| drop(so3::weighted_cg_product_backward(&ctx, &x1, &y, &w, 2, &g).unwrap()),
    );
    let (x, lw, lg) = (
        random(&ctx, &mut rng, &[1000, 32, 9]),
        random(&ctx, &mut rng, &[3, 32, 32]),
        random(&ctx, &mut rng, &[1000, 32, 9]),
    );
    bench(&mut group, &ctx, BenchmarkId::new("linear", 1000), &|| {
        drop(so3::linear(&ctx, &x, &lw).unwrap())
    });
    bench(
        &mut group,
        &ctx,
        BenchmarkId::new("linear_backward", 1000),
        &|| drop(so3::linear_backward(&ctx, &x, &lw, &lg).unwrap()),
    );
    let (edges, nodes, width) = (1_000_000usize, 50_000usize, 16usize);
    let index: Vec<u32> = (0..edges)
        .map(|_| rng.random_range(0..nodes as u32))
        .collect();
    let idx = Index::new(&ctx, &index, nodes).unwrap();
    let (table, src) = (
        random(&ctx, &mut rng, &[nodes, width]),
        random(&ctx, &mut rng, &[edges, width]),
    );
    bench(&mut group, &ctx, BenchmarkId::new("gather", edges), &|| {
        drop(graph::gather(&ctx, &table, &idx).unwrap())
    });
    bench(
        &mut group,
        &ctx,
        BenchmarkId::new("scatter_sum", edges),
        &|| drop(graph::scatter_sum(&ctx, &src, &idx).unwrap()),
    );
    group.finish();
}

fn double_backwards(c: &mut Criterion) {
    let ctx = Context::new().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut group = c.benchmark_group("so3_double_backward");
    group.sample_size(10);
    let vectors = random(&ctx, &mut rng, &[4096, 3]);
    let dd_v = random(&ctx, &mut rng, &[4096, 3]);
    for lmax in [2usize, 4, 8] {
        let d_y = random(&ctx, &mut rng, &[4096, (lmax + 1) * (lmax + 1)]);
        bench(
            &mut group,
            &ctx,
            BenchmarkId::new("harmonics", lmax),
            &|| {
                let second =
                    so3::spherical_harmonics_double_backward(&ctx, &vectors, lmax, &d_y, &dd_v);
                drop(second.unwrap())
            },
        );
    }
    for l in [2usize, 4] {
        let d = (l + 1) * (l + 1);
        let shape = [1024, 4, d];
        let [x1, x2, g] = [0; 3].map(|_| random(&ctx, &mut rng, &shape));
        let dd = so3::ProductGrads {
            x1: random(&ctx, &mut rng, &shape),
            x2: random(&ctx, &mut rng, &shape),
        };
        bench(&mut group, &ctx, BenchmarkId::new("cg", l), &|| {
            drop(so3::cg_product_double_backward(&ctx, &x1, &x2, l, &g, &dd).unwrap())
        });
        bench(&mut group, &ctx, BenchmarkId::new("gaunt_grid", l), &|| {
            let method = so3::GauntMethod::Grid;
            drop(so3::gaunt_product_double_backward(&ctx, &x1, &x2, l, method, &g, &dd).unwrap())
        });
    }
    let (n, ch, l) = (4096usize, 8usize, 2usize);
    let d = (l + 1) * (l + 1);
    let count = so3::paths(l, l, l).len();
    let (x1, x2, w, g) = (
        random(&ctx, &mut rng, &[n, ch, d]),
        random(&ctx, &mut rng, &[n, 1, d]),
        random(&ctx, &mut rng, &[n, ch, count]),
        random(&ctx, &mut rng, &[n, ch, d]),
    );
    let dd = so3::WeightedGrads {
        x1: random(&ctx, &mut rng, &[n, ch, d]),
        x2: random(&ctx, &mut rng, &[n, 1, d]),
        weights: random(&ctx, &mut rng, &[n, ch, count]),
    };
    bench(&mut group, &ctx, BenchmarkId::new("weighted", l), &|| {
        drop(so3::weighted_cg_product_double_backward(&ctx, &x1, &x2, &w, l, &g, &dd).unwrap())
    });
    let (x, w, g) = (
        random(&ctx, &mut rng, &[1000, 32, 9]),
        random(&ctx, &mut rng, &[3, 32, 32]),
        random(&ctx, &mut rng, &[1000, 32, 9]),
    );
    let dd = so3::LinearGrads {
        x: random(&ctx, &mut rng, &[1000, 32, 9]),
        w: random(&ctx, &mut rng, &[3, 32, 32]),
    };
    bench(&mut group, &ctx, BenchmarkId::new("linear", 2), &|| {
        drop(so3::linear_double_backward(&ctx, &x, &w, &g, &dd).unwrap())
    });
    group.finish();
}

criterion_group!(benches, backwards, layer, double_backwards);
criterion_main!(benches);
