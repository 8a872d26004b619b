//! A DoRA layer on the GPU: the fused weight norm (B·A never stored), the fused compose, and
//! the layer forward, each checked against the f64 CPU reference, with the memory each
//! norm took.
//!
//! `cargo run --release --example dora`

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wgkernels::compare::relative_error;
use wgkernels::dora::{self, reference, LoraShape};
use wgkernels::Context;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ctx = Context::new()?;
    println!("device: {}", ctx.device_name());
    let mut rng = StdRng::seed_from_u64(7);
    let mut uniform =
        |len: usize| -> Vec<f32> { (0..len).map(|_| rng.random_range(-1.0..1.0)).collect() };

    // A rank-16 adapter on a 768×1024 projection, scale α/r = 2.
    let shape = LoraShape {
        d_out: 768,
        d_in: 1024,
        r: 16,
    };
    let (n, s) = (64, 2.0f32);
    let (w, a, b, x) = (
        uniform(shape.d_out * shape.d_in),
        uniform(shape.r * shape.d_in),
        uniform(shape.d_out * shape.r)
            .iter()
            .map(|v| v * 0.01)
            .collect::<Vec<_>>(),
        uniform(n * shape.d_in),
    );
    let tw = ctx.tensor(&w, &[shape.d_out, shape.d_in])?;
    let ta = ctx.tensor(&a, &[shape.r, shape.d_in])?;
    let tb = ctx.tensor(&b, &[shape.d_out, shape.r])?;
    let tx = ctx.tensor(&x, &[n, shape.d_in])?;

    // DoRA initialises the magnitude to the norm of W; training moves it a little.
    let base_norm = dora::weight_norm(&ctx, &tw, &ta, &tb, 0.0)?.to_vec()?;
    let magnitude: Vec<f32> = base_norm.iter().map(|m| m * 1.01).collect();
    let tm = ctx.tensor(&magnitude, &[shape.d_out])?;

    ctx.synchronize()?;
    let before = ctx.allocated_bytes();
    ctx.reset_peak_allocated_bytes();
    let norm = dora::weight_norm(&ctx, &tw, &ta, &tb, s)?;
    let fused_bytes = ctx.peak_allocated_bytes() - before;
    ctx.reset_peak_allocated_bytes();
    let dense = dora::weight_norm_dense(&ctx, &tw, &ta, &tb, s)?;
    let dense_bytes = ctx.peak_allocated_bytes() - before - 4 * shape.d_out as u64;
    let want = reference::weight_norm_dense(&w, &a, &b, shape, s as f64);
    println!(
        "weight_norm: rel. err {:.1e} (dense baseline {:.1e}); transient memory {} kB fused vs {} kB dense",
        relative_error(&norm.to_vec()?, &want),
        relative_error(&dense.to_vec()?, &want),
        fused_bytes / 1000,
        dense_bytes / 1000,
    );

    let y = dora::forward(&ctx, &tx, &tw, &ta, &tb, &tm, s)?;
    let want = reference::forward(&x, &w, &a, &b, &magnitude, shape, s as f64);
    println!(
        "forward [{n}, {}]: rel. err {:.1e} against the f64 reference",
        shape.d_out,
        relative_error(&y.to_vec()?, &want)
    );
    Ok(())
}
