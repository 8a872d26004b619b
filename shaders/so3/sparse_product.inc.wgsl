// Shared by the two forms of the sparse bilinear product, sparse_product.wgsl (rows staged in
// workgroup memory) and sparse_product_rows.wgsl (a thread per output element): their
// parameters (one struct on the host for both), their buffers (x1 and x2 from
// sparse_operands.inc.wgsl) and where a row's weights start.

struct Params {
    rows: u32,   // x1 rows (samples × channels) in this block
    d1: u32,
    d2: u32,
    d3: u32,
    group: u32,
    x1_offset: u32,
    x2_offset: u32,
    out_offset: u32,
    weighted: u32,
    paths: u32,
    w_channels: u32,   // 0: a weight row per x1 row
    w_offset: u32,
    per_group: u32,    // the staged kernel's rows per workgroup, ≤ ROWS, per_group · max(d1, d2) ≤ STAGE
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// #include "so3/sparse_operands.inc.wgsl"
@group(0) @binding(3) var<storage, read> weights: array<f32>;
fn read_weights(i: u32) -> f32 { return weights[i]; }
@group(0) @binding(4) var<storage, read> terms: array<vec4<f32>>; // (i1, i2, w, path)
@group(0) @binding(5) var<storage, read> starts: array<u32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

// Where row `row`'s weights start: its own row, or channel row % w_channels when the samples
// share them (w_channels > 0).
fn weight_row(row: u32) -> u32 {
    var wr = row;
    if p.w_channels > 0u {
        wr = wr % p.w_channels;
    }
    return p.w_offset + wr * p.paths;
}
