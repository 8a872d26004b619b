//! SO(3) on the GPU: edge harmonics in e3nn-jax's basis, a channel-wise Clebsch–Gordan
//! tensor product with the harmonics broadcast over channels (the message of an equivariant
//! network), and a check that it commutes with a rotation.
//!
//! `cargo run --release --example so3`

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wgkernels::compare::relative_error;
use wgkernels::so3::{self, reference};
use wgkernels::Context;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ctx = Context::new()?;
    println!("device: {}", ctx.device_name());
    let mut rng = StdRng::seed_from_u64(11);
    let (edges, channels, l_feat, l_sh, l_out) = (512usize, 8usize, 2usize, 3usize, 4usize);
    let (d_feat, d_sh) = (reference::dim(l_feat), reference::dim(l_sh));
    let vectors: Vec<f32> = (0..3 * edges)
        .map(|_| rng.random_range(-2.0..2.0))
        .collect();
    let features: Vec<f32> = (0..edges * channels * d_feat)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();

    let message = |vectors: &[f32], features: &[f32]| -> wgkernels::Result<Vec<f32>> {
        let y = so3::spherical_harmonics(&ctx, &ctx.tensor(vectors, &[edges, 3])?, l_sh)?;
        let y = y.reshape(&[edges, 1, d_sh])?; // broadcast over channels
        let x = ctx.tensor(features, &[edges, channels, d_feat])?;
        so3::cg_product(&ctx, &x, &y, l_out)?.to_vec()
    };
    let out = message(&vectors, &features)?;
    println!("messages: [{edges}, {channels}, {}]", reference::dim(l_out));

    // Rotate the edges and the features: the messages rotate the same way.
    let rotation =
        so3::Rotation::from_matrix([[0.0, -1.0, 0.0], [0.6, 0.0, -0.8], [0.8, 0.0, 0.6]])?;
    let d = so3::wigner_d(l_out, &rotation)?;
    let rotated_vectors: Vec<f32> = vectors
        .chunks_exact(3)
        .flat_map(|v| {
            reference::rotate_vector(&rotation, &[v[0] as f64, v[1] as f64, v[2] as f64])
                .map(|x| x as f32)
        })
        .collect();
    let wide = |x: &[f32]| x.iter().map(|&v| v as f64).collect::<Vec<f64>>();
    let rotated_features: Vec<f32> = reference::rotate_coefficients(&wide(&features), l_feat, &d)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let out_of_rotated = message(&rotated_vectors, &rotated_features)?;
    let rotated_out = reference::rotate_coefficients(&wide(&out), l_out, &d);
    println!(
        "equivariance: ‖f(Rx) − D(R)f(x)‖/‖·‖ = {:.1e}",
        relative_error(&out_of_rotated, &rotated_out)
    );
    Ok(())
}
