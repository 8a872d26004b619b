// Shared by gather.wgsl and scatter_sum.wgsl, which run one thread per element of a block of
// output rows (rows first_row .. first_row + rows of the whole output, `width` columns): their
// parameters (one struct on the host for both) and the source rows, binding 1, read through
// read_src (the f32 form; the host generates the f16 and bf16 forms, see
// src/gpu/specialize.rs). The includer binds its index buffers and `out` from binding 2 on.

struct Params {
    rows: u32,
    width: u32,
    first_row: u32,
    src_offset: u32,
    out_offset: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
fn read_src(i: u32) -> f32 { return src[i]; }

// Element c of source row `row`.
fn src_at(row: u32, c: u32) -> f32 {
    return read_src(p.src_offset + row * p.width + c);
}
