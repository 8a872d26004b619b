//! Training a small causal linear-attention model on the device: token and position
//! embeddings, one linear-attention layer (NaLaFormer's norm-aware map) and a readout, on a
//! synthetic copy task — every position must predict the first token of its sequence, which
//! only attention can carry there. Every product runs through `linalg::matmul`, the attention
//! through `attention::linear` and `attention::linear_backward`; Adam and the softmax
//! cross-entropy run on the host. The same steps run on the CPU reference path and the two
//! loss curves are printed side by side.
//!
//! `cargo run --release --example attention_train`

#[path = "common/adam.rs"]
mod adam;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wgkernels::attention::{self, FeatureMap};
use wgkernels::linalg::matmul;
use wgkernels::{Context, Result, Tensor};

use adam::Adam;

const VOCAB: usize = 16;
const WIDTH: usize = 16;
const N: usize = 40;
const BATCH: usize = 8;
const STEPS: usize = 80;
const MAP: FeatureMap = FeatureMap::NormAware;

/// The parameters: token embedding `[VOCAB, WIDTH]`, position embedding `[N, WIDTH]`, the
/// query, key and value projections `[WIDTH, WIDTH]` and the readout `[WIDTH, VOCAB]`.
#[derive(Clone)]
struct Model {
    params: [Vec<f32>; 6],
}

const SHAPES: [[usize; 2]; 6] = [
    [VOCAB, WIDTH],
    [N, WIDTH],
    [WIDTH, WIDTH],
    [WIDTH, WIDTH],
    [WIDTH, WIDTH],
    [WIDTH, VOCAB],
];

fn model(rng: &mut StdRng) -> Model {
    let params = SHAPES.map(|[rows, cols]| {
        let a = (1.0 / rows as f32).sqrt();
        (0..rows * cols).map(|_| rng.random_range(-a..a)).collect()
    });
    Model { params }
}

/// A batch of random sequences; the target of every position is its sequence's first token.
fn batch(rng: &mut StdRng) -> (Vec<usize>, Vec<usize>) {
    let tokens: Vec<usize> = (0..BATCH * N).map(|_| rng.random_range(0..VOCAB)).collect();
    let targets = (0..BATCH * N).map(|at| tokens[at - at % N]).collect();
    (tokens, targets)
}

/// `a + b` elementwise (on the host: the example's few additions).
fn add(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

/// One step's loss and gradients (in the order of `Model::params`).
fn loss_and_gradients(
    ctx: &Context,
    model: &Model,
    tokens: &[usize],
    targets: &[usize],
) -> Result<(f32, [Vec<f32>; 6])> {
    let rows = BATCH * N;
    let t = |data: &[f32], shape: &[usize]| ctx.tensor(data, shape);
    let [embed, position, wq, wk, wv, wo] = &model.params;
    let [wq, wk, wv, wo] = [wq, wk, wv, wo].map(|w| t(w, &[WIDTH, w.len() / WIDTH]));
    let (wq, wk, wv, wo) = (wq?, wk?, wv?, wo?);
    let mut one_hot = vec![0.0; rows * VOCAB];
    for (row, &token) in tokens.iter().enumerate() {
        one_hot[row * VOCAB + token] = 1.0;
    }
    let one_hot = t(&one_hot, &[rows, VOCAB])?;

    // Forward: h = onehot·E + P, q/k/v = h·W, o = attention, logits = o·Wo.
    let tokens_embedded = matmul(ctx, &one_hot, &t(embed, &[VOCAB, WIDTH])?, false, false)?;
    let positions: Vec<f32> = (0..BATCH).flat_map(|_| position.iter().copied()).collect();
    let h = t(&add(&tokens_embedded.to_vec()?, &positions), &[rows, WIDTH])?;
    let heads = |x: Tensor| x.reshape(&[BATCH, 1, N, WIDTH]);
    let q = heads(matmul(ctx, &h, &wq, false, false)?)?;
    let k = heads(matmul(ctx, &h, &wk, false, false)?)?;
    let v = heads(matmul(ctx, &h, &wv, false, false)?)?;
    let o = attention::linear(ctx, &q, &k, &v, MAP, true)?.reshape(&[rows, WIDTH])?;
    let logits = matmul(ctx, &o, &wo, false, false)?.to_vec()?;

    // Softmax cross-entropy, mean over positions: ∂L/∂logits = (softmax − onehot)/rows.
    let mut loss = 0.0;
    let mut d_logits = vec![0.0; rows * VOCAB];
    for row in 0..rows {
        let z = &logits[row * VOCAB..(row + 1) * VOCAB];
        let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let total: f32 = z.iter().map(|x| (x - max).exp()).sum();
        loss += (total.ln() + max - z[targets[row]]) / rows as f32;
        for (c, x) in z.iter().enumerate() {
            let p = (x - max).exp() / total;
            let hot = if c == targets[row] { 1.0 } else { 0.0 };
            d_logits[row * VOCAB + c] = (p - hot) / rows as f32;
        }
    }
    let d_logits = t(&d_logits, &[rows, VOCAB])?;

    // Backward, layer by layer.
    let d_wo = matmul(ctx, &o, &d_logits, true, false)?;
    let d_o = matmul(ctx, &d_logits, &wo, false, true)?.reshape(&[BATCH, 1, N, WIDTH])?;
    let grads = attention::linear_backward(ctx, &q, &k, &v, &d_o, MAP, true)?;
    let flat = |x: &Tensor| x.reshape(&[rows, WIDTH]);
    let (dq, dk, dv) = (flat(&grads.q)?, flat(&grads.k)?, flat(&grads.v)?);
    let d_wq = matmul(ctx, &h, &dq, true, false)?;
    let d_wk = matmul(ctx, &h, &dk, true, false)?;
    let d_wv = matmul(ctx, &h, &dv, true, false)?;
    let d_h = add(
        &add(
            &matmul(ctx, &dq, &wq, false, true)?.to_vec()?,
            &matmul(ctx, &dk, &wk, false, true)?.to_vec()?,
        ),
        &matmul(ctx, &dv, &wv, false, true)?.to_vec()?,
    );
    let d_embed = matmul(ctx, &one_hot, &t(&d_h, &[rows, WIDTH])?, true, false)?;
    let mut d_position = vec![0.0; N * WIDTH];
    for (at, g) in d_h.iter().enumerate() {
        d_position[at % (N * WIDTH)] += g;
    }
    Ok((
        loss,
        [
            d_embed.to_vec()?,
            d_position,
            d_wq.to_vec()?,
            d_wk.to_vec()?,
            d_wv.to_vec()?,
            d_wo.to_vec()?,
        ],
    ))
}

/// Trains on `ctx` from `start`; returns the loss of every step.
fn train(ctx: &Context, start: &Model) -> Result<Vec<f32>> {
    let mut model = start.clone();
    let mut adam = model.params.each_ref().map(|p| Adam::new(p.len()));
    let mut data = StdRng::seed_from_u64(5);
    let mut losses = Vec::with_capacity(STEPS);
    for step in 1..=STEPS {
        let (tokens, targets) = batch(&mut data);
        let (loss, grads) = loss_and_gradients(ctx, &model, &tokens, &targets)?;
        losses.push(loss);
        for ((param, grad), adam) in model.params.iter_mut().zip(&grads).zip(&mut adam) {
            adam.step(param, grad, step, 0.02);
        }
    }
    Ok(losses)
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let ctx = Context::new()?;
    let start = model(&mut StdRng::seed_from_u64(3));
    println!(
        "device: {}; copy-the-first-token task, vocabulary {VOCAB}, n = {N}, batch {BATCH}, \
         width {WIDTH}, {MAP:?} causal linear attention",
        ctx.device_name()
    );
    let clock = std::time::Instant::now();
    let device = train(&ctx, &start)?;
    let seconds = clock.elapsed().as_secs_f64();
    let cpu = train(&Context::cpu(), &start)?;
    println!(
        "step   loss ({})   loss (CPU reference)",
        if ctx.is_gpu() { "GPU" } else { "CPU" }
    );
    for t in (0..STEPS).step_by(10).chain([STEPS - 1]) {
        println!("{t:>4}   {:>10.4}   {:>10.4}", device[t], cpu[t]);
    }
    let chance = (VOCAB as f32).ln();
    let worst = device
        .iter()
        .zip(&cpu)
        .map(|(d, c)| ((d - c) / c).abs())
        .fold(0.0f32, f32::max);
    println!(
        "{STEPS} steps in {seconds:.2} s; loss {:.3} → {:.3} (chance: ln {VOCAB} = {chance:.3}); \
         largest relative gap between the curves {worst:.1e}",
        device[0],
        device[STEPS - 1]
    );
    let tail = |l: &[f32]| l[STEPS - 5..].iter().sum::<f32>() / 5.0;
    assert!(tail(&device) < 0.5 * device[0], "the loss did not fall");
    assert!(
        (tail(&device) - tail(&cpu)).abs() < 0.05 * tail(&cpu).max(0.1),
        "the device and CPU curves disagree"
    );
    Ok(())
}
