//! The parameter gradient of a loss on energies **and forces** for the potential of
//! `potential.rs`, on the device. Forces are already a backward (`F = −∂E/∂x`), so the
//! gradient of the force term is a second derivative: the backward pass of `evaluate` is
//! itself differentiated, op by op in reverse, by the library's double backwards (the
//! harmonics', the weighted products', linear's; gather and scatter_sum are each other's),
//! and the cotangents this leaves on the forward's intermediates are carried back through
//! the forward by its ordinary backwards.

use wgkernels::linalg::matmul;
use wgkernels::so3::{self, LinearGrads, WeightedGrads};
use wgkernels::{graph, Context, Result, Tensor};

use super::{evaluate, Model, System, C, K, L, P};

/// `w_E·((E − E_ref)/N)² + w_F·Σ_a |F_a − F_ref,a|²/(3N)` for N atoms.
#[derive(Clone, Copy, Debug)]
pub struct LossWeights {
    pub energy: f64,
    pub forces: f64,
}

/// Reference energy and forces of one configuration.
pub struct Targets<'a> {
    pub energy: f64,
    pub forces: &'a [[f64; 3]],
}

/// The loss of a prediction.
pub fn loss(
    weights: LossWeights,
    (energy, forces): (f64, &[[f64; 3]]),
    targets: &Targets<'_>,
) -> f64 {
    let n = forces.len() as f64;
    let force_error: f64 = forces
        .iter()
        .zip(targets.forces)
        .flat_map(|(f, r)| (0..3).map(move |k| (f[k] - r[k]).powi(2)))
        .sum();
    weights.energy * ((energy - targets.energy) / n).powi(2)
        + weights.forces * force_error / (3.0 * n)
}

/// A configuration's loss, prediction and the loss's gradient in the model's layout.
pub struct Step {
    pub loss: f64,
    pub energy: f64,
    pub forces: Vec<[f64; 3]>,
    pub gradient: Model,
}

/// `Σ` of host vectors of one length.
fn add_all(parts: &[Vec<f32>]) -> Vec<f32> {
    let mut total = vec![0.0; parts[0].len()];
    for part in parts {
        for (t, x) in total.iter_mut().zip(part) {
            *t += x;
        }
    }
    total
}

fn scaled(x: Vec<f32>, by: f64) -> Vec<f32> {
    x.into_iter().map(|v| (v as f64 * by) as f32).collect()
}

/// `aᵀ·b` of `[rows, ·]` tensors, on the device, read back (small results only).
fn transposed_product(ctx: &Context, a: &Tensor, b: &Tensor, rows: usize) -> Result<Vec<f32>> {
    let a = a.reshape(&[rows, a.len() / rows])?;
    let b = b.reshape(&[rows, b.len() / rows])?;
    matmul(ctx, &a, &b, true, false)?.to_vec()
}

/// The loss and its gradient with respect to every parameter, for one configuration.
pub fn loss_and_gradient(
    ctx: &Context,
    m: &Model,
    s: &System,
    targets: &Targets<'_>,
    weights: LossWeights,
) -> Result<Step> {
    let p = evaluate(ctx, m, s)?;
    let n = s.positions.len();
    let e = p.edges.senders.len();
    let d = so3::reference::dim(L);
    let t = |data: &[f32], shape: &[usize]| ctx.tensor(data, shape);
    let loss_value = loss(weights, (p.energy, &p.forces), targets);

    // Cotangents of the outputs: Ē = ∂loss/∂E, F̄_a = ∂loss/∂F_a.
    let e_bar = 2.0 * weights.energy * (p.energy - targets.energy) / (n * n) as f64;
    let f_bar: Vec<[f64; 3]> = p
        .forces
        .iter()
        .zip(targets.forces)
        .map(|(f, r)| [0, 1, 2].map(|k| 2.0 * weights.forces * (f[k] - r[k]) / (3 * n) as f64))
        .collect();

    // F_a = −(Σ_{e→a} ∂E/∂v_e − Σ_{a→e} ∂E/∂v_e): the cotangent of ∂E/∂v_e, and of its radial
    // part (∂E/∂r_e·u_e, with ∂E/∂r_e = Σ_k ∂E/∂basis_k·slope_k) the cotangent of ∂E/∂basis.
    let mut dv_bar = vec![0.0f32; 3 * e];
    let mut d_basis_bar = vec![0.0f32; K * e];
    for edge in 0..e {
        let (to, from) = (
            p.edges.receivers[edge] as usize,
            p.edges.senders[edge] as usize,
        );
        let bar: [f64; 3] = [0, 1, 2].map(|k| -(f_bar[to][k] - f_bar[from][k]));
        let along: f64 = (0..3)
            .map(|k| bar[k] * p.edges.vectors[edge][k] / p.lengths[edge])
            .sum();
        for k in 0..3 {
            dv_bar[3 * edge + k] = bar[k] as f32;
        }
        for k in 0..K {
            d_basis_bar[K * edge + k] = (along * p.slopes[edge][k]) as f32;
        }
    }
    let dv_bar = t(&dv_bar, &[e, 3])?;
    let d_basis_bar = t(&d_basis_bar, &[e, K])?;

    // ∂E/∂v = Jᵀ·∂E/∂Y: its double backward gives the cotangent of ∂E/∂Y, J·dv̄.
    let d_y_bar = so3::spherical_harmonics_double_backward(ctx, &p.vectors, L, &p.d_y, &dv_bar)?
        .d_y
        .reshape(&[e, 1, d])?;
    // ∂E/∂basis = Σ_i ∂E/∂w_i·R_iᵀ: the cotangents of the products' weight gradients.
    let w_bar = [0, 1].map(|i| {
        matmul(ctx, &d_basis_bar, &p.radial[i], false, false).and_then(|x| x.reshape(&[e, C, P]))
    });
    let [w1_bar, w2_bar] = w_bar;

    // Layer 1's backward, b1 = ∂(g0 ⊗_w1 Y)ᵀ·d_m1 (its ∂g0 feeds no force).
    let s1 = so3::weighted_cg_product_double_backward(
        ctx,
        &p.g0,
        &p.y,
        &p.w[0],
        L,
        &p.d_m1,
        &WeightedGrads {
            x1: ctx.zeros(&[e, C, 1])?,
            x2: d_y_bar.reshape(&[e, 1, d])?, // a second view of the same buffer
            weights: w1_bar?,
        },
    )?;
    // d_m1 = gather(∂E/∂big_m1, recv); ∂E/∂big_m1 = the mix's backward of d_h1.
    let big_m1_grad_bar = graph::scatter_sum(ctx, &s1.d_out, &p.recv)?;
    let through_mix = so3::linear_double_backward(
        ctx,
        &p.big_m1,
        &p.mix,
        &p.d_h1,
        &LinearGrads {
            x: big_m1_grad_bar,
            w: ctx.zeros(&[L + 1, C, C])?,
        },
    )?;
    // d_h1 = scatter(b2.x1, send), b2 = ∂(g1 ⊗_w2 Y)ᵀ·d_m2.
    let b2_x1_bar = graph::gather(ctx, &through_mix.d_out, &p.send)?;
    let s2 = so3::weighted_cg_product_double_backward(
        ctx,
        &p.g1,
        &p.y,
        &p.w[1],
        0,
        &p.d_m2,
        &WeightedGrads {
            x1: b2_x1_bar,
            x2: d_y_bar,
            weights: w2_bar?,
        },
    )?;

    // The cotangents now on the forward's intermediates (g1 and w2 from layer 2, g0 and w1
    // from layer 1), carried back through the forward: g1 = gather(linear(big_m1), send),
    // big_m1 = scatter(g0 ⊗_w1 Y, recv).
    let h1_bar = graph::scatter_sum(ctx, &s2.x1, &p.send)?;
    let through_layer = so3::linear_backward(ctx, &p.big_m1, &p.mix, &h1_bar)?;
    let m1_bar = graph::gather(ctx, &through_layer.x, &p.recv)?;
    let layer1 = so3::weighted_cg_product_backward(ctx, &p.g0, &p.y, &p.w[0], L, &m1_bar)?;

    // Parameters, each the force term's parts plus Ē·∂E/∂θ.
    let flat = |x: &Tensor| x.reshape(&[e, C * P]);
    let radial = |i: usize, extra: &[&Tensor]| -> Result<Vec<f32>> {
        let b = if i == 0 { &p.b1 } else { &p.b2 };
        let mut parts = vec![
            transposed_product(ctx, &d_basis_bar, &flat(&b.weights)?, e)?,
            scaled(
                transposed_product(ctx, &p.basis, &flat(&b.weights)?, e)?,
                e_bar,
            ),
        ];
        for w in extra {
            parts.push(transposed_product(ctx, &p.basis, &flat(w)?, e)?);
        }
        Ok(add_all(&parts))
    };
    let radial_grads = [
        radial(0, &[&s1.weights, &layer1.weights])?,
        radial(1, &[&s2.weights])?,
    ];
    let mix = add_all(&[
        through_mix.w.to_vec()?,
        through_layer.w.to_vec()?,
        scaled(p.d_mix.to_vec()?, e_bar),
    ]);
    let h0_bar = add_all(&[
        graph::scatter_sum(ctx, &s1.x1, &p.send)?.to_vec()?,
        graph::scatter_sum(ctx, &layer1.x1, &p.send)?.to_vec()?,
        scaled(graph::scatter_sum(ctx, &p.b1.x1, &p.send)?.to_vec()?, e_bar),
    ]);
    let mut species = vec![0.0f32; m.species.len()];
    for (atom, &z) in s.species.iter().enumerate() {
        for c in 0..C {
            species[z * C + c] += h0_bar[atom * C + c];
        }
    }
    // d_m2 = gather(readout on every atom, recv); E = Σ_a readout·big_m2[a].
    let ones = t(&vec![1.0; e], &[1, e])?;
    let from_forces = matmul(ctx, &ones, &s2.d_out.reshape(&[e, C])?, false, false)?.to_vec()?;
    let readout: Vec<f32> = (0..C)
        .map(|c| {
            let energy: f64 = p.big_m2.chunks(C).map(|row| row[c] as f64).sum();
            from_forces[c] + (e_bar * energy) as f32
        })
        .collect();
    let [r0, r1] = radial_grads;
    Ok(Step {
        loss: loss_value,
        energy: p.energy,
        forces: p.forces.clone(),
        gradient: Model {
            species,
            radial: [r0, r1],
            mix,
            readout,
        },
    })
}

/// The loss in f64 from the f64 references: the energy of `energy_f64`, the forces by central
/// differences of it (step 1e-5, error ~1e-10) — the oracle of the gradient's check.
pub fn loss_f64(m: &Model, s: &System, targets: &Targets<'_>, weights: LossWeights) -> f64 {
    let h = 1e-5;
    let forces: Vec<[f64; 3]> = (0..s.positions.len())
        .map(|atom| {
            [0, 1, 2].map(|k| {
                let (mut plus, mut minus) = (s.clone(), s.clone());
                plus.positions[atom][k] += h;
                minus.positions[atom][k] -= h;
                -(super::energy_f64(m, &plus) - super::energy_f64(m, &minus)) / (2.0 * h)
            })
        })
        .collect();
    loss(weights, (super::energy_f64(m, s), &forces), targets)
}
