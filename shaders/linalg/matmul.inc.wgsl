// The body of the tiled, register-blocked GEMM C = op(A) · op(B) (+ C when accumulating),
// spliced into `matmul.wgsl` (C alone), `matmul_row_squares.wgsl` (C and the row sums of
// squares of op(A), taken from the A tiles already in workgroup memory: one pass over A for
// both) and `matmul_shifted_row_squares.wgsl` (C never stored, only the row sums of squares
// of E + s·C). The including file says what becomes of a finished tile:
//   fn finish_tile(split, row0, col0, lid, lidx, acc: array<vec4<f32>, 4>, squares)
// called by every thread of the workgroup in uniform control flow (so it may use barriers
// and workgroup memory, which the GEMM no longer needs), with the thread's 4×4 block of C.
//
// Each workgroup owns a 64×64 tile of C; each of its 16×16 threads owns a 4×4 block of it
// (rows 4·ty .. 4·ty+3, columns 4·tx .. 4·tx+3), held in four vec4 registers. K is walked
// 16 at a time through workgroup memory, where the tiles are stored as vec4s so that one
// step of k costs a thread two vec4 loads for sixteen FMAs.
//
// Operands are addressed through strides, which is how the host expresses the transposes
// (op(A)[i,k] = a[a_offset + i·a_stride_m + k·a_stride_k]) and how it splits matrices larger
// than one storage binding into windows (the offsets). Reads outside the block give 0, so
// any m, n, k works.
//
// Split-K: where C has too few tiles to fill the device, the host cuts k into `splits`
// slices and launches total_tiles·splits workgroups; workgroup (s, tile) walks slice s only
// and writes its own partial C (and partial row squares), which the host then sums over s
// in a fixed order (sum_middle.wgsl). One slice (k_chunk = k) is the plain GEMM.

// #include "util/workgroup.inc.wgsl"

// #include "linalg/gemm_operands.inc.wgsl"

// Whether the kernel also sums the squares of op(A)'s rows (matmul_row_squares.wgsl sets it
// at pipeline creation, so that the plain GEMM carries none of it).
override ROW_SQUARES: bool = false;

const TILE: u32 = 64u;
const BK: u32 = 16u;

// a_tile[kk·16 + r/4][r%4] = op(A)[row0 + r, k0 + kk]; b_tile[kk·16 + c/4][c%4] likewise.
var<workgroup> a_tile: array<vec4<f32>, 256>;
var<workgroup> b_tile: array<vec4<f32>, 256>;

fn load_a(row: u32, kk: u32, k_end: u32) -> f32 {
    if row < p.m && kk < k_end {
        return read_a(p.a_offset + row * p.a_stride_m + kk * p.a_stride_k);
    }
    return 0.0;
}

fn load_b(kk: u32, col: u32, k_end: u32) -> f32 {
    if kk < k_end && col < p.n {
        return read_b(p.b_offset + kk * p.b_stride_k + col * p.b_stride_n);
    }
    return 0.0;
}

@compute @workgroup_size(16, 16, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let index = workgroup_index(wid, nwg);
    // The same for every thread of the workgroup, so the barriers below stay uniform.
    if index >= p.total_tiles * p.splits {
        return;
    }
    let slice = slice_of(index);
    let split = slice.split;
    let tile = slice.tile;
    let k_begin = slice.k_begin;
    let k_end = slice.k_end;
    let row0 = (tile / p.tiles_n) * TILE;
    let col0 = (tile % p.tiles_n) * TILE;

    // ROW_SQUARES: the squares of this thread's four A loads per k-step, summed over k.
    var squares = vec4<f32>(0.0);

    var acc0 = vec4<f32>(0.0); // row 4·ty + 0, columns 4·tx .. 4·tx+3
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k0 = k_begin; k0 < k_end; k0 += BK) {
        // 1024 elements per tile, 4 per thread, in the order that reads memory contiguously.
        for (var q = 0u; q < 4u; q++) {
            let e = lidx + q * 256u;
            var r: u32;
            var ka: u32;
            if p.a_stride_k == 1u {
                r = e / BK;
                ka = e % BK;
            } else {
                r = e % TILE;
                ka = e / TILE;
            }
            let value = load_a(row0 + r, k0 + ka, k_end);
            a_tile[ka * 16u + r / 4u][r % 4u] = value;
            if ROW_SQUARES {
                squares[q] = fma(value, value, squares[q]);
            }
            var col: u32;
            var kb: u32;
            if p.b_stride_n == 1u {
                col = e % TILE;
                kb = e / TILE;
            } else {
                col = e / BK;
                kb = e % BK;
            }
            b_tile[kb * 16u + col / 4u][col % 4u] = load_b(k0 + kb, col0 + col, k_end);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let av = a_tile[kk * 16u + lid.y];
            let bv = b_tile[kk * 16u + lid.x];
            acc0 = fma(vec4<f32>(av.x), bv, acc0);
            acc1 = fma(vec4<f32>(av.y), bv, acc1);
            acc2 = fma(vec4<f32>(av.z), bv, acc2);
            acc3 = fma(vec4<f32>(av.w), bv, acc3);
        }
        workgroupBarrier();
    }

    finish_tile(split, row0, col0, lid, lidx, array(acc0, acc1, acc2, acc3), squares);
}

// The thread's 4×4 block of C, rows 4·ty .. 4·ty+3 from row0 + 4·ty, columns from
// col0 + 4·tx, into C: what `finish_tile` of matmul.wgsl and matmul_row_squares.wgsl does.
fn store_block(split: u32, row0: u32, col0: u32, lid: vec3<u32>, acc: array<vec4<f32>, 4>) {
    let row = row0 + 4u * lid.y;
    let col = col0 + 4u * lid.x;
    store_c(split, row, col, acc[0]);
    store_c(split, row + 1u, col, acc[1]);
    store_c(split, row + 2u, col, acc[2]);
    store_c(split, row + 3u, col, acc[3]);
}
