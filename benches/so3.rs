//! Criterion benches of the SO(3) kernels: spherical harmonics at lmax 2, 4, 6, 8 for 4096
//! vectors, in each form (looping over the recursion's table, written out); CG, the direct,
//! Fourier and grid Gaunt products and the CP product of Tensor Decomposition Networks at their
//! rank 7L², 0..L ⊗ 0..L → 0..L at n·c = 4096, and CG and direct Gaunt in each sparse form
//! (staged, per output, written out); the WGSL 2D
//! FFT alone on 4096 grids of 36×36 and 45×45 (the Fourier route's padded grids at L = 8 and
//! 10); Grid and Fourier at 0..12 ⊗ 0..12 → 0..24, past one workgroup's memory. Times are per
//! call in steady state: `iters` calls back to back, then one wait.

use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::{Rng, SeedableRng};
use wgkernels::{so3, Context, GpuOptions, Tuning};

/// A context that runs `form` wherever a kernel has it (the default context on the CPU path).
fn forced(form: &str) -> Context {
    match Context::new().unwrap().is_gpu() {
        true => Context::gpu_with(GpuOptions {
            tuning: Tuning::Force(form.into()),
            ..Default::default()
        })
        .unwrap(),
        false => Context::new().unwrap(),
    }
}

fn spherical_harmonics(c: &mut Criterion) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let n = 4096;
    let v: Vec<f32> = (0..3 * n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let mut group = c.benchmark_group("so3_spherical_harmonics");
    group.sample_size(10);
    for form in ["loop", "unrolled"] {
        let ctx = forced(form);
        let vectors = ctx.tensor(&v, &[n, 3]).unwrap();
        for lmax in [2usize, 4, 6, 8] {
            group.bench_function(BenchmarkId::new(format!("n4096_{form}"), lmax), |bench| {
                bench.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        drop(so3::spherical_harmonics(&ctx, &vectors, lmax).unwrap());
                    }
                    ctx.synchronize().unwrap();
                    start.elapsed()
                })
            });
        }
    }
    group.finish();
}

/// CG and direct Gaunt, 0..L ⊗ 0..L → 0..L at n·c = 4096, in each form of the sparse product
/// (a table past 4096 terms runs its default where "unrolled" is asked for).
fn sparse_forms(c: &mut Criterion) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let (n, ch) = (1024usize, 4usize);
    let mut group = c.benchmark_group("so3_sparse_forms");
    group.sample_size(10);
    for form in ["staged", "outputs", "unrolled"] {
        let ctx = forced(form);
        for l in [2usize, 4] {
            let d = (l + 1) * (l + 1);
            let mut t = || {
                let v: Vec<f32> = (0..n * ch * d)
                    .map(|_| rng.random_range(-1.0..1.0))
                    .collect();
                ctx.tensor(&v, &[n, ch, d]).unwrap()
            };
            let (x1, x2) = (t(), t());
            for name in ["cg", "gaunt_direct"] {
                group.bench_function(BenchmarkId::new(format!("{name}_{form}"), l), |bench| {
                    bench.iter_custom(|iters| {
                        let start = Instant::now();
                        for _ in 0..iters {
                            let out = match name {
                                "cg" => so3::cg_product(&ctx, &x1, &x2, l),
                                _ => {
                                    so3::gaunt_product(&ctx, &x1, &x2, l, so3::GauntMethod::Direct)
                                }
                            };
                            drop(out.unwrap());
                        }
                        ctx.synchronize().unwrap();
                        start.elapsed()
                    })
                });
            }
        }
    }
    group.finish();
}

fn products(c: &mut Criterion) {
    let ctx = Context::new().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    let (n, ch) = (1024usize, 4usize);
    let mut group = c.benchmark_group("so3_products");
    group.sample_size(10);
    for l in [2usize, 4, 6, 8] {
        let d = (l + 1) * (l + 1);
        let mut t = || {
            let v: Vec<f32> = (0..n * ch * d)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            ctx.tensor(&v, &[n, ch, d]).unwrap()
        };
        let (x1, x2) = (t(), t());
        // TDN's rank 7L²; the time does not depend on the factors' values, so random ones.
        let rank = 7 * l * l;
        let mut factor =
            || -> Vec<f64> { (0..d * rank).map(|_| rng.random_range(-1.0..1.0)).collect() };
        let (a, b, cf) = (factor(), factor(), factor());
        let cp = so3::CpProduct::from_factors(l, l, l, &a, &b, &cf, rank).unwrap();
        for (name, method) in [
            ("cg", None),
            ("gaunt_direct", Some(so3::GauntMethod::Direct)),
            ("gaunt_fourier", Some(so3::GauntMethod::Fourier)),
            ("gaunt_grid", Some(so3::GauntMethod::Grid)),
            ("cp_rank_7l2", None),
        ] {
            group.bench_function(BenchmarkId::new(name, l), |bench| {
                bench.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let out = match method {
                            Some(method) => so3::gaunt_product(&ctx, &x1, &x2, l, method),
                            None if name == "cg" => so3::cg_product(&ctx, &x1, &x2, l),
                            None => cp.apply(&ctx, &x1, &x2),
                        };
                        drop(out.unwrap());
                    }
                    ctx.synchronize().unwrap();
                    start.elapsed()
                })
            });
        }
    }
    group.finish();
}

fn fft(c: &mut Criterion) {
    use so3::fft::{fft2, FftDirection};
    let ctx = Context::new().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut group = c.benchmark_group("so3_fft2");
    group.sample_size(10);
    for n in [36usize, 45] {
        let grids = 4096;
        let v: Vec<f32> = (0..grids * n * n * 2)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let x = ctx.tensor(&v, &[grids, n, n, 2]).unwrap();
        for direction in [FftDirection::Forward, FftDirection::Inverse] {
            let name = format!("{direction:?}").to_lowercase();
            group.bench_function(BenchmarkId::new(name, n), |bench| {
                bench.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        drop(fft2(&ctx, &x, direction).unwrap());
                    }
                    ctx.synchronize().unwrap();
                    start.elapsed()
                })
            });
        }
    }
    group.finish();
}

/// The O(L³) routes past one workgroup's memory, 0..12 ⊗ 0..12 → 0..24 at n·c = 4096: the
/// kernels that keep a row's stages in storage.
fn products_in_storage(c: &mut Criterion) {
    let ctx = Context::new().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let (n, ch, l, lout) = (1024usize, 4usize, 12usize, 24usize);
    let d = (l + 1) * (l + 1);
    let v: Vec<f32> = (0..n * ch * d)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let x = ctx.tensor(&v, &[n, ch, d]).unwrap();
    let mut group = c.benchmark_group("so3_products_in_storage");
    group.sample_size(10);
    for (name, method) in [
        ("gaunt_grid", so3::GauntMethod::Grid),
        ("gaunt_fourier", so3::GauntMethod::Fourier),
    ] {
        group.bench_function(BenchmarkId::new(name, "12x12_24"), |bench| {
            bench.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    drop(so3::gaunt_product(&ctx, &x, &x, lout, method).unwrap());
                }
                ctx.synchronize().unwrap();
                start.elapsed()
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    spherical_harmonics,
    products,
    sparse_forms,
    products_in_storage,
    fft
);
criterion_main!(benches);
