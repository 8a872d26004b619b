// The row sums of squares of op(A) that a GEMM kernel takes beside C (matmul_row_squares.wgsl,
// and matmul_rows.wgsl where the host asks for them): squares[i] = Σ_k op(A)[i,k]² over the
// workgroup's slice of k, into this slice's partial at squares_offset + split·stride
// (+ what is there when accumulating over k-blocks). Taken only where p.squares is set: by
// the first block of columns, so each row once.

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
