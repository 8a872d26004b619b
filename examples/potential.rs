//! A small NequIP-style interatomic potential with forces on the device: atoms in a box, a
//! cutoff radius graph built on the CPU, edge vectors → spherical harmonics → a weighted
//! Clebsch–Gordan product of gathered neighbour features with per-edge weights from a radial
//! basis → `scatter_sum` → `linear`, twice, then a scalar energy per atom. Forces are
//! `−∂E/∂positions`, by chaining the backwards on the device.
//!
//! It checks the forces against central finite differences of an f64 evaluation of the same
//! energy, that the energy is invariant and the forces rotate under a random rotation, and
//! times one energy-and-forces evaluation at ~1000 atoms / ~30 000 edges.
//!
//! `cargo run --release --example potential`

#[path = "common/potential.rs"]
mod potential;

use potential::{edges, energy_and_forces, energy_f64, model, system, System, C, CUTOFF, K, L};
use rand::rngs::StdRng;
use rand::SeedableRng;
use wgkernels::so3::Rotation;
use wgkernels::Context;

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let ctx = Context::new()?;
    let mut rng = StdRng::seed_from_u64(17);
    let m = model(&mut rng);
    println!(
        "device: {}; {C} channels, l ≤ {L}, {K} radial functions, cutoff {CUTOFF}",
        ctx.device_name()
    );

    // Forces against central finite differences of the f64 energy, on a small system.
    let small = system(&mut rng, 24, 8.0);
    let (_, forces) = energy_and_forces(&ctx, &m, &small)?;
    let h = 1e-5;
    let mut worst: f64 = 0.0;
    let scale = forces.iter().flatten().map(|f| f * f).sum::<f64>().sqrt();
    for (atom, force) in forces.iter().enumerate() {
        for (k, f) in force.iter().enumerate() {
            let (mut plus, mut minus) = (small.clone(), small.clone());
            plus.positions[atom][k] += h;
            minus.positions[atom][k] -= h;
            let fd = -(energy_f64(&m, &plus) - energy_f64(&m, &minus)) / (2.0 * h);
            worst = worst.max((f - fd).abs() / scale);
        }
    }
    println!(
        "{} atoms, {} edges: forces vs finite differences of the f64 energy: largest gap {worst:.1e} of ‖F‖",
        small.positions.len(),
        edges(&small).senders.len()
    );
    assert!(
        worst < 1e-4,
        "forces disagree with the energy's finite differences"
    );
    let (_, cpu_forces) = energy_and_forces(&Context::cpu(), &m, &small)?;
    let path_gap = forces
        .iter()
        .flatten()
        .zip(cpu_forces.iter().flatten())
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f64>()
        .sqrt()
        / scale;
    println!("the CPU path's forces: {path_gap:.1e} of ‖F‖ from the device's");
    assert!(path_gap < 1e-4, "the two paths disagree");

    // Invariance and equivariance under a random rotation.
    let rotation = Rotation::from_axis_angle([0.3, -0.5, 0.8], 1.1)?;
    let rotated = System {
        positions: small.positions.iter().map(|p| rotation.apply(*p)).collect(),
        species: small.species.clone(),
    };
    let (e0, f0) = energy_and_forces(&ctx, &m, &small)?;
    let (e1, f1) = energy_and_forces(&ctx, &m, &rotated)?;
    let energy_gap = ((e1 - e0) / e0).abs();
    let force_gap = f0
        .iter()
        .zip(&f1)
        .map(|(a, b)| {
            let ra = rotation.apply(*a);
            (0..3).map(|k| (ra[k] - b[k]).powi(2)).sum::<f64>()
        })
        .sum::<f64>()
        .sqrt()
        / scale;
    println!("rotated: energy {e0:.6} → {e1:.6} (relative {energy_gap:.1e}); forces R·F vs F(R·x): {force_gap:.1e} of ‖F‖");
    assert!(
        energy_gap < 1e-5 && force_gap < 1e-4,
        "not invariant / equivariant"
    );

    // One energy-and-forces evaluation at ~1000 atoms.
    let large = system(&mut rng, 1000, 38.0);
    energy_and_forces(&ctx, &m, &large)?; // compile the pipelines, upload the tables
    let clock = std::time::Instant::now();
    let (energy, forces) = energy_and_forces(&ctx, &m, &large)?;
    let seconds = clock.elapsed().as_secs_f64();
    let net: [f64; 3] = [0, 1, 2].map(|k| forces.iter().map(|f| f[k]).sum::<f64>());
    println!(
        "{} atoms, {} edges: energy {energy:.4}, one energy + forces in {:.1} ms (graph built on the CPU included); \
         net force {:.1e} (Newton's third law)",
        large.positions.len(),
        edges(&large).senders.len(),
        seconds * 1e3,
        net.iter().map(|x| x * x).sum::<f64>().sqrt()
    );
    Ok(())
}
