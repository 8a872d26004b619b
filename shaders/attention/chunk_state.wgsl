// The state of each split of the rows of a head for the chunked products of
// chunked.inc.wgsl,
//   S = Σ_{j ∈ split} y_j w_jᵀ   ([inner][columns (+ 1)]),
// written to state[head][split] with rows `state_stride` apart and combined along the
// sequence by state_scan.wgsl. The tile body is linear_state.wgsl's (state_tile.inc.wgsl),
// reading y and w as stored; the extra column is w's last element.

// #include "attention/chunked.inc.wgsl"

// #include "attention/state_tile.inc.wgsl"

// #include "util/workgroup.inc.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> state: array<f32>;

fn load_y(head: u32, j: u32, d: u32) -> f32 { return y[(head * p.n + j) * p.y_stride + d]; }
fn load_w(head: u32, j: u32, c: u32) -> f32 { return w[(head * p.n + j) * p.w_stride + c]; }
fn load_w_extra(head: u32, j: u32) -> f32 { return load_w(head, j, p.columns); }

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
    let extra = p.columns_extra == 1u;

    let first = split * p.keys_per_split;
    let last = min(p.n, first + p.keys_per_split);
    let widths = vec2<u32>(p.inner, p.columns);
    let tile = state_tile(head, first, last, it, ct, widths, extra, lid);

    let d = it * TILE + row;
    if d < p.inner {
        let base = (head * p.splits + split) * p.state_len + d * p.state_stride;
        store_state_row(base, tile, ct, p.columns, extra, lid);
    }
}
