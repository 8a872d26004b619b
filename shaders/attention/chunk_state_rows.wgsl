// chunk_state.wgsl in registers, for devices where workgroup memory and barriers cost more
// than they save (CPU adapters), as linear_state_rows.wgsl is to linear_state.wgsl:
//   S = Σ_{j ∈ split} y_j w_jᵀ   ([inner][columns (+ 1)]),
// written to state[head][split] as chunk_state.wgsl writes it. A workgroup of 16 lanes owns
// 8 inner rows × 64 columns of one split; lane l holds columns 4l .. 4l + 3, and the extra
// column (w's last element) rides beside them.

// #include "attention/chunked.inc.wgsl"

// #include "attention/register_rows.inc.wgsl"

// #include "util/workgroup.inc.wgsl"

const ROW_LANES: u32 = 16u;
const BLOCK_ROWS: u32 = 8u;
const BLOCK_COLUMNS: u32 = 64u; // ROW_LANES · 4

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> state: array<f32>;

// y_j[d] of row j of the head (0 past the inner width).
fn y_at(head: u32, j: u32, d: u32) -> f32 {
    if d < p.inner {
        return y[(head * p.n + j) * p.y_stride + d];
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
    // column_tiles and inner_tiles count blocks of BLOCK_COLUMNS and BLOCK_ROWS here.
    let ct = group % p.column_tiles;
    let it = (group / p.column_tiles) % p.inner_tiles;
    let split = (group / (p.column_tiles * p.inner_tiles)) % p.splits;
    let head = group / (p.column_tiles * p.inner_tiles * p.splits);
    let extra = p.columns_extra == 1u;
    let d0 = it * BLOCK_ROWS;
    let c = ct * BLOCK_COLUMNS + 4u * lane;
    let first = split * p.keys_per_split;
    let last = min(p.n, first + p.keys_per_split);

    var acc = rows8_zero(); // S of rows d0 .. d0 + 7, the extra column beside
    for (var j = first; j < last; j++) {
        let base = (head * p.n + j) * p.w_stride;
        var wc = vec4<f32>(0.0);
        for (var q = 0u; q < 4u; q++) {
            if c + q < p.columns {
                wc[q] = w[base + c + q];
            }
        }
        var e = 0.0;
        if extra {
            e = w[base + p.columns];
        }
        let low = vec4<f32>(y_at(head, j, d0), y_at(head, j, d0 + 1u), y_at(head, j, d0 + 2u),
                            y_at(head, j, d0 + 3u));
        let high = vec4<f32>(y_at(head, j, d0 + 4u), y_at(head, j, d0 + 5u), y_at(head, j, d0 + 6u),
                             y_at(head, j, d0 + 7u));
        acc = rows8_fma(acc, low, high, wc, e);
    }

    for (var r = 0u; r < BLOCK_ROWS; r++) {
        let d = d0 + r;
        if d < p.inner {
            let base = (head * p.splits + split) * p.state_len + d * p.state_stride;
            let s = rows8_row(acc, r);
            for (var q = 0u; q < 4u; q++) {
                if c + q < p.columns {
                    state[base + c + q] = s[q];
                }
            }
            if extra && ct == 0u && lane == 0u {
                state[base + p.columns] = rows8_extra(acc, r);
            }
        }
    }
}
