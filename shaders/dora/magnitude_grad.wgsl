// Second stage of the compose backward: d_m_j = (Σ_c partial[c, j]) / max(norm_j, 1e-12),
// since ∂y/∂m_j = (base + s·lora) / max(norm_j, 1e-12).

// #include "util/workgroup.inc.wgsl"

struct Params {
    d_out: u32,
    chunks: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read> norm: array<f32>;
fn read_norm(i: u32) -> f32 { return norm[i]; }
@group(0) @binding(3) var<storage, read_write> d_magnitude: array<f32>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let j = workgroup_index(wid, nwg) * 256u + lid;
    if j >= p.d_out {
        return;
    }
    var sum = 0.0;
    for (var c = 0u; c < p.chunks; c++) {
        sum += partial[c * p.d_out + j];
    }
    d_magnitude[j] = sum / max(read_norm(j), 1e-12);
}
