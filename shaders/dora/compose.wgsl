// Fused DoRA compose, in one pass (3 reads + 1 write):
//   g_j = m_j / max(norm_j, 1e-12)
//   y = base + (g − 1)⊙base + g⊙(s·lora)
// evaluated in that order, never as g⊙(base + s·lora) − base, which cancels when g ≈ 1.
// A workgroup covers 256 consecutive columns (coalesced) of ROWS rows; each thread computes
// g once for its column and walks down the rows.

// #include "util/workgroup.inc.wgsl"

struct Params {
    rows: u32,          // rows in this block
    d_out: u32,
    scale: f32,
    col_blocks: u32,    // ceil(d_out / 256)
    total_groups: u32,  // col_blocks · ceil(rows / ROWS)
    base_offset: u32,
    lora_offset: u32,
    out_offset: u32,
}

const ROWS: u32 = 8u;

@group(0) @binding(0) var<uniform> p: Params;
// Operands are read through read_<name>(i): this is the f32 form; the host generates the
// f16 and bf16 forms (packed two per u32) from it, see src/gpu/specialize.rs.
@group(0) @binding(1) var<storage, read> base: array<f32>;
fn read_base(i: u32) -> f32 { return base[i]; }
@group(0) @binding(2) var<storage, read> lora: array<f32>;
fn read_lora(i: u32) -> f32 { return lora[i]; }
@group(0) @binding(3) var<storage, read> magnitude: array<f32>;
fn read_magnitude(i: u32) -> f32 { return magnitude[i]; }
@group(0) @binding(4) var<storage, read> norm: array<f32>;
fn read_norm(i: u32) -> f32 { return norm[i]; }
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let group = workgroup_index(wid, nwg);
    let j = (group % p.col_blocks) * 256u + lid;
    if group >= p.total_groups || j >= p.d_out {
        return;
    }
    let g = read_magnitude(j) / max(read_norm(j), 1e-12);
    let row0 = (group / p.col_blocks) * ROWS;
    let row_end = min(row0 + ROWS, p.rows);
    for (var row = row0; row < row_end; row++) {
        let i = row * p.d_out + j;
        let x = read_base(p.base_offset + i);
        out[p.out_offset + i] = x + (g - 1.0) * x + g * (p.scale * read_lora(p.lora_offset + i));
    }
}
