// Factored DoRA weight norm, one workgroup per row j of W, never forming B·A:
//   norm_j = sqrt(max(0, ‖W_j‖² + Σ_r B_jr · (2s·U_jr + s²·(B·G)_jr)))
// with ‖W_j‖² and U = W·Aᵀ from one pass over W beforehand (linalg/matmul_row_squares.wgsl)
// and G = A·Aᵀ by a GEMM, so that Σ_r B_jr·2s·U_jr is the cross term 2s·B_j·U_j and
// Σ_r B_jr·s²·(BG)_jr the Gram term s²·B_j G B_jᵀ. The low-rank terms are skipped when s = 0
// (low_rank = 0). W itself is not read here.

// #include "util/workgroup.inc.wgsl"
// #include "util/workgroup_sum.inc.wgsl"

struct Params {
    r: u32,
    rows: u32,
    low_rank: u32,
    two_s: f32,
    s_squared: f32,
    squares_offset: u32,
    b_offset: u32,
    u_offset: u32,
    bg_offset: u32,
    out_offset: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w_squares: array<f32>;
// B is read through read_b(i): this is the f32 form; the host generates the f16 and bf16
// forms (packed two per u32) from it, see src/gpu/specialize.rs.
@group(0) @binding(2) var<storage, read> b: array<f32>;
fn read_b(i: u32) -> f32 { return b[i]; }
@group(0) @binding(3) var<storage, read> u: array<f32>;
@group(0) @binding(4) var<storage, read> bg: array<f32>;
@group(0) @binding(5) var<storage, read_write> norm: array<f32>;

const WORKGROUP: u32 = 256u;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = workgroup_index(wid, nwg);
    if row >= p.rows { // uniform for the workgroup
        return;
    }
    var sum = 0.0;
    if p.low_rank != 0u {
        for (var t = lid; t < p.r; t += 256u) {
            let at = row * p.r + t;
            sum += read_b(p.b_offset + at) * (p.two_s * u[p.u_offset + at] + p.s_squared * bg[p.bg_offset + at]);
        }
    }
    let low_rank_terms = workgroup_sum(lid, sum);
    if lid == 0u {
        norm[p.out_offset + row] = sqrt(max(w_squares[p.squares_offset + row] + low_rank_terms, 0.0));
    }
}
