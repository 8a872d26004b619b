// The gradient of a weighted Clebsch–Gordan product's path weights, one thread per
// (row, path):
//   ∂w[row, p] = Σ_{(i1, i2, i3, C) of path p} C · x1[row, i1] · x2[row / group, i2] · g[row, i3]
// with g = ∂out, terms grouped by path: terms[starts[p] .. starts[p+1]]. Each term is used by
// one path only, so a thread per output reads every operand entry once per term; shared
// weights are summed over the samples afterwards.

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
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// #include "so3/sparse_operands.inc.wgsl"
@group(0) @binding(3) var<storage, read> g: array<f32>;
fn read_g(i: u32) -> f32 { return g[i]; }
@group(0) @binding(4) var<storage, read> terms: array<vec4<f32>>; // (i1, i2, i3, C)
@group(0) @binding(5) var<storage, read> starts: array<u32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = workgroup_index(wid, nwg) * 256u + lid;
    if t >= p.rows * p.paths {
        return;
    }
    let row = t / p.paths;
    let path = t % p.paths;
    let a = x1_row(row);
    let b = x2_row(row);
    let c = p.g_offset + row * p.d3;
    var sum = 0.0;
    for (var e = starts[path]; e < starts[path + 1u]; e++) {
        let term = terms[e];
        sum = fma(term.w * read_x1(a + u32(term.x)) * read_x2(b + u32(term.y)), read_g(c + u32(term.z)), sum);
    }
    out[p.out_offset + t] = sum;
}
