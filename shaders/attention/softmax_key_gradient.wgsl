// Softmax attention backward, key side (flash-attention's dK/dV pass): for 32 keys of a head
// and one 32-column tile of dk or of dv, over the query blocks that attend them,
//   P_ij = exp(q_i·k_j·scale − lse_i),   ∂S_ij = P_ij·(g_i·v_j − Δ_i),
//   ∂k_j = scale · Σ_i ∂S_ij q_i,   ∂v_j = Σ_i P_ij g_i.
// Rows of the register block are keys here, columns queries (softmax_query_gradient.wgsl
// transposed). Tiles 0 .. k_tiles write dk, the rest dv (which needs no g·v).

// #include "util/workgroup.inc.wgsl"

// #include "attention/softmax_gradient.inc.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
fn read_q(i: u32) -> f32 { return q[i]; }
@group(0) @binding(2) var<storage, read> k: array<f32>;
fn read_k(i: u32) -> f32 { return k[i]; }
@group(0) @binding(3) var<storage, read> v: array<f32>;
fn read_v(i: u32) -> f32 { return v[i]; }
@group(0) @binding(4) var<storage, read> g: array<f32>;
fn read_g(i: u32) -> f32 { return g[i]; }
@group(0) @binding(5) var<storage, read> lse: array<f32>;
@group(0) @binding(6) var<storage, read> delta: array<f32>;
@group(0) @binding(7) var<storage, read_write> dk: array<f32>;
@group(0) @binding(8) var<storage, read_write> dv: array<f32>;

var<workgroup> column_lse: array<f32, 32>;
var<workgroup> column_delta: array<f32, 32>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let group = workgroup_index(wid, nwg);
    if group >= p.total_groups {
        return;
    }
    let tiles = p.k_tiles + p.v_tiles;
    let chunks = (p.n + TILE - 1u) / TILE;
    let tile = group % tiles;
    let chunk = (group / tiles) % chunks;
    let head = group / (tiles * chunks);
    let values = tile >= p.k_tiles;
    let ct = select(tile, tile - p.k_tiles, values);
    let row = lid / LANES;
    let lane = lid % LANES;
    let j = chunk * TILE + row;
    let causal = p.causal == 1u;

    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    let first_block = select(0u, chunk, causal);
    for (var qb = first_block; qb < chunks; qb++) {
        let first = qb * TILE;
        if lid < TILE {
            let i = first + lid;
            var l = 0.0;
            var d = 0.0;
            if i < p.n {
                l = lse[p.lse_offset + head * p.n + i];
                d = delta[p.lse_offset + head * p.n + i];
            }
            column_lse[lid] = l;
            column_delta[lid] = d;
        }
        let score = block_dot(1u, chunk * TILE, 0u, first, p.k_tiles, head, lid);
        var dp = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
        if !values {
            dp = block_dot(2u, chunk * TILE, 3u, first, p.v_tiles, head, lid);
        }
        // Queries i ≥ first + first_col of this block attend this row's key (i < n; i ≥ j when causal).
        var first_col = 0u;
        if causal && qb == chunk {
            first_col = row;
        }
        let last = min(p.n, first + TILE) - first - 1u;
        for (var t = 0u; t < 4u; t++) {
            let col = lane + LANES * t;
            let weight = exp(score[t] * p.scale - column_lse[col]);
            let w = select(weight * (dp[t] - column_delta[col]), weight, values);
            weights[row * TILE + col] = select(0.0, w, col >= first_col && col <= last && j < p.n);
        }
        weighted_rows(select(0u, 3u, values), first, ct, head, lid, &acc, first_col, last);
    }

    if j < p.n {
        for (var t = 0u; t < 4u; t++) {
            let c = ct * TILE + lane + LANES * t;
            if values {
                if c < p.dv {
                    dv[p.dv_offset + (head * p.n + j) * p.dv + c] = acc[t];
                }
            } else if c < p.dk {
                dk[p.dq_offset + (head * p.n + j) * p.dk + c] = acc[t] * p.scale;
            }
        }
    }
}
