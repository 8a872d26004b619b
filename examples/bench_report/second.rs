//! Rows of the double backwards (what a force loss needs), each timed beside the backward it
//! differentiates, in the same run: the harmonics at 4096 vectors, the CG product and the
//! Gaunt product's Grid route at n·c = 4096, the weighted product with per-edge weights and a
//! broadcast x2, and so3::linear. Goal (issue 30): each ≤ 2.5× its backward.

use rand::rngs::StdRng;
use wgkernels::bench::{time_calls, Timing};
use wgkernels::compare::{max_abs_error, relative_error};
use wgkernels::so3::{self, reference, GauntMethod};
use wgkernels::{Context, Result, Tensor};

use crate::report::{Bound, Report, Row};
use crate::uniform;

pub fn rows(ctx: &Context, rng: &mut StdRng, report: &mut Report) -> Result<()> {
    harmonics(ctx, rng, report)?;
    products(ctx, rng, report)?;
    linear(ctx, rng, report)
}

/// A tensor of `shape` and its values.
fn random(ctx: &Context, rng: &mut StdRng, shape: &[usize]) -> Result<(Tensor, Vec<f32>)> {
    let v = uniform(rng, shape.iter().product());
    Ok((ctx.tensor(&v, shape)?, v))
}

/// A double backward's row: its time over its backward's, and bytes read and written once.
fn push(
    report: &mut Report,
    (kernel, shape): (&str, String),
    [timing, backward]: [Timing; 2],
    bytes: usize,
    error: Option<(f64, f64)>,
    what: &str,
) {
    report.push(Row {
        kernel: kernel.into(),
        shape,
        timing,
        bytes: bytes as f64 * 4.0,
        flops: 0.0,
        bound: Bound::Memory,
        baseline: None,
        error,
        form: String::new(),
        notes: format!(
            "{:.2}× its backward (goal ≤ 2.5×){what}",
            timing.median / backward.median
        ),
    });
}

fn harmonics(ctx: &Context, rng: &mut StdRng, report: &mut Report) -> Result<()> {
    let n = 4096;
    let (tv, v) = random(ctx, rng, &[n, 3])?;
    let (tdd, dd) = random(ctx, rng, &[n, 3])?;
    for lmax in [2usize, 4, 8] {
        let d = reference::dim(lmax);
        let (tg, g) = random(ctx, rng, &[n, d])?;
        let backward = time_calls(ctx, 1.0, || {
            so3::spherical_harmonics_backward(ctx, &tv, lmax, &tg).map(drop)
        })?;
        let second = || so3::spherical_harmonics_double_backward(ctx, &tv, lmax, &tg, &tdd);
        let timing = time_calls(ctx, 1.0, || second().map(drop))?;
        let got = second()?.vectors.to_vec()?;
        let [want, _] = reference::spherical_harmonics_double_backward(&v, lmax, &g, &dd);
        push(
            report,
            (
                "so3::spherical_harmonics_double_backward",
                format!("n={n}, lmax={lmax}"),
            ),
            [timing, backward],
            n * (3 + d + 3 + 3 + d),
            Some((relative_error(&got, &want), max_abs_error(&got, &want))),
            "; error of ∂vectors",
        );
    }
    Ok(())
}

fn products(ctx: &Context, rng: &mut StdRng, report: &mut Report) -> Result<()> {
    let (n, c) = (1024usize, 4usize);
    for l in [2usize, 4] {
        let d = reference::dim(l);
        let shape = [n, c, d];
        let [x1, x2, g, dd1, dd2] = [0; 5].map(|_| random(ctx, rng, &shape).map(|t| t.0));
        let (x1, x2, g) = (x1?, x2?, g?);
        let dd = so3::ProductGrads { x1: dd1?, x2: dd2? };
        for (kernel, method) in [
            ("so3::cg_product_double_backward", None),
            (
                "so3::gaunt_product_double_backward (Grid)",
                Some(GauntMethod::Grid),
            ),
        ] {
            let backward = time_calls(ctx, 1.0, || match method {
                None => so3::cg_product_backward(ctx, &x1, &x2, l, &g).map(drop),
                Some(m) => so3::gaunt_product_backward(ctx, &x1, &x2, l, m, &g).map(drop),
            })?;
            let timing = time_calls(ctx, 1.0, || match method {
                None => so3::cg_product_double_backward(ctx, &x1, &x2, l, &g, &dd).map(drop),
                Some(m) => {
                    so3::gaunt_product_double_backward(ctx, &x1, &x2, l, m, &g, &dd).map(drop)
                }
            })?;
            let shape = format!("n·c={}, 0..{l}⊗0..{l}→0..{l}", n * c);
            push(
                report,
                (kernel, shape),
                [timing, backward],
                8 * n * c * d,
                None,
                "",
            );
        }
    }
    let (n, c, l) = (4096usize, 8usize, 2usize);
    let d = reference::dim(l);
    let count = so3::paths(l, l, l).len();
    let (x1, _) = random(ctx, rng, &[n, c, d])?;
    let (x2, _) = random(ctx, rng, &[n, 1, d])?;
    let (w, _) = random(ctx, rng, &[n, c, count])?;
    let (g, _) = random(ctx, rng, &[n, c, d])?;
    let dd = so3::WeightedGrads {
        x1: random(ctx, rng, &[n, c, d])?.0,
        x2: random(ctx, rng, &[n, 1, d])?.0,
        weights: random(ctx, rng, &[n, c, count])?.0,
    };
    let backward = time_calls(ctx, 1.0, || {
        so3::weighted_cg_product_backward(ctx, &x1, &x2, &w, l, &g).map(drop)
    })?;
    let timing = time_calls(ctx, 1.0, || {
        so3::weighted_cg_product_double_backward(ctx, &x1, &x2, &w, l, &g, &dd).map(drop)
    })?;
    push(
        report,
        (
            "so3::weighted_cg_product_double_backward",
            format!("n={n} edges, c={c}, 0..{l}⊗0..{l}→0..{l}, x2 [n,1,·]"),
        ),
        [timing, backward],
        n * (6 * c * d + 4 * d + 4 * c * count),
        None,
        "",
    );
    Ok(())
}

fn linear(ctx: &Context, rng: &mut StdRng, report: &mut Report) -> Result<()> {
    let (n, c_in, c_out, lmax) = (1000usize, 32usize, 32usize, 2usize);
    let d = reference::dim(lmax);
    let (x, _) = random(ctx, rng, &[n, c_in, d])?;
    let (w, _) = random(ctx, rng, &[lmax + 1, c_in, c_out])?;
    let (g, _) = random(ctx, rng, &[n, c_out, d])?;
    let dd = so3::LinearGrads {
        x: random(ctx, rng, &[n, c_in, d])?.0,
        w: random(ctx, rng, &[lmax + 1, c_in, c_out])?.0,
    };
    let backward = time_calls(ctx, 1.0, || so3::linear_backward(ctx, &x, &w, &g).map(drop))?;
    let timing = time_calls(ctx, 1.0, || {
        so3::linear_double_backward(ctx, &x, &w, &g, &dd).map(drop)
    })?;
    push(
        report,
        (
            "so3::linear_double_backward",
            format!("n={n}, {c_in}→{c_out} channels, lmax={lmax}"),
        ),
        [timing, backward],
        n * d * (2 * c_in + 2 * c_out),
        None,
        "",
    );
    Ok(())
}
