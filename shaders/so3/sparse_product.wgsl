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

// #include "so3/sparse_product.inc.wgsl"

// The weights of the workgroup's rows, staged when they fit (paths ≤ STAGED_PATHS).
const STAGED_PATHS: u32 = 64u;
var<workgroup> w_rows: array<f32, 256>; // ROWS × STAGED_PATHS

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
            a_rows[r * p.d1 + i] = read_x1(x1_row(row0 + r) + i);
        }
        for (var i = lid; i < p.d2; i += 64u) {
            b_rows[r * p.d2 + i] = read_x2(x2_row(row0 + r) + i);
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
