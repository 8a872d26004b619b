// The accumulators of the register forms (linear_state_rows.wgsl, linear_output_rows.wgsl,
// chunk_state_rows.wgsl, chunk_output_rows.wgsl): eight rows × one lane's four columns, a
// field per row (never indexed at run time, so that they stay in registers), and the eight
// rows' sums of one more column (`extra`: z, a denominator, or the extra column).

struct Rows8 {
    r0: vec4<f32>,
    r1: vec4<f32>,
    r2: vec4<f32>,
    r3: vec4<f32>,
    r4: vec4<f32>,
    r5: vec4<f32>,
    r6: vec4<f32>,
    r7: vec4<f32>,
    extra_low: vec4<f32>,  // rows 0..3
    extra_high: vec4<f32>, // rows 4..7
}

fn rows8_zero() -> Rows8 {
    let z = vec4<f32>(0.0);
    return Rows8(z, z, z, z, z, z, z, z, z, z);
}

// acc + a_r·w for the eight rows' values a = (low, high) against this lane's columns w, and
// + a_r·e in the extra column.
fn rows8_fma(acc: Rows8, low: vec4<f32>, high: vec4<f32>, w: vec4<f32>, e: f32) -> Rows8 {
    return Rows8(
        fma(vec4<f32>(low.x), w, acc.r0),
        fma(vec4<f32>(low.y), w, acc.r1),
        fma(vec4<f32>(low.z), w, acc.r2),
        fma(vec4<f32>(low.w), w, acc.r3),
        fma(vec4<f32>(high.x), w, acc.r4),
        fma(vec4<f32>(high.y), w, acc.r5),
        fma(vec4<f32>(high.z), w, acc.r6),
        fma(vec4<f32>(high.w), w, acc.r7),
        fma(low, vec4<f32>(e), acc.extra_low),
        fma(high, vec4<f32>(e), acc.extra_high),
    );
}

// Row r's four columns.
fn rows8_row(acc: Rows8, r: u32) -> vec4<f32> {
    switch r {
        case 0u: { return acc.r0; }
        case 1u: { return acc.r1; }
        case 2u: { return acc.r2; }
        case 3u: { return acc.r3; }
        case 4u: { return acc.r4; }
        case 5u: { return acc.r5; }
        case 6u: { return acc.r6; }
        default: { return acc.r7; }
    }
}

// Row r's extra column.
fn rows8_extra(acc: Rows8, r: u32) -> f32 {
    return select(acc.extra_high[r % 4u], acc.extra_low[r % 4u], r < 4u);
}

// rows8_fma with row r's terms kept where `keep_r` and dropped (not multiplied by 0, so that
// a NaN of a dropped term stays out) elsewhere.
fn rows8_fma_where(acc: Rows8, low: vec4<f32>, high: vec4<f32>, w: vec4<f32>, e: f32,
                   keep_low: vec4<bool>, keep_high: vec4<bool>) -> Rows8 {
    let z = vec4<f32>(0.0);
    return Rows8(
        acc.r0 + select(z, low.x * w, keep_low.x),
        acc.r1 + select(z, low.y * w, keep_low.y),
        acc.r2 + select(z, low.z * w, keep_low.z),
        acc.r3 + select(z, low.w * w, keep_low.w),
        acc.r4 + select(z, high.x * w, keep_high.x),
        acc.r5 + select(z, high.y * w, keep_high.y),
        acc.r6 + select(z, high.z * w, keep_high.z),
        acc.r7 + select(z, high.w * w, keep_high.w),
        acc.extra_low + select(z, low * e, keep_low),
        acc.extra_high + select(z, high * e, keep_high),
    );
}

// acc with rows 0..3 scaled by `low` and rows 4..7 by `high`, their extra columns too.
fn rows8_scale(acc: Rows8, low: vec4<f32>, high: vec4<f32>) -> Rows8 {
    return Rows8(
        acc.r0 * low.x,
        acc.r1 * low.y,
        acc.r2 * low.z,
        acc.r3 * low.w,
        acc.r4 * high.x,
        acc.r5 * high.y,
        acc.r6 * high.z,
        acc.r7 * high.w,
        acc.extra_low * low,
        acc.extra_high * high,
    );
}
