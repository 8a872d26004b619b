// The state of each split of the rows of a head for the chunked products of
// chunked.inc.wgsl,
//   S = Σ_{j ∈ split} y_j w_jᵀ   ([inner][columns (+ 1)]),
// written to state[head][split] with rows `state_stride` apart and combined along the
// sequence by state_scan.wgsl. As linear_state.wgsl, without a feature map: a workgroup owns
// a 32×32 tile of S and walks the split 32 rows at a time through workgroup memory; the
// extra column (w's last element) is accumulated beside the tile, as z is there.

// #include "attention/chunked.inc.wgsl"

// #include "util/workgroup.inc.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> state: array<f32>;

var<workgroup> y_tile: array<f32, 1024>; // [row][inner]
var<workgroup> w_tile: array<f32, 1024>; // [row][column]
var<workgroup> w_extra: array<f32, 32>;  // [row]

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
    let ct = group % p.column_tiles;
    let it = (group / p.column_tiles) % p.inner_tiles;
    let split = (group / (p.column_tiles * p.inner_tiles)) % p.splits;
    let head = group / (p.column_tiles * p.inner_tiles * p.splits);
    let row = lid / LANES; // inner index within the tile
    let lane = lid % LANES;
    let extra = p.columns_extra == 1u;

    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    var acc_extra = 0.0;
    let first = split * p.keys_per_split;
    let last = min(p.n, first + p.keys_per_split);
    for (var block = first; block < last; block += TILE) {
        for (var t = 0u; t < 4u; t++) {
            let e = lid + 256u * t;
            let j = block + e / TILE;
            let d = it * TILE + e % TILE;
            let c = ct * TILE + e % TILE;
            var a = 0.0;
            if j < last && d < p.inner {
                a = y[(head * p.n + j) * p.y_stride + d];
            }
            y_tile[e] = a;
            var b = 0.0;
            if j < last && c < p.columns {
                b = w[(head * p.n + j) * p.w_stride + c];
            }
            w_tile[e] = b;
        }
        if extra && lid < TILE {
            let j = block + lid;
            var b = 0.0;
            if j < last {
                b = w[(head * p.n + j) * p.w_stride + p.columns];
            }
            w_extra[lid] = b;
        }
        workgroupBarrier();
        for (var key = 0u; key < TILE; key++) {
            let a = y_tile[key * TILE + row];
            for (var t = 0u; t < 4u; t++) {
                acc[t] += a * w_tile[key * TILE + lane + LANES * t];
            }
            if extra {
                acc_extra += a * w_extra[key];
            }
        }
        workgroupBarrier();
    }

    let d = it * TILE + row;
    if d < p.inner {
        let base = (head * p.splits + split) * p.state_len + d * p.state_stride;
        for (var t = 0u; t < 4u; t++) {
            let c = ct * TILE + lane + LANES * t;
            if c < p.columns {
                state[base + c] = acc[t];
            }
        }
        if extra && ct == 0u && lane == 0u {
            state[base + p.columns] = acc_extra;
        }
    }
}
