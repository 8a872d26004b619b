//! M-FAC on the GPU: inverse-Fisher products from a window of gradients, checked against a
//! dense inverse, and a tiny OBS pruning run that removes half the weights of a linear
//! model and compares the loss with magnitude pruning.
//!
//! `cargo run --release --example mfac`

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wgkernels::compare::relative_error;
use wgkernels::mfac::{self, reference, StaticInverse};
use wgkernels::Context;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ctx = Context::new()?;
    println!("device: {}", ctx.device_name());
    let mut rng = StdRng::seed_from_u64(23);

    // A linear model y = X·w on correlated inputs; per-sample gradients of ½(x·w − y)².
    let (samples, d, m, damp) = (400usize, 64usize, 64usize, 1e-3f32);
    let mixing: Vec<f32> = (0..d * d).map(|_| rng.random_range(-1.0..1.0)).collect();
    let inputs: Vec<f32> = (0..samples)
        .flat_map(|_| {
            let z: Vec<f32> = (0..d).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            (0..d)
                .map(|i| (0..d).map(|j| mixing[i * d + j] * z[j]).sum::<f32>() / 8.0)
                .collect::<Vec<f32>>()
        })
        .collect();
    let truth: Vec<f32> = (0..d).map(|_| rng.random_range(-1.0..1.0)).collect();
    let targets: Vec<f32> = inputs
        .chunks(d)
        .map(|x| x.iter().zip(&truth).map(|(a, b)| a * b).sum())
        .collect();
    // Trained weights (the truth, slightly off) and the gradients of m samples at them.
    let weights: Vec<f32> = truth
        .iter()
        .map(|w| w + rng.random_range(-0.01..0.01))
        .collect();
    let grads: Vec<f32> = inputs
        .chunks(d)
        .zip(&targets)
        .take(m)
        .flat_map(|(x, y)| {
            let r: f32 = x.iter().zip(&weights).map(|(a, b)| a * b).sum::<f32>() - y;
            x.iter().map(|a| a * r * 100.0).collect::<Vec<f32>>()
        })
        .collect();
    let loss = |w: &[f32]| -> f64 {
        inputs
            .chunks(d)
            .zip(&targets)
            .map(|(x, y)| (x.iter().zip(w).map(|(a, b)| a * b).sum::<f32>() - y) as f64)
            .map(|r| r * r / 2.0)
            .sum::<f64>()
            / samples as f64
    };

    let inverse = StaticInverse::new(&ctx, &ctx.tensor(&grads, &[m, d])?, damp)?;
    let x: Vec<f32> = (0..d).map(|_| rng.random_range(-1.0..1.0)).collect();
    let got = inverse.ihvp(&ctx.tensor(&x, &[d])?)?.to_vec()?;
    let dense = reference::dense_inverse(&grads, d, damp as f64);
    let want: Vec<f64> = (0..d)
        .map(|i| (0..d).map(|j| dense[i * d + j] * x[j] as f64).sum())
        .collect();
    println!(
        "ihvp with m = {m} gradients, d = {d}: relative error {:.1e} against the dense inverse",
        relative_error(&got, &want)
    );

    // Prune half the weights: OBS with its correction against plain magnitude pruning.
    let half = d / 2;
    let tw = ctx.tensor(&weights, &[d])?;
    let (pruned, removed) = mfac::prune(&inverse, &tw, half)?;
    let mut by_magnitude: Vec<usize> = (0..d).collect();
    by_magnitude.sort_by(|&a, &b| weights[a].abs().total_cmp(&weights[b].abs()));
    let mut magnitude = weights.clone();
    by_magnitude[..half]
        .iter()
        .for_each(|&k| magnitude[k] = 0.0);
    println!(
        "pruning {half} of {d} weights ({} removed by OBS): loss {:.3e} dense, {:.3e} OBS + correction, {:.3e} magnitude",
        removed.len(),
        loss(&weights),
        loss(&pruned.to_vec()?),
        loss(&magnitude)
    );
    Ok(())
}
