//! Linear attention on the GPU: a causal norm-aware layer over a long sequence, the same
//! outputs produced token by token by the decoder, and the time against exact softmax
//! attention at growing n.
//!
//! `cargo run --release --example attention`

use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wgkernels::attention::{self, FeatureMap, LinearDecoder};
use wgkernels::compare::relative_error;
use wgkernels::Context;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ctx = Context::new()?;
    println!("device: {}", ctx.device_name());
    let mut rng = StdRng::seed_from_u64(17);
    let mut uniform =
        |len: usize| -> Vec<f32> { (0..len).map(|_| rng.random_range(-1.0..1.0)).collect() };

    // A causal layer, then the same sequence decoded one token at a time.
    let (b, h, n, d) = (1, 4, 200, 32);
    let (q, k, v) = (
        uniform(b * h * n * d),
        uniform(b * h * n * d),
        uniform(b * h * n * d),
    );
    let shape = [b, h, n, d];
    let (tq, tk, tv) = (
        ctx.tensor(&q, &shape)?,
        ctx.tensor(&k, &shape)?,
        ctx.tensor(&v, &shape)?,
    );
    let layer = attention::linear(&ctx, &tq, &tk, &tv, FeatureMap::NormAware, true)?.to_vec()?;

    let mut decoder = LinearDecoder::new(&ctx, b, h, d, d, FeatureMap::NormAware)?;
    let mut decoded = vec![0.0f32; b * h * n * d];
    let token = |data: &[f32], i: usize| -> Vec<f32> {
        (0..b * h)
            .flat_map(|head| data[(head * n + i) * d..(head * n + i + 1) * d].to_vec())
            .collect()
    };
    for i in 0..n {
        let t = |data: &[f32]| ctx.tensor(&token(data, i), &[b, h, d]);
        let out = decoder.step(&t(&q)?, &t(&k)?, &t(&v)?)?.to_vec()?;
        for head in 0..b * h {
            decoded[(head * n + i) * d..(head * n + i + 1) * d]
                .copy_from_slice(&out[head * d..(head + 1) * d]);
        }
    }
    let wide: Vec<f64> = layer.iter().map(|&x| x as f64).collect();
    println!(
        "causal norm-aware layer [{b},{h},{n},{d}] vs {n} decoder steps: relative difference {:.1e}",
        relative_error(&decoded, &wide)
    );

    // Linear against softmax attention as n grows: O(n) against O(n²).
    println!("\n{:>6} {:>12} {:>12}", "n", "linear ms", "softmax ms");
    for n in [256, 1024, 4096] {
        let shape = [1, 1, n, 64];
        let mut t = || ctx.tensor(&uniform(n * 64), &shape);
        let (q, k, v) = (t()?, t()?, t()?);
        let time =
            |call: &dyn Fn() -> wgkernels::Result<wgkernels::Tensor>| -> wgkernels::Result<f64> {
                call()?.to_vec()?; // warm-up: pipelines compiled, buffers pooled
                let start = Instant::now();
                call()?.to_vec()?;
                Ok(start.elapsed().as_secs_f64() * 1e3)
            };
        let linear = time(&|| attention::linear(&ctx, &q, &k, &v, FeatureMap::EluPlusOne, true))?;
        let softmax = time(&|| attention::softmax(&ctx, &q, &k, &v, true))?;
        println!("{n:>6} {linear:>12.2} {softmax:>12.2}");
    }
    Ok(())
}
