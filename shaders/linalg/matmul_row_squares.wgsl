// Tiled GEMM C = op(A) · op(B) that also returns the row sums of squares of op(A),
//   squares[i] = Σ_k op(A)[i,k]²  (+ squares[i] when accumulating over k-blocks),
// summed from the A tiles the GEMM holds in workgroup memory anyway: one pass over A gives
// both. The host creates it with ROW_SQUARES = true. DoRA's factored norm takes ‖W_j‖² and
// U = W·Aᵀ from it. Body in `matmul.inc.wgsl`.

// #include "linalg/matmul.inc.wgsl"

// #include "linalg/row_squares_out.inc.wgsl"

fn finish_tile(
    split: u32, row0: u32, col0: u32, lid: vec3<u32>, lidx: u32,
    acc: array<vec4<f32>, 4>, squares: vec4<f32>,
) {
    store_block(split, row0, col0, lid, acc);
    gather_row_squares(split, row0, col0, lidx, squares);
}

// Σ_k op(A)[row0 + t, k]² over this slice's k, for the tile's rows t, from the threads that
// loaded row t (see the load loop: with a_stride_k = 1 thread lidx loads rows lidx/16 + 16q at
// column lidx % 16, otherwise row lidx % 64 at four columns), through a_tile, which the GEMM
// no longer needs.
// Stored once per row: by the first column tile of the first block of columns.
fn gather_row_squares(split: u32, row0: u32, col0: u32, lidx: u32, squares: vec4<f32>) {
    a_tile[lidx] = squares;
    workgroupBarrier();
    if lidx < TILE && col0 == 0u && p.squares != 0u {
        var sum = 0.0;
        if p.a_stride_k == 1u {
            let q = lidx / 16u;
            let first = (lidx % 16u) * 16u;
            for (var t = 0u; t < 16u; t++) {
                sum += a_tile[first + t][q];
            }
        } else {
            for (var t = 0u; t < 4u; t++) {
                let v = a_tile[lidx + 64u * t];
                sum += (v.x + v.y) + (v.z + v.w);
            }
        }
        store_row_squares(split, row0 + lidx, sum);
    }
}
