// Fused DoRA compose, four columns per thread: the fast path of compose.wgsl for f32 inputs
// whose row length is a multiple of 4 (one vec4 load or store where compose.wgsl issues four
// scalar ones). Same formula, same order:
//   g = m / max(norm, 1e-12);  y = base + (g − 1)⊙base + g⊙(s·lora)

// #include "util/workgroup.inc.wgsl"

struct Params {
    rows: u32,          // rows in this block
    d_out4: u32,        // d_out / 4
    scale: f32,
    col_blocks: u32,    // ceil(d_out4 / 256)
    total_groups: u32,  // col_blocks · ceil(rows / ROWS)
    base_offset: u32,   // in vec4s
    lora_offset: u32,
    out_offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> base: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> lora: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> magnitude: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> norm: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;

const ROWS: u32 = 8u;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let group = workgroup_index(wid, nwg);
    let j = (group % p.col_blocks) * 256u + lid;
    if group >= p.total_groups || j >= p.d_out4 {
        return;
    }
    let g = magnitude[j] / max(norm[j], vec4<f32>(1e-12));
    let row0 = (group / p.col_blocks) * ROWS;
    let row_end = min(row0 + ROWS, p.rows);
    for (var row = row0; row < row_end; row++) {
        let i = row * p.d_out4 + j;
        let x = base[p.base_offset + i];
        out[p.out_offset + i] = x + (g - 1.0) * x + g * (p.scale * lora[p.lora_offset + i]);
    }
}
