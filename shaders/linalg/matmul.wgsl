// Tiled, register-blocked GEMM: C = op(A) · op(B) (+ C when accumulating). The body, its
// tiling and its bindings are in `matmul.inc.wgsl`; this kernel stores the tile and nothing
// else (ROW_SQUARES keeps its default, false).

// #include "linalg/matmul.inc.wgsl"

fn finish_tile(
    split: u32, row0: u32, col0: u32, lid: vec3<u32>, lidx: u32,
    acc: array<vec4<f32>, 4>, squares: vec4<f32>,
) {
    store_block(split, row0, col0, lid, acc);
}
