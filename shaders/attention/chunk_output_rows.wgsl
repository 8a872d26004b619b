// chunk_output.wgsl in registers, for devices where workgroup memory and barriers cost more
// than they save (CPU adapters):
//   out_i = x_iᵀ S_chunk + Σ_{j ∈ chunk ∩ J(i)} (x_i·y_j) w_j
// (the extra contraction element and extra output column included; the block term in the
// masked modes only). A workgroup of 16 lanes owns 8 rows × 64 columns; lane l holds columns
// 4l .. 4l + 3, and the extra column rides beside them. Masked, lane l also sums x_i·y_j for
// the chunk's rows j = 2l, 2l + 1 beside the contraction; one barrier hands the scores to
// every lane for the block term, whose masked entries are dropped, not multiplied by 0.

// #include "attention/chunked.inc.wgsl"

// #include "attention/register_rows.inc.wgsl"

// #include "util/workgroup.inc.wgsl"

const ROW_LANES: u32 = 16u;
const BLOCK_ROWS: u32 = 8u;
const BLOCK_COLUMNS: u32 = 64u; // ROW_LANES · 4

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read> state: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

var<workgroup> scores: array<f32, 256>; // x_i·y_j, [row r][row j of the chunk]

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

// y_j[d] of row j of the head (0 past the rows).
fn y_at(head: u32, j: u32, d: u32) -> f32 {
    if j < p.n {
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
    let blocks = (p.n + BLOCK_ROWS - 1u) / BLOCK_ROWS;
    let ct = group % p.column_tiles; // blocks of BLOCK_COLUMNS here
    let block = (group / p.column_tiles) % blocks;
    let head = group / (p.column_tiles * blocks);
    let extra = p.columns_extra == 1u;
    let i0 = block * BLOCK_ROWS;
    let c = ct * BLOCK_COLUMNS + 4u * lane;
    let masked = p.mode != 0u;
    let chunk = i0 / TILE;
    let state_base = (head * p.splits + select(0u, chunk, masked)) * p.state_len;
    let j0 = chunk * TILE + 2u * lane; // this lane's two rows of the chunk
    var scores_low = array<vec4<f32>, 2>(vec4<f32>(0.0), vec4<f32>(0.0));  // rows 0..3
    var scores_high = array<vec4<f32>, 2>(vec4<f32>(0.0), vec4<f32>(0.0)); // rows 4..7

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
        if masked {
            let y0 = y_at(head, j0, d);
            let y1 = y_at(head, j0 + 1u, d);
            scores_low[0] = fma(low, vec4<f32>(y0), scores_low[0]);
            scores_high[0] = fma(high, vec4<f32>(y0), scores_high[0]);
            scores_low[1] = fma(low, vec4<f32>(y1), scores_low[1]);
            scores_high[1] = fma(high, vec4<f32>(y1), scores_high[1]);
        }
    }
    if masked {
        for (var t = 0u; t < 2u; t++) {
            for (var r = 0u; r < 4u; r++) {
                scores[r * TILE + 2u * lane + t] = scores_low[t][r];
                scores[(r + 4u) * TILE + 2u * lane + t] = scores_high[t][r];
            }
        }
        workgroupBarrier();
        // Causal: the chunk's rows up to the last of ours; anti-causal: from the first on.
        let causal = p.mode == 1u;
        let rows = vec4<u32>(0u, 1u, 2u, 3u);
        let first = select(i0, chunk * TILE, causal);
        let end = min(p.n, select((chunk + 1u) * TILE, i0 + BLOCK_ROWS, causal));
        for (var j = first; j < end; j++) {
            let kk = j - chunk * TILE;
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
            let low = vec4<f32>(scores[kk], scores[TILE + kk], scores[2u * TILE + kk],
                                scores[3u * TILE + kk]);
            let high = vec4<f32>(scores[4u * TILE + kk], scores[5u * TILE + kk],
                                 scores[6u * TILE + kk], scores[7u * TILE + kk]);
            let i_low = vec4<u32>(i0) + rows;
            let i_high = vec4<u32>(i0 + 4u) + rows;
            let j4 = vec4<u32>(j);
            let keep_low = select(j4 >= i_low, j4 <= i_low, causal);
            let keep_high = select(j4 >= i_high, j4 <= i_high, causal);
            acc = rows8_fma_where(acc, low, high, wc, e, keep_low, keep_high);
        }
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
