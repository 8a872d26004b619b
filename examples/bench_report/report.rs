//! The rows of BENCHMARKS.md and their rendering as one markdown section per device.

use wgkernels::bench::Timing;
use wgkernels::roofline::DeviceRates;

/// What limits a kernel, and so which device rate its fraction is taken of.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Memory,
    Compute,
}

pub struct Row {
    pub kernel: String,
    pub shape: String,
    pub timing: Timing,
    /// Minimum bytes the kernel must move (inputs read once, outputs written once).
    pub bytes: f64,
    /// Useful flops (an FMA counts two).
    pub flops: f64,
    pub bound: Bound,
    /// The baseline named by the issue, and its median seconds in the same run.
    pub baseline: Option<(String, f64)>,
    /// ‖gpu − ref‖/‖ref‖ and max |gpu − ref| against the f64 CPU path.
    pub error: Option<(f64, f64)>,
    /// The form of the kernel that ran, where it has several (`Gemm::form`); empty otherwise.
    pub form: String,
    /// Anything else worth a figure (peak bytes, ...).
    pub notes: String,
}

pub struct Report {
    /// The section's heading: the device's name (and what the rows are, where not kernels).
    pub device: String,
    /// The command that writes the section.
    pub command: String,
    pub rates: DeviceRates,
    pub rows: Vec<Row>,
    /// Findings drawn from several rows (growth fits, crossovers), listed under the table.
    pub findings: Vec<String>,
    /// Plots written beside BENCHMARKS.md: (caption, path), shown under the findings.
    pub figures: Vec<(String, String)>,
}

impl Report {
    pub fn push(&mut self, row: Row) {
        println!("{}", self.line(&row));
        self.rows.push(row);
    }

    pub fn finding(&mut self, text: String) {
        println!("- {text}");
        self.findings.push(text);
    }

    pub fn figure(&mut self, caption: String, path: String) {
        println!("plot: {path}");
        self.figures.push((caption, path));
    }

    /// The median seconds of the row with this kernel and shape, if it was measured.
    pub fn median(&self, kernel: &str, shape: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.kernel == kernel && r.shape == shape)
            .map(|r| r.timing.median)
    }

    fn line(&self, r: &Row) -> String {
        let t = r.timing.median;
        let gbps = r.bytes / t / 1e9;
        let gflops = r.flops / t / 1e9;
        let (bw_frac, fma_frac) = (gbps / self.rates.copy_gbps, gflops / self.rates.fma_gflops);
        let pct = |on: bool, f: f64| {
            if on {
                format!("{:.0}%", f * 100.0)
            } else {
                "—".into()
            }
        };
        let (baseline, speedup) = match &r.baseline {
            Some((name, seconds)) => (name.clone(), format!("{:.2}×", seconds / t)),
            None => ("—".into(), "—".into()),
        };
        let (rel, max) = match r.error {
            Some((rel, max)) => (format!("{rel:.1e}"), format!("{max:.1e}")),
            None => ("—".into(), "—".into()),
        };
        format!(
            "| {} | {} | {} | {} ({}–{}) | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.kernel,
            r.shape,
            if r.form.is_empty() { "—" } else { &r.form },
            ms(t),
            ms(r.timing.p20),
            ms(r.timing.p80),
            sig3(gbps),
            pct(r.bound == Bound::Memory, bw_frac),
            sig3(gflops),
            pct(r.bound == Bound::Compute, fma_frac),
            baseline,
            speedup,
            rel,
            max,
            r.notes,
        )
    }

    /// This run's section: a heading naming the device, the measured ceilings, the table.
    pub fn section(&self, date: &str) -> String {
        let mut s = format!("## {}\n\n", self.device);
        s += &format!(
            "Measured {date} by `{}`. Device ceilings \
             measured in the same run: copy bandwidth **{:.1} GB/s** (read + written, \
             `roofline::copy_bandwidth`), f32 FMA rate **{:.1} GFLOP/s** (`roofline::fma_rate`).\n\n",
            self.command, self.rates.copy_gbps, self.rates.fma_gflops
        );
        if self.device.contains("llvmpipe") || self.device.contains("Cpu") {
            s += "This is lavapipe, Mesa's Vulkan on the CPU: the figures are relative only \
                  (kernel against baseline, kernel against this device's own ceilings), not \
                  a statement about any GPU.\n\n";
        }
        s += "| kernel | shape | form | median ms (p20–p80) | GB/s | % copy BW | GFLOP/s | % FMA rate | baseline | speedup | rel. err | max abs err | notes |\n";
        s += "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
        for row in &self.rows {
            s += &self.line(row);
            s += "\n";
        }
        if !self.findings.is_empty() {
            s += "\n";
            for finding in &self.findings {
                s += &format!("- {finding}\n");
            }
        }
        for (caption, path) in &self.figures {
            s += &format!("\n![{caption}]({path})\n");
        }
        s
    }
}

/// The exponent a of `time ∝ size^a`, fitted by least squares on logarithms.
pub fn growth_exponent(points: &[(f64, f64)]) -> f64 {
    let logs: Vec<(f64, f64)> = points.iter().map(|(x, y)| (x.ln(), y.ln())).collect();
    let count = logs.len() as f64;
    let (mx, my) = (
        logs.iter().map(|p| p.0).sum::<f64>() / count,
        logs.iter().map(|p| p.1).sum::<f64>() / count,
    );
    let sxy: f64 = logs.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = logs.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
    sxy / sxx
}

/// Where `faster` overtakes `slower` (both `(size, seconds)` at the same sizes, ascending):
/// the size at which their log-times cross, interpolated in log-log between the bracketing
/// points; `Ok(None)` when `faster` never wins, `Err(first)` when it wins from the first.
pub fn crossover(faster: &[(f64, f64)], slower: &[(f64, f64)]) -> Result<Option<f64>, f64> {
    let gap: Vec<(f64, f64)> = faster
        .iter()
        .zip(slower)
        .map(|(f, s)| (f.0.ln(), f.1.ln() - s.1.ln()))
        .collect();
    match gap.first() {
        None => Ok(None),
        Some(&(x, g)) if g < 0.0 => Err(x.exp()),
        _ => Ok(gap.windows(2).find(|w| w[1].1 < 0.0).map(|w| {
            let ((x0, g0), (x1, g1)) = (w[0], w[1]);
            (x0 + (x1 - x0) * g0 / (g0 - g1)).exp()
        })),
    }
}

/// Three significant digits, without exponent.
fn sig3(x: f64) -> String {
    let decimals = if x <= 0.0 {
        0
    } else {
        (2 - x.log10().floor() as i32).max(0) as usize
    };
    format!("{x:.decimals$}")
}

fn ms(seconds: f64) -> String {
    let ms = seconds * 1e3;
    if ms < 0.1 {
        format!("{ms:.4}")
    } else if ms < 10.0 {
        format!("{ms:.3}")
    } else {
        format!("{ms:.1}")
    }
}

/// `existing` with the section for this device replaced (or added), other devices' kept.
pub fn merge(existing: &str, device: &str, section: &str) -> String {
    const HEADER: &str = "# Benchmarks\n\n\
        Written by `cargo run --release --example bench_report`, one section per device. \
        Times are per call in steady state (calls issued back to back, one wait per sample; \
        `wgkernels::bench::time_calls`). GB/s counts the minimum bytes a kernel must move \
        (each input read once, each output written once); GFLOP/s counts an FMA as two \
        flops. The fraction column that applies is the one of the kernel's bound: copy \
        bandwidth for memory-bound kernels, FMA rate for compute-bound ones. Errors are \
        against the f64 CPU reference on the same inputs.\n\n";
    let mut sections: Vec<String> = Vec::new();
    for part in existing.split("\n## ").skip(1) {
        let part = format!("## {}", part.trim_end());
        if part.lines().next() != Some(&format!("## {device}")) {
            sections.push(part);
        }
    }
    sections.insert(0, section.trim_end().to_string());
    format!("{HEADER}{}\n", sections.join("\n\n"))
}

/// Today's date (UTC) as YYYY-MM-DD, from the system clock.
pub fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0) as i64;
    // Civil-from-days (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!("{y:04}-{m:02}-{d:02}")
}
