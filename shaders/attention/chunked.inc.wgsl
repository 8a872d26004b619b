// Shared by chunk_state.wgsl and chunk_output.wgsl: the parameters of an unnormalised
// chunked linear product over the rows of each head,
//   out_i = Σ_{j ∈ J(i)} (x_i·y_j) w_j,   J(i) = all j, j ≤ i (causal) or j ≥ i (anti-causal),
// x_i, y_j of width `inner`, w_j and out_i of width `columns`. The attention backward is four
// of them (see src/attention/linear_backward.rs).

struct Params {
    heads: u32,
    n: u32,
    inner: u32,          // width of x and y
    columns: u32,        // width of w and out
    x_stride: u32,
    y_stride: u32,
    w_stride: u32,
    out_stride: u32,
    mode: u32,           // 0: all keys, 1: j ≤ i, 2: j ≥ i
    splits: u32,         // states per head
    keys_per_split: u32, // a multiple of TILE
    inner_tiles: u32,
    column_tiles: u32,
    total_groups: u32,
    out_offset: u32,
    _pad0: u32,
}

const TILE: u32 = 32u;
const LANES: u32 = 8u; // threads per tile row; each holds TILE / LANES = 4 columns
