//! OBS saliency and pruning under a [`StaticInverse`] (the M-FAC reference's `prun.py`).

use super::StaticInverse;
use crate::{Error, Result, Tensor};

/// `Err` unless `weights` is `[d]` on the inverse's context.
fn check_weights(op: &'static str, inverse: &StaticInverse, weights: &Tensor) -> Result<()> {
    let d = inverse.dimension();
    inverse.context().check_owns(op, "weights", weights)?;
    if weights.shape() != [d] {
        return Err(Error::Shape {
            op,
            message: format!("`weights` must be [d] = [{d}], got {:?}", weights.shape()),
        });
    }
    Ok(())
}

/// OBS saliency of every weight under a static inverse: `ρ_k = w_k² / (2·[F⁻¹]_kk)`.
pub fn obs_scores(inverse: &StaticInverse, weights: &Tensor) -> Result<Vec<f32>> {
    let _call = crate::call::Call::enter("mfac::obs_scores");
    check_weights("mfac::obs_scores", inverse, weights)?;
    let (diagonal, w) = (inverse.inverse_diagonal()?.to_vec()?, weights.to_vec()?);
    Ok(scores(&w, &diagonal))
}

/// `ρ_k = w_k² / (2·[F⁻¹]_kk)` of weights and the inverse diagonal read back.
fn scores(w: &[f32], diagonal: &[f32]) -> Vec<f32> {
    w.iter()
        .zip(diagonal)
        .map(|(&w, &h)| ((w as f64).powi(2) / (2.0 * h as f64)) as f32)
        .collect()
}

/// One OBS pruning step, as the reference code does it: the `count` nonzero weights of
/// lowest [`obs_scores`] are removed and the rest corrected by `δw = F⁻¹·t`,
/// `t_k = −w_k/[F⁻¹]_kk` on the removed k (each removal's own correction, summed); removed
/// weights, and weights that were already 0, are 0 afterwards. Returns the new weights and
/// the removed indices (ascending score).
///
/// Summing single-weight corrections is accurate while the removed weights are few and
/// weakly coupled through F⁻¹; prune gradually (several small steps), as the paper does —
/// `examples/mfac.rs` shows one step of many weights overshooting.
pub fn prune(
    inverse: &StaticInverse,
    weights: &Tensor,
    count: usize,
) -> Result<(Tensor, Vec<usize>)> {
    const OP: &str = "mfac::prune";
    let _call = crate::call::Call::enter(OP);
    let (ctx, d) = (inverse.context(), inverse.dimension());
    if count > d {
        return Err(Error::InvalidArgument {
            op: OP,
            arg: "count",
            message: format!("is {count}, more than the d = {d} weights"),
        });
    }
    check_weights(OP, inverse, weights)?;
    // One read of each of the diagonal and the weights, one upload each of t and the result.
    let (diagonal, w) = (inverse.inverse_diagonal()?.to_vec()?, weights.to_vec()?);
    let scores = scores(&w, &diagonal);
    let mut order: Vec<usize> = (0..d).filter(|&k| w[k] != 0.0).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    order.truncate(count);
    let mut t = vec![0.0f32; d];
    for &k in &order {
        t[k] = -w[k] / diagonal[k];
    }
    let correction = inverse.ihvp(&ctx.tensor(&t, &[d])?)?.to_vec()?;
    let mut pruned: Vec<f32> = w
        .iter()
        .zip(&correction)
        .map(|(&w, c)| if w == 0.0 { 0.0 } else { w + c })
        .collect();
    for &k in &order {
        pruned[k] = 0.0;
    }
    Ok((ctx.tensor(&pruned, &[d])?, order))
}
