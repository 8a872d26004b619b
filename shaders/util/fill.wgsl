// Fill: out[skip + i] = value for i < len.
// Used to poison fresh outputs with NaN in tests, so that an element a kernel forgets to
// write cannot pass for a correct one.

// #include "util/workgroup.inc.wgsl"

struct Params {
    len: u32,
    skip: u32,
    value: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = workgroup_index(wid, nwg) * 256u + lid;
    if i < p.len {
        out[p.skip + i] = p.value;
    }
}
