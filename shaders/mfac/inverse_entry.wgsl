// Σ_t V[t][i]·V[t][j] / D_t over the rows of one launch, for [F⁻¹]_ij = δ_ij/λ − that sum
// (added up over launches on the host). O(m), one workgroup.

struct Params {
    rows: u32,
    d: u32,
    i: u32,
    j: u32,
    row0: u32,
    slot: u32,      // where this launch's sum goes in `out`
    r_offset: u32,
    _pad: u32,
}

const WORKGROUP: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> r: array<f32>;
@group(0) @binding(2) var<storage, read> denominators: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// #include "util/workgroup_sum.inc.wgsl"

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
    var acc = 0.0;
    for (var t = lid; t < p.rows; t += WORKGROUP) {
        let row = p.r_offset + t * p.d;
        acc += r[row + p.i] * r[row + p.j] / denominators[p.row0 + t];
    }
    let total = workgroup_sum(lid, acc);
    if lid == 0u {
        out[p.slot] = total;
    }
}
