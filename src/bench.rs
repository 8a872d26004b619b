//! Timing of kernel calls, shared by the roofline probes, the criterion benches and
//! `examples/bench_report`.

use std::time::Instant;

use crate::{Context, Result};

/// Seconds per call: the median and the 20th and 80th percentiles over the samples.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Median seconds per call.
    pub median: f64,
    /// 20th percentile.
    pub p20: f64,
    /// 80th percentile.
    pub p80: f64,
    /// Calls per sample (back to back, one wait at the end).
    pub batch: usize,
    /// Samples taken.
    pub samples: usize,
}

/// Times `call` in steady state: after a warm-up call, samples of `batch` calls issued back
/// to back and then waited for, so that the wait for the device is paid once per sample, as
/// in a real pipeline of kernels. The batch is sized so that a sample takes about 2 ms
/// (at least one call), and samples are taken for about `budget` seconds (3 at least) —
/// except that a call which alone takes longer than `budget` is timed once (after the
/// warm-up): p20 = median = p80 then.
pub fn time_calls(ctx: &Context, budget: f64, call: impl FnMut() -> Result<()>) -> Result<Timing> {
    time_until(|| ctx.synchronize(), budget, call)
}

/// [`time_calls`] with another wait for the device: for calls that also queue another
/// framework's work on it (burn's, whose queue is flushed and waited for by its own sync).
pub fn time_until(
    mut wait: impl FnMut() -> Result<()>,
    budget: f64,
    mut call: impl FnMut() -> Result<()>,
) -> Result<Timing> {
    call()?;
    wait()?;
    let start = Instant::now();
    call()?;
    wait()?;
    let single = start.elapsed().as_secs_f64().max(1e-7);
    if single >= budget {
        return Ok(Timing {
            median: single,
            p20: single,
            p80: single,
            batch: 1,
            samples: 1,
        });
    }
    let batch = ((2e-3 / single).ceil() as usize).clamp(1, 1000);
    let samples = ((budget / (single * batch as f64)) as usize).clamp(3, 50);
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let start = Instant::now();
        for _ in 0..batch {
            call()?;
        }
        wait()?;
        times.push(start.elapsed().as_secs_f64() / batch as f64);
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    Ok(Timing {
        median: at(0.5),
        p20: at(0.2),
        p80: at(0.8),
        batch,
        samples,
    })
}
