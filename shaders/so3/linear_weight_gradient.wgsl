// The weight gradient of so3::linear, one thread per weight:
//   ∂w[l][i][o] = Σ_n Σ_m x[n, i, l² + m + l] · ∂out[n, o, l² + m + l]
// over the samples of this chunk in increasing n (a fixed order); a later chunk of a long
// sample axis adds to what ∂w holds (accumulate = 1).

// #include "util/workgroup.inc.wgsl"

struct Params {
    rows: u32,        // samples in this chunk
    c_in: u32,
    c_out: u32,
    dim: u32,
    lmax: u32,
    accumulate: u32,
    x_offset: u32,
    g_offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
fn read_x(i: u32) -> f32 { return x[i]; }
@group(0) @binding(2) var<storage, read> g: array<f32>;
fn read_g(i: u32) -> f32 { return g[i]; }
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = workgroup_index(wid, nwg) * 256u + lid;
    if t >= (p.lmax + 1u) * p.c_in * p.c_out {
        return;
    }
    let o = t % p.c_out;
    let i = (t / p.c_out) % p.c_in;
    let l = t / (p.c_out * p.c_in);
    var sum = 0.0;
    if p.accumulate == 1u {
        sum = dw[t];
    }
    for (var n = 0u; n < p.rows; n++) {
        for (var index = l * l; index < (l + 1u) * (l + 1u); index++) {
            sum += read_x(p.x_offset + (n * p.c_in + i) * p.dim + index)
                * read_g(p.g_offset + (n * p.c_out + o) * p.dim + index);
        }
    }
    dw[t] = sum;
}
