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

// #include "attention/linear_common.inc.wgsl"

// #include "util/workgroup.inc.wgsl"

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
