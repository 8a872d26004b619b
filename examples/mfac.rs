//! M-FAC on the GPU: inverse-Fisher products checked against a dense inverse, and a tiny
//! OBS pruning run that removes half the weights of a linear model on correlated inputs,
//! gradually and at once, and compares the loss with magnitude pruning.
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
    let (samples, d, m, damp) = (400usize, 64usize, 256usize, 1e-4f32);
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
    // Trained weights (the truth, slightly off). The Fisher of the model's own predictive
    // distribution: gradients x_i·ε_i with ε_i sampled as the model's noise, whose
    // expectation E[g·gᵀ] = XᵀX/N is this model's Hessian (the empirical gradients at a
    // near-perfect fit would be x_i·r_i with tiny, uninformative residuals r_i).
    let weights: Vec<f32> = truth
        .iter()
        .map(|w| w + rng.random_range(-0.01..0.01))
        .collect();
    let grads: Vec<f32> = inputs
        .chunks(d)
        .take(m)
        .flat_map(|x| {
            let noise: f32 = if rng.random::<bool>() { 1.0 } else { -1.0 };
            x.iter().map(|a| a * noise).collect::<Vec<f32>>()
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

    // Prune half the weights: OBS with its correction, 4 weights per step, against plain
    // magnitude pruning — and against one OBS step of all 32, where the summed single-weight
    // corrections overshoot.
    let half = d / 2;
    // Each step masks the pruned weights' gradients, so that F⁻¹ is exactly the inverse
    // Fisher of the weights that remain (the pruned block decouples), as the paper does.
    let mut gradual = ctx.tensor(&weights, &[d])?;
    for _ in 0..half / 4 {
        let w = gradual.to_vec()?;
        let masked: Vec<f32> = grads
            .iter()
            .enumerate()
            .map(|(i, &g)| if w[i % d] == 0.0 { 0.0 } else { g })
            .collect();
        let step = StaticInverse::new(&ctx, &ctx.tensor(&masked, &[m, d])?, damp)?;
        gradual = mfac::prune(&step, &gradual, 4)?.0;
    }
    let (at_once, removed) = mfac::prune(&inverse, &ctx.tensor(&weights, &[d])?, half)?;
    let mut by_magnitude: Vec<usize> = (0..d).collect();
    by_magnitude.sort_by(|&a, &b| weights[a].abs().total_cmp(&weights[b].abs()));
    let mut magnitude = weights.clone();
    by_magnitude[..half]
        .iter()
        .for_each(|&k| magnitude[k] = 0.0);
    println!(
        "pruning {half} of {d} weights, loss: {:.3e} before; OBS in steps of 4 {:.3e}, \
         magnitude {:.3e}, OBS in one step of {} {:.3e}",
        loss(&weights),
        loss(&gradual.to_vec()?),
        loss(&magnitude),
        removed.len(),
        loss(&at_once.to_vec()?),
    );
    Ok(())
}
