// The two operands of the sparse coefficient products (sparse_product.wgsl,
// sparse_product_rows.wgsl, path_gradient.wgsl): x1 at binding 1 and x2 at binding 2, read
// through read_x1 and read_x2 (the f32 form; the host generates the f16 and bf16 forms, packed
// two per u32, see src/gpu/specialize.rs), and where their rows start: row `row` of x1 pairs
// with row row / group of x2 (group = channels when one x2 row is broadcast over the channels
// of a sample, else 1). The includer defines `p` with x1_offset, d1, x2_offset, d2 and group,
// and binds its other buffers from binding 3 on.

@group(0) @binding(1) var<storage, read> x1: array<f32>;
fn read_x1(i: u32) -> f32 { return x1[i]; }
@group(0) @binding(2) var<storage, read> x2: array<f32>;
fn read_x2(i: u32) -> f32 { return x2[i]; }

// Where row `row` of x1 starts.
fn x1_row(row: u32) -> u32 {
    return p.x1_offset + row * p.d1;
}

// Where the x2 row of x1 row `row` starts.
fn x2_row(row: u32) -> u32 {
    return p.x2_offset + (row / p.group) * p.d2;
}
