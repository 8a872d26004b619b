//! mfac: the static and block-diagonal inverses (their inverse-Hessian-vector products and
//! diagonals) and the OBS pruning.

use proptest::prelude::*;
use proptest::sample::Index;
use wgkernels::mfac::{self, BlockInverse, StaticInverse};
use wgkernels::Result;

use crate::check::{check, values};
use crate::strategies::{case, dim, near, one_in, Arg, Case, Near, Shape};

/// The damping: 0 one case in 6, else 0.1; shrinks to 0.1.
fn damping() -> impl Strategy<Value = f32> {
    one_in(6).prop_map(|zero| if zero { 0.0 } else { 0.1 })
}

/// Gradients [m, d] and a vector [d] (now and then of one more or less).
fn shapes(m: usize, d: usize, near: Near) -> [Shape; 2] {
    [("grads", vec![m, d]), ("x", vec![near.of(d)])]
}

#[test]
fn mfac_static_inverse() {
    let layout = (dim(), dim(), near(), damping())
        .prop_map(|(m, d, near, damp)| (("damping", damp), shapes(m, d, near)));
    check(case(layout), |p, case| {
        let [grads, x] = &case.args;
        let (_, damp) = case.params;
        p.both("mfac::StaticInverse", case.extreme, &|c| {
            let inverse = StaticInverse::new(c, &grads.on(c)?, damp)?;
            Ok(vec![
                values(inverse.ihvp(&x.on(c)?))?,
                values(inverse.inverse_diagonal())?,
            ])
        })
    });
}

/// The damping and the block size.
#[derive(Clone, Copy, Debug)]
struct Block {
    damp: f32,
    block: usize,
}

#[test]
fn mfac_block_inverse() {
    let layout = (dim(), dim(), near(), damping(), dim())
        .prop_map(|(m, d, near, damp, block)| (Block { damp, block }, shapes(m, d, near)));
    check(case(layout), |p, case| {
        let [grads, x] = &case.args;
        let Block { damp, block } = case.params;
        p.both("mfac::BlockInverse", case.extreme, &|c| {
            let inverse = BlockInverse::new(c, &grads.on(c)?, damp, block)?;
            Ok(vec![
                values(inverse.ihvp(&x.on(c)?))?,
                values(inverse.inverse_diagonal())?,
            ])
        })
    });
}

/// The damping and how many weights go (0..=d + 1).
#[derive(Clone, Copy, Debug)]
struct Prune {
    damp: f32,
    count: usize,
}

#[test]
fn mfac_prune() {
    let layout =
        (dim(), dim(), near(), damping(), any::<Index>()).prop_map(|(m, d, near, damp, count)| {
            let count = count.index(d + 2);
            (Prune { damp, count }, shapes(m, d, near))
        });
    check(case(layout), |p, case: Case<Prune, 2>| {
        let [grads, weights] = &case.args;
        let Prune { damp, count } = case.params;
        // Which weights go depends on the order of their scores: where two are within 1e-4
        // of each other, f32 and f64 may order them differently, so only Ok/Err is compared.
        let extreme = case.extreme || near_tie(p.cpu(), grads, weights, damp).unwrap_or(true);
        p.both("mfac::prune", extreme, &|c| {
            let inverse = StaticInverse::new(c, &grads.on(c)?, damp)?;
            let (pruned, removed) = mfac::prune(&inverse, &weights.on(c)?, count)?;
            let removed = removed.iter().map(|&i| i as f32).collect();
            Ok(vec![pruned.to_vec()?, removed])
        })
    });
}

/// Whether two OBS scores are within 1e-4 of each other (on the CPU path).
fn near_tie(cpu: &wgkernels::Context, grads: &Arg, weights: &Arg, damp: f32) -> Result<bool> {
    let inverse = StaticInverse::new(cpu, &grads.on(cpu)?, damp)?;
    let mut scores = mfac::obs_scores(&inverse, &weights.on(cpu)?)?;
    scores.sort_by(f32::total_cmp);
    Ok(scores
        .windows(2)
        .any(|p| (p[1] - p[0]).abs() <= 1e-4 * p[1].abs().max(1e-30)))
}
