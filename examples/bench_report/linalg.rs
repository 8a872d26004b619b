//! GEMM rows: the tiled kernel against the naive one-output-per-thread kernel.

use rand::rngs::StdRng;
use wgkernels::bench::time_calls;
use wgkernels::compare::{max_abs_error, relative_error};
use wgkernels::linalg::{self, reference, Gemm};
use wgkernels::{Context, Result};

use crate::report::{Bound, Report, Row};
use crate::uniform;

pub fn rows(ctx: &Context, rng: &mut StdRng, report: &mut Report) -> Result<()> {
    for size in [256usize, 1024] {
        let (m, k, n) = (size, size, size);
        let (a, b) = (uniform(rng, m * k), uniform(rng, k * n));
        let (ta, tb) = (ctx.tensor(&a, &[m, k])?, ctx.tensor(&b, &[k, n])?);
        let g = Gemm::of("bench", &[m, k], &[k, n], false, false)?;
        let want = reference::matmul(&a, &b, g);
        let budget = 1.0;
        let naive = time_calls(ctx, budget, || {
            linalg::matmul_naive(ctx, &ta, &tb, false, false).map(drop)
        })?;
        let tiled = time_calls(ctx, budget, || {
            linalg::matmul(ctx, &ta, &tb, false, false).map(drop)
        })?;
        let error = |c: Vec<f32>| (relative_error(&c, &want), max_abs_error(&c, &want));
        let shape = format!("{m}×{k}×{n}");
        let bytes = ((m * k + k * n + m * n) * 4) as f64;
        let flops = 2.0 * g.fmas() as f64;
        report.push(Row {
            kernel: "matmul (tiled 64×64, 4×4/thread)".into(),
            shape: shape.clone(),
            timing: tiled,
            bytes,
            flops,
            bound: Bound::Compute,
            baseline: Some(("matmul_naive".into(), naive.median)),
            error: Some(error(
                linalg::matmul(ctx, &ta, &tb, false, false)?.to_vec()?,
            )),
            notes: String::new(),
        });
        report.push(Row {
            kernel: "matmul_naive (1 output/thread)".into(),
            shape,
            timing: naive,
            bytes,
            flops,
            bound: Bound::Compute,
            baseline: None,
            error: Some(error(
                linalg::matmul_naive(ctx, &ta, &tb, false, false)?.to_vec()?,
            )),
            notes: String::new(),
        });
    }
    Ok(())
}
