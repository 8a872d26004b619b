// The body of softmax_rows.wgsl and softmax_rows_vec4.wgsl, which include it after their
// q, k, v bindings (qkv.inc.wgsl, or qkv_vec4.inc.wgsl).

// #include "attention/softmax_params.inc.wgsl"

// #include "attention/register_rows.inc.wgsl"

// #include "attention/softmax_pairs.inc.wgsl"

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

// Element (row, c) of q (kind 0), k (1) or v (2) of the head, 0 past the rows and the width.
// Branch-free: a load under a branch is a masked load, one lane at a time on a CPU adapter.
fn load(kind: u32, head: u32, row: u32, c: u32) -> f32 {
    let r = head * p.n + min(row, p.n - 1u);
    let width = select(p.dv, p.dk, kind < 2u);
    let at = min(c, width - 1u);
    var value: f32;
    switch kind {
        case 0u: { value = read_q(p.q_offset + r * p.dk + at); }
        case 1u: { value = read_k(p.k_offset + r * p.dk + at); }
        default: { value = read_v(p.v_offset + r * p.dv + at); }
    }
    return select(0.0, value, row < p.n && c < width);
}

// Columns c .. c + 3 of `load`'s operand, where its width is a multiple of 4.
fn load_vec4(kind: u32, head: u32, row: u32, c: u32) -> vec4<f32> {
    let r = head * p.n + min(row, p.n - 1u);
    var value: vec4<f32>;
    switch kind {
        case 0u: { value = read4_q(p.q_offset + r * p.dk + c); }
        case 1u: { value = read4_k(p.k_offset + r * p.dk + c); }
        default: { value = read4_v(p.v_offset + r * p.dv + c); }
    }
    return select(vec4<f32>(0.0), value, row < p.n);
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
        let raw = pair_dots(0u, i0, 1u, j0, p.dk, head);
        let keep = pair_keep(i0, j0, true);
        let no_score = vec4<f32>(NO_SCORE);
        let s = PairDots(select(no_score, raw.low0 * p.scale, keep.low0),
                         select(no_score, raw.high0 * p.scale, keep.high0),
                         select(no_score, raw.low1 * p.scale, keep.low1),
                         select(no_score, raw.high1 * p.scale, keep.high1));
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
            let w = load4(2u, head, j, c, p.dv);
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
