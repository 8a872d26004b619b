// Tiled GEMM C = op(A) · op(B) that also returns the row sums of squares of op(A),
//   squares[i] = Σ_k op(A)[i,k]²  (+ squares[i] when accumulating over k-blocks),
// summed from the A tiles the GEMM holds in workgroup memory anyway: one pass over A gives
// both. The host creates it with ROW_SQUARES = true. DoRA's factored norm takes ‖W_j‖² and
// U = W·Aᵀ from it. Body in `matmul.inc.wgsl`.

// #include "linalg/matmul.inc.wgsl"

@group(0) @binding(4) var<storage, read_write> row_squares_out: array<f32>;

fn store_row_squares(split: u32, row: u32, value: f32) {
    if row < p.m {
        let at = p.squares_offset + split * p.squares_split_stride + row;
        var sum = value;
        if p.accumulate != 0u {
            sum += row_squares_out[at];
        }
        row_squares_out[at] = sum;
    }
}
