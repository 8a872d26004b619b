// The output of a chunked product of chunked.inc.wgsl for a chunk of 32 rows of a head and
// 32 columns:
//   out_i = x_iᵀ S_chunk + Σ_{j ∈ chunk ∩ J(i)} (x_i·y_j) w_j
// with S_chunk from state_scan.wgsl: all rows (mode 0, no block term), the rows before the
// chunk (mode 1) or after it (mode 2); the masked block covers the chunk's own rows. As
// linear_output.wgsl without feature map or normaliser, with the extra contraction element
// and extra output column of chunked.inc.wgsl carried beside the tiles. Masked entries are
// dropped, not multiplied by 0, so that a NaN in a row outside J(i) stays out of out_i.

// #include "attention/chunked.inc.wgsl"

// #include "util/workgroup.inc.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read> state: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

var<workgroup> x_tile: array<f32, 1024>; // [row][inner]
var<workgroup> y_tile: array<f32, 1024>; // [key][inner], then A [row][key]
var<workgroup> s_tile: array<f32, 1024>; // S [inner][column], then w [key][column]
var<workgroup> s_extra: array<f32, 32>;  // S [inner][the extra column], then w's extra column

// S[d][c] of the state at `base` (S[c][d] as stored when transposed).
fn state_at(base: u32, d: u32, c: u32) -> f32 {
    if p.transposed == 1u {
        return state[base + c * p.state_stride + d];
    }
    return state[base + d * p.state_stride + c];
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
    let ct = group % p.column_tiles;
    let chunk = (group / p.column_tiles) % chunks;
    let head = group / (p.column_tiles * chunks);
    let row = lid / LANES;
    let lane = lid % LANES;
    let i = chunk * TILE + row;
    let masked = p.mode != 0u;
    let inner_extra = p.inner_extra == 1u;
    let columns_extra = p.columns_extra == 1u;
    let state_base = (head * p.splits + select(0u, chunk, masked)) * p.state_len;

    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    var acc_extra = 0.0;                             // the extra output column
    var block = array<f32, 4>(0.0, 0.0, 0.0, 0.0); // A[row][lane + 8t]
    for (var it = 0u; it < p.inner_tiles; it++) {
        for (var t = 0u; t < 4u; t++) {
            let e = lid + 256u * t;
            let d = it * TILE + e % TILE;
            let r = chunk * TILE + e / TILE; // row of x and of y alike
            var a = 0.0;
            if r < p.n && d < p.inner {
                a = x[(head * p.n + r) * p.x_stride + d];
            }
            x_tile[e] = a;
            let sd = it * TILE + e / TILE;
            let c = ct * TILE + e % TILE;
            var s = 0.0;
            if sd < p.inner && c < p.columns {
                s = state_at(state_base, sd, c);
            }
            s_tile[e] = s;
            if masked {
                var b = 0.0;
                if r < p.n && d < p.inner {
                    b = y[(head * p.n + r) * p.y_stride + d];
                }
                y_tile[e] = b;
            }
        }
        if columns_extra && lid < TILE {
            let sd = it * TILE + lid;
            var s = 0.0;
            if sd < p.inner {
                s = state_at(state_base, sd, p.columns);
            }
            s_extra[lid] = s;
        }
        workgroupBarrier();
        for (var d = 0u; d < TILE; d++) {
            let a = x_tile[row * TILE + d];
            for (var t = 0u; t < 4u; t++) {
                acc[t] += a * s_tile[d * TILE + lane + LANES * t];
            }
            if columns_extra {
                acc_extra += a * s_extra[d];
            }
            if masked {
                for (var t = 0u; t < 4u; t++) {
                    block[t] += a * y_tile[(lane + LANES * t) * TILE + d];
                }
            }
        }
        workgroupBarrier();
    }

    // The extra contraction element: x_i's last entry against the state's extra row and
    // (for the block) each key's last entry of y.
    if inner_extra && i < p.n {
        let a = x[(head * p.n + i) * p.x_stride + p.inner];
        for (var t = 0u; t < 4u; t++) {
            let c = ct * TILE + lane + LANES * t;
            if c < p.columns {
                acc[t] += a * state_at(state_base, p.inner, c);
            }
            let j = chunk * TILE + lane + LANES * t;
            if masked && j < p.n {
                block[t] += a * y[(head * p.n + j) * p.y_stride + p.inner];
            }
        }
        if columns_extra {
            acc_extra += a * state_at(state_base, p.inner, p.columns);
        }
    }

    if masked {
        for (var t = 0u; t < 4u; t++) {
            y_tile[row * TILE + lane + LANES * t] = block[t];
        }
        for (var t = 0u; t < 4u; t++) {
            let e = lid + 256u * t;
            let j = chunk * TILE + e / TILE;
            let c = ct * TILE + e % TILE;
            var b = 0.0;
            if j < p.n && c < p.columns {
                b = w[(head * p.n + j) * p.w_stride + c];
            }
            s_tile[e] = b;
        }
        if columns_extra && lid < TILE {
            let j = chunk * TILE + lid;
            var b = 0.0;
            if j < p.n {
                b = w[(head * p.n + j) * p.w_stride + p.columns];
            }
            s_extra[lid] = b;
        }
        workgroupBarrier();
        let causal = p.mode == 1u;
        for (var key = 0u; key < TILE; key++) {
            let keep = select(key >= row, key <= row, causal);
            let a = y_tile[row * TILE + key];
            for (var t = 0u; t < 4u; t++) {
                acc[t] += select(0.0, a * s_tile[key * TILE + lane + LANES * t], keep);
            }
            if columns_extra {
                acc_extra += select(0.0, a * s_extra[key], keep);
            }
        }
    }

    if i < p.n {
        let at = p.out_offset + (head * p.n + i) * p.out_stride;
        for (var t = 0u; t < 4u; t++) {
            let c = ct * TILE + lane + LANES * t;
            if c < p.columns {
                out[at + c] = acc[t];
            }
        }
        if columns_extra && ct == 0u && lane == 0u {
            out[at + p.columns] = acc_extra;
        }
    }
}
