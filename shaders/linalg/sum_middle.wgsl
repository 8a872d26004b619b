// Sums the middle axis of x [outer, mid, inner]: out[o, i] = Σ_m x[o, m, i], in increasing m
// (a fixed order: the same bits every run), one thread per output element. The gradients of
// broadcast operands use it (a shared x2 row, weights shared by every sample).

// #include "util/workgroup.inc.wgsl"

struct Params {
    outer: u32, // in this block
    mid: u32,
    inner: u32,
    x_offset: u32,
    out_offset: u32,
    accumulate: u32, // 1: add to what out holds (a later chunk of a long mid axis)
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
fn read_x(i: u32) -> f32 { return x[i]; }
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = workgroup_index(wid, nwg) * 256u + lid;
    if t >= p.outer * p.inner {
        return;
    }
    let o = t / p.inner;
    let i = t % p.inner;
    var sum = 0.0;
    if p.accumulate == 1u {
        sum = out[p.out_offset + t];
    }
    for (var m = 0u; m < p.mid; m++) {
        sum += read_x(p.x_offset + (o * p.mid + m) * p.inner + i);
    }
    out[p.out_offset + t] = sum;
}
