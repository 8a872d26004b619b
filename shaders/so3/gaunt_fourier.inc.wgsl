// The body of the 2D-Fourier Gaunt product (the formulas: gaunt_fourier.wgsl), shared by
// gaunt_fourier.wgsl (the FFT grid in workgroup memory) and gaunt_fourier_global.wgsl (in a
// storage slice per row, for grids past FFT_CAPACITY). The includer says where the grid
// lives (see so3/fft.inc.wgsl), defines begin_row(row) (called first with the row), binds
// x1, x2 (each with its read_ loader), tables, twiddles, positions and out after `p`, and
// includes so3/harmonic_index.inc.wgsl.

// #include "so3/fft.inc.wgsl"

// #include "util/workgroup.inc.wgsl"

struct Params {
    rows: u32,             // n·c
    channels: u32,
    broadcast: u32,        // x2 is [n, 1, ·]
    l1: u32,
    l2: u32,
    lmax_out: u32,
    l_table: u32,          // t^{lm}_u is [dim(l_table)][2·l_table + 1] at the start of `tables`
    product_degree: u32,   // l1 + l2: K^{lm}_u is [dim(lmax_out)][2·(l1 + l2) + 1]
    projection_offset: u32,
    x1_offset: u32,
    x2_offset: u32,
    out_offset: u32,
    scratch_stride: u32,   // gaunt_fourier_global.wgsl: f32s of scratch per row (0 here)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// Frequency of grid index i on an axis of length n: 0, 1, …, then negative.
fn frequency(i: u32, n: u32) -> i32 {
    return select(i32(i), i32(i) - i32(n), i > n / 2u);
}

// Σ_{k = max(|m|, |u|)..l} t^{km}_u·x_km of input 1 or 2 (its row starts at `first`).
fn theta_sum(second: bool, first: u32, l: i32, u: i32, m: i32) -> vec2<f32> {
    let width = 2 * i32(p.l_table) + 1;
    var sum = vec2<f32>(0.0, 0.0);
    for (var k = max(abs(m), abs(u)); k <= l; k++) {
        let lm = index(k, m);
        var x: f32;
        if second {
            x = read_x2(first + lm);
        } else {
            x = read_x1(first + lm);
        }
        sum += x * tables[i32(lm) * width + u + i32(p.l_table)];
    }
    return sum;
}

// X_uv = Σ_m a^m_v·S(u, m): a^0_0 = 1; for v ≠ 0 the cosine (m = |v|) weighs ½ and the
// sine (m = −|v|) ∓i/2, so X_uv = ½·S(u, |v|) − sgn(v)·(i/2)·S(u, −|v|).
fn fourier_coefficient(second: bool, first: u32, l: i32, u: i32, v: i32) -> vec2<f32> {
    if abs(u) > l || abs(v) > l {
        return vec2<f32>(0.0, 0.0);
    }
    if v == 0 {
        return theta_sum(second, first, l, u, 0);
    }
    let cosine = theta_sum(second, first, l, u, abs(v));
    let sine = theta_sum(second, first, l, u, -abs(v));
    return 0.5 * cosine + f32(sign(v)) * 0.5 * vec2<f32>(sine.y, -sine.x);
}

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = workgroup_index(wid, nwg);
    if row >= p.rows {
        return;
    }
    begin_row(row);
    let x2_row = select(row, row / p.channels, p.broadcast == 1u);
    let first1 = p.x1_offset + row * (p.l1 + 1u) * (p.l1 + 1u);
    let first2 = p.x2_offset + x2_row * (p.l2 + 1u) * (p.l2 + 1u);

    // Both inputs scaled to unit size by exact powers of two before they are packed: the
    // packed transform rounds relative to the larger of the two, so an input far smaller
    // than the other would lose digits (0 ⊗ 6 with |x1| ≈ 0.005 lost 2·10⁻⁵). One lane
    // finds both maxima (at most 2·dim(16) reads) and shares them through the spectrum
    // array, which is free here: two barriers instead of a tree reduction's nine.
    if lid == 0u {
        var largest = vec2<f32>(0.0, 0.0);
        for (var i = 0u; i < (p.l1 + 1u) * (p.l1 + 1u); i++) {
            largest.x = max(largest.x, abs(read_x1(first1 + i)));
        }
        for (var i = 0u; i < (p.l2 + 1u) * (p.l2 + 1u); i++) {
            largest.y = max(largest.y, abs(read_x2(first2 + i)));
        }
        set_spectrum(0u, largest);
    }
    spectrum_barrier();
    let largest = spectrum_at(0u);
    let e1 = frexp(largest.x).exp;
    let e2 = frexp(largest.y).exp;
    let s1 = ldexp(1.0, -e1);
    let s2 = ldexp(1.0, -e2);
    spectrum_barrier();

    // Z = s1·X1 + i·s2·X2, written in the digit-reversed order the inverse transform reads.
    let size = FFT_U * FFT_V;
    for (var e = lid; e < size; e += FFT_WORKGROUP) {
        let iu = e / FFT_V;
        let iv = e % FFT_V;
        let u = frequency(iu, FFT_U);
        let v = frequency(iv, FFT_V);
        let a = s1 * fourier_coefficient(false, first1, i32(p.l1), u, v);
        let b = s2 * fourier_coefficient(true, first2, i32(p.l2), u, v);
        set_spectrum(fft_position(iu, iv), vec2<f32>(a.x - b.y, a.y + b.x));
    }
    spectrum_barrier();

    inverse_fft2(lid);
    for (var e = lid; e < size; e += FFT_WORKGROUP) {
        let z = spectrum_at(e);
        set_spectrum(e, vec2<f32>(z.x * z.y, 0.0));
    }
    spectrum_barrier();
    forward_fft2(lid);

    // Back to Y_lm: the spectrum is now in digit-reversed order.
    let d_out = (p.lmax_out + 1u) * (p.lmax_out + 1u);
    let degree = i32(p.product_degree);
    let width = 2u * p.product_degree + 1u;
    for (var lm = lid; lm < d_out; lm += FFT_WORKGROUP) {
        let m = degree_order(lm).y;
        let iv = u32(select(m, m + i32(FFT_V), m < 0));
        var sum = vec2<f32>(0.0, 0.0);
        for (var u = -degree; u <= degree; u++) {
            let iu = u32(select(u, u + i32(FFT_U), u < 0));
            let h = spectrum_at(fft_position(iu, iv));
            let k = tables[p.projection_offset + lm * width + u32(u + degree)];
            sum += complex_mul(h, k);
        }
        out[p.out_offset + row * d_out + lm] = ldexp(select(sum.y, sum.x, m >= 0), e1 + e2);
    }
}
