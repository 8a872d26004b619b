// Factored DoRA weight norm, one workgroup per row j of W, never forming B·A:
//   norm_j = sqrt(max(0, ‖W_j‖² + Σ_r B_jr · (2s·U_jr + s²·(B·G)_jr)))
// with U = W·Aᵀ and G = A·Aᵀ computed beforehand by GEMMs, so that
// Σ_r B_jr·2s·U_jr is the cross term 2s·B_j·U_j and Σ_r B_jr·s²·(BG)_jr the Gram term
// s²·B_j G B_jᵀ. The low-rank terms are skipped when s = 0 (low_rank = 0).

// #include "util/workgroup.inc.wgsl"
// #include "util/workgroup_sum.inc.wgsl"

struct Params {
    d_in: u32,
    r: u32,
    rows: u32,
    low_rank: u32,
    two_s: f32,
    s_squared: f32,
    w_offset: u32,
    b_offset: u32,
    u_offset: u32,
    bg_offset: u32,
    out_offset: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// Operands are read through read_<name>(i): this is the f32 form; the host generates the
// f16 and bf16 forms (packed two per u32) from it, see src/gpu/specialize.rs.
@group(0) @binding(1) var<storage, read> w: array<f32>;
fn read_w(i: u32) -> f32 { return w[i]; }
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
    let w_row = p.w_offset + row * p.d_in;
    for (var i = lid; i < p.d_in; i += 256u) {
        let x = read_w(w_row + i);
        sum = fma(x, x, sum);
    }
    if p.low_rank != 0u {
        for (var t = lid; t < p.r; t += 256u) {
            let at = row * p.r + t;
            sum += read_b(p.b_offset + at) * (p.two_s * u[p.u_offset + at] + p.s_squared * bg[p.bg_offset + at]);
        }
    }
    let total = workgroup_sum(lid, sum);
    if lid == 0u {
        norm[p.out_offset + row] = sqrt(max(total, 0.0));
    }
}
