// linear_state.wgsl in registers, for devices where workgroup memory and barriers cost more
// than they save (CPU adapters: lavapipe ran the tiled kernel at under 1 % of its FMA rate).
//   S = Σ_j φ_k(k_j) v_jᵀ  ([features, dv]),   z = Σ_j φ_k(k_j)  (stored as column dv),
// written to state[head][split][f][dv + 1] as the tiled kernel writes it.
//
// A workgroup of 16 lanes owns 8 features × 64 value columns of one split; lane l holds
// columns 4l .. 4l + 3 of each feature in a vec4. Keys come 32 at a time (a causal chunk):
// lane l evaluates the 8 features φ_k(k_j)[f] of keys 2l and 2l + 1 once for every lane (one
// barrier hands them over), instead of every lane evaluating all of them; then per key each
// v value feeds 8 FMAs.

// #include "attention/linear_common.inc.wgsl"

// #include "attention/register_rows.inc.wgsl"

// #include "util/workgroup.inc.wgsl"

const LANES: u32 = 16u;
const FEATURES: u32 = 8u;   // rows of S per workgroup
const COLUMNS: u32 = 64u;   // LANES · 4
const KEYS: u32 = 32u;      // keys per staged block: two per lane

// The block's key features: key kk's features f0 .. f0 + 3 at 2·kk, f0 + 4 .. f0 + 7 at 2·kk + 1.
var<workgroup> staged: array<vec4<f32>, 64>;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> k: array<f32>;
fn read_k(i: u32) -> f32 { return k[i]; }
@group(0) @binding(2) var<storage, read> v: array<f32>;
fn read_v(i: u32) -> f32 { return v[i]; }
@group(0) @binding(3) var<storage, read> key_max: array<u32>;
@group(0) @binding(4) var<storage, read_write> state: array<f32>;

// φ_k(k_j)[f] for f inside the features, else 0.
fn feature_or_zero(row: u32, f: u32, scale: f32) -> f32 {
    if f < p.features {
        return key_feature(row, f, scale);
    }
    return 0.0;
}

// Stores columns c .. c + 3 of S's row f (those below dv).
fn store_columns(base: u32, c: u32, s: vec4<f32>) {
    for (var q = 0u; q < 4u; q++) {
        if c + q < p.dv {
            state[base + c + q] = s[q];
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
    // v_tiles and f_tiles count blocks of COLUMNS and FEATURES here.
    let vt = group % p.v_tiles;
    let ft = (group / p.v_tiles) % p.f_tiles;
    let split = (group / (p.v_tiles * p.f_tiles)) % p.splits;
    let head = group / (p.v_tiles * p.f_tiles * p.splits);
    let scale = key_scale(head);
    let f0 = ft * FEATURES;
    let c = vt * COLUMNS + 4u * lane;
    let first = split * p.keys_per_split;
    let last = min(p.n, first + p.keys_per_split);

    var acc = rows8_zero(); // S of features f0 .. f0 + 7, z in the extra column
    for (var block = first; block < last; block += KEYS) {
        for (var t = 0u; t < 2u; t++) {
            // Keys past the last are evaluated at the last and never read.
            let row = head * p.n + min(block + 2u * lane + t, last - 1u);
            let at = 2u * (2u * lane + t);
            staged[at] = vec4<f32>(feature_or_zero(row, f0, scale), feature_or_zero(row, f0 + 1u, scale),
                                   feature_or_zero(row, f0 + 2u, scale), feature_or_zero(row, f0 + 3u, scale));
            staged[at + 1u] = vec4<f32>(feature_or_zero(row, f0 + 4u, scale), feature_or_zero(row, f0 + 5u, scale),
                                        feature_or_zero(row, f0 + 6u, scale), feature_or_zero(row, f0 + 7u, scale));
        }
        workgroupBarrier();
        for (var kk = 0u; kk < min(KEYS, last - block); kk++) {
            let base = p.v_offset + (head * p.n + block + kk) * p.dv;
            var w = vec4<f32>(0.0);
            for (var q = 0u; q < 4u; q++) {
                w[q] = select(0.0, read_v(base + min(c + q, p.dv - 1u)), c + q < p.dv);
            }
            acc = rows8_fma(acc, staged[2u * kk], staged[2u * kk + 1u], w, 1.0);
        }
        workgroupBarrier();
    }

    let width = p.dv + 1u;
    for (var r = 0u; r < FEATURES; r++) {
        let f = f0 + r;
        if f < p.features {
            let base = ((head * p.splits + split) * p.features + f) * width;
            store_columns(base, c, rows8_row(acc, r));
            if vt == 0u && lane == 0u {
                state[base + p.dv] = rows8_extra(acc, r);
            }
        }
    }
}
