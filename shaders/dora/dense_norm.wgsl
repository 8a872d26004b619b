// Dense DoRA weight norm, the baseline that materialises D = B·A as PEFT does, one workgroup
// per row j:  norm_j = ‖W_j + s·D_j‖₂

// #include "util/workgroup.inc.wgsl"
// #include "util/workgroup_sum.inc.wgsl"

struct Params {
    d_in: u32,
    rows: u32,
    scale: f32,
    w_offset: u32,
    d_offset: u32,
    out_offset: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// Operands are read through read_<name>(i): this is the f32 form; the host generates the
// f16 and bf16 forms (packed two per u32) from it, see src/gpu/specialize.rs.
@group(0) @binding(1) var<storage, read> w: array<f32>;
fn read_w(i: u32) -> f32 { return w[i]; }
@group(0) @binding(2) var<storage, read> d: array<f32>;
@group(0) @binding(3) var<storage, read_write> norm: array<f32>;

const WORKGROUP: u32 = 256u;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = workgroup_index(wid, nwg);
    if row >= p.rows { // uniform for the workgroup
        return;
    }
    var sum = 0.0;
    for (var i = lid; i < p.d_in; i += 256u) {
        let x = read_w(p.w_offset + row * p.d_in + i) + p.scale * d[p.d_offset + row * p.d_in + i];
        sum = fma(x, x, sum);
    }
    let total = workgroup_sum(lid, sum);
    if lid == 0u {
        norm[p.out_offset + row] = sqrt(total);
    }
}
