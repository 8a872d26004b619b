//! DoRA fine-tuning inside burn (`cargo run --release --features burn --example burn_dora`).
//!
//! A small burn MLP (2 → hidden → hidden → 3 classes) is first trained by burn alone on a
//! task: which of three sectors of the plane a point lies in. The task then changes — the
//! sectors turn by 40° — and only DoRA adapters on both hidden layers (wgkernels'
//! `DoraLinear`, our kernels forward and backward, W frozen) are trained by burn's Adam to
//! follow it. Losses stay on the device during training and are read once at the end; the
//! curve is printed and plotted (`docs/burn_dora.svg`), and the adapters are saved in
//! Hugging Face PEFT's format and loaded back. `--hidden N` and `--steps N` size it.

#[path = "common/curves.rs"]
mod curves;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{activation, Device, Int, Tensor, TensorData};
use curves::{flag, plot};
use wgkernels::burn::{Bridge, DoraLinear};
use wgkernels::dora::{peft, NormGradient};
use wgkernels::GpuOptions;

/// The base network, trained by burn alone.
#[derive(Module, Debug)]
struct Mlp {
    input: Linear,
    hidden: Linear,
    output: Linear,
}

impl Mlp {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let x = activation::relu(self.input.forward(x));
        let x = activation::relu(self.hidden.forward(x));
        self.output.forward(x)
    }
}

/// The same network with DoRA on the two layers after the input one; the rest frozen.
#[derive(Module, Debug)]
struct Adapted {
    input: Linear,
    hidden: DoraLinear,
    output: DoraLinear,
}

impl Adapted {
    fn forward(&self, x: Tensor<2>) -> wgkernels::Result<Tensor<2>> {
        let x = activation::relu(self.input.forward(x));
        let x = activation::relu(self.hidden.forward(x)?);
        self.output.forward(x)
    }
}

/// `n` points in the unit disc and their sector (0, 1, 2) after turning by `turn` radians.
fn sectors(n: usize, turn: f64, seed: u64, device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
    let mut state = seed;
    let mut uniform = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let (mut points, mut labels) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let (r, a) = (uniform().sqrt(), uniform() * std::f64::consts::TAU);
        points.extend([(r * a.cos()) as f32, (r * a.sin()) as f32]);
        let sector =
            ((a - turn).rem_euclid(std::f64::consts::TAU) / (std::f64::consts::TAU / 3.0)) as i64;
        labels.push(sector.min(2));
    }
    (
        Tensor::from_data(TensorData::new(points, [n, 2]), device),
        Tensor::from_data(TensorData::new(labels, [n]), device),
    )
}

fn cross_entropy(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let log_p = activation::log_softmax(logits, 1);
    -log_p.gather(1, labels.unsqueeze_dim(1)).mean()
}

fn accuracy(logits: Tensor<2>, labels: Tensor<1, Int>) -> f32 {
    let right = logits
        .argmax(1)
        .squeeze_dim::<1>(1)
        .equal(labels)
        .float()
        .mean();
    right.into_data().iter::<f32>().next().unwrap_or(f32::NAN)
}

fn main() -> wgkernels::Result<()> {
    let hidden = flag("--hidden", 32);
    let steps = flag("--steps", 120);
    let (n, rank, scale) = (512, 4, 1.0);
    let bridge = Bridge::new(GpuOptions::default())?;
    let device = bridge.device().clone().autodiff();
    println!("device: {}", bridge.context().device_name());

    // 1. The base task, learned by burn alone.
    let (x, labels) = sectors(n, 0.0, 1, &device);
    let mut base = Mlp {
        input: LinearConfig::new(2, hidden).init(&device),
        hidden: LinearConfig::new(hidden, hidden).init(&device),
        output: LinearConfig::new(hidden, 3).init(&device),
    };
    let mut optim = AdamConfig::new().init();
    for _ in 0..steps {
        let loss = cross_entropy(base.forward(x.clone()), labels.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &base);
        base = optim.step(0.02, base, grads);
    }
    let (turned_x, turned) = sectors(n, 0.7, 2, &device);
    let (test_x, test_labels) = sectors(n, 0.7, 3, &device);
    println!(
        "base model: accuracy {:.1}% on its task, {:.1}% on the turned task",
        100.0 * accuracy(base.forward(x.clone()), labels.clone()),
        100.0 * accuracy(base.forward(test_x.clone()), test_labels.clone())
    );

    // 2. The turned task, learned by DoRA adapters only (our kernels inside burn's graph).
    let frozen = |linear: Linear| linear.no_grad();
    let mut model = Adapted {
        input: frozen(base.input),
        hidden: DoraLinear::from_linear(&bridge, &base.hidden, rank, scale, NormGradient::Detached),
        output: DoraLinear::from_linear(&bridge, &base.output, rank, scale, NormGradient::Detached),
    };
    let mut optim = AdamConfig::new().init();
    let mut losses = Vec::new(); // stay on the device until training ends
    for _ in 0..steps {
        let loss = cross_entropy(model.forward(turned_x.clone())?, turned.clone());
        losses.push(loss.clone().detach());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(0.02, model, grads);
    }
    let losses: Vec<f64> = Tensor::cat(losses, 0)
        .into_data()
        .iter::<f32>()
        .map(f64::from)
        .collect();
    println!(
        "DoRA fine-tuning, {steps} Adam steps: loss {:.4} → {:.4}; held-out accuracy on the turned task {:.1}%",
        losses[0],
        losses[losses.len() - 1],
        100.0 * accuracy(model.forward(test_x)?, test_labels)
    );
    for (i, l) in losses.iter().enumerate().step_by((steps / 12).max(1)) {
        println!("  step {i:4}: loss {l:.4}");
    }
    plot(
        "docs/burn_dora.svg",
        "burn_dora: cross-entropy of DoRA fine-tuning inside burn (log scale)",
        "Adam step",
        &[("training loss", "#1f77b4", losses)],
    )
    .map_err(|e| wgkernels::Error::Gpu(format!("writing the plot: {e}")))?;

    // 3. The adapters in PEFT's format, and back.
    let dir = std::env::temp_dir().join("wgkernels-burn-dora-adapter");
    let layers = [
        model.hidden.adapter("model.hidden")?,
        model.output.adapter("model.output")?,
    ];
    peft::save(&dir, &layers, scale)?;
    let (loaded, loaded_scale) = peft::load(bridge.context(), &dir)?;
    let same = loaded.iter().all(|l| {
        let saved = layers.iter().find(|s| s.module == l.module).expect("saved");
        [
            (&l.a, &saved.a),
            (&l.b, &saved.b),
            (&l.magnitude, &saved.magnitude),
        ]
        .iter()
        .all(|(x, y)| x.to_vec().ok() == y.to_vec().ok())
    });
    println!(
        "adapter saved in PEFT's format at {} ({} layers, scale {loaded_scale}) and loaded back: {}",
        dir.display(),
        loaded.len(),
        if same { "identical" } else { "DIFFERENT" }
    );
    Ok(())
}
