//! SO(3) rows: spherical harmonics at lmax 2, 4, 6, 8 for 4096 vectors; CG and the three
//! Gaunt methods (Direct, Fourier, Grid) at L = 1..10 in two settings, the CP product of Tensor
//! Decomposition Networks (rank 7L²) in the first, with growth fits, crossovers and a plot of
//! time against L.

use rand::rngs::StdRng;
use wgkernels::bench::time_calls;
use wgkernels::compare::{max_abs_error, relative_error};
use wgkernels::so3::products::{apply, product_table};
use wgkernels::so3::{self, reference, Coefficients, CpProduct, GauntMethod};

use crate::plot;
use crate::report::{crossover, growth_exponent};
use wgkernels::{Context, Result};

use crate::report::{Bound, Report, Row};
use crate::uniform;

pub fn rows(ctx: &Context, rng: &mut StdRng, report: &mut Report) -> Result<()> {
    // The recursion looping over its table forced, as the baseline of the form the tuner
    // chose (the only form before there were forms).
    let looping = crate::forced(ctx, "loop")?;
    for (n, degrees) in [(4096, &[2usize, 4, 6, 8][..]), (1 << 20, &[2, 4, 8][..])] {
        let v = uniform(rng, 3 * n);
        let tv = ctx.tensor(&v, &[n, 3])?;
        for &lmax in degrees {
            harmonics_row(ctx, looping.as_ref(), report, (&v, &tv), lmax)?;
        }
    }
    products(ctx, rng, report)
}

/// The harmonics of the vectors `v` (`tv` on `ctx`) to `lmax`, against the looping form.
fn harmonics_row(
    ctx: &Context,
    looping: Option<&Context>,
    report: &mut Report,
    (v, tv): (&[f32], &wgkernels::Tensor),
    lmax: usize,
) -> Result<()> {
    let n = v.len() / 3;
    let d = reference::dim(lmax);
    let timing = time_calls(ctx, 1.0, || {
        so3::spherical_harmonics(ctx, tv, lmax).map(drop)
    })?;
    let baseline = match looping {
        Some(on) => {
            let tv = on.tensor(v, &[n, 3])?;
            let t = time_calls(on, 1.0, || {
                so3::spherical_harmonics(on, &tv, lmax).map(drop)
            })?;
            Some(("looping form".to_string(), t.median))
        }
        None => None,
    };
    let got = so3::spherical_harmonics(ctx, tv, lmax)?.to_vec()?;
    let want = reference::spherical_harmonics(v, lmax);
    // nonzero recursion coefficients: one multiply-add pair each, per vector
    let nonzeros: usize = (2..=lmax)
        .map(|l| {
            so3::clebsch_gordan(l - 1, 1, l).map_or(0, |c| c.iter().filter(|x| **x != 0.0).count())
        })
        .sum();
    report.push(Row {
        kernel: "so3::spherical_harmonics".into(),
        shape: format!("n={n}, lmax={lmax}"),
        timing,
        bytes: (n * (3 + d) * 4) as f64,
        flops: (n * 3 * nonzeros) as f64,
        bound: Bound::Memory,
        baseline,
        error: Some((relative_error(&got, &want), max_abs_error(&got, &want))),
        form: crate::tuned_form(ctx, &format!("so3::spherical_harmonics lmax {lmax} ")),
        notes: format!("{nonzeros} nonzero CG coefficients in the recursion"),
    });
    Ok(())
}

/// The products of The Price of Freedom's settings, n·c = 4096, L = 1..10, every method in
/// one run. Our API takes whole 0..L coefficient vectors, so its "single l" settings are the
/// same work as 0..L here: the two settings measured are → 0..L and → 0..2L.
fn products(ctx: &Context, rng: &mut StdRng, report: &mut Report) -> Result<()> {
    let (n, c) = (1024usize, 4usize);
    // The looping forms forced, as the baselines of the written-out form where the tuner
    // chose it: a thread per output element up to degree-2 rows, rows staged in workgroup
    // memory above (the defaults before the written-out form).
    let looping = [
        crate::forced(ctx, "outputs")?,
        crate::forced(ctx, "staged")?,
    ];
    let methods = [
        Method::Cg,
        Method::Direct,
        Method::Fourier,
        Method::Grid,
        Method::Cp,
    ];
    for widen in [false, true] {
        for l in 1..=10usize {
            // The CP product is measured where TDN uses it: 0..L ⊗ 0..L → 0..L.
            let (lout, methods) = if widen {
                (2 * l, &methods[..4])
            } else {
                (l, &methods[..])
            };
            let on = (ctx, &looping);
            setting_rows(on, rng, report, [n, c], [l, lout], methods)?;
        }
    }
    // Larger batches: the O(L³) routes at n·c = 16384 (lavapipe's time, not its memory, is
    // the limit here).
    for l in [4usize, 8] {
        setting_rows(
            (ctx, &looping),
            rng,
            report,
            [4096, c],
            [l, 2 * l],
            &[Method::Fourier, Method::Grid],
        )?;
    }
    // Past one workgroup's memory (12 ⊗ 12 → 24): the kernels that keep their stages in a
    // storage slice per row (gaunt_grid_global.wgsl, gaunt_fourier_global.wgsl).
    setting_rows(
        (ctx, &looping),
        rng,
        report,
        [n, c],
        [12, 24],
        &[Method::Fourier, Method::Grid],
    )?;
    findings(report, n * c, &methods)
}

/// One row per method for `0..l ⊗ 0..l → 0..lout` on `[n, c]` rows of fresh inputs; Fourier
/// and Grid against Direct when Direct is among the methods (it runs before them).
fn setting_rows(
    (ctx, looping): (&Context, &[Option<Context>; 2]),
    rng: &mut StdRng,
    report: &mut Report,
    [n, c]: [usize; 2],
    [l, lout]: [usize; 2],
    methods: &[Method],
) -> Result<()> {
    let (d, d3) = (reference::dim(l), reference::dim(lout));
    let (x1, x2) = (uniform(rng, n * c * d), uniform(rng, n * c * d));
    let (t1, t2) = (ctx.tensor(&x1, &[n, c, d])?, ctx.tensor(&x2, &[n, c, d])?);
    let gaunt = product_table(Coefficients::Gaunt, l, l, lout);
    let want_gaunt = apply(&gaunt, &wide(&x1), d, &wide(&x2), d, 1);
    let mut baseline_times = [None; 2]; // Direct, cg_product: they run before the others
                                        // TDN's rank 7L²; times do not depend on the factors' values, so random ones.
    let rank = 7 * l * l;
    let mut factor = |d: usize| -> Vec<f32> { uniform(rng, d * rank) };
    let [a, b, cf] = [d, d, d3].map(|d| wide(&factor(d)));
    let cp = CpProduct::from_factors(l, l, lout, &a, &b, &cf, rank)?;
    for &method in methods {
        let call = || match method {
            Method::Cp => cp.apply(ctx, &t1, &t2),
            Method::Cg => so3::cg_product(ctx, &t1, &t2, lout),
            Method::Direct => so3::gaunt_product(ctx, &t1, &t2, lout, GauntMethod::Direct),
            Method::Fourier => so3::gaunt_product(ctx, &t1, &t2, lout, GauntMethod::Fourier),
            Method::Grid => so3::gaunt_product(ctx, &t1, &t2, lout, GauntMethod::Grid),
        };
        let timing = time_calls(ctx, 1.0, || call().map(drop))?;
        let got = call()?.to_vec()?;
        // The sparse products' form, and the looping form's time where it was written out.
        let (mut form, mut looping_time) = (String::new(), None);
        if let Some(kind) = method.coefficients() {
            form = crate::tuned_form(
                ctx,
                &format!("so3::product {kind:?}/{l}/{l}/{lout}/Output "),
            );
            let per_output = d.max(d3) <= 9;
            if let (true, Some(on)) = (form == "unrolled", &looping[!per_output as usize]) {
                let (t1, t2) = (on.tensor(&x1, &[n, c, d])?, on.tensor(&x2, &[n, c, d])?);
                let t = time_calls(on, 1.0, || match kind {
                    Coefficients::ClebschGordan => so3::cg_product(on, &t1, &t2, lout).map(drop),
                    Coefficients::Gaunt => {
                        so3::gaunt_product(on, &t1, &t2, lout, GauntMethod::Direct).map(drop)
                    }
                })?;
                let name = if per_output {
                    "per-output form"
                } else {
                    "staged form"
                };
                looping_time = Some((name.to_string(), t.median));
            }
        }
        let (flops, error, notes) = match method {
            Method::Cg => {
                let table = product_table(Coefficients::ClebschGordan, l, l, lout);
                let want = apply(&table, &wide(&x1), d, &wide(&x2), d, 1);
                let err = (relative_error(&got, &want), max_abs_error(&got, &want));
                let terms = table.terms.len();
                (
                    (n * c * terms * 3) as f64,
                    err,
                    format!("{terms} nonzero coefficients"),
                )
            }
            Method::Direct => {
                let err = (
                    relative_error(&got, &want_gaunt),
                    max_abs_error(&got, &want_gaunt),
                );
                let terms = gaunt.terms.len();
                (
                    (n * c * terms * 3) as f64,
                    err,
                    format!("{terms} nonzero coefficients"),
                )
            }
            Method::Fourier => {
                let plan = so3::fourier::FourierPlan::new(l, l, lout);
                let err = (
                    relative_error(&got, &want_gaunt),
                    max_abs_error(&got, &want_gaunt),
                );
                let size = (plan.n_u * plan.n_v) as f64;
                // change of basis (complex × real: 2 flops per term), two 2D FFTs at
                // 5·N·log₂N, the pointwise product, the projection (complex MACs)
                let flops = 2.0 * 2.0 * change_of_basis_terms(l) as f64
                    + 2.0 * 5.0 * size * size.log2()
                    + size
                    + 8.0 * (d3 * (4 * l + 1)) as f64;
                let notes = format!("FFT grid {}×{}", plan.n_u, plan.n_v);
                ((n * c) as f64 * flops, err, notes)
            }
            Method::Cp => {
                let cpu = Context::cpu();
                let want = cp
                    .apply(
                        &cpu,
                        &cpu.tensor(&x1, &[n, c, d])?,
                        &cpu.tensor(&x2, &[n, c, d])?,
                    )?
                    .to_vec()?;
                let err = (
                    relative_error(&got, &wide(&want)),
                    max_abs_error(&got, &wide(&want)),
                );
                // two projections onto R, the product, the projection back
                let macs = (2 * d + d3) * rank + rank;
                (
                    (n * c * macs * 2) as f64,
                    err,
                    format!("rank {rank}; error against its CPU path"),
                )
            }
            Method::Grid => {
                let plan = so3::grid::GridPlan::new(l, l, lout);
                let err = (
                    relative_error(&got, &want_gaunt),
                    max_abs_error(&got, &want_gaunt),
                );
                let (nb, na) = (plan.n_beta, plan.n_alpha);
                // β synthesis of both inputs, α synthesis, product, α and β analysis
                let macs = 2 * nb * d
                    + 2 * nb * na * (2 * l + 1)
                    + nb * na
                    + nb * na * (2 * lout + 1)
                    + nb * d3;
                ((n * c * macs * 2) as f64, err, format!("grid {nb}×{na}"))
            }
        };
        report.push(Row {
            kernel: method.name().into(),
            shape: setting_shape(n * c, l, lout),
            timing,
            bytes: ((2 * d + d3) * n * c * 4) as f64,
            flops,
            bound: Bound::Compute,
            baseline: match method {
                Method::Grid | Method::Fourier => {
                    baseline_times[0].map(|t| ("Gaunt Direct".to_string(), t))
                }
                Method::Cp => baseline_times[1].map(|t| ("cg_product".to_string(), t)),
                Method::Cg | Method::Direct => looping_time,
            },
            error: Some(error),
            form,
            notes,
        });
        match method {
            Method::Direct => baseline_times[0] = Some(timing.median),
            Method::Cg => baseline_times[1] = Some(timing.median),
            _ => {}
        }
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Cg,
    Direct,
    Fourier,
    Grid,
    Cp,
}

impl Method {
    /// The coefficient table of a sparse product's method.
    fn coefficients(self) -> Option<Coefficients> {
        match self {
            Method::Cg => Some(Coefficients::ClebschGordan),
            Method::Direct => Some(Coefficients::Gaunt),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Method::Cg => "so3::cg_product",
            Method::Direct => "so3::gaunt_product (Direct)",
            Method::Fourier => "so3::gaunt_product (Fourier)",
            Method::Grid => "so3::gaunt_product (Grid)",
            Method::Cp => "so3::CpProduct::apply (rank 7L²)",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Method::Cg => "cg_product",
            Method::Direct => "Gaunt Direct",
            Method::Fourier => "Gaunt Fourier",
            Method::Grid => "Gaunt Grid",
            Method::Cp => "CP (7L²)",
        }
    }
}

/// Terms of the change of basis to 2D Fourier coefficients for one input of degree l, both
/// inputs alike: each (u, v) in [−l, l]² sums t^{km}_u·x_km over max(|u|, |v|) ≤ k ≤ l, for
/// m = ±v (one m when v = 0).
fn change_of_basis_terms(l: usize) -> usize {
    let l = l as i64;
    let mut terms = 0;
    for u in -l..=l {
        for v in -l..=l {
            let ms = if v == 0 { 1 } else { 2 };
            terms += ms * (l - u.abs().max(v.abs()) + 1);
        }
    }
    (2 * terms) as usize
}

pub fn setting_shape(rows: usize, l: usize, lout: usize) -> String {
    format!("n·c={rows}, 0..{l}⊗0..{l}→0..{lout}")
}

pub fn wide(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

/// Growth exponents in L, where Fourier and Grid overtake Direct, the faster of the two
/// against Direct from L = 6 and against CG at L = 8, and the plot.
fn findings(report: &mut Report, rows: usize, methods: &[Method]) -> Result<()> {
    let mut panels = Vec::new();
    for widen in [false, true] {
        let lout = |l: usize| if widen { 2 * l } else { l };
        let setting = if widen {
            "0..L⊗0..L→0..2L"
        } else {
            "0..L⊗0..L→0..L"
        };
        let series = |report: &Report, method: Method| -> Vec<(f64, f64)> {
            (1..=10)
                .filter_map(|l| {
                    report
                        .median(method.name(), &setting_shape(rows, l, lout(l)))
                        .map(|t| (l as f64, t))
                })
                .collect()
        };
        let mut growth = Vec::new();
        for &method in methods {
            // L = 6..10: past the per-call floor of the small sizes.
            let points: Vec<(f64, f64)> = series(report, method)
                .into_iter()
                .filter(|p| p.0 >= 6.0)
                .collect();
            if points.len() < 2 {
                continue;
            }
            growth.push(format!(
                "{} L^{:.1}",
                method.short(),
                growth_exponent(&points)
            ));
        }
        report.finding(format!(
            "{setting}, n·c = {rows}: time ∝ {}",
            growth.join(", ")
        ));
        let direct = series(report, Method::Direct);
        let cg = series(report, Method::Cg);
        let mut notes = Vec::new();
        for method in [Method::Fourier, Method::Grid] {
            let times = series(report, method);
            notes.push(match crossover(&times, &direct) {
                Err(first) => format!(
                    "{} is faster than Direct from the smallest L measured ({first})",
                    method.short()
                ),
                Ok(Some(l)) => format!("{} overtakes Direct at L ≈ {l:.1}", method.short()),
                Ok(None) => format!(
                    "{} is slower than Direct at every L measured",
                    method.short()
                ),
            });
        }
        // The faster O(L³) route at each L.
        let best: Vec<(f64, f64)> = series(report, Method::Grid)
            .into_iter()
            .zip(series(report, Method::Fourier))
            .map(|(g, f)| (g.0, g.1.min(f.1)))
            .collect();
        let beats_direct_from_6 = best
            .iter()
            .zip(&direct)
            .filter(|(b, _)| b.0 >= 6.0)
            .all(|(b, d)| b.1 < d.1);
        notes.push(format!(
            "the faster of Fourier and Grid {} Direct at every L from 6 to 10",
            if beats_direct_from_6 {
                "beats"
            } else {
                "does not beat"
            }
        ));
        let at8 = |s: &[(f64, f64)]| s.iter().find(|p| p.0 == 8.0).map(|p| p.1);
        if let (Some(c), Some(b)) = (at8(&cg), at8(&best)) {
            notes.push(format!(
                "at L = 8 it is {:.1}× faster than cg_product",
                c / b
            ));
        }
        let cp = series(report, Method::Cp);
        if !cp.is_empty() {
            let grid = series(report, Method::Grid);
            let versus = |other: &[(f64, f64)], name: &str| match crossover(&cp, other) {
                Err(first) => format!("faster than {name} from L = {first}"),
                Ok(Some(l)) => format!("overtakes {name} at L ≈ {l:.1}"),
                Ok(None) => format!("slower than {name} at every L"),
            };
            notes.push(format!(
                "CP at rank 7L² {}, {}{}",
                versus(&cg, "cg_product"),
                versus(&grid, "Gaunt Grid"),
                match (at8(&cg), at8(&cp)) {
                    (Some(c), Some(p)) => format!(" ({:.1}× cg_product's speed at L = 8)", c / p),
                    _ => String::new(),
                }
            ));
        }
        report.finding(format!("{setting}: {}", notes.join("; ")));
        let curves: Vec<plot::Curve> = methods
            .iter()
            .map(|&m| (m.short().to_string(), series(report, m)))
            .filter(|(_, points)| !points.is_empty()) // CP is measured in the first setting only
            .collect();
        panels.push((format!("{setting}, n·c = {rows}"), curves));
    }
    let path = format!("benchmarks/so3_products_{}.png", plot::slug(&report.device));
    match plot::time_against_l(&path, &panels) {
        Ok(()) => report.figure(
            "Gaunt and CG products: median time against L (log scale)".into(),
            path,
        ),
        Err(e) => println!("no plot: {e}"),
    }
    Ok(())
}
