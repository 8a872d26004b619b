// Element-wise operations, one element per thread, for composing unfused baselines:
//   op 0: out = alpha·x          op 1: out = x + y          op 2: out = x · y[i mod cols]
//   op 3: out = x / y            op 4: out = x + alpha      op 5: out = alpha·x + beta·y
//   op 6: out = x · y

// #include "util/workgroup.inc.wgsl"

struct Params {
    len: u32,
    cols: u32,
    op: u32,
    alpha: f32,
    x_offset: u32,
    y_offset: u32,
    out_offset: u32,
    beta: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
// Operands are read through read_<name>(i): this is the f32 form; the host generates the
// f16 and bf16 forms (packed two per u32) from it, see src/gpu/specialize.rs.
@group(0) @binding(1) var<storage, read> x: array<f32>;
fn read_x(i: u32) -> f32 { return x[i]; }
@group(0) @binding(2) var<storage, read> y: array<f32>;
fn read_y(i: u32) -> f32 { return y[i]; }
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = workgroup_index(wid, nwg) * 256u + lid;
    if i >= p.len {
        return;
    }
    let a = read_x(p.x_offset + i);
    var v: f32;
    switch p.op {
        case 0u: { v = p.alpha * a; }
        case 1u: { v = a + read_y(p.y_offset + i); }
        case 2u: { v = a * read_y(i % p.cols); }
        case 3u: { v = a / read_y(p.y_offset + i); }
        case 4u: { v = a + p.alpha; }
        case 6u: { v = a * read_y(p.y_offset + i); }
        default: { v = p.alpha * a + p.beta * read_y(p.y_offset + i); }
    }
    out[p.out_offset + i] = v;
}
