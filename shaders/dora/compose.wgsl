// Fused DoRA compose, one element per thread, in one pass (3 reads + 1 write):
//   g_j = m_j / max(norm_j, 1e-12)
//   y = base + (g − 1)⊙base + g⊙(s·lora)
// evaluated in that order, never as g⊙(base + s·lora) − base, which cancels when g ≈ 1.

struct Params {
    len: u32,   // elements in this block (whole rows)
    d_out: u32,
    scale: f32,
    base_offset: u32,
    lora_offset: u32,
    out_offset: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> base: array<f32>;
@group(0) @binding(2) var<storage, read> lora: array<f32>;
@group(0) @binding(3) var<storage, read> magnitude: array<f32>;
@group(0) @binding(4) var<storage, read> norm: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    if i >= p.len {
        return;
    }
    let j = i % p.d_out;
    let g = magnitude[j] / max(norm[j], 1e-12);
    let x = base[p.base_offset + i];
    out[p.out_offset + i] = x + (g - 1.0) * x + g * (p.scale * lora[p.lora_offset + i]);
}
