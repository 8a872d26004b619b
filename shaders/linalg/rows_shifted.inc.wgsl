// The rows form of matmul_shifted_row_squares.wgsl (src/linalg/rows.rs writes the rest):
// each lane's sums of (E + s·C)² over its columns of each row are left in
// `row_parts[row · THREADS + lane]` (declared by the host with the kernel's size), then the
// first ROWS lanes add a row's THREADS parts in increasing lane order into the row's partial
// for this column tile: partial[tile_column, i] at c_offset + tile_column·m + i (lane t takes
// rows t, t + THREADS, …, as there may be more rows than lanes). The host adds
// the tiles' partials in increasing order (sum_middle.wgsl), as for the tiled form.

// #include "linalg/shifted_operand.inc.wgsl"

fn store_row_parts(lane: u32, row0: u32, col0: u32) {
    for (var i = lane; i < ROWS && row0 + i < p.m; i += THREADS) {
        var sum = 0.0;
        for (var t = 0u; t < THREADS; t++) {
            sum += row_parts[i * THREADS + t];
        }
        c[p.c_offset + (col0 / (4u * THREADS * VECS)) * p.m + row0 + i] = sum;
    }
}
