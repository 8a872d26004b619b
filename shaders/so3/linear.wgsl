// The per-degree channel mix of equivariant features, one thread per output element:
//   out[n, o, l² + m + l] = Σ_k W(l, k, o) · x[n, k, l² + m + l]
// with W(l, k, o) = w[l][k][o] (the forward: k an input channel, o an output channel) or,
// `transposed`, w[l][o][k] (the backward's ∂x = Σ_o w[l][i][o]·∂out[n, o, ·]). Every
// coefficient of degree l mixes by the same matrix, so the map commutes with rotations.

// #include "util/workgroup.inc.wgsl"

struct Params {
    rows: u32,         // samples in this block
    contracted: u32,   // channels summed over (k)
    channels: u32,     // output channels (o)
    dim: u32,          // (lmax+1)²
    w_columns: u32,    // the last axis of w as stored
    transposed: u32,
    x_offset: u32,
    w_offset: u32,
    out_offset: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
fn read_x(i: u32) -> f32 { return x[i]; }
@group(0) @binding(2) var<storage, read> w: array<f32>;
fn read_w(i: u32) -> f32 { return w[i]; }
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = workgroup_index(wid, nwg) * 256u + lid;
    if t >= p.rows * p.channels * p.dim {
        return;
    }
    let index = t % p.dim;
    let o = (t / p.dim) % p.channels;
    let n = t / (p.dim * p.channels);
    let l = u32(floor(sqrt(f32(index) + 0.5)));
    let block = l * p.contracted * p.channels; // w[l] has contracted × channels entries
    var sum = 0.0;
    for (var k = 0u; k < p.contracted; k++) {
        var at = block + k * p.w_columns + o;
        if p.transposed == 1u {
            at = block + o * p.w_columns + k;
        }
        sum += read_w(p.w_offset + at) * read_x(p.x_offset + (n * p.contracted + k) * p.dim + index);
    }
    out[p.out_offset + t] = sum;
}
