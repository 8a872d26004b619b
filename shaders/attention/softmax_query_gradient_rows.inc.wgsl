// The body of softmax_query_gradient_rows.wgsl and softmax_query_gradient_rows_vec4.wgsl, which
// include it after their input bindings.

// #include "util/workgroup.inc.wgsl"

// #include "attention/softmax_gradient_params.inc.wgsl"

// #include "attention/softmax_gradient_rows.inc.wgsl"

@group(0) @binding(5) var<storage, read_write> lse: array<f32>;
@group(0) @binding(6) var<storage, read_write> delta: array<f32>;
@group(0) @binding(7) var<storage, read_write> dq: array<f32>;

var<workgroup> handoff: array<vec4<f32>, 64>;   // ∂S of the block
var<workgroup> lane_stats: array<vec4<f32>, 96>; // [lane][max, Σ P, Σ P·g·v][rows 0..3, 4..7]

// The online statistics of 8 queries over some keys: max m, Σ exp(s − m), Σ exp(s − m)·g·v.
struct Stats {
    m_low: vec4<f32>,
    m_high: vec4<f32>,
    l_low: vec4<f32>,
    l_high: vec4<f32>,
    d_low: vec4<f32>,
    d_high: vec4<f32>,
}

// The statistics (m, l, d) of one half of the rows (0..3 or 4..7) after two more keys, given
// their scaled scores s (NO_SCORE where they do not count) and products dp = g·v.
fn add_two(m: vec4<f32>, l: vec4<f32>, d: vec4<f32>, s0: vec4<f32>, dp0: vec4<f32>, keep0: vec4<bool>,
           s1: vec4<f32>, dp1: vec4<f32>, keep1: vec4<bool>) -> array<vec4<f32>, 3> {
    let m_new = max(m, max(s0, s1));
    let correction = exp(m - m_new);
    let z = vec4<f32>(0.0);
    let w0 = select(z, exp(s0 - m_new), keep0);
    let w1 = select(z, exp(s1 - m_new), keep1);
    let l_new = l * correction + w0 + w1;
    let d_new = d * correction + select(z, w0 * dp0, keep0) + select(z, w1 * dp1, keep1);
    return array<vec4<f32>, 3>(m_new, l_new, d_new);
}

@compute @workgroup_size(LANES)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let group = workgroup_index(wid, nwg);
    if group >= p.total_groups {
        return;
    }
    let blocks = (p.n + ROWS - 1u) / ROWS;
    let ct = group % p.column_groups; // 64-column tiles of ∂q
    let block = (group / p.column_groups) % blocks;
    let head = group / (p.column_groups * blocks);
    let i0 = block * ROWS;
    let c = ct * COLUMNS + 4u * lane;
    let last_key = select(p.n, min(p.n, i0 + ROWS), p.causal == 1u);
    let key_blocks = (last_key + BLOCK - 1u) / BLOCK;
    let no_score = vec4<f32>(NO_SCORE);

    // Pass 1: this lane's statistics over its keys.
    var st = Stats(no_score, no_score, vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    for (var kb = 0u; kb < key_blocks; kb++) {
        let j = kb * BLOCK + 2u * lane;
        let s = pair_dots(0u, i0, 1u, j, p.dk, head);
        let dp = pair_dots(3u, i0, 2u, j, p.dv, head);
        let keep = pair_keep(i0, j, true);
        let low = add_two(st.m_low, st.l_low, st.d_low,
                          select(no_score, s.low0 * p.scale, keep.low0), dp.low0, keep.low0,
                          select(no_score, s.low1 * p.scale, keep.low1), dp.low1, keep.low1);
        let high = add_two(st.m_high, st.l_high, st.d_high,
                           select(no_score, s.high0 * p.scale, keep.high0), dp.high0, keep.high0,
                           select(no_score, s.high1 * p.scale, keep.high1), dp.high1, keep.high1);
        st = Stats(low[0], high[0], low[1], high[1], low[2], high[2]);
    }
    // Joined over the lanes, in lane order.
    lane_stats[lane * 6u] = st.m_low;
    lane_stats[lane * 6u + 1u] = st.m_high;
    lane_stats[lane * 6u + 2u] = st.l_low;
    lane_stats[lane * 6u + 3u] = st.l_high;
    lane_stats[lane * 6u + 4u] = st.d_low;
    lane_stats[lane * 6u + 5u] = st.d_high;
    workgroupBarrier();
    var m_low = no_score;
    var m_high = no_score;
    for (var o = 0u; o < LANES; o++) {
        m_low = max(m_low, lane_stats[o * 6u]);
        m_high = max(m_high, lane_stats[o * 6u + 1u]);
    }
    var l_low = vec4<f32>(0.0);
    var l_high = vec4<f32>(0.0);
    var d_low = vec4<f32>(0.0);
    var d_high = vec4<f32>(0.0);
    for (var o = 0u; o < LANES; o++) {
        let to_low = exp(lane_stats[o * 6u] - m_low);
        let to_high = exp(lane_stats[o * 6u + 1u] - m_high);
        l_low += lane_stats[o * 6u + 2u] * to_low;
        l_high += lane_stats[o * 6u + 3u] * to_high;
        d_low += lane_stats[o * 6u + 4u] * to_low;
        d_high += lane_stats[o * 6u + 5u] * to_high;
    }
    let lse_low = m_low + log(l_low);
    let lse_high = m_high + log(l_high);
    let delta_low = d_low / l_low;
    let delta_high = d_high / l_high;
    if ct == 0u && lane == 0u {
        for (var r = 0u; r < 4u; r++) {
            if i0 + r < p.n {
                lse[p.lse_offset + head * p.n + i0 + r] = lse_low[r];
                delta[p.lse_offset + head * p.n + i0 + r] = delta_low[r];
            }
            if i0 + 4u + r < p.n {
                lse[p.lse_offset + head * p.n + i0 + 4u + r] = lse_high[r];
                delta[p.lse_offset + head * p.n + i0 + 4u + r] = delta_high[r];
            }
        }
    }

    // Pass 2: ∂S_ij = P_ij (g_i·v_j − Δ_i), handed over block by block; ∂q_i += ∂S_ij k_j.
    var acc = rows8_zero();
    for (var kb = 0u; kb < key_blocks; kb++) {
        let j = kb * BLOCK + 2u * lane;
        let s = pair_dots(0u, i0, 1u, j, p.dk, head);
        let dp = pair_dots(3u, i0, 2u, j, p.dv, head);
        let slopes = PairDots(
            exp(s.low0 * p.scale - lse_low) * (dp.low0 - delta_low),
            exp(s.high0 * p.scale - lse_high) * (dp.high0 - delta_high),
            exp(s.low1 * p.scale - lse_low) * (dp.low1 - delta_low),
            exp(s.high1 * p.scale - lse_high) * (dp.high1 - delta_high),
        );
        block_store(0u, lane, slopes, pair_keep(i0, j, true));
        workgroupBarrier();
        for (var k = 0u; k < min(BLOCK, p.n - kb * BLOCK); k++) {
            let key = kb * BLOCK + k;
            acc = rows8_fma_where(acc, block_low(0u, k), block_high(0u, k), load4(1u, head, key, c, width_of(1u)),
                                  0.0, causal_keep(i0, key, true), causal_keep(i0 + 4u, key, true));
        }
        workgroupBarrier();
    }

    for (var r = 0u; r < ROWS; r++) {
        let i = i0 + r;
        if i < p.n {
            let o = rows8_row(acc, r);
            for (var t = 0u; t < 4u; t++) {
                if c + t < p.dk {
                    dq[p.dq_offset + (head * p.n + i) * p.dk + c + t] = o[t] * p.scale;
                }
            }
        }
    }
}
