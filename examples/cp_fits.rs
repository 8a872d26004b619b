//! The CP fits of Tensor Decomposition Networks, measured: for `0..L ⊗ 0..L → 0..L`, the fit
//! error of `so3::CpProduct::fit` against rank, the smallest rank exact to 1e-10 (found by
//! bracketing and bisection), and at each fitted rank the product error against the exact
//! Clebsch–Gordan product and the equivariance error under random rotations — all in f64, so
//! that the figures are the fit's and not f32 rounding. Writes `CP_FITS.md`.
//!
//! `cargo run --release --example cp_fits [-- max_l [minutes [brackets]]]` (defaults 6 and 60:
//! the search stops refining a bracket once the minutes are spent and reports the bracket;
//! `brackets`, e.g. `7:8,32:33`, checks an earlier search's brackets per L instead, by fitting
//! their ends, `-` skips an L and `:` fits only the curve's points — the search itself takes
//! ~35 min to L = 5 on 2 cores).

use std::fmt::Write as _;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wgkernels::so3::products::product_table;
use wgkernels::so3::{reference, Coefficients, CpProduct, Rotation};

/// A fit is "exact" below this relative Frobenius error (the threshold).
const EXACT: f64 = 1e-10;
/// Random input pairs per measured rank.
const SAMPLES: usize = 64;
/// Random rotations per measured rank.
const ROTATIONS: usize = 4;

/// One fitted rank and what it gives.
struct Row {
    rank: usize,
    fit_error: f64,
    seconds: f64,
    product_error: f64,
    equivariance_error: f64,
}

/// The exact product `out_k = Σ C^{l1 l2 l3}·x1_i·x2_j`, every path weight 1 (as `cg_product`).
fn cg_product(l: usize, x1: &[f64], x2: &[f64]) -> Vec<f64> {
    let table = product_table(Coefficients::ClebschGordan, l, l, l);
    (0..reference::dim(l))
        .map(|k| {
            let terms = &table.terms[table.starts[k] as usize..table.starts[k + 1] as usize];
            terms
                .iter()
                .map(|&(i, j, w)| w * x1[i as usize] * x2[j as usize])
                .sum()
        })
        .collect()
}

/// The CP product `out_k = Σ_r C_kr·(Σ_i A_ir x1_i)·(Σ_j B_jr x2_j)` in f64.
fn cp_product(fit: &CpProduct, x1: &[f64], x2: &[f64]) -> Vec<f64> {
    let [a, b, c] = fit.factors();
    let rank = fit.rank();
    let project = |f: &[f64], x: &[f64]| -> Vec<f64> {
        (0..rank)
            .map(|r| {
                x.iter()
                    .enumerate()
                    .map(|(i, xi)| f[i * rank + r] * xi)
                    .sum()
            })
            .collect()
    };
    let (p1, p2) = (project(a, x1), project(b, x2));
    c.chunks(rank)
        .map(|ck| (0..rank).map(|r| ck[r] * p1[r] * p2[r]).sum())
        .collect()
}

fn norm(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum::<f64>().sqrt()
}

fn difference(x: &[f64], y: &[f64]) -> f64 {
    x.iter()
        .zip(y)
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f64>()
        .sqrt()
}

fn random_rotation(rng: &mut StdRng) -> Rotation {
    let axis = [0; 3].map(|_| rng.random_range(-1.0..1.0));
    Rotation::from_axis_angle(axis, rng.random_range(0.0..std::f64::consts::TAU))
        .expect("a random axis is nonzero")
}

/// Fits rank `rank` at degree `l` and measures it.
fn evaluate(l: usize, rank: usize) -> Row {
    let start = Instant::now();
    let fit = CpProduct::fit(l, l, l, rank).expect("valid degrees and rank");
    let seconds = start.elapsed().as_secs_f64();
    let d = reference::dim(l);
    let mut rng = StdRng::seed_from_u64(18 + l as u64);
    let mut draw = || -> Vec<f64> { (0..d).map(|_| rng.random_range(-1.0..1.0)).collect() };
    let (mut error, mut total) = (0.0, 0.0);
    let pairs: Vec<(Vec<f64>, Vec<f64>)> = (0..SAMPLES).map(|_| (draw(), draw())).collect();
    for (x1, x2) in &pairs {
        let exact = cg_product(l, x1, x2);
        error += difference(&cp_product(&fit, x1, x2), &exact).powi(2);
        total += norm(&exact).powi(2);
    }
    // ‖D·f(x1, x2) − f(D·x1, D·x2)‖ / ‖f‖ over random rotations and inputs.
    let (mut broken, mut size) = (0.0, 0.0);
    for _ in 0..ROTATIONS {
        let wigner = reference::wigner_d(l, &random_rotation(&mut rng));
        for (x1, x2) in pairs.iter().take(SAMPLES / ROTATIONS) {
            let out = cp_product(&fit, x1, x2);
            let rotated_out = reference::rotate_coefficients(&out, l, &wigner);
            let of_rotated = cp_product(
                &fit,
                &reference::rotate_coefficients(x1, l, &wigner),
                &reference::rotate_coefficients(x2, l, &wigner),
            );
            broken += difference(&rotated_out, &of_rotated).powi(2);
            size += norm(&out).powi(2);
        }
    }
    Row {
        rank,
        fit_error: fit.fit_error(),
        seconds,
        product_error: (error / total).sqrt(),
        equivariance_error: (broken / size).sqrt(),
    }
}

/// Fits rank `rank` at degree `l`, prints it and records it; whether it is exact.
fn exact_at(l: usize, rank: usize, rows: &mut Vec<Row>) -> bool {
    let row = evaluate(l, rank);
    println!(
        "  L={l} rank {rank:5}: fit error {:.3e} ({:.1} s)",
        row.fit_error, row.seconds
    );
    let exact = row.fit_error < EXACT;
    rows.push(row);
    exact
}

/// Where the smallest exact rank lies: `inexact < smallest ≤ exact` (None where not found).
type Bracket = (Option<usize>, Option<usize>);

/// The smallest exact rank at degree `l`, searched from `guess`: stepped by 1.25× (up or down)
/// to a bracket, then bisected until it is one wide or `deadline` passes. Returns the bracket
/// and every row fitted on the way.
fn smallest_exact(l: usize, guess: usize, deadline: Instant) -> (Bracket, Vec<Row>) {
    let mut rows = Vec::new();
    let (mut lo, mut hi);
    if exact_at(l, guess, &mut rows) {
        hi = guess;
        lo = guess * 4 / 5;
        while lo > 0 && exact_at(l, lo, &mut rows) {
            hi = lo;
            lo = lo * 4 / 5;
        }
    } else {
        lo = guess;
        hi = guess * 5 / 4 + 1;
        while !exact_at(l, hi, &mut rows) {
            lo = hi;
            hi = hi * 5 / 4 + 1;
        }
    }
    while hi - lo > 1 && Instant::now() < deadline {
        let mid = (lo + hi) / 2;
        if exact_at(l, mid, &mut rows) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    ((Some(lo), Some(hi)), rows)
}

/// A bracket found by an earlier search, `lo:hi` (either may be empty), checked by fitting
/// its ends only: the search's own assumption, that exactness is monotone in the rank.
fn check_bracket(l: usize, bracket: &str) -> Result<(Bracket, Vec<Row>), String> {
    let (lo, hi) = bracket
        .split_once(':')
        .ok_or_else(|| format!("bracket `{bracket}` is not lo:hi"))?;
    let parse = |s: &str| -> Result<Option<usize>, String> {
        (!s.is_empty())
            .then(|| s.parse().map_err(|e| format!("`{s}`: {e}")))
            .transpose()
    };
    let (lo, hi) = (parse(lo)?, parse(hi)?);
    let mut rows = Vec::new();
    let lo = lo.filter(|&r| !exact_at(l, r, &mut rows));
    let hi = hi.filter(|&r| exact_at(l, r, &mut rows));
    Ok(((lo, hi), rows))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let max_l: usize = args.first().map_or(Ok(6), |a| a.parse())?;
    let minutes: f64 = args.get(1).map_or(Ok(60.0), |a| a.parse())?;
    // Brackets from an earlier search, per L from 1: "7:8,32:33,…" (checked, not searched).
    let brackets: Vec<String> = args
        .get(2)
        .map_or(Vec::new(), |a| a.split(',').map(String::from).collect());
    let begin = Instant::now();
    let mut summary = String::new();
    let mut details = String::new();
    let mut guess = 4;
    let mut previous_dim = 1.0;
    for l in 1..=max_l {
        let d = reference::dim(l);
        // The smallest exact ranks found grow like d^1.95 (8, 33, 95, 227, 464 for L = 1..5).
        guess = ((guess as f64 * (d as f64 / previous_dim).powf(1.95)) as usize).max(d);
        previous_dim = d as f64;
        let deadline =
            begin + std::time::Duration::from_secs_f64(minutes * 60.0 * l as f64 / max_l as f64);
        let ((lo, hi), mut rows) = match brackets.get(l - 1).map(String::as_str) {
            Some("-") => continue, // this L is not measured in this run
            Some(bracket) => {
                println!("L = {l} (d = {d}), bracket {bracket}");
                check_bracket(l, bracket)?
            }
            None => {
                println!("L = {l} (d = {d}), searching from rank {guess}");
                smallest_exact(l, guess, deadline)
            }
        };
        let tdn = 7 * l * l;
        let mut extra = vec![d, tdn];
        if let Some(hi) = hi {
            extra.push((tdn + hi) / 2);
        }
        for rank in extra {
            // The midpoint is for the shape of the curve: skipped once the time is spent.
            if rows.iter().all(|r| r.rank != rank) && (rank <= tdn || Instant::now() < deadline) {
                rows.push(evaluate(l, rank));
            }
        }
        rows.sort_by_key(|r| r.rank);
        guess = hi.unwrap_or(guess);
        let at_tdn = rows.iter().find(|r| r.rank == tdn).expect("fitted above");
        let fitted = |rank: Option<usize>| rank.and_then(|r| rows.iter().find(|row| row.rank == r));
        let smallest = match (lo, hi) {
            (Some(lo), Some(hi)) if hi == lo + 1 => format!("{hi}"),
            (Some(lo), Some(hi)) => format!("{}..={hi} (search stopped)", lo + 1),
            (None, Some(hi)) => format!("≤ {hi} (not searched below)"),
            (Some(lo), None) => format!("> {lo}"),
            (None, None) => "not found".into(),
        };
        let exact_time = fitted(hi).map_or("—".into(), |r| format!("{:.1}", r.seconds));
        writeln!(
            summary,
            "| {l} | {d} | {smallest} | {exact_time} | {tdn} | {:.2e} | {:.2e} | {:.2e} |",
            at_tdn.fit_error, at_tdn.product_error, at_tdn.equivariance_error
        )?;
        writeln!(details, "\n**L = {l}** (d = {d})\n")?;
        writeln!(
            details,
            "| rank | fit error | product error | equivariance error | fit (s) |"
        )?;
        writeln!(details, "|---:|---:|---:|---:|---:|")?;
        for r in &rows {
            writeln!(
                details,
                "| {}{} | {:.2e} | {:.2e} | {:.2e} | {:.2} |",
                r.rank,
                if r.rank == tdn { " (7L²)" } else { "" },
                r.fit_error,
                r.product_error,
                r.equivariance_error,
                r.seconds
            )?;
        }
        // Written after every L, so that a long search leaves what it has found.
        write_report(&summary, &details, &args, begin)?;
    }
    Ok(())
}

/// CP_FITS.md from the rows so far.
fn write_report(
    summary: &str,
    details: &str,
    args: &[String],
    begin: Instant,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut out = String::new();
    writeln!(out, "# CP fits of the path-summed CG tensor\n")?;
    writeln!(
        out,
        "Written by `cargo run --release --example cp_fits -- {}` in {:.0} s (f64 on the CPU; \
         fit times are this host's, {} threads). `so3::CpProduct::fit(L, L, L, R)`: alternating \
         least squares with line search from a fixed start (`src/so3/cp/fit.rs`). \"Exact\" is a \
         fit error below {EXACT:e}; the smallest exact rank is the smallest rank at which *this* \
         fit reaches it (ALS from another start, or run longer, may do better), found by \
         stepping and bisection assuming exactness is monotone in the rank — or, where a \
         bracket `lo:hi` was passed from an earlier search, by fitting its two ends. Product \
         error: `‖f_CP − f_CG‖ / ‖f_CG‖` over {SAMPLES} random input pairs (uniform in [−1, 1]); \
         equivariance error: `‖D·f(x1, x2) − f(D·x1, D·x2)‖ / ‖f‖` over {ROTATIONS} random \
         rotations. For i.i.d. inputs the product error estimates the fit error.\n",
        args.join(" "),
        begin.elapsed().as_secs_f64(),
        rayon::current_num_threads()
    )?;
    writeln!(out, "| L | d = (L+1)² | smallest exact rank | its fit (s) | 7L² | fit error at 7L² | product error at 7L² | equivariance error at 7L² |")?;
    writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    out.push_str(summary);
    writeln!(out, "\n## Every fitted rank")?;
    out.push_str(details);
    std::fs::write("CP_FITS.md", &out)?;
    Ok(())
}
