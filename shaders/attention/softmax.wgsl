// Exact softmax attention with an online softmax (the n×n matrix never exists):
//   out_i = Σ_j softmax_j(q_i·k_j / √dk) v_j   over j (j ≤ i when causal).
// A workgroup owns 32 queries of a head and 32 value columns and walks the keys 32 at a
// time: scores of the block (dk in tiles of 32), the running row max m and sum l, the
// accumulator rescaled by exp(m_old − m_new) whenever the max grows.
// Thread layout as in linear_output.wgsl: 32 rows × 8 lanes, 4 columns per lane.
// Also writes each row's log-sum-exp of the scaled scores, lse_i = m + ln l, which the
// backward (softmax_query_gradient.wgsl, softmax_key_gradient.wgsl) recomputes weights from.

// #include "util/workgroup.inc.wgsl"

// #include "attention/softmax_params.inc.wgsl"

const TILE: u32 = 32u;
const LANES: u32 = 8u;

@group(0) @binding(0) var<uniform> p: Params;
// #include "attention/qkv.inc.wgsl"
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;

var<workgroup> q_tile: array<f32, 1024>;     // [row][d]
var<workgroup> k_tile: array<f32, 1024>;     // [key][d], then P [row][key]
var<workgroup> v_tile: array<f32, 1024>;     // [key][column]

// #include "attention/online_softmax.inc.wgsl"

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
    let vt = group % p.v_tiles;
    let chunk = (group / p.v_tiles) % chunks;
    let head = group / (p.v_tiles * chunks);
    let row = lid / LANES;
    let lane = lid % LANES;
    let i = chunk * TILE + row;
    let causal = p.causal == 1u;

    var m = NO_SCORE;
    var l = 0.0;
    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    let key_blocks = select(chunks, chunk + 1u, causal);
    for (var kb = 0u; kb < key_blocks; kb++) {
        var score = array<f32, 4>(0.0, 0.0, 0.0, 0.0); // keys lane + 8t of the block
        for (var dt = 0u; dt < p.k_tiles; dt++) {
            for (var t = 0u; t < 4u; t++) {
                let e = lid + 256u * t;
                let d = dt * TILE + e % TILE;
                let qi = chunk * TILE + e / TILE;
                let kj = kb * TILE + e / TILE;
                var x = 0.0;
                if qi < p.n && d < p.dk {
                    x = read_q(p.q_offset + (head * p.n + qi) * p.dk + d);
                }
                q_tile[e] = x;
                var y = 0.0;
                if kj < p.n && d < p.dk {
                    y = read_k(p.k_offset + (head * p.n + kj) * p.dk + d);
                }
                k_tile[e] = y;
            }
            workgroupBarrier();
            for (var d = 0u; d < TILE; d++) {
                let a = q_tile[row * TILE + d];
                for (var t = 0u; t < 4u; t++) {
                    score[t] += a * k_tile[(lane + LANES * t) * TILE + d];
                }
            }
            workgroupBarrier();
        }

        // Online softmax: the block's row max, then weights relative to the new max.
        let block_max = scaled_block_max(&score, kb * TILE, i, causal, lid);
        let m_new = max(m, block_max);
        let correction = exp(m - m_new);
        for (var t = 0u; t < 4u; t++) {
            let j = kb * TILE + lane + LANES * t;
            k_tile[row * TILE + lane + LANES * t] = select(0.0, exp(score[t] - m_new), key_counts(j, i, causal));
            acc[t] *= correction;
        }
        m = m_new;
        for (var t = 0u; t < 4u; t++) {
            let e = lid + 256u * t;
            let j = kb * TILE + e / TILE;
            let c = vt * TILE + e % TILE;
            var x = 0.0;
            if j < p.n && c < p.dv {
                x = read_v(p.v_offset + (head * p.n + j) * p.dv + c);
            }
            v_tile[e] = x;
        }
        workgroupBarrier();
        var block_sum = 0.0;
        for (var key = 0u; key < TILE; key++) {
            let w = k_tile[row * TILE + key];
            block_sum += w;
            for (var t = 0u; t < 4u; t++) {
                acc[t] += w * v_tile[key * TILE + lane + LANES * t];
            }
        }
        l = l * correction + block_sum;
        workgroupBarrier();
    }

    if i < p.n {
        if vt == 0u && lane == 0u {
            lse[p.lse_offset + head * p.n + i] = m + log(l);
        }
        for (var t = 0u; t < 4u; t++) {
            let c = vt * TILE + lane + LANES * t;
            if c < p.dv {
                out[p.out_offset + (head * p.n + i) * p.dv + c] = acc[t] / l;
            }
        }
    }
}
