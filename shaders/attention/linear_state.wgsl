// Linear attention, key side: the state of each split of the keys of a head,
//   S = Σ_j φ_k(k_j) v_jᵀ  ([features, dv]),   z = Σ_j φ_k(k_j)  (stored as column dv),
// written to state[head][split][f][dv + 1]. Causal calls use splits of 32 keys, one per
// query chunk; non-causal calls use as many splits as keep the device busy. The splits are
// then combined by state_scan.wgsl (prefix or total).
//
// A workgroup owns a 32×32 tile of S (features × value columns) of one split and walks the
// split's keys 32 at a time: φ_k of a 32×32 block of keys and the matching block of values
// go to workgroup memory, and each thread accumulates 4 entries of its feature row.
// φ_k is computed here, on load (the feature map is fused, never a pass of its own).

struct Params {
    heads: u32,
    n: u32,
    dk: u32,
    dv: u32,
    features: u32,       // dk for elu+1, 2·dk for norm-aware
    norm_aware: u32,
    causal: u32,
    splits: u32,         // states per head
    keys_per_split: u32, // a multiple of TILE
    f_tiles: u32,
    v_tiles: u32,
    total_groups: u32,
    q_offset: u32,
    k_offset: u32,
    v_offset: u32,
    out_offset: u32,
    scale_offset: u32,
    eps: f32,
    _pad0: u32,
    _pad1: u32,
}

const TILE: u32 = 32u;
const LANES: u32 = 8u; // threads per tile row; each holds TILE / LANES = 4 columns

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> k: array<f32>;
fn read_k(i: u32) -> f32 { return k[i]; }
@group(0) @binding(2) var<storage, read> v: array<f32>;
fn read_v(i: u32) -> f32 { return v[i]; }
@group(0) @binding(3) var<storage, read> key_max: array<u32>;
@group(0) @binding(4) var<storage, read_write> state: array<f32>;

var<workgroup> phi_tile: array<f32, 1024>; // [key][feature]
var<workgroup> v_tile: array<f32, 1024>;   // [key][column]

// 2^-e with max|k|·2^-e < 1 for the norm-aware map (see key_max.wgsl); 1 otherwise.
fn key_scale(head: u32) -> f32 {
    let m = bitcast<f32>(key_max[p.scale_offset + head]);
    if p.norm_aware == 0u || !(m > 1.0) {
        return 1.0;
    }
    return ldexp(1.0, -frexp(m).exp);
}

// By its bits: compilers may fold `x != x` to false (Mesa does).
fn is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

// max(x, 0) with NaN kept (WGSL's max may drop it).
fn relu(x: f32) -> f32 {
    return select(max(x, 0.0), x, is_nan(x));
}

// φ_k(k)_f of key row `row` (head·n + j): elu(k)+1, or relu(±k·scale)³.
fn key_feature(row: u32, f: u32, scale: f32) -> f32 {
    if p.norm_aware == 0u {
        let x = read_k(p.k_offset + row * p.dk + f);
        return select(exp(x), x + 1.0, x > 0.0);
    }
    let x = read_k(p.k_offset + row * p.dk + f % p.dk) * scale;
    let y = relu(select(-x, x, f < p.dk));
    return y * y * y;
}

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let group = wid.x + wid.y * nwg.x;
    if group >= p.total_groups {
        return;
    }
    let vt = group % p.v_tiles;
    let ft = (group / p.v_tiles) % p.f_tiles;
    let split = (group / (p.v_tiles * p.f_tiles)) % p.splits;
    let head = group / (p.v_tiles * p.f_tiles * p.splits);
    let row = lid / LANES;  // feature within the tile
    let lane = lid % LANES;
    let scale = key_scale(head);

    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    var z = 0.0;
    let first = split * p.keys_per_split;
    let last = min(p.n, first + p.keys_per_split);
    for (var block = first; block < last; block += TILE) {
        for (var t = 0u; t < 4u; t++) {
            let e = lid + 256u * t;
            let j = block + e / TILE;
            let f = ft * TILE + e % TILE;
            let c = vt * TILE + e % TILE;
            var phi = 0.0;
            if j < last && f < p.features {
                phi = key_feature(head * p.n + j, f, scale);
            }
            phi_tile[e] = phi;
            var x = 0.0;
            if j < last && c < p.dv {
                x = read_v(p.v_offset + (head * p.n + j) * p.dv + c);
            }
            v_tile[e] = x;
        }
        workgroupBarrier();
        for (var key = 0u; key < TILE; key++) {
            let phi = phi_tile[key * TILE + row];
            for (var t = 0u; t < 4u; t++) {
                acc[t] += phi * v_tile[key * TILE + lane + LANES * t];
            }
            z += phi;
        }
        workgroupBarrier();
    }

    let f = ft * TILE + row;
    if f < p.features {
        let width = p.dv + 1u;
        let base = ((head * p.splits + split) * p.features + f) * width;
        for (var t = 0u; t < 4u; t++) {
            let c = vt * TILE + lane + LANES * t;
            if c < p.dv {
                state[base + c] = acc[t];
            }
        }
        if vt == 0u && lane == 0u {
            state[base + p.dv] = z;
        }
    }
}
