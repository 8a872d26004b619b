// FMA-rate probe: eight independent vec4 fma chains per thread, so that latency is hidden
// and the arithmetic units are the limit. 64 flops per thread per iteration.
// The multiplier is just under 1, so the values stay finite for any iteration count; the
// sum is stored so that the compiler cannot drop the work.

// #include "util/workgroup.inc.wgsl"

struct Params {
    iterations: u32,
    threads: u32,
    _pad0: u32,
    _pad1: u32,
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
    if i >= p.threads {
        return;
    }
    let seed = f32(i) * 1e-7;
    let a = vec4<f32>(0.9999, 0.99991, 0.99992, 0.99993);
    let b = vec4<f32>(1e-4);
    var x0 = vec4<f32>(seed);
    var x1 = x0 + 0.1;
    var x2 = x0 + 0.2;
    var x3 = x0 + 0.3;
    var x4 = x0 + 0.4;
    var x5 = x0 + 0.5;
    var x6 = x0 + 0.6;
    var x7 = x0 + 0.7;
    for (var it = 0u; it < p.iterations; it++) {
        x0 = fma(x0, a, b);
        x1 = fma(x1, a, b);
        x2 = fma(x2, a, b);
        x3 = fma(x3, a, b);
        x4 = fma(x4, a, b);
        x5 = fma(x5, a, b);
        x6 = fma(x6, a, b);
        x7 = fma(x7, a, b);
    }
    let s = (x0 + x1) + (x2 + x3) + (x4 + x5) + (x6 + x7);
    out[i] = s.x + s.y + s.z + s.w;
}
