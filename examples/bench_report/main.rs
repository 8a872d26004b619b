//! Writes BENCHMARKS.md: for every kernel and shape, the median time, effective GB/s and
//! GFLOP/s, their fraction of this device's own copy bandwidth and FMA rate (measured in the
//! same run), the speedup over the baseline named by its issue, and the error against the
//! f64 CPU path. The section for this device replaces any earlier one; other devices' stay.
//!
//! `cargo run --release --example bench_report`
//!
//! `cargo run --release --example bench_report -- attention so3` runs only the named
//! families and writes them as their own section, "<device> — partial run: attention, so3",
//! which the next partial run of the same families replaces (for work on one kernel).
//!
//! `cargo run --release --features burn --example bench_report -- burn` measures the peer
//! rows (burn/cubecl's own kernels beside ours on the same device, and the cost of calling
//! ours through burn) and writes them as their own section for the device, leaving the
//! kernels' section as it was.

mod attention;
#[cfg(feature = "burn")]
mod burn;
mod dora;
mod equivariant;
mod linalg;
mod mfac;
mod plot;
mod report;
mod second;
mod so3;
mod so3_large;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wgkernels::{roofline, Context};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ctx = Context::new()?;
    println!("device: {}", ctx.device_name());
    let rates = roofline::measure(&ctx)?;
    println!(
        "copy bandwidth {:.1} GB/s, FMA rate {:.1} GFLOP/s",
        rates.copy_gbps, rates.fma_gflops
    );
    let mut report = report::Report {
        device: ctx.device_name(),
        command: "cargo run --release --example bench_report".into(),
        rates,
        rows: Vec::new(),
        findings: Vec::new(),
        figures: Vec::new(),
    };
    type Family = fn(&Context, &mut StdRng, &mut report::Report) -> wgkernels::Result<()>;
    let families: [(&str, Family); 8] = [
        ("linalg", linalg::rows),
        ("dora", dora::rows),
        ("so3", so3::rows),
        ("so3_large", so3_large::rows),
        ("equivariant", equivariant::rows),
        ("second", second::rows),
        ("mfac", mfac::rows),
        ("attention", attention::rows),
    ];
    let only: Vec<String> = std::env::args().skip(1).collect();
    #[cfg(feature = "burn")]
    if only == ["burn"] {
        report.device = format!("{} — burn peers (feature `burn`)", report.device);
        report.command =
            "cargo run --release --features burn --example bench_report -- burn".into();
        burn::rows(&ctx, &mut StdRng::seed_from_u64(0xb0e2), &mut report)?;
        return write(&report);
    }
    for (name, rows) in families {
        if only.is_empty() || only.iter().any(|o| o == name) {
            // Each family gets its own seed, so that running one alone measures the same inputs.
            let seed = name
                .bytes()
                .fold(0x5eed, |h: u64, b| h.wrapping_mul(31) + b as u64);
            let mut rng = StdRng::seed_from_u64(seed);
            rows(&ctx, &mut rng, &mut report)?;
        }
    }
    let forms = ctx.tuned_forms();
    if !forms.is_empty() {
        let list: Vec<String> = forms.iter().map(|(c, f)| format!("{c} → {f}")).collect();
        report.finding(format!("Forms the tuner chose: {}.", list.join("; ")));
    }
    if !only.is_empty() {
        // A partial run is its own section, replaced by the next run of the same families,
        // so that the full run's section keeps its one date and ceilings.
        report.device = format!("{} — partial run: {}", report.device, only.join(", "));
        report.command = format!(
            "cargo run --release --example bench_report -- {}",
            only.join(" ")
        );
    }
    write(&report)
}

/// Replaces the report's section (by its heading) in BENCHMARKS.md.
fn write(report: &report::Report) -> Result<(), Box<dyn std::error::Error>> {
    let path = "BENCHMARKS.md";
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    let section = report.section(&report::today());
    std::fs::write(path, report::merge(&existing, &report.device, &section))?;
    println!("\n{section}\nwritten to {path}");
    Ok(())
}

/// A second GPU context that runs `form` wherever a kernel has it (the baseline of the form
/// the tuner chooses); None on the CPU path.
pub fn forced(
    ctx: &wgkernels::Context,
    form: &str,
) -> wgkernels::Result<Option<wgkernels::Context>> {
    if !ctx.is_gpu() {
        return Ok(None);
    }
    let options = wgkernels::GpuOptions {
        tuning: wgkernels::Tuning::Force(form.into()),
        ..Default::default()
    };
    wgkernels::Context::gpu_with(options).map(Some)
}

/// The form the tuner runs for the shape class that starts with `class` (its op and
/// arguments, as `Context::tuned_forms` lists them); empty where none is listed.
pub fn tuned_form(ctx: &wgkernels::Context, class: &str) -> String {
    ctx.tuned_forms()
        .into_iter()
        .find(|(c, _)| c.starts_with(class))
        .map(|(_, form)| form)
        .unwrap_or_default()
}

/// `len` values uniform in [-1, 1).
pub fn uniform(rng: &mut StdRng, len: usize) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
}
