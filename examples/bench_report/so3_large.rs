//! SO(3) products past the default written-out limit: CG and direct Gaunt at 0..L ⊗ 0..L →
//! 0..L (L = 5, 6, 7) and → 0..10 (L = 5) with `GpuOptions::unrolled_max_terms` raised, so
//! that their tables are written out, against the form the default limit runs in the same run
//! (a looping form past 4096 terms); the first call's time (the compile) in the notes.

use std::time::Instant;

use rand::rngs::StdRng;
use wgkernels::bench::time_calls;
use wgkernels::compare::{max_abs_error, relative_error};
use wgkernels::so3::products::{apply, product_table};
use wgkernels::so3::{self, reference, Coefficients, GauntMethod};
use wgkernels::{Context, GpuOptions, Result, Tuning};

use crate::report::{Bound, Report, Row};
use crate::so3::{setting_shape, wide};
use crate::uniform;

/// Above the largest table here (CG 0..7: 23 902 terms).
const RAISED: usize = 30_000;

pub fn rows(ctx: &Context, rng: &mut StdRng, report: &mut Report) -> Result<()> {
    if !ctx.is_gpu() {
        return Ok(());
    }
    let raised = Context::gpu_with(GpuOptions {
        tuning: Tuning::Force("unrolled".into()),
        unrolled_max_terms: RAISED,
        ..Default::default()
    })?;
    let (n, c) = (1024usize, 4usize);
    for (l, lout) in [(5usize, 5usize), (6, 6), (7, 7), (5, 10)] {
        let (d, d3) = (reference::dim(l), reference::dim(lout));
        let (x1, x2) = (uniform(rng, n * c * d), uniform(rng, n * c * d));
        for kind in [Coefficients::ClebschGordan, Coefficients::Gaunt] {
            let table = product_table(kind, l, l, lout);
            let want = apply(&table, &wide(&x1), d, &wide(&x2), d, 1);
            let call = |on: &Context| -> Result<wgkernels::Tensor> {
                let (t1, t2) = (on.tensor(&x1, &[n, c, d])?, on.tensor(&x2, &[n, c, d])?);
                match kind {
                    Coefficients::ClebschGordan => so3::cg_product(on, &t1, &t2, lout),
                    Coefficients::Gaunt => {
                        so3::gaunt_product(on, &t1, &t2, lout, GauntMethod::Direct)
                    }
                }
            };
            // The first call writes the table out and compiles it (Mesa caches it on disk:
            // a later process pays far less; MESA_SHADER_CACHE_DIR at an empty folder
            // measures a cold compile).
            let start = Instant::now();
            let got = call(&raised)?.to_vec()?;
            let first = start.elapsed().as_secs_f64() * 1e3;
            let timing = time_calls(&raised, 1.0, || call(&raised).map(drop))?;
            let looping = time_calls(ctx, 1.0, || call(ctx).map(drop))?;
            let terms = table.terms.len();
            let name = match kind {
                Coefficients::ClebschGordan => "so3::cg_product",
                Coefficients::Gaunt => "so3::gaunt_product (Direct)",
            };
            report.push(Row {
                kernel: format!("{name}, unrolled_max_terms {RAISED}"),
                shape: setting_shape(n * c, l, lout),
                timing,
                bytes: ((2 * d + d3) * n * c * 4) as f64,
                flops: (n * c * terms * 3) as f64,
                bound: Bound::Compute,
                baseline: Some(("the default limit's form".into(), looping.median)),
                error: Some((relative_error(&got, &want), max_abs_error(&got, &want))),
                form: "unrolled".into(),
                notes: format!("{terms} nonzero coefficients; first call {first:.0} ms (compile)"),
            });
        }
    }
    Ok(())
}
