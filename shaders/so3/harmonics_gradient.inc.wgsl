// Shared by spherical_harmonics_backward.wgsl and its written-out form: their parameters,
// the cases that end before the recursion, and the last step from ȳ_1 to ∂v. The includer
// binds `p` and `out`.

struct Params {
    n: u32,
    lmax: u32,
    dim: u32,
    v_offset: u32,
    g_offset: u32,
    out_offset: u32,
    y_offset: u32,
    _pad0: u32,
}

// Stores the gradient of vector t where it ends before the recursion and returns false:
// NaN for a NaN or infinite component (the harmonics are NaN), 0 for lmax 0 or a zero vector.
// True where the recursion goes on.
fn gradient_needs_recursion(v: vec3<f32>, o: u32) -> bool {
    if p.lmax > 0u && has_non_finite(v) {
        let nan = bitcast<f32>(0x7fc00000u);
        out[o] = nan;
        out[o + 1u] = nan;
        out[o + 2u] = nan;
        return false;
    }
    if p.lmax == 0u || largest_component(v) == 0.0 {
        out[o] = 0.0;
        out[o + 1u] = 0.0;
        out[o + 2u] = 0.0;
        return false;
    }
    return true;
}

// Stores ∂v = √3·(ȳ_1 − (ȳ_1·u)·u)/|v| for the total ȳ_1 of vector v, at o.
fn store_gradient(v: vec3<f32>, o: u32, total: vec3<f32>) {
    // |v| as largest·|v/largest|, so that neither overflows nor underflows.
    let largest = largest_component(v);
    let scaled = v / largest;
    let norm = length(scaled);
    let u = scaled / norm;
    let grad = sqrt(3.0) * (total - dot(total, u) * u) / norm / largest;
    out[o] = grad.x;
    out[o + 1u] = grad.y;
    out[o + 2u] = grad.z;
}
