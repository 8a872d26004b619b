//! Fine-tuning a DoRA adapter on the device: a frozen random layer W, a target layer
//! `W + ΔW` (ΔW of rank 4), and an adapter (A, B, m) trained by Adam on ½‖y − target‖²
//! with the gradients of `dora::forward_saved` + `Saved::backward`. The same steps run on the CPU reference path;
//! the two loss curves are printed side by side and must agree.
//!
//! `cargo run --release --example dora_finetune`

#[path = "common/adam.rs"]
mod adam;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wgkernels::dora::{self, LoraShape, NormGradient};
use wgkernels::{Context, Tensor};

use adam::Adam;

const STEPS: usize = 60;

/// The problem: frozen weights, inputs and targets, and the adapter's starting point.
struct Problem {
    shape: LoraShape,
    n: usize,
    scale: f32,
    w: Vec<f32>,
    x: Vec<f32>,
    target: Vec<f32>,
    start: [Vec<f32>; 3],
}

fn problem() -> Problem {
    let mut rng = StdRng::seed_from_u64(11);
    let mut uniform =
        |len: usize, a: f32| -> Vec<f32> { (0..len).map(|_| rng.random_range(-a..a)).collect() };
    let shape = LoraShape {
        d_out: 48,
        d_in: 80,
        r: 4,
    };
    let (n, scale) = (64, 1.0);
    let LoraShape { d_out, d_in, r } = shape;
    let w = uniform(d_out * d_in, 0.3);
    let (u, v) = (uniform(d_out * r, 0.5), uniform(r * d_in, 0.5));
    let x = uniform(n * d_in, 1.0);
    // target = x·(W + U·V)ᵀ
    let target = (0..n * d_out)
        .map(|at| {
            let (row, j) = (at / d_out, at % d_out);
            (0..d_in)
                .map(|i| {
                    let delta: f32 = (0..r).map(|t| u[j * r + t] * v[t * d_in + i]).sum();
                    x[row * d_in + i] * (w[j * d_in + i] + delta)
                })
                .sum()
        })
        .collect();
    // DoRA's start: B = 0, A small and random, m = ‖W‖ per row (the layer equals W).
    let magnitude = (0..d_out)
        .map(|j| {
            w[j * d_in..(j + 1) * d_in]
                .iter()
                .map(|x| x * x)
                .sum::<f32>()
                .sqrt()
        })
        .collect();
    let start = [uniform(r * d_in, 0.1), vec![0.0; d_out * r], magnitude];
    Problem {
        shape,
        n,
        scale,
        w,
        x,
        target,
        start,
    }
}

/// Trains on `ctx`; returns the loss before each step.
fn train(ctx: &Context, p: &Problem) -> wgkernels::Result<Vec<f32>> {
    let LoraShape { d_out, d_in, r } = p.shape;
    let w = ctx.tensor(&p.w, &[d_out, d_in])?;
    let x = ctx.tensor(&p.x, &[p.n, d_in])?;
    let [mut a, mut b, mut m] = p.start.clone();
    let mut adam = [Adam::new(a.len()), Adam::new(b.len()), Adam::new(m.len())];
    let mut losses = Vec::with_capacity(STEPS);
    for t in 1..=STEPS {
        let upload =
            |v: &[f32], shape: &[usize]| -> wgkernels::Result<Tensor> { ctx.tensor(v, shape) };
        let (ta, tb, tm) = (
            upload(&a, &[r, d_in])?,
            upload(&b, &[d_out, r])?,
            upload(&m, &[d_out])?,
        );
        // The forward keeps its products, so the backward does not recompute them.
        let (y, mut saved) = dora::forward_saved(ctx, &x, &w, &ta, &tb, &tm, p.scale)?;
        let y = y.to_vec()?;
        // L = ½·mean over rows of ‖y − target‖², so ∂L/∂y = (y − target)/n.
        let residual: Vec<f32> = y.iter().zip(&p.target).map(|(y, t)| y - t).collect();
        losses.push(0.5 * residual.iter().map(|d| d * d).sum::<f32>() / p.n as f32);
        let dy: Vec<f32> = residual.iter().map(|d| d / p.n as f32).collect();
        let g = saved.backward(&ctx.tensor(&dy, &[p.n, d_out])?, NormGradient::Exact)?;
        drop(saved);
        let lr = 0.02;
        adam[0].step(&mut a, &g.a.to_vec()?, t, lr);
        adam[1].step(&mut b, &g.b.to_vec()?, t, lr);
        adam[2].step(&mut m, &g.magnitude.to_vec()?, t, lr);
    }
    Ok(losses)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ctx = Context::new()?;
    let p = problem();
    println!(
        "device: {}; adapter r = {} on a frozen {}×{} layer, n = {}",
        ctx.device_name(),
        p.shape.r,
        p.shape.d_out,
        p.shape.d_in,
        p.n
    );
    let start = std::time::Instant::now();
    let device = train(&ctx, &p)?;
    let seconds = start.elapsed().as_secs_f64();
    let cpu = train(&Context::cpu(), &p)?;
    println!(
        "step   loss ({})   loss (CPU reference)",
        if ctx.is_gpu() { "GPU" } else { "CPU" }
    );
    for t in (0..STEPS).step_by(10).chain([STEPS - 1]) {
        println!("{t:>4}   {:>12.6}   {:>12.6}", device[t], cpu[t]);
    }
    let worst = device
        .iter()
        .zip(&cpu)
        .map(|(d, c)| ((d - c) / c).abs())
        .fold(0.0f32, f32::max);
    println!(
        "{STEPS} steps in {seconds:.2} s; loss {:.4} → {:.4}; largest relative gap between the curves {worst:.1e}",
        device[0],
        device[STEPS - 1]
    );
    assert!(device[STEPS - 1] < 0.5 * device[0], "the loss did not fall");
    assert!(
        worst < 1e-2,
        "the device and CPU curves disagree: {worst:e}"
    );
    Ok(())
}
