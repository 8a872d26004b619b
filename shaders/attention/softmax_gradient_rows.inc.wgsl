// Shared by the register forms of the softmax attention backward,
// softmax_query_gradient_rows.wgsl and softmax_key_gradient_rows.wgsl (as softmax_rows.wgsl is
// softmax.wgsl's), after their parameters and inputs (softmax_gradient_params.inc.wgsl): the
// eight-row accumulators, the products of a lane's two rows of a 32-row block with the
// workgroup's eight rows, the block handoff (softmax_handoff.inc.wgsl).
//
// A workgroup of 16 lanes owns 8 rows (queries, or keys) × 64 output columns; lane l holds
// columns 4l .. 4l + 3 of each row. The other side comes 32 rows at a time; lane l takes rows
// 2l and 2l + 1 of each block, and one barrier hands the block's 8 × 32 weights to every lane.

// #include "attention/register_rows.inc.wgsl"

// #include "attention/softmax_handoff.inc.wgsl"

const LANES: u32 = 16u;
const ROWS: u32 = 8u;
const COLUMNS: u32 = 64u; // LANES · 4
const BLOCK: u32 = 32u;   // rows of the other side per block: two per lane

// Σ_d A[a_first + r][d]·B[b + t][d] for the 8 rows r of operand `a_kind` and this lane's two
// rows t of `b_kind` (see `load`), over `width` columns: rows 0..3 in `low`, 4..7 in `high`.
fn pair_dots(a_kind: u32, a_first: u32, b_kind: u32, b: u32, width: u32, head: u32) -> PairDots {
    var out = PairDots(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    for (var d = 0u; d < width; d++) {
        let low = vec4<f32>(load(a_kind, head, a_first, d), load(a_kind, head, a_first + 1u, d),
                            load(a_kind, head, a_first + 2u, d), load(a_kind, head, a_first + 3u, d));
        let high = vec4<f32>(load(a_kind, head, a_first + 4u, d), load(a_kind, head, a_first + 5u, d),
                             load(a_kind, head, a_first + 6u, d), load(a_kind, head, a_first + 7u, d));
        let b0 = vec4<f32>(load(b_kind, head, b, d));
        let b1 = vec4<f32>(load(b_kind, head, b + 1u, d));
        out.low0 = fma(low, b0, out.low0);
        out.high0 = fma(high, b0, out.high0);
        out.low1 = fma(low, b1, out.low1);
        out.high1 = fma(high, b1, out.high1);
    }
    return out;
}

// Columns c .. c + 3 of row `row` of operand `kind` (0 past the ends).
fn load4(kind: u32, head: u32, row: u32, c: u32) -> vec4<f32> {
    return vec4<f32>(load(kind, head, row, c), load(kind, head, row, c + 1u),
                     load(kind, head, row, c + 2u), load(kind, head, row, c + 3u));
}
