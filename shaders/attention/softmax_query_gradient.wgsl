// Softmax attention backward, query side (flash-attention's dQ pass): for 32 queries of a
// head and 32 columns of dk, over the key blocks they attend,
//   P_ij = exp(q_i·k_j·scale − lse_i),   ∂S_ij = P_ij·(g_i·v_j − Δ_i),
//   ∂q_i = scale · Σ_j ∂S_ij k_j,
// with lse from softmax.wgsl and Δ from softmax_delta.wgsl: the weights are recomputed block
// by block, never stored.

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
@group(0) @binding(7) var<storage, read_write> dq: array<f32>;

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
    let ct = group % p.k_tiles;
    let chunk = (group / p.k_tiles) % chunks;
    let head = group / (p.k_tiles * chunks);
    let row = lid / LANES;
    let lane = lid % LANES;
    let i = chunk * TILE + row;
    let causal = p.causal == 1u;
    var row_lse = 0.0;
    var row_delta = 0.0;
    if i < p.n {
        row_lse = lse[p.lse_offset + head * p.n + i];
        row_delta = delta[p.lse_offset + head * p.n + i];
    }

    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    let key_blocks = select(chunks, chunk + 1u, causal);
    for (var kb = 0u; kb < key_blocks; kb++) {
        let first = kb * TILE;
        let score = block_dot(0u, chunk * TILE, 1u, first, p.k_tiles, head, lid);
        let dp = block_dot(3u, chunk * TILE, 2u, first, p.v_tiles, head, lid);
        // Keys j ≤ last of this block are this row's (j < n; j ≤ i when causal).
        var last = min(p.n, first + TILE) - first - 1u;
        if causal && kb == chunk {
            last = row;
        }
        for (var t = 0u; t < 4u; t++) {
            let key = lane + LANES * t;
            let ds = exp(score[t] * p.scale - row_lse) * (dp[t] - row_delta);
            weights[row * TILE + key] = select(0.0, ds, key <= last && i < p.n);
        }
        weighted_rows(1u, first, ct, head, lid, &acc, 0u, last);
    }

    if i < p.n {
        for (var t = 0u; t < 4u; t++) {
            let c = ct * TILE + lane + LANES * t;
            if c < p.dk {
                dq[p.dq_offset + (head * p.n + i) * p.dk + c] = acc[t] * p.scale;
            }
        }
    }
}
