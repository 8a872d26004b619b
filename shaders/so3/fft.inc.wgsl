// The mixed-radix 2D FFT of the Fourier route (see src/so3/fft.rs), on one grid in
// workgroup memory: `spectrum[iu·n_v + iv]`. Included by so3/fft.wgsl (the transform alone,
// tested against rustfft) and so3/gaunt_fourier.wgsl.
//
// The includer declares two read-only storage arrays built by the host for each axis:
//   twiddles: array<vec2<f32>>  w_n^k = exp(−2πik/n), k < n, from axis.twiddle_offset
//   positions: array<u32>       the digit-reversed order of 0..n, from axis.position_offset
//
// n = r_0·r_1·…·r_{s−1}. Inverse transforms decimate in time: the input sits in
// digit-reversed order, stage t merges transforms of length span = r_0⋯r_{t−1} into length
// span·r_t, the output comes out in natural order. Forward transforms decimate in frequency,
// the transpose: stages in reverse, input natural, output digit-reversed. The Fourier route
// runs inverse → pointwise product → forward, so it never reorders. Both unnormalised, as
// rustfft.

const FFT_CAPACITY: u32 = 2048u; // complex entries of one grid (16 KiB)
const MAX_RADIX: u32 = 32u;
const FFT_WORKGROUP: u32 = 256u;

struct FftAxis {
    n: u32,
    stages: u32,
    stride: u32,         // distance between neighbours along this axis in `spectrum`
    lines: u32,          // transforms along this axis: the other axis's length
    line_stride: u32,    // distance between those lines
    twiddle_offset: u32,
    position_offset: u32,
    _pad: u32,
    radices: array<vec4<u32>, 2>, // r_t at [t / 4][t % 4]
}

var<workgroup> spectrum: array<vec2<f32>, FFT_CAPACITY>;

fn complex_mul(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

fn radix(axis: FftAxis, stage: u32) -> u32 {
    var radices = axis.radices;
    return radices[stage / 4u][stage % 4u];
}

// w_n^k, conjugated for the inverse transform.
fn twiddle(axis: FftAxis, k: u32, inverse: bool) -> vec2<f32> {
    let w = twiddles[axis.twiddle_offset + k % axis.n];
    if inverse {
        return vec2<f32>(w.x, -w.y);
    }
    return w;
}

// Where element (iu, iv) of a natural-order grid sits in digit-reversed order.
fn fft_position(u: FftAxis, v: FftAxis, iu: u32, iv: u32) -> u32 {
    return positions[u.position_offset + iu] * v.n + positions[v.position_offset + iv];
}

// Stage `stage` along `axis`, every line: the radix-r butterflies on elements
// first + q·span, q < r, of each group. In time: x_q ← x_q·w_{span·r}^{jq}, then the r-point
// DFT. In frequency (the transpose): the r-point DFT, then y_p ← y_p·w_{span·r}^{jp}.
fn fft_stage(axis: FftAxis, stage: u32, in_time: bool, inverse: bool, lid: u32) {
    let r = radix(axis, stage);
    var span = 1u;
    for (var t = 0u; t < stage; t++) {
        span *= radix(axis, t);
    }
    let per_line = axis.n / r;
    let step = axis.n / (span * r); // w_{span·r} = w_n^step
    let rotation = axis.n / r;      // w_r = w_n^rotation
    var values: array<vec2<f32>, MAX_RADIX>;
    for (var b = lid; b < axis.lines * per_line; b += FFT_WORKGROUP) {
        let butterfly = b % per_line;
        let j = butterfly % span;
        let first = (butterfly / span) * span * r + j;
        let origin = (b / per_line) * axis.line_stride + first * axis.stride;
        let hop = span * axis.stride;
        for (var q = 0u; q < r; q++) {
            var x = spectrum[origin + q * hop];
            if in_time {
                x = complex_mul(x, twiddle(axis, j * q * step, inverse));
            }
            values[q] = x;
        }
        for (var k = 0u; k < r; k++) {
            var sum = values[0];
            for (var q = 1u; q < r; q++) {
                sum += complex_mul(values[q], twiddle(axis, ((k * q) % r) * rotation, inverse));
            }
            if !in_time {
                sum = complex_mul(sum, twiddle(axis, j * k * step, inverse));
            }
            spectrum[origin + k * hop] = sum;
        }
    }
}

// The unnormalised inverse 2D transform, Σ X_{ku,kv}·e^{+2πi(ku·ju/n_u + kv·jv/n_v)}:
// digit-reversed in, natural out. Call in uniform control flow (it holds barriers).
fn inverse_fft2(u: FftAxis, v: FftAxis, lid: u32) {
    for (var t = 0u; t < v.stages; t++) {
        fft_stage(v, t, true, true, lid);
        workgroupBarrier();
    }
    for (var t = 0u; t < u.stages; t++) {
        fft_stage(u, t, true, true, lid);
        workgroupBarrier();
    }
}

// The unnormalised forward 2D transform, Σ x_{ju,jv}·e^{−2πi(ku·ju/n_u + kv·jv/n_v)}:
// natural in, digit-reversed out. Call in uniform control flow (it holds barriers).
fn forward_fft2(u: FftAxis, v: FftAxis, lid: u32) {
    for (var t = u.stages; t > 0u; t--) {
        fft_stage(u, t - 1u, false, false, lid);
        workgroupBarrier();
    }
    for (var t = v.stages; t > 0u; t--) {
        fft_stage(v, t - 1u, false, false, lid);
        workgroupBarrier();
    }
}
