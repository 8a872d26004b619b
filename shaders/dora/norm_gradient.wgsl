// The exact DoRA backward's path through the weight norm (src/dora/backward.rs), one thread
// per entry (j, t) of the [d_out, r] adapter B:
//   c_j      = −m_j·∂m_j / norm_j²   (= κ_j / norm_j; 0 where the norm is clamped at 1e-12)
//   bc[j, t] = c_j·B[j, t]
//   db[j, t] += s·c_j·(U[j, t] + s·BG[j, t])      (U = W·Aᵀ, BG = B·(A·Aᵀ): s·M_j·Aᵀ)
// ∂m_j here is the detached one, Σ_n dy·(base + s·lora) / norm_j, so κ_j = −(m_j/norm_j)·∂m_j.

// #include "util/workgroup.inc.wgsl"

struct Params {
    rows: u32,          // rows of B in this block
    r: u32,
    scale: f32,
    row0: u32,          // first row of this block (for the per-row vectors)
    b_offset: u32,
    u_offset: u32,
    bg_offset: u32,
    db_offset: u32,
    bc_offset: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> magnitude: array<f32>;
fn read_magnitude(i: u32) -> f32 { return magnitude[i]; }
@group(0) @binding(2) var<storage, read> norm: array<f32>;
@group(0) @binding(3) var<storage, read> d_magnitude: array<f32>;
@group(0) @binding(4) var<storage, read> b: array<f32>;
fn read_b(i: u32) -> f32 { return b[i]; }
@group(0) @binding(5) var<storage, read> u: array<f32>;
@group(0) @binding(6) var<storage, read> bg: array<f32>;
@group(0) @binding(7) var<storage, read_write> db: array<f32>;
@group(0) @binding(8) var<storage, read_write> bc: array<f32>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let at = workgroup_index(wid, nwg) * 256u + lid;
    if at >= p.rows * p.r {
        return;
    }
    let j = p.row0 + at / p.r;
    let n = norm[j];
    var c = 0.0;
    if n > 1e-12 {
        c = -read_magnitude(j) * d_magnitude[j] / (n * n);
    }
    let b_jt = read_b(p.b_offset + at);
    bc[p.bc_offset + at] = c * b_jt;
    let s = p.scale;
    db[p.db_offset + at] += s * c * (u[p.u_offset + at] + s * bg[p.bg_offset + at]);
}
