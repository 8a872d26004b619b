// Naive GEMM, one output per thread: the baseline the tiled kernel is measured against.
// C[i,j] = Σ_k op(A)[i,k] · op(B)[k,j] (+ C[i,j] when accumulating), same parameters as
// matmul.wgsl, tiles of 16×16 outputs.

// #include "util/workgroup.inc.wgsl"

// #include "linalg/gemm_operands.inc.wgsl"

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
