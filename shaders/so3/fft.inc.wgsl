// The mixed-radix 2D FFT of the Fourier route (see src/so3/products/fft/), on one grid
// `spectrum[iu·n_v + iv]`. Included by so3/fft.wgsl (the transform alone, tested against
// rustfft) and so3/gaunt_fourier.inc.wgsl.
//
// The includer says where the grid lives — spectrum_at(i), set_spectrum(i, v) and
// spectrum_barrier(), a barrier ordering those stores: so3/spectrum_workgroup.inc.wgsl for
// workgroup memory, or a storage slice of its own — and declares two read-only storage
// arrays built by the host, rows' then columns':
//   twiddles: array<vec2<f32>>  w_n^k = exp(−2πik/n), k < n
//   positions: array<u32>       the digit-reversed order of 0..n
//
// n = r_0·r_1·…·r_{s−1}. Inverse transforms decimate in time: the input sits in
// digit-reversed order, stage t merges transforms of length span = r_0⋯r_{t−1} into length
// span·r_t, the output comes out in natural order. Forward transforms decimate in frequency,
// the transpose: stages in reverse, input natural, output digit-reversed. The Fourier route
// runs inverse → pointwise product → forward, so it never reorders. Both unnormalised, as
// rustfft.

const FFT_CAPACITY: u32 = 2048u; // complex entries of one grid in workgroup memory (16 KiB)
const MAX_RADIX: u32 = 32u;
const FFT_WORKGROUP: u32 = 256u;

// The grid's shape, fixed when the pipeline is created (one pipeline per shape), so that the
// stage loops unroll and each stage's radix branch folds away. Radix r_t is byte t % 4 of
// FFT_*_RADICES_LO (t < 4) or _HI (t ≥ 4).
override FFT_U: u32;              // rows
override FFT_V: u32;              // columns
override FFT_U_STAGES: u32;
override FFT_V_STAGES: u32;
override FFT_U_RADICES_LO: u32;
override FFT_U_RADICES_HI: u32;
override FFT_V_RADICES_LO: u32;
override FFT_V_RADICES_HI: u32;

// One axis of the row-major grid `spectrum[iu·FFT_V + iv]`.
struct FftAxis {
    n: u32,
    stages: u32,
    stride: u32,         // distance between neighbours along this axis
    lines: u32,          // transforms along this axis: the other axis's length
    line_stride: u32,    // distance between those lines
    offset: u32,         // of this axis's twiddles and positions
    radices_lo: u32,
    radices_hi: u32,
}

fn axis_u() -> FftAxis {
    return FftAxis(FFT_U, FFT_U_STAGES, FFT_V, FFT_V, 1u, 0u, FFT_U_RADICES_LO, FFT_U_RADICES_HI);
}

fn axis_v() -> FftAxis {
    return FftAxis(FFT_V, FFT_V_STAGES, 1u, FFT_U, FFT_V, FFT_U, FFT_V_RADICES_LO, FFT_V_RADICES_HI);
}

fn complex_mul(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

fn radix(axis: FftAxis, stage: u32) -> u32 {
    let packed = select(axis.radices_lo, axis.radices_hi, stage >= 4u);
    return (packed >> (8u * (stage % 4u))) & 0xffu;
}

// w_n^k (k < n), conjugated for the inverse transform.
fn twiddle(axis: FftAxis, k: u32, inverse: bool) -> vec2<f32> {
    let w = twiddles[axis.offset + k];
    if inverse {
        return vec2<f32>(w.x, -w.y);
    }
    return w;
}

// Where element (iu, iv) of a natural-order grid sits in digit-reversed order.
fn fft_position(iu: u32, iv: u32) -> u32 {
    return positions[iu] * FFT_V + positions[FFT_U + iv];
}

// −i·x for the forward transform, +i·x for the inverse: w_4^{±1}.
fn quarter_turn(x: vec2<f32>, inverse: bool) -> vec2<f32> {
    return select(vec2<f32>(x.y, -x.x), vec2<f32>(-x.y, x.x), inverse);
}

// One butterfly: element q sits at origin + q·hop, its stage twiddle is w_n^{q·unit}.
struct Butterfly {
    origin: u32,
    hop: u32,
    unit: u32,
    in_time: bool,
    inverse: bool,
}

// x_q, twiddled on the way in when decimating in time.
fn load(axis: FftAxis, f: Butterfly, q: u32) -> vec2<f32> {
    let x = spectrum_at(f.origin + q * f.hop);
    if f.in_time {
        return complex_mul(x, twiddle(axis, q * f.unit, f.inverse));
    }
    return x;
}

// y_k, twiddled on the way out when decimating in frequency.
fn store(axis: FftAxis, f: Butterfly, k: u32, y: vec2<f32>) {
    var value = y;
    if !f.in_time {
        value = complex_mul(y, twiddle(axis, k * f.unit, f.inverse));
    }
    set_spectrum(f.origin + k * f.hop, value);
}

fn butterfly2(axis: FftAxis, f: Butterfly) {
    let a = load(axis, f, 0u);
    let b = load(axis, f, 1u);
    store(axis, f, 0u, a + b);
    store(axis, f, 1u, a - b);
}

// w_3 = −½ ∓ i·√3/2: y_{1,2} = a − (b + c)/2 ± w-part of (b − c).
fn butterfly3(axis: FftAxis, f: Butterfly) {
    let a = load(axis, f, 0u);
    let b = load(axis, f, 1u);
    let c = load(axis, f, 2u);
    let t = a - 0.5 * (b + c);
    let s = 0.8660254037844386 * quarter_turn(b - c, f.inverse);
    store(axis, f, 0u, a + b + c);
    store(axis, f, 1u, t + s);
    store(axis, f, 2u, t - s);
}

fn butterfly4(axis: FftAxis, f: Butterfly) {
    let a = load(axis, f, 0u);
    let b = load(axis, f, 1u);
    let c = load(axis, f, 2u);
    let d = load(axis, f, 3u);
    let turned = quarter_turn(b - d, f.inverse);
    store(axis, f, 0u, a + b + c + d);
    store(axis, f, 1u, a - c + turned);
    store(axis, f, 2u, a - b + c - d);
    store(axis, f, 3u, a - c - turned);
}

// With c_k = cos(2πk/5), s_k = sin(2πk/5): y_1, y_4 = x_0 + c_1(x_1 + x_4) + c_2(x_2 + x_3)
// ∓ i[s_1(x_1 − x_4) + s_2(x_2 − x_3)] (forward), and y_2, y_3 likewise with c, s swapped.
fn butterfly5(axis: FftAxis, f: Butterfly) {
    let x0 = load(axis, f, 0u);
    let x1 = load(axis, f, 1u);
    let x2 = load(axis, f, 2u);
    let x3 = load(axis, f, 3u);
    let x4 = load(axis, f, 4u);
    let c1 = 0.30901699437494745;
    let c2 = -0.8090169943749473;
    let s1 = 0.9510565162951535;
    let s2 = 0.5877852522924732;
    let sum14 = x1 + x4;
    let sum23 = x2 + x3;
    let a1 = x0 + c1 * sum14 + c2 * sum23;
    let a2 = x0 + c2 * sum14 + c1 * sum23;
    let b1 = quarter_turn(s1 * (x1 - x4) + s2 * (x2 - x3), f.inverse);
    let b2 = quarter_turn(s2 * (x1 - x4) - s1 * (x2 - x3), f.inverse);
    store(axis, f, 0u, x0 + sum14 + sum23);
    store(axis, f, 1u, a1 + b1);
    store(axis, f, 2u, a2 + b2);
    store(axis, f, 3u, a2 - b2);
    store(axis, f, 4u, a1 - b1);
}

// Any other prime r ≤ MAX_RADIX: the r-point DFT as a sum, w_r = w_n^{n/r}.
fn butterfly_any(axis: FftAxis, f: Butterfly, r: u32) {
    var values: array<vec2<f32>, MAX_RADIX>;
    for (var q = 0u; q < r; q++) {
        values[q] = load(axis, f, q);
    }
    let rotation = axis.n / r;
    for (var k = 0u; k < r; k++) {
        var sum = values[0];
        for (var q = 1u; q < r; q++) {
            sum += complex_mul(values[q], twiddle(axis, ((k * q) % r) * rotation, f.inverse));
        }
        store(axis, f, k, sum);
    }
}

// Stage `stage` along `axis`, every line: the radix-r butterflies on elements
// first + q·span, q < r, of each group, twiddled by w_{span·r}^{jq} = w_n^{jq·n/(span·r)} —
// before the r-point DFT in time, after it (the transpose) in frequency.
fn fft_stage(axis: FftAxis, stage: u32, in_time: bool, inverse: bool, lid: u32) {
    let r = radix(axis, stage);
    var span = 1u;
    for (var t = 0u; t < stage; t++) {
        span *= radix(axis, t);
    }
    let per_line = axis.n / r;
    let step = axis.n / (span * r);
    for (var b = lid; b < axis.lines * per_line; b += FFT_WORKGROUP) {
        let butterfly = b % per_line;
        let j = butterfly % span;
        let first = (butterfly / span) * span * r + j;
        let f = Butterfly(
            (b / per_line) * axis.line_stride + first * axis.stride,
            span * axis.stride,
            j * step,
            in_time,
            inverse,
        );
        switch r {
            case 2u: { butterfly2(axis, f); }
            case 3u: { butterfly3(axis, f); }
            case 4u: { butterfly4(axis, f); }
            case 5u: { butterfly5(axis, f); }
            default: { butterfly_any(axis, f, r); }
        }
    }
}

// Stage t along `axis` if it has one, then a barrier. Stages are written out one by one
// below (not looped) so that t, and with it the radix, is a constant in each copy.
fn stage_if_any(axis: FftAxis, t: u32, in_time: bool, lid: u32) {
    if t < axis.stages {
        fft_stage(axis, t, in_time, in_time, lid);
        spectrum_barrier();
    }
}

// Every stage along `axis`, in order (decimation in time) or reversed (in frequency).
fn fft_axis(axis: FftAxis, in_time: bool, lid: u32) {
    if in_time {
        stage_if_any(axis, 0u, true, lid);
        stage_if_any(axis, 1u, true, lid);
        stage_if_any(axis, 2u, true, lid);
        stage_if_any(axis, 3u, true, lid);
        stage_if_any(axis, 4u, true, lid);
        stage_if_any(axis, 5u, true, lid);
        stage_if_any(axis, 6u, true, lid);
        stage_if_any(axis, 7u, true, lid);
    } else {
        stage_if_any(axis, 7u, false, lid);
        stage_if_any(axis, 6u, false, lid);
        stage_if_any(axis, 5u, false, lid);
        stage_if_any(axis, 4u, false, lid);
        stage_if_any(axis, 3u, false, lid);
        stage_if_any(axis, 2u, false, lid);
        stage_if_any(axis, 1u, false, lid);
        stage_if_any(axis, 0u, false, lid);
    }
}

// The unnormalised inverse 2D transform, Σ X_{ku,kv}·e^{+2πi(ku·ju/n_u + kv·jv/n_v)}:
// digit-reversed in, natural out. Call in uniform control flow (it holds barriers).
fn inverse_fft2(lid: u32) {
    fft_axis(axis_v(), true, lid);
    fft_axis(axis_u(), true, lid);
}

// The unnormalised forward 2D transform, Σ x_{ju,jv}·e^{−2πi(ku·ju/n_u + kv·jv/n_v)}:
// natural in, digit-reversed out. Call in uniform control flow (it holds barriers).
fn forward_fft2(lid: u32) {
    fft_axis(axis_u(), false, lid);
    fft_axis(axis_v(), false, lid);
}
