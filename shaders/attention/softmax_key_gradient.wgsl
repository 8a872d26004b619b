// Softmax attention backward, key side (flash-attention's dK/dV pass): for 32 keys of a head
// (and up to 4 tiles each of dk and dv columns), over the query blocks that attend them,
//   P_ij = exp(q_i·k_j·scale − lse_i),   ∂S_ij = P_ij·(g_i·v_j − Δ_i),
//   ∂k_j = scale · Σ_i ∂S_ij q_i,   ∂v_j = Σ_i P_ij g_i,
// with lse and Δ from softmax_query_gradient.wgsl. Rows of the register block are keys here,
// columns queries (the query kernel's block transposed).

// #include "util/workgroup.inc.wgsl"

// #include "attention/softmax_gradient_params.inc.wgsl"

// #include "attention/qkv.inc.wgsl"

// #include "attention/gradient_g.inc.wgsl"

// #include "attention/softmax_gradient.inc.wgsl"

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
    let chunks = (p.n + TILE - 1u) / TILE;
    let cg = group % p.column_groups;
    let chunk = (group / p.column_groups) % chunks;
    let head = group / (p.column_groups * chunks);
    let row = lid / LANES;
    let lane = lid % LANES;
    let j = chunk * TILE + row;
    let causal = p.causal == 1u;
    let first_tile = cg * GROUP_TILES;
    // This group's tiles of dk and of dv (either may be none past the narrower width).
    let k_count = min(GROUP_TILES, max(p.k_tiles, first_tile) - first_tile);
    let v_count = min(GROUP_TILES, max(p.v_tiles, first_tile) - first_tile);

    var acc_k = array<f32, 16>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    var acc_v = array<f32, 16>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for (var qb = select(0u, chunk, causal); qb < chunks; qb++) {
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
        let dp = block_dot(2u, chunk * TILE, 3u, first, p.v_tiles, head, lid);
        // Queries first + from ..= first + last attend this row's key (i < n; i ≥ j when causal).
        var from_col = 0u;
        if causal && qb == chunk {
            from_col = row;
        }
        let last = min(p.n, first + TILE) - first - 1u;
        var weight = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
        for (var t = 0u; t < 4u; t++) {
            let col = lane + LANES * t;
            weight[t] = exp(score[t] * p.scale - column_lse[col]);
            let ds = weight[t] * (dp[t] - column_delta[col]);
            weights[row * TILE + col] = select(0.0, ds, col >= from_col && col <= last && j < p.n);
        }
        for (var tl = 0u; tl < k_count; tl++) {
            let part = weighted_tile(0u, first, first_tile + tl, head, lid, from_col, last);
            for (var t = 0u; t < 4u; t++) {
                acc_k[tl * 4u + t] += part[t];
            }
        }
        for (var t = 0u; t < 4u; t++) {
            let col = lane + LANES * t;
            weights[row * TILE + col] = select(0.0, weight[t], col >= from_col && col <= last && j < p.n);
        }
        for (var tl = 0u; tl < v_count; tl++) {
            let part = weighted_tile(3u, first, first_tile + tl, head, lid, from_col, last);
            for (var t = 0u; t < 4u; t++) {
                acc_v[tl * 4u + t] += part[t];
            }
        }
    }

    if j < p.n {
        for (var tl = 0u; tl < GROUP_TILES; tl++) {
            for (var t = 0u; t < 4u; t++) {
                let c = (first_tile + tl) * TILE + lane + LANES * t;
                if tl < k_count && c < p.dk {
                    dk[p.dk_offset + (head * p.n + j) * p.dk + c] = acc_k[tl * 4u + t] * p.scale;
                }
                if tl < v_count && c < p.dv {
                    dv[p.dv_offset + (head * p.n + j) * p.dv + c] = acc_v[tl * 4u + t];
                }
            }
        }
    }
}
