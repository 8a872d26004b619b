//! Error measures for comparing a kernel's f32 output with its f64 reference.

/// `‖got − want‖₂ / ‖want‖₂`; infinite when `got` holds a NaN or an infinity (so that an
/// unwritten, NaN-poisoned element can never pass), or when the lengths differ.
pub fn relative_error(got: &[f32], want: &[f64]) -> f64 {
    if got.len() != want.len() || got.iter().any(|x| !x.is_finite()) {
        return f64::INFINITY;
    }
    let (diff, norm) = got
        .iter()
        .zip(want)
        .fold((0.0f64, 0.0f64), |(d, n), (&g, &w)| {
            (d + (g as f64 - w).powi(2), n + w * w)
        });
    if norm == 0.0 {
        diff.sqrt()
    } else {
        (diff / norm).sqrt()
    }
}

/// `max_i |got_i − want_i|`; infinite on a non-finite `got` or differing lengths.
pub fn max_abs_error(got: &[f32], want: &[f64]) -> f64 {
    if got.len() != want.len() || got.iter().any(|x| !x.is_finite()) {
        return f64::INFINITY;
    }
    got.iter()
        .zip(want)
        .map(|(&g, &w)| (g as f64 - w).abs())
        .fold(0.0, f64::max)
}
