//! The FFT's plan: its lengths' radices, twiddles and digit-reversed orders as the kernel
//! reads them, and rustfft's transform in f64 (the CPU path and the tests' reference).

use num_complex::Complex64;
use rustfft::FftPlanner;

/// Complex entries one grid may hold (the workgroup array `spectrum`, 16 KiB).
pub const FFT_CAPACITY: usize = 2048;
/// The largest prime factor a length may have.
pub const MAX_RADIX: usize = 32;

/// Which way a transform goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FftDirection {
    /// `X_k = Σ_j x_j·e^{−2πi⟨j,k⟩/n}`.
    Forward,
    /// `x_j = Σ_k X_k·e^{+2πi⟨j,k⟩/n}` (unnormalised: forward then inverse multiplies by n).
    Inverse,
}

/// The radices of `n` in stage order — 4s first, then 2, 3, 5, 7, … — or `None` when a prime
/// factor exceeds [`MAX_RADIX`]. `n = 1` has no stages.
pub(crate) fn radices(n: usize) -> Option<Vec<usize>> {
    let mut rest = n;
    let mut out = Vec::new();
    while rest % 4 == 0 {
        out.push(4);
        rest /= 4;
    }
    let mut factor = 2;
    while rest > 1 {
        if factor > MAX_RADIX {
            return None;
        }
        while rest % factor == 0 {
            out.push(factor);
            rest /= factor;
        }
        factor += 1;
    }
    Some(out)
}

/// The smallest length ≥ `n` whose prime factors are 2, 3 and 5.
pub(crate) fn smooth_length(n: usize) -> usize {
    (n.max(1)..)
        .find(|&m| {
            let mut rest = m;
            for f in [2, 3, 5] {
                while rest % f == 0 {
                    rest /= f;
                }
            }
            rest == 1
        })
        .expect("smooth numbers are unbounded")
}

/// Where element j of a sequence sits in digit-reversed order for these radices: with
/// `j = q_{s−1} + r_{s−1}·(q_{s−2} + r_{s−2}·(…))`, position `Σ_t q_t·r_0⋯r_{t−1}` — the order
/// a decimation-in-time transform reads and a decimation-in-frequency one writes.
pub(crate) fn digit_reversed(radices: &[usize]) -> Vec<u32> {
    let n: usize = radices.iter().product();
    (0..n)
        .map(|j| {
            let (mut rest, mut span, mut position) = (j, n, 0);
            for &r in radices.iter().rev() {
                span /= r;
                position += (rest % r) * span;
                rest /= r;
            }
            position as u32
        })
        .collect()
}

/// `w_n^k = e^{−2πik/n}`, k < n, as f32 (re, im) pairs computed in f64.
pub(crate) fn twiddles(n: usize) -> Vec<[f32; 2]> {
    (0..n)
        .map(|k| {
            let angle = -2.0 * std::f64::consts::PI * k as f64 / n as f64;
            [angle.cos() as f32, angle.sin() as f32]
        })
        .collect()
}

/// The `override` constants of fft.inc.wgsl for a row-major `[rows, cols]` grid: the
/// lengths, the stage counts, and the radices packed a byte each (stage t in byte t % 4 of
/// the low word for t < 4, else of the high word). Both lengths must pass [`fft2_fits`].
pub(crate) fn kernel_constants([rows, cols]: [usize; 2]) -> Vec<(&'static str, f64)> {
    let radices = |n: usize| radices(n).unwrap_or_default();
    let packed = |n: usize, words: std::ops::Range<usize>| {
        radices(n)
            .iter()
            .enumerate()
            .filter(|(t, _)| words.contains(t))
            .map(|(t, &r)| (r as u32) << (8 * (t % 4)))
            .sum::<u32>() as f64
    };
    vec![
        ("FFT_U", rows as f64),
        ("FFT_V", cols as f64),
        ("FFT_U_STAGES", radices(rows).len() as f64),
        ("FFT_V_STAGES", radices(cols).len() as f64),
        ("FFT_U_RADICES_LO", packed(rows, 0..4)),
        ("FFT_U_RADICES_HI", packed(rows, 4..8)),
        ("FFT_V_RADICES_LO", packed(cols, 0..4)),
        ("FFT_V_RADICES_HI", packed(cols, 4..8)),
    ]
}

/// The kernel's tables for a `[rows, cols]` grid: the twiddles `w_n^k` of both lengths
/// (rows' first), and their digit-reversed orders.
pub(crate) fn kernel_tables([rows, cols]: [usize; 2]) -> (Vec<[f32; 2]>, Vec<u32>) {
    let twiddles = [rows, cols].into_iter().flat_map(twiddles).collect();
    let positions = [rows, cols]
        .into_iter()
        .flat_map(|n| digit_reversed(&radices(n).unwrap_or_default()))
        .collect();
    (twiddles, positions)
}

/// The 2D transform of row-major `[rows, cols]` grids (several back to back) in f64, by
/// rustfft: the CPU path of [`fft2`](super::fft2) and the reference of its tests.
pub fn fft2_reference(
    x: &[Complex64],
    rows: usize,
    cols: usize,
    direction: FftDirection,
) -> Vec<Complex64> {
    let mut planner = FftPlanner::new();
    let mut plan = |n| match direction {
        FftDirection::Forward => planner.plan_fft_forward(n),
        FftDirection::Inverse => planner.plan_fft_inverse(n),
    };
    let (along_rows, along_cols) = (plan(cols), plan(rows));
    let mut out = x.to_vec();
    for grid in out.chunks_mut(rows * cols) {
        along_rows.process(grid);
        let mut column = vec![Complex64::new(0.0, 0.0); rows];
        for c in 0..cols {
            for (r, value) in column.iter_mut().enumerate() {
                *value = grid[r * cols + c];
            }
            along_cols.process(&mut column);
            for (r, value) in column.iter().enumerate() {
                grid[r * cols + c] = *value;
            }
        }
    }
    out
}

/// Whether a `[rows, cols]` grid fits the kernel: at most [`FFT_CAPACITY`] entries, prime
/// factors at most [`MAX_RADIX`].
pub fn fft2_fits(rows: usize, cols: usize) -> bool {
    rows * cols <= FFT_CAPACITY && radices(rows).is_some() && radices(cols).is_some()
}
