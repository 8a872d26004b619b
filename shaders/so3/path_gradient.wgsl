// The gradient of a weighted Clebsch–Gordan product's path weights:
//   ∂w[row, p] = Σ_{(i1, i2, i3, C) of path p} C · x1[row, i1] · x2[row / group, i2] · g[row, i3]
// with g = ∂out, terms grouped by path: terms[starts[p] .. starts[p+1]]. As
// sparse_product.wgsl: up to ROWS rows (per_group) staged in workgroup memory, each thread
// walks the terms of its paths once for all of them. Shared weights are summed over the samples afterwards.

// #include "util/workgroup.inc.wgsl"

struct Params {
    rows: u32,
    d1: u32,
    d2: u32,
    d3: u32,
    group: u32,
    paths: u32,
    x1_offset: u32,
    x2_offset: u32,
    g_offset: u32,
    out_offset: u32,
    per_group: u32,   // rows per workgroup, ≤ ROWS, per_group · max(d1, d2, d3) ≤ STAGE
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x1: array<f32>;
fn read_x1(i: u32) -> f32 { return x1[i]; }
@group(0) @binding(2) var<storage, read> x2: array<f32>;
fn read_x2(i: u32) -> f32 { return x2[i]; }
@group(0) @binding(3) var<storage, read> g: array<f32>;
fn read_g(i: u32) -> f32 { return g[i]; }
@group(0) @binding(4) var<storage, read> terms: array<vec4<f32>>; // (i1, i2, i3, C)
@group(0) @binding(5) var<storage, read> starts: array<u32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

const ROWS: u32 = 4u;
const STAGE: u32 = 1156u; // ROWS · 17²

var<workgroup> a_rows: array<f32, STAGE>; // [row][d1]
var<workgroup> b_rows: array<f32, STAGE>; // [row][d2]
var<workgroup> g_rows: array<f32, STAGE>; // [row][d3]

// Where entry i of staged row r is (clamped: rows past per_group are never stored).
fn at(r: u32, d: u32, i: u32) -> u32 {
    return min(r * d + i, STAGE - 1u);
}

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row0 = workgroup_index(wid, nwg) * p.per_group;
    if row0 >= p.rows {
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
        for (var i = lid; i < p.d3; i += 64u) {
            g_rows[r * p.d3 + i] = read_g(p.g_offset + (row0 + r) * p.d3 + i);
        }
    }
    workgroupBarrier();
    for (var path = lid; path < p.paths; path += 64u) {
        var sum = vec4<f32>(0.0);
        for (var e = starts[path]; e < starts[path + 1u]; e++) {
            let term = terms[e];
            let i1 = u32(term.x);
            let i2 = u32(term.y);
            let i3 = u32(term.z);
            // Rows past `rows` read stale workgroup memory; their sums are never stored.
            let a = vec4<f32>(a_rows[i1], a_rows[at(1u, p.d1, i1)], a_rows[at(2u, p.d1, i1)], a_rows[at(3u, p.d1, i1)]);
            let b = vec4<f32>(b_rows[i2], b_rows[at(1u, p.d2, i2)], b_rows[at(2u, p.d2, i2)], b_rows[at(3u, p.d2, i2)]);
            let c = vec4<f32>(g_rows[i3], g_rows[at(1u, p.d3, i3)], g_rows[at(2u, p.d3, i3)], g_rows[at(3u, p.d3, i3)]);
            sum = fma(term.w * a * b, c, sum);
        }
        for (var r = 0u; r < rows; r++) {
            out[p.out_offset + (row0 + r) * p.paths + path] = sum[r];
        }
    }
}
