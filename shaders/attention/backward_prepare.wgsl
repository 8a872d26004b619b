// Linear attention backward, after the forward's products are recomputed: from the
// numerator and normaliser nd_i = [N_i, Σ_j s_ij] (a chunked product of phi_q, phi_k and
// v_ext) and the upstream gradient g_i,
//   D_i = Σ_j s_ij + ε_i·σ³,   out_i = N_i / D_i,   δ_i = g_i·out_i,
//   g_ext_i = [g_i / D_i, −δ_i / D_i],
// the row that every gradient product of the backward contracts with: ∂s_ij = g_ext_i·v_ext_j.
// ε_i and the guard on D_i are the forward's (linear_output.wgsl).
// Layout: 8 rows × 32 lanes per workgroup; δ_i is summed over the row's lanes.

// #include "util/workgroup.inc.wgsl"

// #include "attention/features.inc.wgsl"

struct Params {
    rows: u32,         // heads · n of this launch
    n: u32,
    dv: u32,
    norm_aware: u32,
    causal: u32,
    g_offset: u32,
    scale_offset: u32,
    eps: f32,
}

const ROWS: u32 = 8u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
fn read_g(i: u32) -> f32 { return g[i]; }
@group(0) @binding(2) var<storage, read> key_max: array<u32>;
@group(0) @binding(3) var<storage, read> nd: array<f32>;
@group(0) @binding(4) var<storage, read_write> g_ext: array<f32>;

// #include "attention/row_lanes.inc.wgsl"

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
    let width = p.dv + 1u;

    var total = 1.0;
    var delta = 0.0;
    if valid {
        var scale = 1.0;
        var eps = p.eps;
        if p.norm_aware == 1u {
            scale = power_of_two_below(bitcast<f32>(key_max[p.scale_offset + row / p.n]));
            let count = select(p.n, row % p.n + 1u, p.causal == 1u);
            eps *= f32(count);
        }
        total = max(nd[row * width + p.dv] + eps * scale * scale * scale, 1.1754944e-38);
        for (var c = lane; c < p.dv; c += ROW_LANES) {
            delta += read_g(p.g_offset + row * p.dv + c) * (nd[row * width + c] / total);
        }
    }
    delta = row_sums(lid, vec2<f32>(delta, 0.0)).x;
    if !valid {
        return;
    }
    for (var c = lane; c < width; c += ROW_LANES) {
        var x = -delta;
        if c < p.dv {
            x = read_g(p.g_offset + row * p.dv + c);
        }
        g_ext[row * width + c] = x / total;
    }
}
