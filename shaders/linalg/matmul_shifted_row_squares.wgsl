// Row sums of squares of a shifted product, per 64-column tile, the product never stored:
//   partial[t, i] = Σ_{j in column tile t} (E[i,j] + s·C[i,j])²,   C = op(A) · op(B),
// from the tiled GEMM body (`matmul.inc.wgsl`): each workgroup holds its 64×64 tile of C in
// registers, adds E and squares it there. The host then sums partial over t in increasing t
// (sum_middle.wgsl): no atomics, a fixed order. `c` is the [tiles_n, m] partials from
// c_offset; E is [m, n] row-major from e_offset; k-blocks and split-K never apply (the sum
// over k must be whole before it is squared).
//
// DoRA's weight norm (src/dora/kernels.rs) with E = W, op(A) = B, op(B) = A:
// ‖W_j + s·(B·A)_j‖² for the dense route's d_out·d_in·r FMAs, without its [d_out, d_in]
// transient, and summed as the definition reads (reference::weight_norm_dense), so with no
// cancellation between ‖W_j‖² and the low-rank terms.

// #include "linalg/matmul.inc.wgsl"

// #include "linalg/shifted_operand.inc.wgsl"

fn finish_tile(
    split: u32, row0: u32, col0: u32, lid: vec3<u32>, lidx: u32,
    acc: array<vec4<f32>, 4>, squares: vec4<f32>,
) {
    let row = row0 + 4u * lid.y;
    let col = col0 + 4u * lid.x;
    // Thread (ty, tx)'s four row sums, then each of the tile's 64 rows summed over the 16
    // threads tx that hold a part of it, through a_tile, which the GEMM no longer needs.
    a_tile[lidx] = vec4<f32>(
        shifted_squares(row, col, acc[0]),
        shifted_squares(row + 1u, col, acc[1]),
        shifted_squares(row + 2u, col, acc[2]),
        shifted_squares(row + 3u, col, acc[3]),
    );
    workgroupBarrier();
    let t = lidx; // the tile's row 4·ty + q
    if t < TILE && row0 + t < p.m {
        let ty = t / 4u;
        let q = t % 4u;
        var sum = 0.0;
        for (var tx = 0u; tx < 16u; tx++) {
            sum += a_tile[ty * 16u + tx][q];
        }
        c[p.c_offset + (col0 / TILE) * p.m + row0 + t] = sum;
    }
}
