// The pieces of the feature maps shared by the forward, decoding and backward kernels:
// NaN-keeping relu, elu+1, the key scale, and the norm of a query row as (largest |q_f|,
// √Σ (q_f/largest)²), whose product ‖q‖ neither overflows nor underflows.

// By its bits: compilers may fold `x != x` to false (Mesa does).
fn is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

// max(x, 0) with NaN kept (WGSL's max may drop it).
fn relu(x: f32) -> f32 {
    return select(max(x, 0.0), x, is_nan(x));
}

fn elu_plus_one(x: f32) -> f32 {
    return select(exp(x), x + 1.0, x > 0.0);
}

// d(elu(x) + 1)/dx.
fn elu_slope(x: f32) -> f32 {
    return select(exp(x), 1.0, x > 0.0);
}

// 2^-e with m·2^-e < 1, for the largest finite |k| m of a head (see key_max.wgsl); 1 when
// m ≤ 1 (or NaN).
fn power_of_two_below(m: f32) -> f32 {
    if !(m > 1.0) {
        return 1.0;
    }
    return ldexp(1.0, -frexp(m).exp);
}

// (max, Σ (x/max)²) of two parts, as one.
fn combine_ssq(m1: f32, s1: f32, m2: f32, s2: f32) -> vec2<f32> {
    let m = max(m1, m2);
    if !(m > 0.0) {
        return vec2<f32>(m, s1 + s2);
    }
    return vec2<f32>(m, s1 * (m1 / m) * (m1 / m) + s2 * (m2 / m) * (m2 / m));
}

// One element |x| = a as a part: (a, 1), or (0, 0) for a zero; NaN stays NaN.
fn ssq_of(a: f32) -> vec2<f32> {
    return vec2<f32>(a, select(select(0.0, 1.0, a > 0.0), a, is_nan(a)));
}

// ‖q‖ = largest · root, and the norm-aware exponent p = 3·(0.5 + tanh‖q‖).
struct QueryNorm {
    largest: f32,
    root: f32,
    power: f32,
}

fn query_norm(ssq: vec2<f32>) -> QueryNorm {
    let root = sqrt(ssq.y);
    // tanh saturates long before 20; some drivers give NaN for large arguments.
    return QueryNorm(ssq.x, root, 3.0 * (0.5 + tanh(min(ssq.x * root, 20.0))));
}

// A norm-aware query feature (relu(y)/‖q‖)^p for y = ±q_f: 0 where ‖q‖ = 0, NaN kept.
fn norm_aware_query(y: f32, norm: QueryNorm) -> f32 {
    if !(norm.largest > 0.0) || !(y > 0.0) {
        return select(0.0, y, is_nan(y));
    }
    return pow(y / norm.largest / norm.root, norm.power);
}
