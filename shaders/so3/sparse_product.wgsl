// Sparse bilinear product of coefficient rows, one output coefficient per thread:
//   out[row, i3] = Σ_(i1, i2, w) in terms of i3: w · x1[row, i1] · x2[row / group, i2]
// The terms (Clebsch–Gordan coefficients of every path, or Gaunt coefficients) are grouped
// by output index: terms[starts[i3] .. starts[i3+1]]. `group` = channels when one x2 row is
// broadcast over the channels of a sample, else 1.

struct Params {
    rows: u32,   // x1 rows (samples × channels) in this block
    d1: u32,
    d2: u32,
    d3: u32,
    group: u32,
    x1_offset: u32,
    x2_offset: u32,
    out_offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// Operands are read through read_<name>(i): this is the f32 form; the host generates the
// f16 and bf16 forms (packed two per u32) from it, see src/gpu/specialize.rs.
@group(0) @binding(1) var<storage, read> x1: array<f32>;
fn read_x1(i: u32) -> f32 { return x1[i]; }
@group(0) @binding(2) var<storage, read> x2: array<f32>;
fn read_x2(i: u32) -> f32 { return x2[i]; }
@group(0) @binding(3) var<storage, read> terms: array<vec4<f32>>; // (i1, i2, w, 0)
@group(0) @binding(4) var<storage, read> starts: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = (wid.x + wid.y * nwg.x) * 256u + lid;
    let row = t / p.d3;
    let i3 = t % p.d3;
    if row >= p.rows {
        return;
    }
    let a = p.x1_offset + row * p.d1;
    let b = p.x2_offset + (row / p.group) * p.d2;
    var sum = 0.0;
    for (var e = starts[i3]; e < starts[i3 + 1u]; e++) {
        let term = terms[e];
        sum = fma(term.z * read_x1(a + u32(term.x)), read_x2(b + u32(term.y)), sum);
    }
    out[p.out_offset + row * p.d3 + i3] = sum;
}
