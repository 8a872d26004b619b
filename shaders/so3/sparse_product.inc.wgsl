// Shared by the two looping forms of the sparse bilinear product, sparse_product.wgsl (rows
// staged in workgroup memory) and sparse_product_rows.wgsl (a thread per output element):
// their parameters and buffers (x1 and x2 from sparse_operands.inc.wgsl), the table's terms
// among them.

// #include "so3/sparse_params.inc.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
// #include "so3/sparse_operands.inc.wgsl"
@group(0) @binding(3) var<storage, read> weights: array<f32>;
fn read_weights(i: u32) -> f32 { return weights[i]; }
@group(0) @binding(4) var<storage, read> terms: array<vec4<f32>>; // (i1, i2, w, path)
@group(0) @binding(5) var<storage, read> starts: array<u32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
