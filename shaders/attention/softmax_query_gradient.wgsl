// Softmax attention backward, query side: for 32 queries of a head (and up to 4 tiles of dk
// columns), two passes over the key blocks they attend:
//   1. the rows' statistics, online as in softmax.wgsl: lse_i = m + ln l, and
//      Δ_i = Σ_j P_ij (g_i·v_j) = g_i·out_i, rescaled with l as the max grows;
//   2. P_ij = exp(q_i·k_j·scale − lse_i), ∂S_ij = P_ij·(g_i·v_j − Δ_i), ∂q_i = scale·Σ_j ∂S_ij k_j.
// lse and Δ are written for softmax_key_gradient.wgsl. The weights are recomputed block by
// block and never stored: O(n·d) memory.

// #include "util/workgroup.inc.wgsl"

// #include "attention/softmax_gradient_params.inc.wgsl"

// #include "attention/qkv.inc.wgsl"

// #include "attention/gradient_g.inc.wgsl"

// #include "attention/softmax_gradient.inc.wgsl"

@group(0) @binding(5) var<storage, read_write> lse: array<f32>;
@group(0) @binding(6) var<storage, read_write> delta: array<f32>;
@group(0) @binding(7) var<storage, read_write> dq: array<f32>;

// #include "attention/online_softmax.inc.wgsl"

var<workgroup> lane_sum: array<f32, 256>;
var<workgroup> lane_delta: array<f32, 256>;

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
    let i = chunk * TILE + row;
    let causal = p.causal == 1u;
    let key_blocks = select(chunks, chunk + 1u, causal);

    // Pass 1: m, l and Δ of every row (each lane its 4 keys, one shared max per row).
    var m = NO_SCORE;
    var l = 0.0;
    var d = 0.0;
    for (var kb = 0u; kb < key_blocks; kb++) {
        let first = kb * TILE;
        var score = block_dot(0u, chunk * TILE, 1u, first, p.k_tiles, head, lid);
        let dp = block_dot(3u, chunk * TILE, 2u, first, p.v_tiles, head, lid);
        let block_max = scaled_block_max(&score, first, i, causal, lid);
        workgroupBarrier();
        let m_new = max(m, block_max);
        let correction = exp(m - m_new);
        l *= correction;
        d *= correction;
        for (var t = 0u; t < 4u; t++) {
            let j = first + lane + LANES * t;
            let valid = key_counts(j, i, causal);
            let w = select(0.0, exp(score[t] - m_new), valid);
            l += w;
            d += select(0.0, w * dp[t], valid);
        }
        m = m_new;
    }
    lane_max[lid] = m;
    lane_sum[lid] = l;
    lane_delta[lid] = d;
    workgroupBarrier();
    var total = 0.0;
    var weighted = 0.0;
    for (var other = 0u; other < LANES; other++) {
        total += lane_sum[row * LANES + other];
        weighted += lane_delta[row * LANES + other];
    }
    let row_lse = m + log(total);
    let row_delta = weighted / total;
    if i < p.n && cg == 0u && lane == 0u {
        lse[p.lse_offset + head * p.n + i] = row_lse;
        delta[p.lse_offset + head * p.n + i] = row_delta;
    }

    // Pass 2: ∂q over this group's column tiles.
    var acc = array<f32, 16>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let first_tile = cg * GROUP_TILES;
    let tiles = min(GROUP_TILES, p.k_tiles - first_tile);
    for (var kb = 0u; kb < key_blocks; kb++) {
        let first = kb * TILE;
        let score = block_dot(0u, chunk * TILE, 1u, first, p.k_tiles, head, lid);
        let dp = block_dot(3u, chunk * TILE, 2u, first, p.v_tiles, head, lid);
        // Keys first ..= first + last are this row's (j < n; j ≤ i when causal).
        var last = min(p.n, first + TILE) - first - 1u;
        if causal && kb == chunk {
            last = row;
        }
        for (var t = 0u; t < 4u; t++) {
            let key = lane + LANES * t;
            let ds = exp(score[t] * p.scale - row_lse) * (dp[t] - row_delta);
            weights[row * TILE + key] = select(0.0, ds, key <= last && i < p.n);
        }
        for (var tl = 0u; tl < tiles; tl++) {
            let part = weighted_tile(1u, first, first_tile + tl, head, lid, 0u, last);
            for (var t = 0u; t < 4u; t++) {
                acc[tl * 4u + t] += part[t];
            }
        }
    }

    if i < p.n {
        for (var tl = 0u; tl < tiles; tl++) {
            for (var t = 0u; t < 4u; t++) {
                let c = (first_tile + tl) * TILE + lane + LANES * t;
                if c < p.dk {
                    dq[p.dq_offset + (head * p.n + i) * p.dk + c] = acc[tl * 4u + t] * p.scale;
                }
            }
        }
    }
}
