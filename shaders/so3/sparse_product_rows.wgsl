// The sparse product of sparse_product.wgsl with one thread per output element (row, i3)
// and no staging: each thread walks the terms of its i3 reading x1, x2 (and the weights)
// from memory. For small products (few terms per output, rows of a few coefficients: the
// per-edge products of a potential) this keeps every thread busy, where a workgroup per
// four rows would leave most of its threads idle.
//   out[row, i3] = Σ_(i1, i2, w, path) w · weight[row, path] · x1[row, i1] · x2[row / group, i2]

// #include "util/workgroup.inc.wgsl"

struct Params {
    rows: u32,
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
    per_group: u32,    // unused here (the staged kernel's)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x1: array<f32>;
fn read_x1(i: u32) -> f32 { return x1[i]; }
@group(0) @binding(2) var<storage, read> x2: array<f32>;
fn read_x2(i: u32) -> f32 { return x2[i]; }
@group(0) @binding(3) var<storage, read> weights: array<f32>;
fn read_weights(i: u32) -> f32 { return weights[i]; }
@group(0) @binding(4) var<storage, read> terms: array<vec4<f32>>; // (i1, i2, w, path)
@group(0) @binding(5) var<storage, read> starts: array<u32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = workgroup_index(wid, nwg) * 256u + lid;
    if t >= p.rows * p.d3 {
        return;
    }
    let row = t / p.d3;
    let i3 = t % p.d3;
    let a = p.x1_offset + row * p.d1;
    let b = p.x2_offset + (row / p.group) * p.d2;
    var wr = row;
    if p.w_channels > 0u {
        wr = row % p.w_channels;
    }
    let w_row = p.w_offset + wr * p.paths;
    var sum = 0.0;
    for (var e = starts[i3]; e < starts[i3 + 1u]; e++) {
        let term = terms[e];
        var coefficient = term.z;
        if p.weighted == 1u {
            coefficient *= read_weights(w_row + u32(term.w));
        }
        sum = fma(coefficient * read_x1(a + u32(term.x)), read_x2(b + u32(term.y)), sum);
    }
    out[p.out_offset + t] = sum;
}
