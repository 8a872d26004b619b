// E and the row sums of squares of E + s·C over four columns, for the kernels that square a
// shifted product without storing it (matmul_shifted_row_squares.wgsl, and the rows form of
// matmul_rows.wgsl where the host asks for it): E is [m, n] row-major from e_offset.

// E is read through read_e(i): this is the f32 form; the host generates the f16 and bf16
// forms (packed two per u32) from it, see src/gpu/specialize.rs.
@group(0) @binding(4) var<storage, read> e: array<f32>;
fn read_e(i: u32) -> f32 { return e[i]; }

// Σ_j (E[row, j] + s·v_j)² over the four columns from col0 that lie inside the product.
fn shifted_squares(row: u32, col0: u32, v: vec4<f32>) -> f32 {
    var sum = 0.0;
    if row < p.m {
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + j;
            if col < p.n {
                let x = read_e(p.e_offset + row * p.n + col) + p.scale * v[j];
                sum = fma(x, x, sum);
            }
        }
    }
    return sum;
}
