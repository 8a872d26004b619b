// The parameters of every form of the sparse bilinear product (one struct on the host for
// all: src/so3/products/sparse/kernels.rs), and where a row's weights start. The includer
// binds `p`.

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

// Where row `row`'s weights start: its own row, or channel row % w_channels when the samples
// share them (w_channels > 0).
fn weight_row(row: u32) -> u32 {
    var wr = row;
    if p.w_channels > 0u {
        wr = wr % p.w_channels;
    }
    return p.w_offset + wr * p.paths;
}
