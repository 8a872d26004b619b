// The body of softmax_rows.wgsl and softmax_rows_vec4.wgsl, which include it after their
// q, k, v bindings (qkv.inc.wgsl, or qkv_vec4.inc.wgsl).

// #include "attention/softmax_params.inc.wgsl"

// #include "attention/register_rows.inc.wgsl"

// #include "attention/softmax_handoff.inc.wgsl"

// #include "util/workgroup.inc.wgsl"

const LANES: u32 = 16u;
const QUERIES: u32 = 8u;
const COLUMNS: u32 = 64u; // LANES · 4
const BLOCK: u32 = 32u;   // keys per block: two per lane

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;

const SCORES: u32 = 0u;    // [query][key of the block], scaled; NO_SCORE where masked
const WEIGHTS: u32 = 64u;  // exp(score − the row's new max); 0 where masked

var<workgroup> handoff: array<vec4<f32>, 128>;

// q_i[d] of query i of the head (0 past the queries). Branch-free: a load under a branch
// is a masked load, one lane at a time on a CPU adapter; the row is clamped instead.
fn q_at(head: u32, i: u32, d: u32) -> f32 {
    let value = read_q(p.q_offset + (head * p.n + min(i, p.n - 1u)) * p.dk + d);
    return select(0.0, value, i < p.n);
}

// k_j[d] of key j of the head (0 past the keys), branch-free as q_at.
fn k_at(head: u32, j: u32, d: u32) -> f32 {
    let value = read_k(p.k_offset + (head * p.n + min(j, p.n - 1u)) * p.dk + d);
    return select(0.0, value, j < p.n);
}

// q_i[d .. d + 3] and k_j[d .. d + 3], where dk is a multiple of 4, as q_at and k_at.
fn q4_at(head: u32, i: u32, d: u32) -> vec4<f32> {
    let value = read_q4(p.q_offset + (head * p.n + min(i, p.n - 1u)) * p.dk + d);
    return select(vec4<f32>(0.0), value, i < p.n);
}
fn k4_at(head: u32, j: u32, d: u32) -> vec4<f32> {
    let value = read_k4(p.k_offset + (head * p.n + min(j, p.n - 1u)) * p.dk + d);
    return select(vec4<f32>(0.0), value, j < p.n);
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
        if p.dk % 4u == 0u {
            // Four steps of d per load.
            for (var d = 0u; d < p.dk; d += 4u) {
                let a0 = q4_at(head, i0, d);
                let a1 = q4_at(head, i0 + 1u, d);
                let a2 = q4_at(head, i0 + 2u, d);
                let a3 = q4_at(head, i0 + 3u, d);
                let a4 = q4_at(head, i0 + 4u, d);
                let a5 = q4_at(head, i0 + 5u, d);
                let a6 = q4_at(head, i0 + 6u, d);
                let a7 = q4_at(head, i0 + 7u, d);
                let k0 = k4_at(head, j0, d);
                let k1 = k4_at(head, j0 + 1u, d);
                // Written out: a loop over the four steps indexes its vectors at run time.
                var low = vec4<f32>(a0.x, a1.x, a2.x, a3.x);
                var high = vec4<f32>(a4.x, a5.x, a6.x, a7.x);
                s0_low = fma(low, vec4<f32>(k0.x), s0_low);
                s0_high = fma(high, vec4<f32>(k0.x), s0_high);
                s1_low = fma(low, vec4<f32>(k1.x), s1_low);
                s1_high = fma(high, vec4<f32>(k1.x), s1_high);
                low = vec4<f32>(a0.y, a1.y, a2.y, a3.y);
                high = vec4<f32>(a4.y, a5.y, a6.y, a7.y);
                s0_low = fma(low, vec4<f32>(k0.y), s0_low);
                s0_high = fma(high, vec4<f32>(k0.y), s0_high);
                s1_low = fma(low, vec4<f32>(k1.y), s1_low);
                s1_high = fma(high, vec4<f32>(k1.y), s1_high);
                low = vec4<f32>(a0.z, a1.z, a2.z, a3.z);
                high = vec4<f32>(a4.z, a5.z, a6.z, a7.z);
                s0_low = fma(low, vec4<f32>(k0.z), s0_low);
                s0_high = fma(high, vec4<f32>(k0.z), s0_high);
                s1_low = fma(low, vec4<f32>(k1.z), s1_low);
                s1_high = fma(high, vec4<f32>(k1.z), s1_high);
                low = vec4<f32>(a0.w, a1.w, a2.w, a3.w);
                high = vec4<f32>(a4.w, a5.w, a6.w, a7.w);
                s0_low = fma(low, vec4<f32>(k0.w), s0_low);
                s0_high = fma(high, vec4<f32>(k0.w), s0_high);
                s1_low = fma(low, vec4<f32>(k1.w), s1_low);
                s1_high = fma(high, vec4<f32>(k1.w), s1_high);
            }
        } else {
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
        }
        let keep = pair_keep(i0, j0, true);
        let no_score = vec4<f32>(NO_SCORE);
        let s = PairDots(select(no_score, s0_low * p.scale, keep.low0),
                         select(no_score, s0_high * p.scale, keep.high0),
                         select(no_score, s1_low * p.scale, keep.low1),
                         select(no_score, s1_high * p.scale, keep.high1));
        block_store(SCORES, lane, s, keep_all());
        workgroupBarrier();

        // The block's row maxima, then this lane's weights relative to the new maxima.
        var new_low = m_low;
        var new_high = m_high;
        for (var k = 0u; k < BLOCK; k++) {
            new_low = max(new_low, block_low(SCORES, k));
            new_high = max(new_high, block_high(SCORES, k));
        }
        let weights = PairDots(exp(s.low0 - new_low), exp(s.high0 - new_high), exp(s.low1 - new_low),
                               exp(s.high1 - new_high));
        block_store(WEIGHTS, lane, weights, keep);
        acc = rows8_scale(acc, exp(m_low - new_low), exp(m_high - new_high));
        m_low = new_low;
        m_high = new_high;
        workgroupBarrier();
        for (var k = 0u; k < min(BLOCK, p.n - kb * BLOCK); k++) {
            let j = kb * BLOCK + k;
            let base = p.v_offset + (head * p.n + j) * p.dv;
            var w = vec4<f32>(0.0);
            if p.dv % 4u == 0u {
                w = select(w, read_v4(base + min(c, p.dv - 4u)), c < p.dv);
            } else {
                for (var q = 0u; q < 4u; q++) {
                    w[q] = select(0.0, read_v(base + min(c + q, p.dv - 1u)), c + q < p.dv);
                }
            }
            acc = rows8_fma_where(acc, block_low(WEIGHTS, k), block_high(WEIGHTS, k), w, 1.0,
                                  causal_keep(i0, j, true), causal_keep(i0 + 4u, j, true));
        }
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
