// Naive GEMM, one output per thread: the baseline the tiled kernel is measured against.
// C[i,j] = Σ_k op(A)[i,k] · op(B)[k,j] (+ C[i,j] when accumulating), same parameters as
// matmul.wgsl, tiles of 16×16 outputs.

// #include "util/workgroup.inc.wgsl"

struct Params {
    m: u32, n: u32, k: u32, tiles_n: u32,
    a_offset: u32, a_stride_m: u32, a_stride_k: u32, accumulate: u32,
    b_offset: u32, b_stride_k: u32, b_stride_n: u32, total_tiles: u32,
    c_offset: u32, c_stride_m: u32, _pad0: u32, _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// Operands are read through read_<name>(i): this is the f32 form; the host generates the
// f16 and bf16 forms (packed two per u32) from it, see src/gpu/specialize.rs.
@group(0) @binding(1) var<storage, read> a: array<f32>;
fn read_a(i: u32) -> f32 { return a[i]; }
@group(0) @binding(2) var<storage, read> b: array<f32>;
fn read_b(i: u32) -> f32 { return b[i]; }
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

const TILE: u32 = 16u;

@compute @workgroup_size(16, 16, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let tile = workgroup_index(wid, nwg);
    let row = (tile / p.tiles_n) * TILE + lid.y;
    let col = (tile % p.tiles_n) * TILE + lid.x;
    if tile >= p.total_tiles || row >= p.m || col >= p.n {
        return;
    }
    var sum = 0.0;
    for (var kk = 0u; kk < p.k; kk++) {
        sum = fma(read_a(p.a_offset + row * p.a_stride_m + kk * p.a_stride_k),
                  read_b(p.b_offset + kk * p.b_stride_k + col * p.b_stride_n), sum);
    }
    let at = p.c_offset + row * p.c_stride_m + col;
    if p.accumulate != 0u {
        sum += c[at];
    }
    c[at] = sum;
}
