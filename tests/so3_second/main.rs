//! Double backwards of the equivariant blocks (what a force loss needs): each against central
//! finite differences of the f64 backward, then both paths against the f64 reference, with
//! odd channel counts, broadcast x2, shared weights, samples over several bindings and every
//! output poisoned first.
//!
//! Bounds. Finite differences in f64 with step 1e-5: the products and linear are bilinear
//! (their backwards' pairings trilinear), so central differences are exact up to rounding
//! (~1e-10 relative), checked at 1e-8; the harmonics' backward is smooth away from v = 0,
//! central differences err by O(h²·|∂³|) ≈ 1e-9 on vectors of length ≥ 0.3, checked at 1e-6.
//! Device against the f64 reference: the products' terms are the backwards' (1e-5 relative L2
//! there) plus one f32 addition, checked at 1e-5; the harmonics' second derivatives run the
//! recursion twice in f32 with cancelling terms (orthogonal projections), checked at 1e-4.

#[path = "../common/mod.rs"]
mod common;
mod harmonics;
mod linear_graph;
mod products;

use common::{central_differences, wide};
use rand::rngs::StdRng;
use rand::Rng;
use wgkernels::compare::relative_error;
use wgkernels::so3::products::{apply_weighted, grouped, path_gradient, path_table, Grouping};
use wgkernels::so3::{self, reference, Coefficients, GauntMethod};
use wgkernels::{graph, Context, Error, GpuOptions, Tensor};

const FD_BOUND: f64 = 1e-8;
const BOUND: f64 = 1e-5;
const HARMONICS_FD_BOUND: f64 = 1e-6;
const HARMONICS_BOUND: f64 = 1e-4;

fn contexts() -> Vec<Context> {
    [Some(Context::cpu()), common::gpu()]
        .into_iter()
        .flatten()
        .collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn check(label: &str, got: &Tensor, want: &[f64], bound: f64) {
    let got = got.to_vec().unwrap();
    assert_eq!(got.len(), want.len(), "{label}: length");
    assert!(
        got.iter()
            .zip(want)
            .all(|(g, w)| g.is_finite() || !w.is_finite()),
        "{label}: non-finite (an unwritten output?)"
    );
    // Relative to ‖want‖, floored at 1e-2 per element: a sum whose terms (inputs in [-1, 1])
    // cancel to near 0 has an f32 error set by its terms, not by its value, and the forms of
    // a product round their terms differently.
    let floor = 1e-2 * (want.len() as f64).sqrt();
    let norm = want.iter().map(|w| w * w).sum::<f64>().sqrt();
    let diff = got
        .iter()
        .zip(want)
        .map(|(&g, w)| (g as f64 - w).powi(2))
        .sum::<f64>()
        .sqrt();
    let e = diff / norm.max(floor);
    assert!(e < bound, "{label}: relative error {e:e}");
}
