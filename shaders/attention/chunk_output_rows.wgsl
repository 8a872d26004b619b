// chunk_output.wgsl in registers for the unmasked products (mode 0: every row against the
// total state, no block term), for devices where workgroup memory and barriers cost more than
// they save (CPU adapters):
//   out_i = x_iᵀ S     (the extra contraction element and extra output column included)
// A workgroup of 16 lanes owns 8 rows × 64 columns; lane l holds columns 4l .. 4l + 3, and
// the extra column rides beside them. Only x and the state are read.

// #include "attention/chunked.inc.wgsl"

// #include "attention/register_rows.inc.wgsl"

// #include "util/workgroup.inc.wgsl"

const ROW_LANES: u32 = 16u;
const BLOCK_ROWS: u32 = 8u;
const BLOCK_COLUMNS: u32 = 64u; // ROW_LANES · 4

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> state: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// S[d][c] of the state at `base` (S[c][d] as stored when transposed).
fn state_at(base: u32, d: u32, c: u32) -> f32 {
    if p.transposed == 1u {
        return state[base + c * p.state_stride + d];
    }
    return state[base + d * p.state_stride + c];
}

// x_i[d] of row i of the head (0 past the rows).
fn x_at(head: u32, i: u32, d: u32) -> f32 {
    if i < p.n {
        return x[(head * p.n + i) * p.x_stride + d];
    }
    return 0.0;
}

@compute @workgroup_size(ROW_LANES)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let group = workgroup_index(wid, nwg);
    if group >= p.total_groups {
        return;
    }
    let blocks = (p.n + BLOCK_ROWS - 1u) / BLOCK_ROWS;
    let ct = group % p.column_tiles; // blocks of BLOCK_COLUMNS here
    let block = (group / p.column_tiles) % blocks;
    let head = group / (p.column_tiles * blocks);
    let extra = p.columns_extra == 1u;
    let i0 = block * BLOCK_ROWS;
    let c = ct * BLOCK_COLUMNS + 4u * lane;
    let state_base = head * p.splits * p.state_len;

    var acc = rows8_zero(); // rows i0 .. i0 + 7, the extra column beside
    // The contraction runs over the inner width and, where there is one, its extra element.
    for (var d = 0u; d < p.inner + p.inner_extra; d++) {
        var s = vec4<f32>(0.0);
        for (var q = 0u; q < 4u; q++) {
            if c + q < p.columns {
                s[q] = state_at(state_base, d, c + q);
            }
        }
        var e = 0.0;
        if extra {
            e = state_at(state_base, d, p.columns);
        }
        let low = vec4<f32>(x_at(head, i0, d), x_at(head, i0 + 1u, d), x_at(head, i0 + 2u, d),
                            x_at(head, i0 + 3u, d));
        let high = vec4<f32>(x_at(head, i0 + 4u, d), x_at(head, i0 + 5u, d), x_at(head, i0 + 6u, d),
                             x_at(head, i0 + 7u, d));
        acc = rows8_fma(acc, low, high, s, e);
    }

    for (var r = 0u; r < BLOCK_ROWS; r++) {
        let i = i0 + r;
        if i < p.n {
            let at = p.out_offset + (head * p.n + i) * p.out_stride;
            let o = rows8_row(acc, r);
            for (var q = 0u; q < 4u; q++) {
                if c + q < p.columns {
                    out[at + c + q] = o[q];
                }
            }
            if extra && ct == 0u && lane == 0u {
                out[at + p.columns] = rows8_extra(acc, r);
            }
        }
    }
}
