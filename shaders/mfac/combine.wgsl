// The O(d·m) pass of M-FAC, one thread per (vector, coordinate), coalesced along d:
//   ihvp:              out_v[t] = x_v[t]/λ − Σ_i c_v[i]·R[i][t]
//   inverse diagonal:  out[t]   = 1/λ − Σ_i R[i][t]² / D_i        (R = V)
// R may come in several blocks of rows (one per storage binding): the first launch starts
// from x/λ (or 1/λ), the next ones subtract their rows from what is there.

// #include "util/workgroup.inc.wgsl"

// #include "mfac/combine_params.inc.wgsl"
@group(0) @binding(1) var<storage, read> r: array<f32>;
fn read_r(i: u32) -> f32 { return r[i]; }
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let index = workgroup_index(wid, nwg) * 256u + lid;
    if index >= p.vectors * p.d {
        return;
    }
    let v = index / p.d;
    let t = index % p.d;
    var acc: f32;
    if p.first == 1u {
        if p.diagonal == 1u {
            acc = 1.0 / p.damp;
        } else {
            acc = x[p.x_offset + index] / p.damp;
        }
    } else {
        acc = out[p.out_offset + index];
    }
    for (var i = 0u; i < p.rows; i++) {
        let rt = read_r(p.r_offset + i * p.d + t);
        if p.diagonal == 1u {
            acc -= rt * rt / coefficients[p.row0 + i];
        } else {
            acc -= coefficients[v * p.all_rows + p.row0 + i] * rt;
        }
    }
    out[p.out_offset + index] = acc;
}
