// The parameters and coefficients of combine.wgsl and combine_vec4.wgsl, which bind R (1),
// x (2) and out (4) each in its own view: of f32s, or of vec4s.

struct Params {
    rows: u32,        // rows of R in this launch
    d: u32,
    vectors: u32,
    row0: u32,        // this launch's first row among all rows
    all_rows: u32,    // rows of the coefficients
    first: u32,       // 1: start from x/λ; 0: accumulate
    diagonal: u32,    // 1: the inverse diagonal (coefficients are D_i, terms squared)
    damp: f32,
    r_offset: u32,
    x_offset: u32,
    out_offset: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(3) var<storage, read> coefficients: array<f32>;

