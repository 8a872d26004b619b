//! Equivariant-training rows: the backwards of the harmonics, the products (Gaunt backward
//! Grid against Direct for L = 2..10, with growth fits), the weighted product and
//! so3::linear, each against its forward; gather and scatter_sum at 10⁶ edges against the
//! copy bandwidth; and one energy-and-forces step of the potential of examples/potential.rs.

#[path = "../common/potential.rs"]
mod potential;

use rand::rngs::StdRng;
use rand::SeedableRng;
use wgkernels::bench::time_calls;
use wgkernels::compare::{max_abs_error, relative_error};
use wgkernels::graph::{self, Index};
use wgkernels::so3::products::{apply_weighted, grouped, Grouping};
use wgkernels::so3::{self, reference, Coefficients, GauntMethod};
use wgkernels::{Context, Result};

use crate::report::{growth_exponent, Bound, Report, Row};
use crate::uniform;

fn wide(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

pub fn rows(ctx: &Context, rng: &mut StdRng, report: &mut Report) -> Result<()> {
    harmonics(ctx, rng, report)?;
    gaunt(ctx, rng, report)?;
    weighted_and_linear(ctx, rng, report)?;
    graph_rows(ctx, rng, report)?;
    potential_row(ctx, report)
}

/// Backward of the harmonics at 4096 vectors, against the forward and the looping form.
fn harmonics(ctx: &Context, rng: &mut StdRng, report: &mut Report) -> Result<()> {
    let n = 4096;
    let looping = crate::forced(ctx, "loop")?;
    let v = uniform(rng, 3 * n);
    let tv = ctx.tensor(&v, &[n, 3])?;
    for lmax in [2usize, 4, 8] {
        let d = reference::dim(lmax);
        let g = uniform(rng, n * d);
        let tg = ctx.tensor(&g, &[n, d])?;
        let forward = time_calls(ctx, 1.0, || {
            so3::spherical_harmonics(ctx, &tv, lmax).map(drop)
        })?;
        let timing = time_calls(ctx, 1.0, || {
            so3::spherical_harmonics_backward(ctx, &tv, lmax, &tg).map(drop)
        })?;
        let baseline = match &looping {
            Some(on) => {
                let (tv, tg) = (on.tensor(&v, &[n, 3])?, on.tensor(&g, &[n, d])?);
                let t = time_calls(on, 1.0, || {
                    so3::spherical_harmonics_backward(on, &tv, lmax, &tg).map(drop)
                })?;
                Some(("looping form".to_string(), t.median))
            }
            None => None,
        };
        let got = so3::spherical_harmonics_backward(ctx, &tv, lmax, &tg)?.to_vec()?;
        let want = reference::spherical_harmonics_backward(&v, lmax, &g);
        let class = format!("so3::spherical_harmonics_backward lmax {lmax} ");
        report.push(Row {
            kernel: "so3::spherical_harmonics_backward".into(),
            shape: format!("n={n}, lmax={lmax}"),
            timing,
            bytes: (n * (3 + d + 3) * 4) as f64,
            flops: 0.0,
            bound: Bound::Memory,
            baseline,
            error: Some((relative_error(&got, &want), max_abs_error(&got, &want))),
            form: crate::tuned_form(ctx, &class),
            notes: format!(
                "{:.2}× its forward (which it reruns: in registers written out, into a \
                 scratch tensor looping)",
                timing.median / forward.median
            ),
        });
    }
    Ok(())
}

/// Gaunt backward by Grid and Direct at n·c = 4096, `0..L ⊗ 0..L → 0..L`, L = 2..10.
fn gaunt(ctx: &Context, rng: &mut StdRng, report: &mut Report) -> Result<()> {
    let (n, c) = (1024usize, 4usize);
    let mut series: [Vec<(f64, f64)>; 2] = [Vec::new(), Vec::new()];
    for l in 2..=10usize {
        let d = reference::dim(l);
        let (x1, x2, g) = (
            uniform(rng, n * c * d),
            uniform(rng, n * c * d),
            uniform(rng, n * c * d),
        );
        let t = |x: &[f32]| ctx.tensor(x, &[n, c, d]);
        let (t1, t2, tg) = (t(&x1)?, t(&x2)?, t(&g)?);
        let want = apply_weighted(
            &grouped(Coefficients::Gaunt, l, l, l, Grouping::X1),
            &wide(&g),
            d,
            &wide(&x2),
            d,
            1,
            None,
        );
        if l % 2 == 0 {
            // The CG product's backward: the same sparse kernel with regrouped tables.
            let forward = time_calls(ctx, 1.0, || so3::cg_product(ctx, &t1, &t2, l).map(drop))?;
            let timing = time_calls(ctx, 1.0, || {
                so3::cg_product_backward(ctx, &t1, &t2, l, &tg).map(drop)
            })?;
            let got = so3::cg_product_backward(ctx, &t1, &t2, l, &tg)?
                .x1
                .to_vec()?;
            let table = grouped(Coefficients::ClebschGordan, l, l, l, Grouping::X1);
            let want = apply_weighted(&table, &wide(&g), d, &wide(&x2), d, 1, None);
            report.push(Row {
                kernel: "so3::cg_product_backward".into(),
                shape: format!("n·c {}, 0..{l}⊗0..{l}→0..{l}", n * c),
                timing,
                bytes: (4 * n * c * d * 4) as f64,
                flops: 0.0,
                bound: Bound::Compute,
                baseline: None,
                error: Some((relative_error(&got, &want), max_abs_error(&got, &want))),
                form: String::new(),
                notes: format!(
                    "{:.2}× its forward; error of ∂x1",
                    timing.median / forward.median
                ),
            });
        }
        let mut direct = None;
        for (slot, method) in [(0, GauntMethod::Direct), (1, GauntMethod::Grid)] {
            let forward = time_calls(ctx, 1.0, || {
                so3::gaunt_product(ctx, &t1, &t2, l, method).map(drop)
            })?;
            let timing = time_calls(ctx, 1.0, || {
                so3::gaunt_product_backward(ctx, &t1, &t2, l, method, &tg).map(drop)
            })?;
            let got = so3::gaunt_product_backward(ctx, &t1, &t2, l, method, &tg)?
                .x1
                .to_vec()?;
            series[slot].push((l as f64, timing.median));
            report.push(Row {
                kernel: format!("so3::gaunt_product_backward ({method:?})"),
                shape: format!("n·c {}, 0..{l}⊗0..{l}→0..{l}", n * c),
                timing,
                bytes: (4 * n * c * d * 4) as f64,
                flops: 0.0,
                bound: Bound::Compute,
                baseline: direct.map(|t| ("gaunt_product_backward (Direct)".to_string(), t)),
                error: Some((relative_error(&got, &want), max_abs_error(&got, &want))),
                form: String::new(),
                notes: format!(
                    "{:.2}× its forward; error of ∂x1",
                    timing.median / forward.median
                ),
            });
            if method == GauntMethod::Direct {
                direct = Some(timing.median);
            }
        }
    }
    for (slot, name) in [(0, "Direct"), (1, "Grid")] {
        let upper = &series[slot][series[slot].len() - 4..];
        report.finding(format!(
            "so3::gaunt_product_backward ({name}): time ∝ L^{:.1} over L = 7..10",
            growth_exponent(upper)
        ));
    }
    Ok(())
}

/// The weighted product with per-edge weights and so3::linear, forward and backward.
fn weighted_and_linear(ctx: &Context, rng: &mut StdRng, report: &mut Report) -> Result<()> {
    let (n, c, l) = (4096usize, 8usize, 2usize);
    let d = reference::dim(l);
    let count = so3::paths(l, l, l).len();
    let (x1, x2, w, g) = (
        uniform(rng, n * c * d),
        uniform(rng, n * d),
        uniform(rng, n * c * count),
        uniform(rng, n * c * d),
    );
    let (t1, t2, tw, tg) = (
        ctx.tensor(&x1, &[n, c, d])?,
        ctx.tensor(&x2, &[n, 1, d])?,
        ctx.tensor(&w, &[n, c, count])?,
        ctx.tensor(&g, &[n, c, d])?,
    );
    let forward = time_calls(ctx, 1.0, || {
        so3::weighted_cg_product(ctx, &t1, &t2, &tw, l).map(drop)
    })?;
    let timing = time_calls(ctx, 1.0, || {
        so3::weighted_cg_product_backward(ctx, &t1, &t2, &tw, l, &tg).map(drop)
    })?;
    let got = so3::weighted_cg_product_backward(ctx, &t1, &t2, &tw, l, &tg)?
        .weights
        .to_vec()?;
    let table = so3::products::path_table(l, l, l);
    let want =
        so3::products::path_gradient(&table, (&wide(&x1), d), (&wide(&x2), d, c), (&wide(&g), d));
    let shape = format!("n={n} edges, c={c}, 0..{l}⊗0..{l}→0..{l}, x2 [n,1,·]");
    report.push(Row {
        kernel: "so3::weighted_cg_product".into(),
        shape: shape.clone(),
        timing: forward,
        bytes: ((2 * c * d + d + c * count) * n * 4) as f64,
        flops: 0.0,
        bound: Bound::Memory,
        baseline: None,
        error: None,
        form: String::new(),
        notes: format!("{count} paths, per-edge weights"),
    });
    report.push(Row {
        kernel: "so3::weighted_cg_product_backward".into(),
        shape,
        timing,
        bytes: ((4 * c * d + 2 * d + 2 * c * count) * n * 4) as f64,
        flops: 0.0,
        bound: Bound::Memory,
        baseline: None,
        error: Some((relative_error(&got, &want), max_abs_error(&got, &want))),
        form: String::new(),
        notes: format!(
            "{:.2}× its forward; error of ∂weights",
            timing.median / forward.median
        ),
    });

    let (n, c_in, c_out, lmax) = (1000usize, 32usize, 32usize, 2usize);
    let d = reference::dim(lmax);
    let (x, w, g) = (
        uniform(rng, n * c_in * d),
        uniform(rng, (lmax + 1) * c_in * c_out),
        uniform(rng, n * c_out * d),
    );
    let (tx, tw, tg) = (
        ctx.tensor(&x, &[n, c_in, d])?,
        ctx.tensor(&w, &[lmax + 1, c_in, c_out])?,
        ctx.tensor(&g, &[n, c_out, d])?,
    );
    let forward = time_calls(ctx, 1.0, || so3::linear(ctx, &tx, &tw).map(drop))?;
    let timing = time_calls(ctx, 1.0, || {
        so3::linear_backward(ctx, &tx, &tw, &tg).map(drop)
    })?;
    let got = so3::linear_backward(ctx, &tx, &tw, &tg)?.w.to_vec()?;
    let want = reference::linear_weight_gradient(&x, &g, [n, c_in, c_out], lmax);
    let flops = (2 * n * c_in * c_out * d) as f64;
    let shape = format!("n={n}, {c_in}→{c_out} channels, lmax={lmax}");
    report.push(Row {
        kernel: "so3::linear".into(),
        shape: shape.clone(),
        timing: forward,
        bytes: ((c_in + c_out) * n * d * 4) as f64,
        flops,
        bound: Bound::Compute,
        baseline: None,
        error: None,
        form: String::new(),
        notes: "one thread per output".into(),
    });
    report.push(Row {
        kernel: "so3::linear_backward".into(),
        shape,
        timing,
        bytes: ((2 * c_in + c_out) * n * d * 4) as f64,
        flops: 2.0 * flops,
        bound: Bound::Compute,
        baseline: None,
        error: Some((relative_error(&got, &want), max_abs_error(&got, &want))),
        form: String::new(),
        notes: format!(
            "{:.2}× its forward; error of ∂w",
            timing.median / forward.median
        ),
    });
    Ok(())
}

/// gather and scatter_sum at 10⁶ edges of 16 floats onto 50 000 nodes.
fn graph_rows(ctx: &Context, rng: &mut StdRng, report: &mut Report) -> Result<()> {
    use rand::Rng;
    let (edges, nodes, width) = (1_000_000usize, 50_000usize, 16usize);
    let index: Vec<u32> = (0..edges)
        .map(|_| rng.random_range(0..nodes as u32))
        .collect();
    let idx = Index::new(ctx, &index, nodes)?;
    let table = uniform(rng, nodes * width);
    let src = uniform(rng, edges * width);
    let (tt, ts) = (
        ctx.tensor(&table, &[nodes, width])?,
        ctx.tensor(&src, &[edges, width])?,
    );
    let segments = graph::reference::Segments::new(&index, nodes);
    let gather = time_calls(ctx, 1.0, || graph::gather(ctx, &tt, &idx).map(drop))?;
    let got = graph::gather(ctx, &tt, &idx)?.to_vec()?;
    let want = graph::reference::gather(&table, width, &index);
    let shape = format!("{edges} edges × {width} → {nodes} nodes");
    report.push(Row {
        kernel: "graph::gather".into(),
        shape: shape.clone(),
        timing: gather,
        // the edge rows written, the index read, each table row read once at least
        bytes: ((edges * width + edges + nodes * width) * 4) as f64,
        flops: 0.0,
        bound: Bound::Memory,
        baseline: None,
        error: Some((relative_error(&got, &want), max_abs_error(&got, &want))),
        form: String::new(),
        notes: "random rows of the table".into(),
    });
    let scatter = time_calls(ctx, 1.0, || graph::scatter_sum(ctx, &ts, &idx).map(drop))?;
    let got = graph::scatter_sum(ctx, &ts, &idx)?.to_vec()?;
    let want = graph::reference::scatter_sum(&src, width, &segments);
    report.push(Row {
        kernel: "graph::scatter_sum".into(),
        shape,
        timing: scatter,
        bytes: ((edges * width + edges + nodes + nodes * width) * 4) as f64,
        flops: (edges * width) as f64,
        bound: Bound::Memory,
        baseline: None,
        error: Some((relative_error(&got, &want), max_abs_error(&got, &want))),
        form: String::new(),
        notes: "fixed-order segment sums (no atomics)".into(),
    });
    Ok(())
}

/// One energy-and-forces evaluation of the example's potential at 1000 atoms.
fn potential_row(ctx: &Context, report: &mut Report) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(17);
    let model = potential::model(&mut rng);
    let system = potential::system(&mut rng, 1000, 38.0);
    let edges = potential::edges(&system).senders.len();
    let timing = time_calls(ctx, 2.0, || {
        potential::energy_and_forces(ctx, &model, &system).map(drop)
    })?;
    report.push(Row {
        kernel: "examples/potential: energy + forces".into(),
        shape: format!(
            "1000 atoms, {edges} edges, {} channels, l ≤ {}",
            potential::C,
            potential::L
        ),
        timing,
        bytes: 0.0,
        flops: 0.0,
        bound: Bound::Memory,
        baseline: None,
        error: None,
        form: String::new(),
        notes: "two layers; the radius graph built on the CPU included".into(),
    });
    // One training step on energy and forces (the force term's gradient by the double
    // backwards), against the evaluation above.
    let zeros = vec![[0.0; 3]; system.positions.len()];
    let targets = potential::training::Targets {
        energy: 0.0,
        forces: &zeros,
    };
    let weights = potential::training::LossWeights {
        energy: 100.0,
        forces: 1.0,
    };
    let step = time_calls(ctx, 2.0, || {
        potential::training::loss_and_gradient(ctx, &model, &system, &targets, weights).map(drop)
    })?;
    report.push(Row {
        kernel: "examples/potential_train: training step".into(),
        shape: format!("1000 atoms, {edges} edges"),
        timing: step,
        bytes: 0.0,
        flops: 0.0,
        bound: Bound::Memory,
        baseline: None,
        error: None,
        form: String::new(),
        notes: format!(
            "loss on energy and forces, every parameter's gradient; {:.2}× the energy + forces \
             evaluation (goal ≤ 3×)",
            step.median / timing.median
        ),
    });
    Ok(())
}
