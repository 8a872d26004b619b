// The flat layout of spherical-harmonic coefficients, lm = l² + m + l, both ways; used by
// the Gaunt products' bodies (gaunt_fourier.inc.wgsl, gaunt_grid.inc.wgsl), whose kernels
// include this beside them.

fn index(l: i32, m: i32) -> u32 {
    return u32(l * l + m + l);
}

// (l, m) of flat index lm: l = ⌊√lm⌋, corrected where the f32 root rounds across an integer.
fn degree_order(lm: u32) -> vec2<i32> {
    var l = i32(sqrt(f32(lm)));
    if (l + 1) * (l + 1) <= i32(lm) {
        l += 1;
    }
    if l * l > i32(lm) {
        l -= 1;
    }
    return vec2<i32>(l, i32(lm) - l * l - l);
}
