// The parameters, partial sums and lane sums of dots.wgsl and dots_vec4.wgsl, which bind R
// (1) and x (2) each in its own view: of f32s, or of vec4s.

struct Params {
    rows: u32,         // rows of R in this launch
    d: u32,
    vectors: u32,      // k
    chunk_len: u32,
    chunks: u32,
    row_blocks: u32,   // ceil(rows / 8)
    row0: u32,         // index of this launch's first row among all rows
    all_rows: u32,     // rows of the partial sums
    r_offset: u32,
    x_offset: u32,
    _pad0: u32,
    _pad1: u32,
}

const LANES: u32 = 32u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(3) var<storage, read_write> partial: array<f32>;

var<workgroup> lane_sums: array<f32, 256>;

