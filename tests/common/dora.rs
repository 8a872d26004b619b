//! DoRA test helpers: random adapters, the error measures and their bounds.
//!
//! Bounds: GEMM-based outputs are f32 sums of a few hundred terms of mixed sign, relative
//! error ≈ √d·2⁻²⁴ ≈ 1e-6, checked at 1e-5 (relative L2). The weight norms are checked
//! against the size of the terms they sum (see `norm_error`), since the factored form can
//! cancel. The compose is element-wise, a handful of roundings per element: checked in ulps.

use rand::rngs::StdRng;
use wgkernels::compare::relative_error;
use wgkernels::dora::{self, reference, LoraShape};
use wgkernels::{Context, DType, Tensor};

pub type ComposeFn =
    fn(&Context, &Tensor, &Tensor, &Tensor, &Tensor, f32) -> wgkernels::Result<Tensor>;

pub const BOUND: f64 = 1e-5;

pub fn contexts() -> Vec<Context> {
    super::every_path()
}

pub struct Adapter {
    pub w: Vec<f32>,
    pub a: Vec<f32>,
    pub b: Vec<f32>,
    pub shape: LoraShape,
}

pub fn adapter(rng: &mut StdRng, d_out: usize, d_in: usize, r: usize) -> Adapter {
    Adapter {
        w: super::uniform(rng, d_out * d_in),
        a: super::uniform(rng, r * d_in),
        b: super::uniform(rng, d_out * r),
        shape: LoraShape { d_out, d_in, r },
    }
}

impl Adapter {
    pub fn upload(&self, ctx: &Context) -> [Tensor; 3] {
        let LoraShape { d_out, d_in, r } = self.shape;
        [
            ctx.tensor(&self.w, &[d_out, d_in]).unwrap(),
            ctx.tensor(&self.a, &[r, d_in]).unwrap(),
            ctx.tensor(&self.b, &[d_out, r]).unwrap(),
        ]
    }
}

/// Bound of [`norm_error`]: f32 sums of a few hundred terms, ≈ √k·2⁻²⁴ of their size, with
/// room for the order of summation (the paper tests fp32 at 2e-5 too).
pub const NORM_BOUND: f64 = 2e-5;

/// `max_j |got_j² − want_j²| / S_j` with `S_j = ‖ |W_j| + |s|·|B_j|·|A| ‖²`, the size of the
/// terms the squared norm sums. The factored form `‖W_j‖² + 2s·B_j·U_j + s²·B_j G B_jᵀ`
/// cancels when `W_j + s·(B·A)_j` is small against them (a 1×1 weight with r = 384 once lost
/// three digits), so f32 bounds the error against `S_j`, not against the norm itself.
pub fn norm_error(
    got: &[f32],
    want: &[f64],
    w: &[f32],
    a: &[f32],
    b: &[f32],
    shape: LoraShape,
    s: f32,
) -> f64 {
    if got.iter().any(|g| !g.is_finite()) {
        return f64::INFINITY;
    }
    let got: Vec<f64> = got.iter().map(|&g| g as f64).collect();
    norm_error_f64(&got, want, w, a, b, shape, s)
}

/// [`norm_error`] of norms computed in f64 (the factored f64 reference cancels the same way).
pub fn norm_error_f64(
    got: &[f64],
    want: &[f64],
    w: &[f32],
    a: &[f32],
    b: &[f32],
    shape: LoraShape,
    s: f32,
) -> f64 {
    let LoraShape { d_in, r, .. } = shape;
    got.iter()
        .zip(want)
        .enumerate()
        .map(|(j, (&g, &n))| {
            let size: f64 = (0..d_in)
                .map(|i| {
                    let lowrank: f64 = (0..r)
                        .map(|t| (b[j * r + t] as f64 * a[t * d_in + i] as f64).abs())
                        .sum();
                    ((w[j * d_in + i] as f64).abs() + (s as f64).abs() * lowrank).powi(2)
                })
                .sum();
            (g * g - n * n).abs() / size.max(f64::MIN_POSITIVE)
        })
        .fold(0.0, f64::max)
}

/// Largest `|got − want|` in units of f32 epsilon times the size of the terms summed.
pub fn max_ulps(got: &[f32], want: &[f64], scale: &[f64]) -> f64 {
    got.iter()
        .zip(want)
        .zip(scale)
        .map(|((&g, &w), &s)| (g as f64 - w).abs() / (f32::EPSILON as f64 * s))
        .fold(0.0, f64::max)
}

/// Checks compose, compose_unfused and compose_backward against the f64 reference, with
/// `[dy, base, lora]` (values already representable in `dtype`) stored as `dtype` and
/// `[magnitude, norm]` as f32.
pub fn check_compose_family(
    ctx: &Context,
    dtype: DType,
    n: usize,
    d_out: usize,
    s: f32,
    [dy, base, lora, magnitude, norm]: [&[f32]; 5],
    label: &str,
) {
    let half = |x: &[f32]| ctx.tensor_as(x, &[n, d_out], dtype).unwrap();
    let (tdy, tb, tl) = (half(dy), half(base), half(lora));
    let (tm, tn) = (
        ctx.tensor(magnitude, &[d_out]).unwrap(),
        ctx.tensor(norm, &[d_out]).unwrap(),
    );
    let want = reference::compose(base, lora, magnitude, norm, s as f64);
    for y in [
        dora::compose(ctx, &tb, &tl, &tm, &tn, s),
        dora::compose_unfused(ctx, &tb, &tl, &tm, &tn, s),
    ] {
        let err = relative_error(&y.unwrap().to_vec().unwrap(), &want);
        assert!(err < BOUND, "{label} compose: {err:e}");
    }
    let grads = dora::compose_backward(ctx, &tdy, &tb, &tl, &tm, &tn, s).unwrap();
    let (db, dl, dm) = reference::compose_backward(dy, base, lora, magnitude, norm, s as f64);
    for (got, want) in [
        (&grads.base, &db),
        (&grads.lora, &dl),
        (&grads.magnitude, &dm),
    ] {
        let err = relative_error(&got.to_vec().unwrap(), want);
        assert!(err < BOUND, "{label} backward: {err:e}");
    }
}
