//! The batched 2D FFT of the Fourier route, written in WGSL (`shaders/so3/fft.inc.wgsl`):
//! mixed radix, in place in one workgroup's memory, unnormalised like rustfft —
//! forward `X_k = Σ_j x_j·e^{−2πi⟨j,k⟩/n}`, inverse with `e^{+2πi⟨j,k⟩/n}`.
//!
//! A length `n = r_0·r_1·…` is split into radices (4s first, then 2, 3, 5 and any larger
//! prime, each done as a plain r-point DFT), so every length whose prime factors are at most
//! [`MAX_RADIX`] works; the Gaunt route pads to lengths with factors 2, 3 and 5 only.
//! [`fft2`] runs the kernel alone, for tests and for users; the CPU path (and the reference
//! the tests compare with) is rustfft's.

mod kernel;
mod plan;

pub(crate) use kernel::fft_shape;
pub(crate) use plan::smooth_length;
pub use plan::{fft2_fits, fft2_reference, FftDirection, FFT_CAPACITY, MAX_RADIX};

use num_complex::Complex64;

use crate::{op, Context, Error, Result, Tensor};

/// The unnormalised 2D FFT of each grid of `x [grids, rows, cols, 2]` (complex as (re, im)
/// pairs) → same shape; `rows·cols ≤` [`FFT_CAPACITY`], prime factors ≤ [`MAX_RADIX`].
/// One workgroup per grid on the GPU; rustfft (f64) on the CPU.
///
/// ```
/// use wgkernels::{so3::fft::{fft2, FftDirection}, Context};
/// # fn main() -> wgkernels::Result<()> {
/// let ctx = Context::new()?;
/// let x = ctx.tensor(&[1.0, 0.0, 2.0, 0.0, 3.0, 0.0], &[1, 1, 3, 2])?;
/// let y = fft2(&ctx, &x, FftDirection::Forward)?.to_vec()?;
/// assert!((y[0] - 6.0).abs() < 1e-5); // X_0 = Σ x_j
/// # Ok(())
/// # }
/// ```
pub fn fft2(ctx: &Context, x: &Tensor, direction: FftDirection) -> Result<Tensor> {
    const OP: &str = "so3::fft2";
    let _call = crate::call::Call::enter(OP);
    ctx.check_owns(OP, "x", x)?;
    let &[_, rows, cols, 2] = x.shape() else {
        return Err(Error::Shape {
            op: OP,
            message: format!("`x` {:?} must be [grids, rows, cols, 2]", x.shape()),
        });
    };
    if !fft2_fits(rows, cols) {
        return Err(Error::InvalidArgument {
            op: OP,
            arg: "x",
            message: format!(
                "a {rows}×{cols} grid needs at most {FFT_CAPACITY} entries and prime factors \
                 at most {MAX_RADIX}"
            ),
        });
    }
    let cpu = || {
        let data: Vec<Complex64> = x
            .host()
            .chunks(2)
            .map(|p| Complex64::new(p[0] as f64, p[1] as f64))
            .collect();
        let y = fft2_reference(&data, rows, cols, direction);
        Ok([y.iter().flat_map(|z| [z.re, z.im]).collect()])
    };
    let [y] = op::run(ctx, OP, [x.shape()], cpu, |gpu, [y]| {
        kernel::fft2(gpu, x, [rows, cols], direction, y)
    })?;
    Ok(y)
}
