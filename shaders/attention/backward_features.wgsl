// Linear attention backward, first pass: the feature rows the chunked products of the
// backward read, one row per (head, position):
//   phi_q = φ_q(q),   phi_k = φ_k(k·σ),   v_ext = [v, 1]
// with σ the head's key scale (norm-aware; 1 for elu+1), the forward's. v_ext's column of
// ones makes the normaliser Σ_j s_ij a column of the same product as the numerator.
// Layout: 8 rows × 32 lanes per workgroup, each lane strided over its row's columns.

// #include "util/workgroup.inc.wgsl"

// #include "attention/features.inc.wgsl"

struct Params {
    rows: u32,         // heads · n of this launch
    n: u32,
    dk: u32,
    dv: u32,
    features: u32,
    norm_aware: u32,
    q_offset: u32,
    k_offset: u32,
    v_offset: u32,
    scale_offset: u32, // index of this launch's first head in key_max
    _pad0: u32,
    _pad1: u32,
}

const ROWS: u32 = 8u;

@group(0) @binding(0) var<uniform> p: Params;
// #include "attention/qkv.inc.wgsl"
@group(0) @binding(4) var<storage, read> key_max: array<u32>;
@group(0) @binding(5) var<storage, read_write> phi_q: array<f32>;
@group(0) @binding(6) var<storage, read_write> phi_k: array<f32>;
@group(0) @binding(7) var<storage, read_write> v_ext: array<f32>;

// #include "attention/row_lanes.inc.wgsl"

// #include "attention/row_norm.inc.wgsl"

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let group = workgroup_index(wid, nwg);
    if group * ROWS >= p.rows {
        return;
    }
    let row = group * ROWS + lid / ROW_LANES;
    let lane = lid % ROW_LANES;
    let valid = row < p.rows;
    let norm_aware = p.norm_aware == 1u;
    var norm = QueryNorm(0.0, 0.0, 0.0);
    if norm_aware {
        norm = row_query_norm(valid, p.q_offset + row * p.dk, lid);
    }
    if !valid {
        return;
    }
    var scale = 1.0;
    if norm_aware {
        scale = power_of_two_below(bitcast<f32>(key_max[p.scale_offset + row / p.n]));
    }
    for (var f = lane; f < p.features; f += ROW_LANES) {
        let x = read_q(p.q_offset + row * p.dk + f % p.dk);
        let y = read_k(p.k_offset + row * p.dk + f % p.dk);
        if norm_aware {
            let positive = f < p.dk;
            phi_q[row * p.features + f] = norm_aware_query(select(-x, x, positive), norm);
            let cube = relu(select(-y, y, positive) * scale);
            phi_k[row * p.features + f] = cube * cube * cube;
        } else {
            phi_q[row * p.features + f] = elu_plus_one(x);
            phi_k[row * p.features + f] = elu_plus_one(y);
        }
    }
    let width = p.dv + 1u;
    for (var c = lane; c < width; c += ROW_LANES) {
        var x = 1.0;
        if c < p.dv {
            x = read_v(p.v_offset + row * p.dv + c);
        }
        v_ext[row * width + c] = x;
    }
}
