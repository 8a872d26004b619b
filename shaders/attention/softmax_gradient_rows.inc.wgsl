// Shared by the register forms of the softmax attention backward,
// softmax_query_gradient_rows.wgsl and softmax_key_gradient_rows.wgsl (as softmax_rows.wgsl is
// softmax.wgsl's), after their parameters and inputs (softmax_gradient_params.inc.wgsl): the
// eight-row accumulators and the pair products and block handoff (softmax_pairs.inc.wgsl).
//
// A workgroup of 16 lanes owns 8 rows (queries, or keys) × 64 output columns; lane l holds
// columns 4l .. 4l + 3 of each row. The other side comes 32 rows at a time; lane l takes rows
// 2l and 2l + 1 of each block, and one barrier hands the block's 8 × 32 weights to every lane.

// #include "attention/register_rows.inc.wgsl"

// #include "attention/softmax_pairs.inc.wgsl"

const LANES: u32 = 16u;
const ROWS: u32 = 8u;
const COLUMNS: u32 = 64u; // LANES · 4
const BLOCK: u32 = 32u;   // rows of the other side per block: two per lane
