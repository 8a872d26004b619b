//! SO(3) rows: spherical harmonics at lmax 2, 4, 6, 8 for 4096 vectors.

use rand::rngs::StdRng;
use wgkernels::bench::time_calls;
use wgkernels::compare::{max_abs_error, relative_error};
use wgkernels::so3::{self, reference};
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
    Ok(())
}
