// Tiled, register-blocked GEMM: C = op(A) · op(B) (+ C when accumulating).
//
// Each workgroup owns a 64×64 tile of C; each of its 16×16 threads owns 4×4 outputs spaced
// 16 apart (rows lid.y + 16·i, columns lid.x + 16·j), so neighbouring threads write
// neighbouring columns. K is walked 16 at a time through workgroup memory.
//
// Operands are addressed through strides, which is how the host expresses the transposes
// (op(A)[i,k] = a[a_offset + i·a_stride_m + k·a_stride_k]) and how it splits matrices larger
// than one storage binding into windows (the offsets). Reads outside the block give 0, so
// any m, n, k works.

struct Params {
    m: u32, n: u32, k: u32, tiles_n: u32,
    a_offset: u32, a_stride_m: u32, a_stride_k: u32, accumulate: u32,
    b_offset: u32, b_stride_k: u32, b_stride_n: u32, total_tiles: u32,
    c_offset: u32, c_stride_m: u32, _pad0: u32, _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

const TILE: u32 = 64u;
const BK: u32 = 16u;
// Rows of the workgroup tiles are padded by one word so that the strided stores of a
// transposed operand do not all land in one memory bank.
const LD: u32 = 65u;

var<workgroup> a_tile: array<f32, 1040>; // [BK][LD]: a_tile[kk·LD + row]
var<workgroup> b_tile: array<f32, 1040>; // [BK][LD]: b_tile[kk·LD + col]

fn load_a(row: u32, kk: u32) -> f32 {
    if row < p.m && kk < p.k {
        return a[p.a_offset + row * p.a_stride_m + kk * p.a_stride_k];
    }
    return 0.0;
}

fn load_b(kk: u32, col: u32) -> f32 {
    if kk < p.k && col < p.n {
        return b[p.b_offset + kk * p.b_stride_k + col * p.b_stride_n];
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
    let tile = wid.x + wid.y * nwg.x;
    // The same for every thread of the workgroup, so the barriers below stay uniform.
    if tile >= p.total_tiles {
        return;
    }
    let row0 = (tile / p.tiles_n) * TILE;
    let col0 = (tile % p.tiles_n) * TILE;

    var acc: array<vec4<f32>, 4>; // acc[i][j]: row lid.y + 16i, column lid.x + 16j
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        // 1024 elements per tile, 4 per thread, in the order that reads memory contiguously.
        for (var q = 0u; q < 4u; q++) {
            let e = lidx + q * 256u;
            if p.a_stride_k == 1u {
                a_tile[(e % BK) * LD + e / BK] = load_a(row0 + e / BK, k0 + e % BK);
            } else {
                a_tile[(e / TILE) * LD + e % TILE] = load_a(row0 + e % TILE, k0 + e / TILE);
            }
            if p.b_stride_n == 1u {
                b_tile[(e / TILE) * LD + e % TILE] = load_b(k0 + e / TILE, col0 + e % TILE);
            } else {
                b_tile[(e % BK) * LD + e / BK] = load_b(k0 + e % BK, col0 + e / BK);
            }
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let bv = vec4<f32>(
                b_tile[kk * LD + lid.x],
                b_tile[kk * LD + lid.x + 16u],
                b_tile[kk * LD + lid.x + 32u],
                b_tile[kk * LD + lid.x + 48u],
            );
            for (var i = 0u; i < 4u; i++) {
                acc[i] = fma(vec4<f32>(a_tile[kk * LD + lid.y + 16u * i]), bv, acc[i]);
            }
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < 4u; i++) {
        let row = row0 + lid.y + 16u * i;
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + lid.x + 16u * j;
            if row < p.m && col < p.n {
                let at = p.c_offset + row * p.c_stride_m + col;
                var value = acc[i][j];
                if p.accumulate != 0u {
                    value += c[at];
                }
                c[at] = value;
            }
        }
    }
}
