// The start shared by spherical_harmonics.wgsl and its written-out form: their parameters,
// and Y_0, Y_1 of a vector with the cases that end there. The includer binds `p` and `out`.

struct Params {
    n: u32,          // vectors in this block
    lmax: u32,
    dim: u32,        // (lmax+1)²
    v_offset: u32,
    out_offset: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// Stores Y_0 and Y_1 of vector t at `base` and returns (Y_1, 1) where the recursion goes
// on; returns w = 0 where it is done: lmax 0, or a zero or non-finite vector, whose higher
// degrees are stored here (0, or NaN).
fn first_degrees(t: u32, base: u32) -> vec4<f32> {
    let v = vector_at(t);
    out[base] = 1.0;
    if p.lmax == 0u {
        return vec4<f32>(0.0);
    }
    if has_non_finite(v) {
        for (var i = 1u; i < p.dim; i++) {
            out[base + i] = bitcast<f32>(0x7fc00000u);
        }
        return vec4<f32>(0.0);
    }
    let largest = largest_component(v);
    if largest == 0.0 {
        for (var i = 1u; i < p.dim; i++) {
            out[base + i] = 0.0;
        }
        return vec4<f32>(0.0);
    }
    let u = v / largest;
    let y1 = sqrt(3.0) * u / length(u);
    out[base + 1u] = y1.x;
    out[base + 2u] = y1.y;
    out[base + 3u] = y1.z;
    return vec4<f32>(y1, 1.0);
}
