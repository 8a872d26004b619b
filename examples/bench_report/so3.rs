//! SO(3) rows: spherical harmonics at lmax 2, 4, 6, 8 for 4096 vectors.

use rand::rngs::StdRng;
use wgkernels::bench::time_calls;
use wgkernels::compare::{max_abs_error, relative_error};
use wgkernels::so3::products::{apply, product_table};
use wgkernels::so3::{self, reference, Coefficients, GauntMethod};
use wgkernels::{Context, Result};

use crate::report::{Bound, Report, Row};
use crate::uniform;

pub fn rows(ctx: &Context, rng: &mut StdRng, report: &mut Report) -> Result<()> {
    let n = 4096;
    let v = uniform(rng, 3 * n);
    let tv = ctx.tensor(&v, &[n, 3])?;
    for lmax in [2usize, 4, 6, 8] {
        let d = reference::dim(lmax);
        let timing = time_calls(ctx, 1.0, || {
            so3::spherical_harmonics(ctx, &tv, lmax).map(drop)
        })?;
        let got = so3::spherical_harmonics(ctx, &tv, lmax)?.to_vec()?;
        let want = reference::spherical_harmonics(&v, lmax);
        // nonzero recursion coefficients: one multiply-add pair each, per vector
        let nonzeros: usize = (2..=lmax)
            .map(|l| {
                so3::clebsch_gordan(l - 1, 1, l)
                    .map_or(0, |c| c.iter().filter(|x| **x != 0.0).count())
            })
            .sum();
        report.push(Row {
            kernel: "so3::spherical_harmonics".into(),
            shape: format!("n={n}, lmax={lmax}"),
            timing,
            bytes: (n * (3 + d) * 4) as f64,
            flops: (n * 3 * nonzeros) as f64,
            bound: Bound::Memory,
            baseline: None,
            error: Some((relative_error(&got, &want), max_abs_error(&got, &want))),
            notes: format!("{nonzeros} nonzero CG coefficients in the recursion"),
        });
    }
    products(ctx, rng, report)
}

/// CG and direct Gaunt products, 0..L ⊗ 0..L → 0..L (the third setting of The Price of
/// Freedom, restricted to l ≤ L), n·c = 4096.
fn products(ctx: &Context, rng: &mut StdRng, report: &mut Report) -> Result<()> {
    let (n, c) = (1024usize, 4usize);
    for l in [2usize, 4, 6, 8] {
        let d = reference::dim(l);
        let (x1, x2) = (uniform(rng, n * c * d), uniform(rng, n * c * d));
        let (t1, t2) = (ctx.tensor(&x1, &[n, c, d])?, ctx.tensor(&x2, &[n, c, d])?);
        let wide = |x: &[f32]| x.iter().map(|&v| v as f64).collect::<Vec<f64>>();
        let mut cg_time = None;
        for kind in [Coefficients::ClebschGordan, Coefficients::Gaunt] {
            let table = product_table(kind, l, l, l);
            let call = || match kind {
                Coefficients::ClebschGordan => so3::cg_product(ctx, &t1, &t2, l),
                Coefficients::Gaunt => so3::gaunt_product(ctx, &t1, &t2, l, GauntMethod::Direct),
            };
            let timing = time_calls(ctx, 1.0, || call().map(drop))?;
            let got = call()?.to_vec()?;
            let want = apply(&table, &wide(&x1), d, &wide(&x2), d, 1);
            let name = match kind {
                Coefficients::ClebschGordan => "so3::cg_product",
                Coefficients::Gaunt => "so3::gaunt_product (Direct)",
            };
            report.push(Row {
                kernel: name.into(),
                shape: format!("n·c={}, 0..{l}⊗0..{l}→0..{l}", n * c),
                timing,
                bytes: (3 * n * c * d * 4) as f64,
                flops: (n * c * table.terms.len() * 3) as f64, // two multiplies and an add per term
                bound: Bound::Compute,
                baseline: cg_time.map(|t| ("cg_product".to_string(), t)),
                error: Some((relative_error(&got, &want), max_abs_error(&got, &want))),
                notes: format!("{} nonzero coefficients", table.terms.len()),
            });
            cg_time.get_or_insert(timing.median);
        }
    }
    Ok(())
}
