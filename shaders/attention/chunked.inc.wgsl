// Shared by chunk_state.wgsl and chunk_output.wgsl: the parameters of an unnormalised
// chunked linear product over the rows of each head,
//   out_i = Σ_{j ∈ J(i)} (x_i·y_j) w_j,   J(i) = all j, j ≤ i (causal) or j ≥ i (anti-causal),
// and of the chunk states S = Σ_j y_j w_jᵀ it is answered from. The attention backward is four
// such products sharing two states (see src/attention/linear_backward.rs).
//
// Widths: x and y have `inner` elements, plus one more when `inner_extra` is 1; w and out
// have `columns`, plus one more when `columns_extra` is 1. The extra element (the column of
// ones of [v, 1], the −δ/D of the backward's g̃) is carried by every thread beside its tile,
// as the forward carries z, so that a width of dv + 1 costs no extra 32-wide tile.
//
// A state is stored [rows][state_stride]; the output pass reads it as S[d][c] (d the
// contraction index, c the output column) or, `transposed`, as S[c][d]: one state serves two
// products.

struct Params {
    heads: u32,
    n: u32,
    inner: u32,
    inner_extra: u32,
    columns: u32,
    columns_extra: u32,
    x_stride: u32,
    y_stride: u32,
    w_stride: u32,
    out_stride: u32,
    state_stride: u32,
    transposed: u32,
    mode: u32,           // 0: all keys, 1: j ≤ i, 2: j ≥ i
    splits: u32,         // states per head
    keys_per_split: u32, // a multiple of TILE
    inner_tiles: u32,
    column_tiles: u32,
    total_groups: u32,
    out_offset: u32,
    state_len: u32,      // entries of one state
}

const TILE: u32 = 32u;
const LANES: u32 = 8u; // threads per tile row; each holds TILE / LANES = 4 columns
