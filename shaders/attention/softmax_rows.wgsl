// softmax.wgsl in registers, for devices where workgroup memory and barriers cost more than
// they save (CPU adapters):
//   out_i = Σ_j softmax_j(q_i·k_j / √dk) v_j   over j (j ≤ i when causal),
// with the online softmax (running row max m and sum l, the accumulator rescaled by
// exp(m_old − m_new)) and each row's lse_i = m + ln l, as softmax.wgsl writes them.
//
// A workgroup of 16 lanes owns 8 queries × 64 value columns; lane l holds columns
// 4l .. 4l + 3 of each query in a vec4, and l (Σ of the weights) rides in the extra column.
// Keys come 32 at a time: lane l scores keys 2l and 2l + 1 against the 8 queries, one barrier
// hands the 8 × 32 scores to every lane, which takes the rows' maxima and weights and adds
// the block's values; a second barrier frees the scores for the next block.

// #include "attention/softmax_params.inc.wgsl"

// #include "attention/register_rows.inc.wgsl"

// #include "util/workgroup.inc.wgsl"

const LANES: u32 = 16u;
const QUERIES: u32 = 8u;
const COLUMNS: u32 = 64u; // LANES · 4
const BLOCK: u32 = 32u;   // keys per block: two per lane

// −f32 max: the score of a key that does not count (as online_softmax.inc.wgsl).
const NO_SCORE: f32 = -3.4028235e38;

@group(0) @binding(0) var<uniform> p: Params;
// #include "attention/qkv.inc.wgsl"
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;

var<workgroup> scores: array<f32, 256>; // [query r][key of the block], scaled; NO_SCORE where masked

// q_i[d] of query i of the head (0 past the queries).
fn q_at(head: u32, i: u32, d: u32) -> f32 {
    if i < p.n {
        return read_q(p.q_offset + (head * p.n + i) * p.dk + d);
    }
    return 0.0;
}

// k_j[d] of key j of the head (0 past the keys).
fn k_at(head: u32, j: u32, d: u32) -> f32 {
    if j < p.n {
        return read_k(p.k_offset + (head * p.n + j) * p.dk + d);
    }
    return 0.0;
}

// Whether key j counts for query i: j < n, and j ≤ i when causal.
fn counts(j: u32, i: u32) -> bool {
    return j < p.n && (p.causal == 0u || j <= i);
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
    let blocks = (p.n + QUERIES - 1u) / QUERIES;
    let vt = group % p.v_tiles; // blocks of COLUMNS here
    let block = (group / p.v_tiles) % blocks;
    let head = group / (p.v_tiles * blocks);
    let i0 = block * QUERIES;
    let c = vt * COLUMNS + 4u * lane;
    let rows = vec4<u32>(0u, 1u, 2u, 3u);

    var m_low = vec4<f32>(NO_SCORE); // the rows' running maxima
    var m_high = vec4<f32>(NO_SCORE);
    var acc = rows8_zero();          // Σ weight·v, and l in the extra column
    let last_key = select(p.n, min(p.n, i0 + QUERIES), p.causal == 1u);
    let key_blocks = (last_key + BLOCK - 1u) / BLOCK;
    for (var kb = 0u; kb < key_blocks; kb++) {
        // This lane's two keys against the 8 queries.
        let j0 = kb * BLOCK + 2u * lane;
        var s0_low = vec4<f32>(0.0);
        var s0_high = vec4<f32>(0.0);
        var s1_low = vec4<f32>(0.0);
        var s1_high = vec4<f32>(0.0);
        for (var d = 0u; d < p.dk; d++) {
            let low = vec4<f32>(q_at(head, i0, d), q_at(head, i0 + 1u, d), q_at(head, i0 + 2u, d),
                                q_at(head, i0 + 3u, d));
            let high = vec4<f32>(q_at(head, i0 + 4u, d), q_at(head, i0 + 5u, d),
                                 q_at(head, i0 + 6u, d), q_at(head, i0 + 7u, d));
            let k0 = k_at(head, j0, d);
            let k1 = k_at(head, j0 + 1u, d);
            s0_low = fma(low, vec4<f32>(k0), s0_low);
            s0_high = fma(high, vec4<f32>(k0), s0_high);
            s1_low = fma(low, vec4<f32>(k1), s1_low);
            s1_high = fma(high, vec4<f32>(k1), s1_high);
        }
        for (var r = 0u; r < 4u; r++) {
            let i_low = i0 + r;
            let i_high = i0 + 4u + r;
            scores[r * BLOCK + 2u * lane] = select(NO_SCORE, s0_low[r] * p.scale, counts(j0, i_low));
            scores[r * BLOCK + 2u * lane + 1u] = select(NO_SCORE, s1_low[r] * p.scale, counts(j0 + 1u, i_low));
            scores[(r + 4u) * BLOCK + 2u * lane] = select(NO_SCORE, s0_high[r] * p.scale, counts(j0, i_high));
            scores[(r + 4u) * BLOCK + 2u * lane + 1u] = select(NO_SCORE, s1_high[r] * p.scale, counts(j0 + 1u, i_high));
        }
        workgroupBarrier();

        // The block's row maxima, then the weights relative to the new maxima.
        var new_low = m_low;
        var new_high = m_high;
        for (var k = 0u; k < BLOCK; k++) {
            new_low = max(new_low, vec4<f32>(scores[k], scores[BLOCK + k], scores[2u * BLOCK + k],
                                             scores[3u * BLOCK + k]));
            new_high = max(new_high, vec4<f32>(scores[4u * BLOCK + k], scores[5u * BLOCK + k],
                                               scores[6u * BLOCK + k], scores[7u * BLOCK + k]));
        }
        acc = rows8_scale(acc, exp(m_low - new_low), exp(m_high - new_high));
        m_low = new_low;
        m_high = new_high;
        for (var k = 0u; k < min(BLOCK, p.n - kb * BLOCK); k++) {
            let j = kb * BLOCK + k;
            let base = p.v_offset + (head * p.n + j) * p.dv;
            var w = vec4<f32>(0.0);
            for (var q = 0u; q < 4u; q++) {
                if c + q < p.dv {
                    w[q] = read_v(base + c + q);
                }
            }
            let s_low = vec4<f32>(scores[k], scores[BLOCK + k], scores[2u * BLOCK + k],
                                  scores[3u * BLOCK + k]);
            let s_high = vec4<f32>(scores[4u * BLOCK + k], scores[5u * BLOCK + k],
                                   scores[6u * BLOCK + k], scores[7u * BLOCK + k]);
            let all = vec4<bool>(p.causal == 0u);
            let keep_low = all | (vec4<u32>(j) <= vec4<u32>(i0) + rows);
            let keep_high = all | (vec4<u32>(j) <= vec4<u32>(i0 + 4u) + rows);
            acc = rows8_fma_where(acc, exp(s_low - m_low), exp(s_high - m_high), w, 1.0,
                                  keep_low, keep_high);
        }
        workgroupBarrier();
    }

    for (var r = 0u; r < QUERIES; r++) {
        let i = i0 + r;
        if i < p.n {
            let l = rows8_extra(acc, r);
            let m = select(m_high[r % 4u], m_low[r % 4u], r < 4u);
            if vt == 0u && lane == 0u {
                lse[p.lse_offset + head * p.n + i] = m + log(l);
            }
            let o = rows8_row(acc, r);
            for (var q = 0u; q < 4u; q++) {
                if c + q < p.dv {
                    out[p.out_offset + (head * p.n + i) * p.dv + c + q] = o[q] / l;
                }
            }
        }
    }
}
