// Linear attention, key side: the state of each split of the keys of a head,
//   S = Σ_j φ_k(k_j) v_jᵀ  ([features, dv]),   z = Σ_j φ_k(k_j)  (stored as column dv),
// written to state[head][split][f][dv + 1]. Causal calls use splits of 32 keys, one per
// query chunk; non-causal calls use as many splits as keep the device busy. The splits are
// then combined by state_scan.wgsl (prefix or total).
//
// A workgroup owns a 32×32 tile of S (features × value columns) of one split and walks the
// split's keys 32 at a time (state_tile.inc.wgsl, shared with chunk_state.wgsl): φ_k of a
// 32×32 block of keys and the matching block of values go to workgroup memory, and each
// thread accumulates 4 entries of its feature row. φ_k is computed here, on load (the
// feature map is fused, never a pass of its own).

// #include "attention/linear_common.inc.wgsl"

// #include "attention/state_tile.inc.wgsl"

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

// The tile body's loaders: y = φ_k(k_j) (at the head's key scale), w = v, and the extra
// column of ones, so that the extra sum is z = Σ_j φ_k(k_j).
var<private> head_key_scale: f32;
fn load_y(head: u32, j: u32, f: u32) -> f32 { return key_feature(head * p.n + j, f, head_key_scale); }
fn load_w(head: u32, j: u32, c: u32) -> f32 { return read_v(p.v_offset + (head * p.n + j) * p.dv + c); }
fn load_w_extra(head: u32, j: u32) -> f32 { return 1.0; }

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
    head_key_scale = key_scale(head);

    let first = split * p.keys_per_split;
    let last = min(p.n, first + p.keys_per_split);
    let widths = vec2<u32>(p.features, p.dv);
    let tile = state_tile(head, first, last, ft, vt, widths, true, lid);

    let f = ft * TILE + row;
    if f < p.features {
        let width = p.dv + 1u;
        let base = ((head * p.splits + split) * p.features + f) * width;
        store_state_row(base, tile, vt, p.dv, true, lid);
    }
}
