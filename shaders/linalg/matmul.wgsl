// Tiled, register-blocked GEMM: C = op(A) · op(B) (+ C when accumulating). The body, its
// tiling and its bindings are in `matmul.inc.wgsl`; this kernel takes no row sums of squares
// (ROW_SQUARES keeps its default, false, so the hook below is never reached).

// #include "linalg/matmul.inc.wgsl"

fn store_row_squares(split: u32, row: u32, value: f32) {}
