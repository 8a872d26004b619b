// linear_output.wgsl in registers, for devices where workgroup memory and barriers cost more
// than they save (CPU adapters):
//   out_i = (φ_q(q_i)ᵀ S + Σ_{j ∈ chunk, j ≤ i} s_ij v_j) / (φ_q(q_i)·z + Σ_{j ∈ chunk, j ≤ i} s_ij + ε_i)
// with S, z and ε_i as in linear_output.wgsl (the block terms causal only).
//
// A workgroup of 16 lanes owns 8 queries × 64 value columns; lane l holds columns
// 4l .. 4l + 3 of each query in a vec4. Features come 64 at a time: lane l evaluates the 8
// queries' φ_q of features 4l .. 4l + 3 once for every lane (one barrier hands them over);
// then per feature each S value feeds 8 FMAs. Causal, lane l also sums the scores s_ij of
// the chunk's keys 2l and 2l + 1 over the same features; one barrier hands them to every
// lane for the block term. No other workgroup memory.

// #include "attention/linear_common.inc.wgsl"

// #include "attention/register_rows.inc.wgsl"

// #include "util/workgroup.inc.wgsl"

const LANES: u32 = 16u;
const QUERIES: u32 = 8u;    // rows of the output per workgroup
const COLUMNS: u32 = 64u;   // LANES · 4
const CHUNK: u32 = 32u;     // keys of a causal chunk (TILE of linear_state.wgsl)

const FEATURE_BLOCK: u32 = 64u; // features per staged block: four per lane

var<workgroup> scores: array<f32, 256>; // s_ij, [query r][key of the chunk]
// The block's query features: feature ff's queries 0..3 at 2·ff, 4..7 at 2·ff + 1.
var<workgroup> staged: array<vec4<f32>, 128>;

@group(0) @binding(0) var<uniform> p: Params;
// #include "attention/qkv.inc.wgsl"
@group(0) @binding(4) var<storage, read> key_max: array<u32>;
@group(0) @binding(5) var<storage, read> state: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

// The norm of query row `row` (head·n + i), for the norm-aware map.
fn row_norm(row: u32) -> QueryNorm {
    var part = vec2<f32>(0.0);
    for (var f = 0u; f < p.dk; f++) {
        let a = abs(read_q(p.q_offset + row * p.dk + f));
        part = combine_ssq(part.x, part.y, a, ssq_of(a).y);
    }
    return query_norm(part);
}

// φ_q(q)_f of query `i` of the head (0 past the queries or the features).
fn query_feature(head: u32, i: u32, f: u32, norm: QueryNorm) -> f32 {
    if i >= p.n || f >= p.features {
        return 0.0;
    }
    let row = head * p.n + i;
    if p.norm_aware == 0u {
        return elu_plus_one(read_q(p.q_offset + row * p.dk + f));
    }
    let x = read_q(p.q_offset + row * p.dk + f % p.dk);
    return norm_aware_query(select(-x, x, f < p.dk), norm);
}

// φ_k(k_j)_f of key j of the head (0 past the keys).
fn key_or_zero(head: u32, j: u32, f: u32, scale: f32) -> f32 {
    if j < p.n {
        return key_feature(head * p.n + j, f, scale);
    }
    return 0.0;
}

// Stores columns c .. c + 3 of query i's output (those below dv), over its denominator.
fn store_row(head: u32, i: u32, c: u32, numerator: vec4<f32>, denominator: f32, scale: f32) {
    if i >= p.n {
        return;
    }
    let count = select(p.n, i + 1u, p.causal == 1u);
    let eps = select(p.eps, p.eps * f32(count), p.norm_aware == 1u) * scale * scale * scale;
    // Only 0 when every s_ij and ε underflowed: then the numerator is 0 as well.
    let total = max(denominator + eps, 1.1754944e-38);
    for (var q = 0u; q < 4u; q++) {
        if c + q < p.dv {
            out[p.out_offset + (head * p.n + i) * p.dv + c + q] = numerator[q] / total;
        }
    }
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
    let vt = group % p.v_tiles;
    let block = (group / p.v_tiles) % blocks;
    let head = group / (p.v_tiles * blocks);
    let scale = key_scale(head);
    let i0 = block * QUERIES;
    let c = vt * COLUMNS + 4u * lane;
    var norms: array<QueryNorm, 8>;
    if p.norm_aware == 1u {
        for (var r = 0u; r < QUERIES; r++) {
            norms[r] = row_norm(head * p.n + min(i0 + r, p.n - 1u));
        }
    }
    let width = p.dv + 1u;
    let causal = p.causal == 1u;
    let chunk = i0 / CHUNK;
    // Causal: the state of the keys before the chunk; else the total.
    let state_base = (head * p.splits + select(0u, chunk, causal)) * p.features * width;
    let j0 = chunk * CHUNK + 2u * lane; // this lane's two keys of the chunk
    var scores_low = array<vec4<f32>, 2>(vec4<f32>(0.0), vec4<f32>(0.0));  // queries 0..3
    var scores_high = array<vec4<f32>, 2>(vec4<f32>(0.0), vec4<f32>(0.0)); // queries 4..7
    var acc = rows8_zero(); // numerators of queries i0 .. i0 + 7, denominators in the extra column
    for (var block = 0u; block < p.features; block += FEATURE_BLOCK) {
        for (var t = 0u; t < 4u; t++) {
            // Features past the last are 0 (query_feature) and never read.
            let f = block + 4u * lane + t;
            let at = 2u * (4u * lane + t);
            staged[at] = vec4<f32>(query_feature(head, i0, f, norms[0]), query_feature(head, i0 + 1u, f, norms[1]),
                                   query_feature(head, i0 + 2u, f, norms[2]), query_feature(head, i0 + 3u, f, norms[3]));
            staged[at + 1u] = vec4<f32>(query_feature(head, i0 + 4u, f, norms[4]), query_feature(head, i0 + 5u, f, norms[5]),
                                        query_feature(head, i0 + 6u, f, norms[6]), query_feature(head, i0 + 7u, f, norms[7]));
        }
        workgroupBarrier();
        for (var ff = 0u; ff < min(FEATURE_BLOCK, p.features - block); ff++) {
            let f = block + ff;
            let row = state_base + f * width;
            var s = vec4<f32>(0.0);
            for (var q = 0u; q < 4u; q++) {
                s[q] = select(0.0, state[row + min(c + q, p.dv - 1u)], c + q < p.dv);
            }
            let z = state[row + p.dv];
            let low = staged[2u * ff];
            let high = staged[2u * ff + 1u];
            acc = rows8_fma(acc, low, high, s, z);
            if causal {
                let k0 = key_or_zero(head, j0, f, scale);
                let k1 = key_or_zero(head, j0 + 1u, f, scale);
                scores_low[0] = fma(low, vec4<f32>(k0), scores_low[0]);
                scores_high[0] = fma(high, vec4<f32>(k0), scores_high[0]);
                scores_low[1] = fma(low, vec4<f32>(k1), scores_low[1]);
                scores_high[1] = fma(high, vec4<f32>(k1), scores_high[1]);
            }
        }
        workgroupBarrier();
    }
    if causal {
        for (var t = 0u; t < 2u; t++) {
            for (var r = 0u; r < 4u; r++) {
                scores[r * CHUNK + 2u * lane + t] = scores_low[t][r];
                scores[(r + 4u) * CHUNK + 2u * lane + t] = scores_high[t][r];
            }
        }
        workgroupBarrier();
        // The chunk's keys up to the last query: all 8 queries keep keys up to i0.
        let rows = vec4<u32>(0u, 1u, 2u, 3u);
        for (var j = chunk * CHUNK; j < min(p.n, i0 + QUERIES); j++) {
            let kk = j - chunk * CHUNK;
            let base = p.v_offset + (head * p.n + j) * p.dv;
            var w = vec4<f32>(0.0);
            for (var q = 0u; q < 4u; q++) {
                if c + q < p.dv {
                    w[q] = read_v(base + c + q);
                }
            }
            let low = vec4<f32>(scores[kk], scores[CHUNK + kk], scores[2u * CHUNK + kk],
                                scores[3u * CHUNK + kk]);
            let high = vec4<f32>(scores[4u * CHUNK + kk], scores[5u * CHUNK + kk],
                                 scores[6u * CHUNK + kk], scores[7u * CHUNK + kk]);
            let keep_low = vec4<u32>(j) <= vec4<u32>(i0) + rows;
            let keep_high = vec4<u32>(j) <= vec4<u32>(i0 + 4u) + rows;
            acc = rows8_fma_where(acc, low, high, w, 1.0, keep_low, keep_high);
        }
    }
    for (var r = 0u; r < QUERIES; r++) {
        store_row(head, i0 + r, c, rows8_row(acc, r), rows8_extra(acc, r), scale);
    }
}
