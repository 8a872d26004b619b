// The uniforms and operands the GEMM kernels share (`matmul.inc.wgsl`, `matmul_naive.wgsl`):
// op(A)[i,k] = a[a_offset + i·a_stride_m + k·a_stride_k], likewise B, C row-major from
// c_offset. `squares_offset` and `squares` are read only by `matmul_row_squares.wgsl`,
// `e_offset` and `scale` only by the shifted row squares, `a_vec4` only by `matmul_rows.wgsl`
// (op(A) also bound as vec4s, see there).
// Split-K (tiled kernel only): `splits` slices of k, `k_chunk` long; slice s sums
// k ∈ [s·k_chunk, (s+1)·k_chunk) into its own partial C at c_offset + s·c_split_stride
// (and its row squares at squares_offset + s·squares_split_stride). The naive kernel
// ignores them; with splits = 1 and k_chunk = k the tiled kernel is the plain GEMM.

struct Params {
    m: u32, n: u32, k: u32, tiles_n: u32,
    a_offset: u32, a_stride_m: u32, a_stride_k: u32, accumulate: u32,
    b_offset: u32, b_stride_k: u32, b_stride_n: u32, total_tiles: u32,
    c_offset: u32, c_stride_m: u32, squares_offset: u32, squares: u32,
    splits: u32, k_chunk: u32, c_split_stride: u32, squares_split_stride: u32,
    e_offset: u32, scale: f32, a_vec4: u32, _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// Operands are read through read_<name>(i): this is the f32 form; the host generates the
// f16 and bf16 forms (packed two per u32) from it, see src/gpu/specialize.rs.
@group(0) @binding(1) var<storage, read> a: array<f32>;
fn read_a(i: u32) -> f32 { return a[i]; }
@group(0) @binding(2) var<storage, read> b: array<f32>;
fn read_b(i: u32) -> f32 { return b[i]; }
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

// C[row, col0 .. col0+3] (+)= v, split s's partial where k is split; columns past n and rows
// past m are not stored. Used by the tiled and rows forms (matmul.inc.wgsl, matmul_rows.wgsl).
fn store_c(split: u32, row: u32, col0: u32, v: vec4<f32>) {
    if row >= p.m {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        let col = col0 + j;
        if col < p.n {
            let at = p.c_offset + split * p.c_split_stride + row * p.c_stride_m + col;
            var value = v[j];
            if p.accumulate != 0u {
                value += c[at];
            }
            c[at] = value;
        }
    }
}

// Workgroup `index`'s tile of C and slice s of k (split-K numbers workgroups s·total_tiles +
// tile), its k running over [k_begin, k_end).
struct Slice {
    split: u32,
    tile: u32,
    k_begin: u32,
    k_end: u32,
}

fn slice_of(index: u32) -> Slice {
    let split = index / p.total_tiles;
    let k_begin = split * p.k_chunk;
    return Slice(split, index % p.total_tiles, k_begin, min(p.k, k_begin + p.k_chunk));
}
