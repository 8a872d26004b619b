// Linear attention, query side, for a chunk of 32 queries of a head and 32 value columns:
//   out_i = (φ_q(q_i)ᵀ S + Σ_{j ∈ chunk, j ≤ i} s_ij v_j) / (φ_q(q_i)·z + Σ_{j ∈ chunk, j ≤ i} s_ij + ε_i)
// with s_ij = φ_q(q_i)·φ_k(k_j). S, z come from state_scan.wgsl: for causal calls the state of
// every key before the chunk (the keys inside it are the masked block term), for non-causal
// calls the state of all keys (no block term). ε_i = 1e-6 (elu+1) or count_i·1e-6
// (norm-aware), times the key scale cubed (see key_max.wgsl).
//
// Thread layout: 32 rows (queries) × 8 lanes; a lane holds 4 columns (lane + 8t). Features
// are walked in tiles of 32: φ_q tile, S tile and (causal) φ_k tile in workgroup memory; the
// block A = φ_q φ_kᵀ builds up in the same registers layout as the output.

// #include "attention/linear_common.inc.wgsl"

// #include "util/workgroup.inc.wgsl"

const TILE: u32 = 32u;
const LANES: u32 = 8u;

@group(0) @binding(0) var<uniform> p: Params;
// #include "attention/qkv.inc.wgsl"
@group(0) @binding(4) var<storage, read> key_max: array<u32>;
@group(0) @binding(5) var<storage, read> state: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

var<workgroup> q_tile: array<f32, 1024>;  // φ_q [row][feature]
var<workgroup> k_tile: array<f32, 1024>;  // φ_k [key][feature], then A [row][key]
var<workgroup> s_tile: array<f32, 1024>;  // S [feature][column], then V [key][column]
var<workgroup> z_tile: array<f32, 32>;
var<workgroup> norm_max: array<f32, 256>; // per lane: max |q_f| and Σ (q_f / max)²
var<workgroup> norm_ssq: array<f32, 256>;
var<workgroup> row_norm: array<QueryNorm, 32>;

// φ_q(q)_f of query row `row`: elu(q)+1, or (relu(±q)/‖q‖)^p (0 where ‖q‖ = 0).
fn query_feature(row: u32, f: u32, norm: QueryNorm) -> f32 {
    if p.norm_aware == 0u {
        return elu_plus_one(read_q(p.q_offset + row * p.dk + f));
    }
    let x = read_q(p.q_offset + row * p.dk + f % p.dk);
    return norm_aware_query(select(-x, x, f < p.dk), norm);
}

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
    let i = chunk * TILE + row;           // this thread's query
    let scale = key_scale(head);

    // The norm of every query row of the chunk: 8 lanes per row reduce partial (max, Σ²),
    // then one thread per row combines them.
    if p.norm_aware == 1u {
        var largest = 0.0;
        var ssq = 0.0;
        if i < p.n {
            for (var f = lane; f < p.dk; f += LANES) {
                let a = abs(read_q(p.q_offset + (head * p.n + i) * p.dk + f));
                if a > largest {
                    ssq = ssq * (largest / a) * (largest / a) + 1.0;
                    largest = a;
                } else if a > 0.0 {
                    ssq += (a / largest) * (a / largest);
                } else if is_nan(a) {
                    ssq = a; // NaN stays NaN
                }
            }
        }
        norm_max[lid] = largest;
        norm_ssq[lid] = ssq;
        workgroupBarrier();
        if lid < TILE {
            var rn = QueryNorm(0.0, 0.0, 0.0);
            for (var l = 0u; l < LANES; l++) {
                rn.largest = max(rn.largest, norm_max[lid * LANES + l]);
            }
            if rn.largest > 0.0 {
                for (var l = 0u; l < LANES; l++) {
                    let ratio = norm_max[lid * LANES + l] / rn.largest;
                    rn.root += norm_ssq[lid * LANES + l] * ratio * ratio;
                }
            }
            row_norm[lid] = query_norm(vec2<f32>(rn.largest, rn.root));
        }
        workgroupBarrier();
    }

    let causal = p.causal == 1u;
    let width = p.dv + 1u;
    let state_base = (head * p.splits + select(0u, chunk, causal)) * p.features * width;
    var numerator = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    var block = array<f32, 4>(0.0, 0.0, 0.0, 0.0); // A[row][lane + 8t]
    var denominator = 0.0;
    for (var ft = 0u; ft < p.f_tiles; ft++) {
        for (var t = 0u; t < 4u; t++) {
            let e = lid + 256u * t;
            let r = e / TILE;
            let f = ft * TILE + e % TILE;
            let qi = chunk * TILE + r;
            var phi = 0.0;
            if qi < p.n && f < p.features {
                phi = query_feature(head * p.n + qi, f, row_norm[r]);
            }
            q_tile[e] = phi;
            let sf = ft * TILE + e / TILE;
            let c = vt * TILE + e % TILE;
            var s = 0.0;
            if sf < p.features && c < p.dv {
                s = state[state_base + sf * width + c];
            }
            s_tile[e] = s;
            if causal {
                let kj = chunk * TILE + e / TILE;
                var phi_k = 0.0;
                if kj < p.n && f < p.features {
                    phi_k = key_feature(head * p.n + kj, f, scale);
                }
                k_tile[e] = phi_k;
            }
        }
        if lid < TILE {
            let sf = ft * TILE + lid;
            var z = 0.0;
            if sf < p.features {
                z = state[state_base + sf * width + p.dv];
            }
            z_tile[lid] = z;
        }
        workgroupBarrier();
        for (var f = 0u; f < TILE; f++) {
            let a = q_tile[row * TILE + f];
            for (var t = 0u; t < 4u; t++) {
                numerator[t] += a * s_tile[f * TILE + lane + LANES * t];
            }
            denominator += a * z_tile[f];
            if causal {
                for (var t = 0u; t < 4u; t++) {
                    block[t] += a * k_tile[(lane + LANES * t) * TILE + f];
                }
            }
        }
        workgroupBarrier();
    }

    if causal {
        // The masked block: A[row][key] for keys of the chunk up to this query.
        for (var t = 0u; t < 4u; t++) {
            let key = lane + LANES * t;
            k_tile[row * TILE + key] = select(0.0, block[t], key <= row);
        }
        for (var t = 0u; t < 4u; t++) {
            let e = lid + 256u * t;
            let j = chunk * TILE + e / TILE;
            let c = vt * TILE + e % TILE;
            var x = 0.0;
            if j < p.n && c < p.dv {
                x = read_v(p.v_offset + (head * p.n + j) * p.dv + c);
            }
            s_tile[e] = x;
        }
        workgroupBarrier();
        for (var key = 0u; key < TILE; key++) {
            let a = k_tile[row * TILE + key];
            for (var t = 0u; t < 4u; t++) {
                numerator[t] += a * s_tile[key * TILE + lane + LANES * t];
            }
            denominator += a;
        }
    }

    if i < p.n {
        let count = select(p.n, i + 1u, causal);
        let eps = select(p.eps, p.eps * f32(count), p.norm_aware == 1u) * scale * scale * scale;
        // Only 0 when every s_ij and ε underflowed: then the numerator is 0 as well.
        let total = max(denominator + eps, 1.1754944e-38);
        for (var t = 0u; t < 4u; t++) {
            let c = vt * TILE + lane + LANES * t;
            if c < p.dv {
                out[p.out_offset + (head * p.n + i) * p.dv + c] = numerator[t] / total;
            }
        }
    }
}
