//! A tour of wgkernels: runs every kernel on the best device, checks each against the f64
//! CPU reference on fresh random inputs, and prints a table.
//!
//! `cargo run --release --example tour`

use rand::{Rng, SeedableRng};
use wgkernels::compare::{max_abs_error, relative_error};
use wgkernels::linalg::{self, reference, Gemm};
use wgkernels::{roofline, Context};

/// A relative error above this fails the tour (f32 kernels land near 1e-7..1e-6).
const BOUND: f64 = 1e-5;

struct Check {
    kernel: &'static str,
    shape: String,
    relative: f64,
    max_abs: f64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ctx = Context::new()?;
    println!("device: {}", ctx.device_name());
    if !ctx.is_gpu() {
        println!("(no GPU adapter: running the CPU reference path)");
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(rand::random());
    let mut checks = Vec::new();

    for (m, k, n, ta, tb) in [(129, 65, 257, false, false), (200, 33, 77, true, true)] {
        let a: Vec<f32> = (0..m * k).map(|_| rng.random_range(-1.0..1.0)).collect();
        let b: Vec<f32> = (0..k * n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let a_shape = if ta { [k, m] } else { [m, k] };
        let b_shape = if tb { [n, k] } else { [k, n] };
        let g = Gemm::of("tour", &a_shape, &b_shape, ta, tb)?;
        let want = reference::matmul(&a, &b, g);
        let (at, bt) = (ctx.tensor(&a, &a_shape)?, ctx.tensor(&b, &b_shape)?);
        let shape = format!(
            "{m}×{k}×{n}{}{}",
            if ta { " Aᵀ" } else { "" },
            if tb { " Bᵀ" } else { "" }
        );
        for (kernel, got) in [
            ("linalg::matmul", linalg::matmul(&ctx, &at, &bt, ta, tb)?),
            (
                "linalg::matmul_naive",
                linalg::matmul_naive(&ctx, &at, &bt, ta, tb)?,
            ),
        ] {
            let got = got.to_vec()?;
            checks.push(Check {
                kernel,
                shape: shape.clone(),
                relative: relative_error(&got, &want),
                max_abs: max_abs_error(&got, &want),
            });
        }
    }

    println!(
        "\n{:<24} {:<20} {:>12} {:>12}  ok",
        "kernel", "shape", "rel. err", "max abs err"
    );
    let mut all_ok = true;
    for c in &checks {
        let ok = c.relative < BOUND;
        all_ok &= ok;
        println!(
            "{:<24} {:<20} {:>12.2e} {:>12.2e}  {}",
            c.kernel,
            c.shape,
            c.relative,
            c.max_abs,
            if ok { "yes" } else { "NO" }
        );
    }
    let rates = roofline::measure(&ctx)?;
    println!(
        "\ndevice ceilings: copy {:.1} GB/s, FMA {:.1} GFLOP/s",
        rates.copy_gbps, rates.fma_gflops
    );
    if !all_ok {
        return Err(format!("a kernel missed the {BOUND:e} bound").into());
    }
    Ok(())
}
