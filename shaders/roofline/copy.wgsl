// Copy probe: dst[i] = src[i], one vec4 per thread. Its bytes read + written per second is
// the device's own copy bandwidth, the yardstick for memory-bound kernels.

// #include "util/workgroup.inc.wgsl"

struct Params {
    len: u32, // vec4 elements
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = workgroup_index(wid, nwg) * 256u + lid;
    if i < p.len {
        dst[i] = src[i];
    }
}
