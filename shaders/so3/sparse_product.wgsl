// Sparse bilinear product of coefficient rows:
//   out[row, i3] = Σ_(i1, i2, w, path) in terms of i3: w · weight[row, path] · x1[row, i1] · x2[row / group, i2]
// The terms (Clebsch–Gordan coefficients of every path, or Gaunt coefficients) are grouped
// by output index: terms[starts[i3] .. starts[i3+1]]. `group` = channels when one x2 row is
// broadcast over the channels of a sample, else 1. Weights (weighted = 1) are per row, or
// shared by the samples (w_channels > 0: row r uses channel r % w_channels); unweighted
// products use weight 1. The same kernel runs the backward: with the terms regrouped by i1
// (or i2), x1 = ∂out and x2 = x2 (or x1), it sums ∂x1 (or ∂x2).
// A workgroup takes up to ROWS rows (`per_group`: as many as STAGE floats hold at the
// widest operand, 4 up to degree 16, 1 at MAX_L = 24): it stages their x1 and x2
// coefficients in workgroup memory, then each thread walks the terms of its output indices
// once for all of them.

// #include "util/workgroup.inc.wgsl"

struct Params {
    rows: u32,   // x1 rows (samples × channels) in this block
    d1: u32,
    d2: u32,
    d3: u32,
    group: u32,
    x1_offset: u32,
    x2_offset: u32,
    out_offset: u32,
    weighted: u32,
    paths: u32,
    w_channels: u32,   // 0: a weight row per x1 row
    w_offset: u32,
    per_group: u32,    // rows per workgroup, ≤ ROWS, per_group · max(d1, d2) ≤ STAGE
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// Operands are read through read_<name>(i): this is the f32 form; the host generates the
// f16 and bf16 forms (packed two per u32) from it, see src/gpu/specialize.rs.
@group(0) @binding(1) var<storage, read> x1: array<f32>;
fn read_x1(i: u32) -> f32 { return x1[i]; }
@group(0) @binding(2) var<storage, read> x2: array<f32>;
fn read_x2(i: u32) -> f32 { return x2[i]; }
@group(0) @binding(3) var<storage, read> weights: array<f32>;
fn read_weights(i: u32) -> f32 { return weights[i]; }
@group(0) @binding(4) var<storage, read> terms: array<vec4<f32>>; // (i1, i2, w, path)
@group(0) @binding(5) var<storage, read> starts: array<u32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

// The weights of the workgroup's rows, staged when they fit (paths ≤ STAGED_PATHS).
const STAGED_PATHS: u32 = 64u;
var<workgroup> w_rows: array<f32, 256>; // ROWS × STAGED_PATHS

// Where row `row` of the weights starts.
fn weight_row(row: u32) -> u32 {
    var wr = row;
    if p.w_channels > 0u {
        wr = wr % p.w_channels;
    }
    return p.w_offset + wr * p.paths;
}

// The weights of `path` for the workgroup's rows (1 for rows past `rows`, never stored).
fn row_weights(row0: u32, rows: u32, path: u32) -> vec4<f32> {
    var w = vec4<f32>(1.0);
    for (var r = 0u; r < rows; r++) {
        if p.paths <= STAGED_PATHS {
            w[r] = w_rows[r * STAGED_PATHS + path];
        } else {
            w[r] = read_weights(weight_row(row0 + r) + path);
        }
    }
    return w;
}

const ROWS: u32 = 4u;
const STAGE: u32 = 1156u; // ROWS · 17²

var<workgroup> a_rows: array<f32, STAGE>; // [row][d1]
var<workgroup> b_rows: array<f32, STAGE>; // [row][d2]

// Entry i of the four staged rows (clamped: rows past per_group are never stored).
fn staged_a(i: u32) -> vec4<f32> {
    let d = p.d1;
    return vec4<f32>(a_rows[i], a_rows[min(d + i, STAGE - 1u)], a_rows[min(2u * d + i, STAGE - 1u)], a_rows[min(3u * d + i, STAGE - 1u)]);
}

fn staged_b(i: u32) -> vec4<f32> {
    let d = p.d2;
    return vec4<f32>(b_rows[i], b_rows[min(d + i, STAGE - 1u)], b_rows[min(2u * d + i, STAGE - 1u)], b_rows[min(3u * d + i, STAGE - 1u)]);
}

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row0 = workgroup_index(wid, nwg) * p.per_group;
    if row0 >= p.rows { // uniform for the workgroup
        return;
    }
    let rows = min(p.per_group, p.rows - row0);
    for (var r = 0u; r < rows; r++) {
        for (var i = lid; i < p.d1; i += 64u) {
            a_rows[r * p.d1 + i] = read_x1(p.x1_offset + (row0 + r) * p.d1 + i);
        }
        for (var i = lid; i < p.d2; i += 64u) {
            b_rows[r * p.d2 + i] = read_x2(p.x2_offset + ((row0 + r) / p.group) * p.d2 + i);
        }
        if p.weighted == 1u && p.paths <= STAGED_PATHS {
            for (var i = lid; i < p.paths; i += 64u) {
                w_rows[r * STAGED_PATHS + i] = read_weights(weight_row(row0 + r) + i);
            }
        }
    }
    workgroupBarrier();
    for (var i3 = lid; i3 < p.d3; i3 += 64u) {
        var sum = vec4<f32>(0.0);
        for (var e = starts[i3]; e < starts[i3 + 1u]; e++) {
            let term = terms[e];
            let i1 = u32(term.x);
            let i2 = u32(term.y);
            // Rows past `rows` read stale workgroup memory; their sums are never stored.
            let a = staged_a(i1);
            let b = staged_b(i2);
            var coefficient = vec4<f32>(term.z);
            if p.weighted == 1u {
                coefficient *= row_weights(row0, rows, u32(term.w));
            }
            sum = fma(coefficient * a, b, sum);
        }
        for (var r = 0u; r < rows; r++) {
            out[p.out_offset + (row0 + r) * p.d3 + i3] = sum[r];
        }
    }
}
