//! Trains the NequIP-style potential of `examples/potential.rs` on energies **and forces**,
//! with the gradient of the force term from the library's double backwards, on the device.
//!
//! Reference data it computes itself in f64: rattled and strained 17-atom fragments of
//! diamond silicon under the Stillinger–Weber potential (a two-body term and a three-body term in the bond angles, so
//! the model must learn angular features), forces by central differences of the f64 energy.
//! The configurations are split into training and held-out sets; Adam minimises
//! `w_E·((E − E_ref)/N)² + w_F·Σ|F − F_ref|²/(3N)` per configuration. It prints and checks the
//! held-out energy MAE and force RMSE before and after, the loss curve (an SVG next to the
//! text), the parameter gradient against central differences of the loss on the f64 CPU path,
//! and the time of one training step against one energy-and-forces evaluation at ~1000 atoms.
//! With `--copper`, it then fits the same model to `data/emt_copper.json` (Cu clusters from
//! ASE's EMT, the file's own held-out split) and reports its held-out errors.
//!
//! `cargo run --release --example potential_train [-- --configs 160 --epochs 30 --copper 3]`

#[path = "common/adam.rs"]
mod adam;
#[path = "common/copper.rs"]
mod copper;
#[path = "common/curves.rs"]
mod curves;
use curves::{flag, plot};
#[path = "common/potential.rs"]
mod potential;

use adam::Adam;
use potential::training::{loss_and_gradient, loss_f64, LossWeights, Step, Targets};
use potential::{energy_and_forces, model, system, Model, System, C, CUTOFF, K, L};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use wgkernels::Context;

/// One configuration with its reference energy (less N times the per-atom reference) and
/// forces.
#[derive(Clone)]
struct Sample {
    system: System,
    energy: f64,
    forces: Vec<[f64; 3]>,
}

/// Stillinger–Weber silicon (Phys. Rev. B 31, 5262), lengths in units of its cutoff a·σ
/// (3.771 Å, so that the model's cutoff of 1 is the potential's), energies in eV:
/// `E = Σ_{i<j} φ₂(r_ij) + Σ_i Σ_{j<k} λε·(cos θ_jik + 1/3)²·e^{γσ/(r_ij − aσ)}·e^{γσ/(r_ik − aσ)}`,
/// `φ₂(r) = Aε·(B·(σ/r)⁴ − 1)·e^{σ/(r − aσ)}` for r < aσ.
fn stillinger_weber(positions: &[[f64; 3]]) -> f64 {
    let (a_coef, b_coef, lambda, gamma, epsilon) = (7.049556277, 0.6022245584, 21.0, 1.2, 2.1683);
    let sigma = 1.0 / 1.8; // σ in units of a·σ
    let cut = 1.0;
    let n = positions.len();
    let vector =
        |i: usize, j: usize| -> [f64; 3] { [0, 1, 2].map(|k| positions[j][k] - positions[i][k]) };
    let length = |v: &[f64; 3]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let mut energy = 0.0;
    for i in 0..n {
        for j in i + 1..n {
            let r = length(&vector(i, j));
            if r < cut {
                energy += a_coef
                    * epsilon
                    * (b_coef * (sigma / r).powi(4) - 1.0)
                    * (sigma / (r - cut)).exp();
            }
        }
        for j in 0..n {
            for k in j + 1..n {
                if j == i || k == i {
                    continue;
                }
                let (vj, vk) = (vector(i, j), vector(i, k));
                let (rj, rk) = (length(&vj), length(&vk));
                if rj < cut && rk < cut {
                    let cos = (0..3).map(|c| vj[c] * vk[c]).sum::<f64>() / (rj * rk);
                    energy += lambda
                        * epsilon
                        * (cos + 1.0 / 3.0).powi(2)
                        * (gamma * sigma / (rj - cut)).exp()
                        * (gamma * sigma / (rk - cut)).exp();
                }
            }
        }
    }
    energy
}

/// A 17-atom fragment of the diamond lattice (an atom, its 4 neighbours, their 12 other
/// neighbours; bonds 2.35 Å = 0.623 a·σ, second neighbours just beyond the cutoff), strained
/// by a random factor in 0.94..1.06 and rattled by Gaussian displacements of `rattle`
/// (in a·σ) per coordinate: the kind of snapshots MD gives.
fn rattled_diamond(rng: &mut StdRng, rattle: f64) -> System {
    let bond = 2.35 / 3.771;
    let t = [
        [1.0, 1.0, 1.0],
        [1.0, -1.0, -1.0],
        [-1.0, 1.0, -1.0],
        [-1.0, -1.0, 1.0],
    ]
    .map(|v: [f64; 3]| v.map(|x| x * bond / 3f64.sqrt()));
    let mut positions = vec![[0.0; 3]];
    positions.extend(t);
    for i in 0..4 {
        for k in (0..4).filter(|&k| k != i) {
            positions.push([0, 1, 2].map(|c| t[i][c] - t[k][c]));
        }
    }
    let strain = rng.random_range(0.94..1.06);
    let mut gaussian = || {
        // Box–Muller.
        let (u, v): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random_range(0.0..1.0));
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    };
    for p in &mut positions {
        *p = p.map(|x| x * strain + rattle * gaussian());
    }
    System {
        species: vec![0; positions.len()],
        positions,
    }
}

/// `f`'s value and its forces `−∂f/∂x` by central differences (step 1e-6).
fn with_forces(system: System, f: impl Fn(&[[f64; 3]]) -> f64) -> Sample {
    let h = 1e-6;
    let forces = (0..system.positions.len())
        .map(|atom| {
            [0, 1, 2].map(|k| {
                let (mut plus, mut minus) = (system.positions.clone(), system.positions.clone());
                plus[atom][k] += h;
                minus[atom][k] -= h;
                -(f(&plus) - f(&minus)) / (2.0 * h)
            })
        })
        .collect();
    Sample {
        energy: f(&system.positions),
        forces,
        system,
    }
}

/// The per-atom reference energy (the training set's mean E/N), taken off every energy: the
/// model has no constant term.
fn shift_energies(train: &mut [Sample], test: &mut [Sample]) -> f64 {
    let per_atom = train
        .iter()
        .map(|s| s.energy / s.system.positions.len() as f64)
        .sum::<f64>()
        / train.len() as f64;
    for s in train.iter_mut().chain(test.iter_mut()) {
        s.energy -= per_atom * s.system.positions.len() as f64;
    }
    per_atom
}

/// Held-out energy MAE per atom and force RMSE (per component).
fn errors(ctx: &Context, m: &Model, samples: &[Sample]) -> wgkernels::Result<(f64, f64)> {
    let (mut energy, mut force, mut components) = (0.0, 0.0, 0usize);
    for s in samples {
        let (e, f) = energy_and_forces(ctx, m, &s.system)?;
        energy += ((e - s.energy) / s.system.positions.len() as f64).abs();
        for (a, b) in f.iter().flatten().zip(s.forces.iter().flatten()) {
            force += (a - b).powi(2);
            components += 1;
        }
    }
    Ok((
        energy / samples.len() as f64,
        (force / components as f64).sqrt(),
    ))
}

/// The same errors for the trivial model: the per-atom reference energy (0 after the shift)
/// and zero forces — the scale the fitted errors are read against.
fn trivial_errors(samples: &[Sample]) -> (f64, f64) {
    let energy = samples
        .iter()
        .map(|s| (s.energy / s.system.positions.len() as f64).abs())
        .sum::<f64>()
        / samples.len() as f64;
    let forces: Vec<f64> = samples
        .iter()
        .flat_map(|s| s.forces.iter().flatten().copied())
        .collect();
    let rms = (forces.iter().map(|f| f * f).sum::<f64>() / forces.len() as f64).sqrt();
    (energy, rms)
}

fn targets(s: &Sample) -> Targets<'_> {
    Targets {
        energy: s.energy,
        forces: &s.forces,
    }
}

/// One epoch of Adam over `train` in batches of `batch` configurations; the mean loss.
fn epoch(
    ctx: &Context,
    (m, optimisers, t): (&mut Model, &mut [Adam; 5], &mut usize),
    (train, batch, lr, weights): (&[Sample], usize, f32, LossWeights),
    rng: &mut StdRng,
) -> wgkernels::Result<f64> {
    let mut order: Vec<usize> = (0..train.len()).collect();
    order.shuffle(rng);
    let mut total = 0.0;
    for chunk in order.chunks(batch) {
        let mut sum: Option<Model> = None;
        for &i in chunk {
            let Step { loss, gradient, .. } =
                loss_and_gradient(ctx, m, &train[i].system, &targets(&train[i]), weights)?;
            total += loss;
            match &mut sum {
                None => sum = Some(gradient),
                Some(acc) => {
                    for (a, g) in acc.parameters_mut().into_iter().zip(gradient.parameters()) {
                        a.iter_mut().zip(g).for_each(|(a, g)| *a += g);
                    }
                }
            }
        }
        let sum = sum.expect("a non-empty batch");
        *t += 1;
        let scale = 1.0 / chunk.len() as f32;
        for ((param, grad), adam) in m
            .parameters_mut()
            .into_iter()
            .zip(sum.parameters())
            .zip(optimisers.iter_mut())
        {
            let grad: Vec<f32> = grad.iter().map(|g| g * scale).collect();
            adam.step(param, &grad, *t, lr);
        }
    }
    Ok(total / train.len() as f64)
}

/// The parameter gradient on the device against central differences (step 1e-3) of the loss
/// on the f64 CPU path, over 16 parameters drawn at random; their relative L2 gap.
fn gradient_check(ctx: &Context, m: &Model, sample: &Sample, weights: LossWeights) -> f64 {
    let step = loss_and_gradient(ctx, m, &sample.system, &targets(sample), weights)
        .expect("a training step");
    let mut rng = StdRng::seed_from_u64(5);
    let (mut got, mut want) = (Vec::new(), Vec::new());
    for _ in 0..16 {
        let which = rng.random_range(0..5);
        let index = rng.random_range(0..m.parameters()[which].len());
        let h = 1e-3;
        let at = |delta: f32| {
            let mut shifted = m.clone();
            shifted.parameters_mut()[which][index] += delta;
            loss_f64(&shifted, &sample.system, &targets(sample), weights)
        };
        want.push((at(h) - at(-h)) / (2.0 * h as f64));
        got.push(step.gradient.parameters()[which][index] as f64);
    }
    let gap = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f64>()
        .sqrt();
    gap / want.iter().map(|b| b * b).sum::<f64>().sqrt()
}

/// A fit's training loss and held-out force RMSE per epoch, and its held-out (energy MAE,
/// force RMSE) before and after.
type Fitted = (Vec<f64>, Vec<f64>, [(f64, f64); 2]);

/// Trains `m` on `train` for `epochs`, printing the held-out errors each epoch; the curves.
#[allow(clippy::too_many_arguments)]
fn fit(
    ctx: &Context,
    m: &mut Model,
    (train, test): (&[Sample], &[Sample]),
    epochs: usize,
    (batch, lr): (usize, f32),
    weights: LossWeights,
    unit: (&str, &str),
    rng: &mut StdRng,
) -> wgkernels::Result<Fitted> {
    let mut optimisers = std::array::from_fn(|i| Adam::new(m.parameters()[i].len()));
    let mut t = 0;
    let before = errors(ctx, m, test)?;
    let trivial = trivial_errors(test);
    println!(
        "held-out errors of a constant energy and zero forces: energy MAE {:.4} {}/atom, \
         force RMSE {:.4} {}",
        trivial.0, unit.0, trivial.1, unit.1
    );
    println!(
        "epoch  0: held-out energy MAE {:.4} {}/atom, force RMSE {:.4} {}",
        before.0, unit.0, before.1, unit.1
    );
    let (mut losses, mut rmse) = (vec![f64::NAN], vec![before.1]);
    let start = std::time::Instant::now();
    for e in 1..=epochs {
        // Cosine decay of the learning rate over the epochs.
        let rate = lr * 0.5 * (1.0 + (std::f32::consts::PI * (e - 1) as f32 / epochs as f32).cos());
        let loss = epoch(
            ctx,
            (m, &mut optimisers, &mut t),
            (train, batch, rate, weights),
            rng,
        )?;
        let now = errors(ctx, m, test)?;
        println!(
            "epoch {e:2}: training loss {loss:.4e}; held-out energy MAE {:.4} {}/atom, force RMSE {:.4} {} ({:.0} s)",
            now.0,
            unit.0,
            now.1,
            unit.1,
            start.elapsed().as_secs_f64()
        );
        losses.push(loss);
        rmse.push(now.1);
    }
    let after = errors(ctx, m, test)?;
    Ok((losses, rmse, [before, after]))
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let ctx = Context::new()?;
    let mut rng = StdRng::seed_from_u64(29);
    let (configs, epochs) = (flag("--configs", 160), flag("--epochs", 30));
    // Thermal-like displacements: --rattle in thousandths of a·σ (default 0.04 = 0.15 Å).
    let rattle = flag("--rattle", 40) as f64 * 1e-3;
    println!(
        "device: {}; model: {C} channels, l ≤ {L}, {K} radial functions, cutoff {CUTOFF}",
        ctx.device_name()
    );

    // Stillinger–Weber silicon clusters, 80 % for training, 20 % held out.
    let clock = std::time::Instant::now();
    let mut samples: Vec<Sample> = (0..configs)
        .map(|_| with_forces(rattled_diamond(&mut rng, rattle), stillinger_weber))
        .collect();
    let mut test = samples.split_off(configs * 4 / 5);
    let per_atom = shift_energies(&mut samples, &mut test);
    let train = samples;
    println!(
        "Stillinger–Weber Si: {} training and {} held-out rattled 17-atom diamond fragments \
         (rattle {rattle} a·σ; f64 reference in {:.1} s; per-atom reference energy {per_atom:.4} eV)",
        train.len(),
        test.len(),
        clock.elapsed().as_secs_f64()
    );

    let mut m = model(&mut rng);
    let weights = LossWeights {
        energy: 100.0,
        forces: 1.0,
    };
    let gap = gradient_check(&ctx, &m, &train[0], weights);
    println!("parameter gradient vs central differences of the f64 loss: relative gap {gap:.1e}");
    assert!(
        gap < 1e-2,
        "the loss's gradient disagrees with its finite differences"
    );

    let (losses, rmse, [before, after]) = fit(
        &ctx,
        &mut m,
        (&train, &test),
        epochs,
        (flag("--batch", 2), 0.01),
        weights,
        ("eV", "eV/(a·σ)"),
        &mut rng,
    )?;
    println!(
        "held-out: energy MAE {:.4} → {:.4} eV/atom ({:.1}× lower), force RMSE {:.4} → {:.4} eV/(a·σ) ({:.1}× lower)",
        before.0,
        after.0,
        before.0 / after.0,
        before.1,
        after.1,
        before.1 / after.1
    );
    let path = "docs/potential_train.svg";
    plot(
        path,
        "potential_train: training loss and held-out force RMSE per epoch (log scale)",
        "epoch (0 = before training)",
        &[
            ("training loss", "#1f77b4", losses),
            ("held-out force RMSE", "#d62728", rmse),
        ],
    )?;
    println!("loss curve: {path}");
    if epochs >= 10 {
        assert!(
            before.1 / after.1 > 3.0 && before.0 / after.0 > 3.0,
            "training did not cut the held-out errors by 3×"
        );
    }

    // One training step against one energy-and-forces evaluation at ~1000 atoms.
    let large = system(&mut rng, 1000, 30.0);
    let edges = potential::edges(&large).senders.len();
    let zeros = vec![[0.0; 3]; 1000];
    let target = Targets {
        energy: 0.0,
        forces: &zeros,
    };
    loss_and_gradient(&ctx, &m, &large, &target, weights)?; // compile pipelines, upload tables
    let time = |f: &mut dyn FnMut() -> wgkernels::Result<()>| -> wgkernels::Result<f64> {
        let clock = std::time::Instant::now();
        for _ in 0..3 {
            f()?;
        }
        Ok(clock.elapsed().as_secs_f64() / 3.0)
    };
    let evaluation = time(&mut || energy_and_forces(&ctx, &m, &large).map(drop))?;
    let step = time(&mut || loss_and_gradient(&ctx, &m, &large, &target, weights).map(drop))?;
    println!(
        "1000 atoms, {edges} edges: energy + forces {:.1} ms, training step (with the force \
         term's second derivatives) {:.1} ms: {:.2}× (goal ≤ 3×)",
        evaluation * 1e3,
        step * 1e3,
        step / evaluation
    );

    let copper_epochs = flag("--copper", 0);
    if copper_epochs > 0 {
        fit_copper(&ctx, copper_epochs, &mut rng)?;
    }
    Ok(())
}

/// The same model fitted to Cu clusters from ASE's EMT (data/emt_copper.json: Å, eV), lengths
/// scaled by its 5 Å cutoff hint; the file's last `test` configurations are held out.
fn fit_copper(
    ctx: &Context,
    epochs: usize,
    rng: &mut StdRng,
) -> Result<(), Box<dyn std::error::Error>> {
    let copper = copper::load()?;
    let scale = 1.0 / copper.unit_angstrom;
    let sample = |c: copper::Cluster| Sample {
        energy: c.energy,
        forces: c.forces,
        system: System {
            species: vec![0; c.positions.len()],
            positions: c.positions,
        },
    };
    let mut samples: Vec<Sample> = copper.train.into_iter().map(sample).collect();
    let mut test: Vec<Sample> = copper.test.into_iter().map(sample).collect();
    let per_atom = shift_energies(&mut samples, &mut test);
    println!(
        "\nEMT copper: {} training and {} held-out clusters of 38–55 atoms (per-atom reference {per_atom:.4} eV)",
        samples.len(),
        test.len()
    );
    let mut m = model(rng);
    let weights = LossWeights {
        energy: 100.0,
        forces: 1.0,
    };
    let (_, _, [before, after]) = fit(
        ctx,
        &mut m,
        (&samples, &test),
        epochs,
        (4, 0.01),
        weights,
        ("eV", "eV/(5 Å)"),
        rng,
    )?;
    println!(
        "EMT copper held-out: energy MAE {:.4} → {:.4} eV/atom, force RMSE {:.4} → {:.4} eV/Å",
        before.0,
        after.0,
        before.1 * scale,
        after.1 * scale
    );
    Ok(())
}
