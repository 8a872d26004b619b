// Softmax attention backward, first pass: Δ_i = g_i·out_i for every row (head, query), the
// term that the weights' gradient ∂S_ij = P_ij·(g_i·v_j − Δ_i) subtracts.
// Layout: 8 rows × 32 lanes per workgroup, the dot product summed over the row's lanes.

// #include "util/workgroup.inc.wgsl"

struct Params {
    rows: u32,
    dv: u32,
    g_offset: u32,
    out_offset: u32,
    delta_offset: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const ROWS: u32 = 8u;
const ROW_LANES: u32 = 32u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
fn read_g(i: u32) -> f32 { return g[i]; }
@group(0) @binding(2) var<storage, read> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> delta: array<f32>;

var<workgroup> part: array<f32, 256>;

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
    var sum = 0.0;
    if row < p.rows {
        for (var c = lane; c < p.dv; c += ROW_LANES) {
            sum += read_g(p.g_offset + row * p.dv + c) * out[p.out_offset + row * p.dv + c];
        }
    }
    part[lid] = sum;
    workgroupBarrier();
    if lane == 0u && row < p.rows {
        var total = 0.0;
        for (var l = 0u; l < ROW_LANES; l++) {
            total += part[lid + l];
        }
        delta[p.delta_offset + row] = total;
    }
}
