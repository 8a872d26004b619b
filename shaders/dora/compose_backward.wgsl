// Fused backward of the DoRA compose (norm held constant, as DoRA does), one pass over
// dy, base and lora:
//   d_base = dy + (g − 1)·dy      d_lora = g·s·dy
//   partial[c, j] = Σ_{n in chunk c} dy[n,j]·(base[n,j] + s·lora[n,j])
// A workgroup covers 64 columns × CHUNK rows; its 4 lanes per column stride over the rows
// and meet in workgroup memory. magnitude_grad.wgsl then sums the chunks: d_m = Σ_c partial / norm.

// #include "util/workgroup.inc.wgsl"

struct Params {
    rows: u32,         // rows in this block
    d_out: u32,
    scale: f32,
    col_blocks: u32,   // ceil(d_out / 64)
    total_groups: u32, // col_blocks · chunks in this block
    chunk0: u32,       // index of this block's first chunk in `partial`
    dy_offset: u32,
    base_offset: u32,
    lora_offset: u32,
    d_base_offset: u32,
    d_lora_offset: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// Operands are read through read_<name>(i): this is the f32 form; the host generates the
// f16 and bf16 forms (packed two per u32) from it, see src/gpu/specialize.rs.
@group(0) @binding(1) var<storage, read> dy: array<f32>;
fn read_dy(i: u32) -> f32 { return dy[i]; }
@group(0) @binding(2) var<storage, read> base: array<f32>;
fn read_base(i: u32) -> f32 { return base[i]; }
@group(0) @binding(3) var<storage, read> lora: array<f32>;
fn read_lora(i: u32) -> f32 { return lora[i]; }
@group(0) @binding(4) var<storage, read> magnitude: array<f32>;
fn read_magnitude(i: u32) -> f32 { return magnitude[i]; }
@group(0) @binding(5) var<storage, read> norm: array<f32>;
fn read_norm(i: u32) -> f32 { return norm[i]; }
@group(0) @binding(6) var<storage, read_write> d_base: array<f32>;
@group(0) @binding(7) var<storage, read_write> d_lora: array<f32>;
@group(0) @binding(8) var<storage, read_write> partial: array<f32>;

const CHUNK: u32 = 64u;
var<workgroup> lanes: array<f32, 256>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let group = workgroup_index(wid, nwg);
    if group >= p.total_groups { // uniform for the workgroup
        return;
    }
    let chunk = group / p.col_blocks;
    let j = (group % p.col_blocks) * 64u + lid % 64u;
    let lane = lid / 64u;
    var acc = 0.0;
    if j < p.d_out {
        let g = read_magnitude(j) / max(read_norm(j), 1e-12);
        let row_end = min((chunk + 1u) * CHUNK, p.rows);
        for (var n = chunk * CHUNK + lane; n < row_end; n += 4u) {
            let at = n * p.d_out + j;
            let d = read_dy(p.dy_offset + at);
            let x = read_base(p.base_offset + at);
            let l = p.scale * read_lora(p.lora_offset + at);
            d_base[p.d_base_offset + at] = d + (g - 1.0) * d;
            d_lora[p.d_lora_offset + at] = g * p.scale * d;
            acc = fma(d, x + l, acc);
        }
    }
    lanes[lid] = acc;
    workgroupBarrier();
    if lane == 0u && j < p.d_out {
        let sum = (lanes[lid] + lanes[lid + 64u]) + (lanes[lid + 128u] + lanes[lid + 192u]);
        partial[(p.chunk0 + chunk) * p.d_out + j] = sum;
    }
}
