//! A two-layer NequIP-style potential built from the library's blocks, shared by
//! `examples/potential.rs` and `bench_report`: the model, a random system, its radius graph,
//! energy and forces on a context, and the same energy in f64 from the references.
#![allow(dead_code)]

#[path = "potential_training.rs"]
pub mod training;

use rand::rngs::StdRng;
use rand::Rng;
use wgkernels::graph::{self, Index};
use wgkernels::linalg::matmul;
use wgkernels::so3::products::{apply_weighted, grouped, Grouping, Weights};
use wgkernels::so3::{self, Coefficients};
use wgkernels::{Context, Result, Tensor};

/// Channels of the node features.
pub const C: usize = 8;
/// Radial basis functions.
pub const K: usize = 8;
/// Degrees of the edge harmonics and of the first layer's output.
pub const L: usize = 2;
pub const CUTOFF: f64 = 1.0;
/// Paths of layer 1 (0 ⊗ 0..2 → 0..2) and layer 2 (0..2 ⊗ 0..2 → 0): three each.
pub const P: usize = 3;

/// The potential's parameters.
#[derive(Clone)]
pub struct Model {
    /// Species embeddings `[2, C]` (the l = 0 input features).
    pub species: Vec<f32>,
    /// Radial weights of the two layers, `[K, C·P]`.
    pub radial: [Vec<f32>; 2],
    /// The channel mix after layer 1, `[L+1, C, C]`.
    pub mix: Vec<f32>,
    /// Energy readout of the l = 0 features after layer 2, `[C]`.
    pub readout: Vec<f32>,
}

impl Model {
    /// Every parameter, in a fixed order (for optimisers and finite differences).
    pub fn parameters_mut(&mut self) -> [&mut Vec<f32>; 5] {
        let [r0, r1] = &mut self.radial;
        [&mut self.species, r0, r1, &mut self.mix, &mut self.readout]
    }

    /// The same, read only.
    pub fn parameters(&self) -> [&Vec<f32>; 5] {
        [
            &self.species,
            &self.radial[0],
            &self.radial[1],
            &self.mix,
            &self.readout,
        ]
    }
}

pub fn model(rng: &mut StdRng) -> Model {
    let mut uniform =
        |len: usize, a: f32| -> Vec<f32> { (0..len).map(|_| rng.random_range(-a..a)).collect() };
    Model {
        species: uniform(2 * C, 1.0),
        radial: [uniform(K * C * P, 0.5), uniform(K * C * P, 0.5)],
        mix: uniform((L + 1) * C * C, 0.4),
        readout: uniform(C, 1.0),
    }
}

/// Atoms: positions and species.
#[derive(Clone)]
pub struct System {
    pub positions: Vec<[f64; 3]>,
    pub species: Vec<usize>,
}

/// `atoms` in a cube sized for about `neighbours` atoms within the cutoff of each.
pub fn system(rng: &mut StdRng, atoms: usize, neighbours: f64) -> System {
    let side =
        (atoms as f64 * 4.0 * std::f64::consts::PI * CUTOFF.powi(3) / (3.0 * neighbours)).cbrt();
    System {
        positions: (0..atoms)
            .map(|_| [(); 3].map(|_| rng.random_range(0.0..side)))
            .collect(),
        species: (0..atoms).map(|_| rng.random_range(0..2)).collect(),
    }
}

/// The radial basis: Gaussians on [0, cutoff] times a smooth cutoff, and their derivatives.
pub fn radial_basis(r: f64) -> ([f64; K], [f64; K]) {
    let gamma = 10.0;
    let (fc, dfc) = (
        0.5 * ((std::f64::consts::PI * r / CUTOFF).cos() + 1.0),
        -0.5 * std::f64::consts::PI / CUTOFF * (std::f64::consts::PI * r / CUTOFF).sin(),
    );
    let mut value = [0.0; K];
    let mut slope = [0.0; K];
    for k in 0..K {
        let mu = CUTOFF * k as f64 / (K - 1) as f64;
        let g = (-gamma * (r - mu).powi(2)).exp();
        value[k] = g * fc;
        slope[k] = g * (dfc - 2.0 * gamma * (r - mu) * fc);
    }
    (value, slope)
}

/// The directed edges within the cutoff: senders, receivers and `x_receiver − x_sender`.
pub struct Edges {
    pub senders: Vec<u32>,
    pub receivers: Vec<u32>,
    pub vectors: Vec<[f64; 3]>,
}

pub fn edges(system: &System) -> Edges {
    let mut e = Edges {
        senders: Vec::new(),
        receivers: Vec::new(),
        vectors: Vec::new(),
    };
    let x = &system.positions;
    for i in 0..x.len() {
        for j in 0..x.len() {
            let v = [x[i][0] - x[j][0], x[i][1] - x[j][1], x[i][2] - x[j][2]];
            let r2 = v.iter().map(|a| a * a).sum::<f64>();
            if i != j && r2 < CUTOFF * CUTOFF {
                e.senders.push(j as u32);
                e.receivers.push(i as u32);
                e.vectors.push(v);
            }
        }
    }
    e
}

fn add(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

/// The energy and the forces `−∂E/∂x`, every step on `ctx` but the radial basis and a few
/// additions.
pub fn energy_and_forces(ctx: &Context, m: &Model, s: &System) -> Result<(f64, Vec<[f64; 3]>)> {
    let pass = evaluate(ctx, m, s)?;
    Ok((pass.energy, pass.forces))
}

/// One evaluation of energy and forces, with what the parameter gradient of a loss on them
/// needs (examples/common/potential_training.rs).
pub struct Pass {
    pub energy: f64,
    pub forces: Vec<[f64; 3]>,
    pub edges: Edges,
    pub send: Index,
    pub recv: Index,
    pub lengths: Vec<f64>,
    pub slopes: Vec<[f64; K]>,
    /// Edge vectors `[e, 3]`, radial basis `[e, K]`, radial weights `[K, C·P]` ×2.
    pub vectors: Tensor,
    pub basis: Tensor,
    pub radial: [Tensor; 2],
    /// Harmonics `[e, 1, d]`, per-edge weights `[e, C, P]` ×2.
    pub y: Tensor,
    pub w: [Tensor; 2],
    /// Layer inputs gathered onto the edges (`g0 [e, C, 1]`, `g1 [e, C, d]`), layer 1's
    /// sum onto atoms `[n, C, d]`, the mix `[L+1, C, C]`, layer 2's sum `[n, C]` (host).
    pub g0: Tensor,
    pub g1: Tensor,
    pub big_m1: Tensor,
    pub mix: Tensor,
    pub big_m2: Vec<f32>,
    /// The energy's backward: `∂E/∂m2 [e, C, 1]`, `∂E/∂h1 [n, C, d]`, `∂E/∂m1 [e, C, d]`,
    /// the two products' gradients, `∂E/∂mix`, and `∂E/∂basis` (host, `[e, K]`).
    pub d_m2: Tensor,
    pub d_h1: Tensor,
    pub d_m1: Tensor,
    /// `∂E/∂Y [e, d]`.
    pub d_y: Tensor,
    pub b1: so3::WeightedGrads,
    pub b2: so3::WeightedGrads,
    pub d_mix: Tensor,
}

/// [`energy_and_forces`], keeping its intermediates.
pub fn evaluate(ctx: &Context, m: &Model, s: &System) -> Result<Pass> {
    let n = s.positions.len();
    let g = edges(s);
    let e = g.senders.len();
    let d = so3::reference::dim(L);
    let t = |data: &[f32], shape: &[usize]| ctx.tensor(data, shape);
    let (send, recv) = (
        Index::new(ctx, &g.senders, n)?,
        Index::new(ctx, &g.receivers, n)?,
    );
    let vectors: Vec<f32> = g.vectors.iter().flatten().map(|&x| x as f32).collect();
    let lengths: Vec<f64> = g
        .vectors
        .iter()
        .map(|v| v.iter().map(|a| a * a).sum::<f64>().sqrt())
        .collect();
    let (basis, slopes): (Vec<_>, Vec<_>) = lengths.iter().map(|&r| radial_basis(r)).unzip();
    let basis: Vec<f32> = basis.iter().flatten().map(|&x| x as f32).collect();

    // Forward.
    let tv = t(&vectors, &[e, 3])?;
    let y = so3::spherical_harmonics(ctx, &tv, L)?.reshape(&[e, 1, d])?;
    let tb = t(&basis, &[e, K])?;
    let radial = [t(&m.radial[0], &[K, C * P])?, t(&m.radial[1], &[K, C * P])?];
    let w1 = matmul(ctx, &tb, &radial[0], false, false)?.reshape(&[e, C, P])?;
    let w2 = matmul(ctx, &tb, &radial[1], false, false)?.reshape(&[e, C, P])?;
    let h0: Vec<f32> = s
        .species
        .iter()
        .flat_map(|&z| m.species[z * C..(z + 1) * C].to_vec())
        .collect();
    let h0 = t(&h0, &[n, C, 1])?;
    let g0 = graph::gather(ctx, &h0, &send)?;
    let m1 = so3::weighted_cg_product(ctx, &g0, &y, &w1, L)?;
    let big_m1 = graph::scatter_sum(ctx, &m1, &recv)?;
    let mix = t(&m.mix, &[L + 1, C, C])?;
    let h1 = so3::linear(ctx, &big_m1, &mix)?;
    let g1 = graph::gather(ctx, &h1, &send)?;
    let m2 = so3::weighted_cg_product(ctx, &g1, &y, &w2, 0)?;
    let big_m2 = graph::scatter_sum(ctx, &m2, &recv)?.to_vec()?;
    drop(h1);
    let energy: f64 = big_m2
        .chunks(C)
        .map(|row| {
            row.iter()
                .zip(&m.readout)
                .map(|(a, b)| (a * b) as f64)
                .sum::<f64>()
        })
        .sum();

    // Backward: ∂E/∂M2 = readout on every atom, then each step's vector–Jacobian product.
    let d_m2: Vec<f32> = (0..n).flat_map(|_| m.readout.clone()).collect();
    let d_m2 = graph::gather(ctx, &t(&d_m2, &[n, C, 1])?, &recv)?;
    let b2 = so3::weighted_cg_product_backward(ctx, &g1, &y, &w2, 0, &d_m2)?;
    let d_h1 = graph::scatter_sum(ctx, &b2.x1, &send)?;
    let through_mix = so3::linear_backward(ctx, &big_m1, &mix, &d_h1)?;
    let d_m1 = graph::gather(ctx, &through_mix.x, &recv)?;
    let b1 = so3::weighted_cg_product_backward(ctx, &g0, &y, &w1, L, &d_m1)?;
    let d_y = t(&add(&b1.x2.to_vec()?, &b2.x2.to_vec()?), &[e, d])?;
    let d_basis = add(
        &matmul(
            ctx,
            &b1.weights.reshape(&[e, C * P])?,
            &radial[0],
            false,
            true,
        )?
        .to_vec()?,
        &matmul(
            ctx,
            &b2.weights.reshape(&[e, C * P])?,
            &radial[1],
            false,
            true,
        )?
        .to_vec()?,
    );
    let mut d_vectors = so3::spherical_harmonics_backward(ctx, &tv, L, &d_y)?.to_vec()?;
    for (edge, dv) in d_vectors.chunks_mut(3).enumerate() {
        let d_r: f64 = (0..K)
            .map(|k| d_basis[edge * K + k] as f64 * slopes[edge][k])
            .sum();
        for (a, x) in dv.iter_mut().zip(&g.vectors[edge]) {
            *a += (d_r * x / lengths[edge]) as f32;
        }
    }
    // x_receiver − x_sender: +∂ onto receivers, −∂ onto senders.
    let d_vectors = t(&d_vectors, &[e, 3])?;
    let onto_receivers = graph::scatter_sum(ctx, &d_vectors, &recv)?.to_vec()?;
    let onto_senders = graph::scatter_sum(ctx, &d_vectors, &send)?.to_vec()?;
    let forces = onto_receivers
        .chunks(3)
        .zip(onto_senders.chunks(3))
        .map(|(a, b)| [0, 1, 2].map(|k| -(a[k] - b[k]) as f64))
        .collect();
    Ok(Pass {
        energy,
        forces,
        edges: g,
        send,
        recv,
        lengths,
        slopes,
        vectors: tv,
        basis: tb,
        radial,
        y,
        w: [w1, w2],
        g0,
        g1,
        big_m1,
        mix,
        big_m2,
        d_m2,
        d_h1,
        d_m1,
        d_y,
        b1,
        b2,
        d_mix: through_mix.w,
    })
}

fn per_edge(data: &[f64]) -> Weights<'_> {
    Weights {
        data,
        paths: P,
        shared_channels: None,
    }
}

/// The same energy in f64 from the f64 references (the oracle of the finite differences).
pub fn energy_f64(m: &Model, s: &System) -> f64 {
    let n = s.positions.len();
    let g = edges(s);
    let d = so3::reference::dim(L);
    let flat: Vec<f64> = g.vectors.iter().flatten().copied().collect();
    let y = so3::reference::spherical_harmonics_f64(&flat, L);
    let weights = |radial: &[f32]| -> Vec<f64> {
        g.vectors
            .iter()
            .flat_map(|v| {
                let (basis, _) = radial_basis(v.iter().map(|a| a * a).sum::<f64>().sqrt());
                (0..C * P).map(move |j| {
                    (0..K)
                        .map(|k| basis[k] * radial[k * C * P + j] as f64)
                        .sum::<f64>()
                })
            })
            .collect()
    };
    let (w1, w2) = (weights(&m.radial[0]), weights(&m.radial[1]));
    let gather = |table: &[f64], width: usize, index: &[u32]| -> Vec<f64> {
        index
            .iter()
            .flat_map(|&v| table[v as usize * width..][..width].to_vec())
            .collect()
    };
    let scatter = |src: &[f64], width: usize| -> Vec<f64> {
        let mut out = vec![0.0; n * width];
        for (edge, &v) in g.receivers.iter().enumerate() {
            for k in 0..width {
                out[v as usize * width + k] += src[edge * width + k];
            }
        }
        out
    };
    let h0: Vec<f64> = s
        .species
        .iter()
        .flat_map(|&z| m.species[z * C..(z + 1) * C].iter().map(|&x| x as f64))
        .collect();
    let table1 = grouped(Coefficients::ClebschGordan, 0, L, L, Grouping::Output);
    let m1 = apply_weighted(
        &table1,
        &gather(&h0, C, &g.senders),
        1,
        &y,
        d,
        C,
        Some(&per_edge(&w1)),
    );
    let big_m1 = scatter(&m1, C * d);
    let mut h1 = vec![0.0; n * C * d];
    for a in 0..n {
        for o in 0..C {
            for index in 0..d {
                let l = (index as f64).sqrt() as usize;
                h1[(a * C + o) * d + index] = (0..C)
                    .map(|i| m.mix[(l * C + i) * C + o] as f64 * big_m1[(a * C + i) * d + index])
                    .sum();
            }
        }
    }
    let table2 = grouped(Coefficients::ClebschGordan, L, L, 0, Grouping::Output);
    let m2 = apply_weighted(
        &table2,
        &gather(&h1, C * d, &g.senders),
        d,
        &y,
        d,
        C,
        Some(&per_edge(&w2)),
    );
    let big_m2 = scatter(&m2, C);
    big_m2
        .chunks(C)
        .map(|row| {
            row.iter()
                .zip(&m.readout)
                .map(|(a, &b)| a * b as f64)
                .sum::<f64>()
        })
        .sum()
}
