// The sparse product of sparse_product.wgsl written out for one coefficient table, one
// thread per row: the host (src/so3/products/sparse/unrolled.rs) fills the marks with a
// `let` per coefficient of the row that the table reads, then, per output index, its terms
// as FMAs with the coefficients as literals, in the table's order:
//   out[row, i3] = Σ_(i1, i2, C, path) C · weight[row, path] · x1[row, i1] · x2[row / group, i2]
// No loads of the table, no loop, no workgroup memory: each coefficient of a row is read
// once and stays in a register (what lavapipe measured: every load costs as much as tens of
// FMAs). Tables up to a few thousand terms are written out (UNROLLED_MAX_TERMS).

// #include "util/workgroup.inc.wgsl"

// #include "so3/sparse_params.inc.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
// #include "so3/sparse_operands.inc.wgsl"
// The weights at binding 3 when the table is weighted, and `out` after them: only what
// the kernel reads is bound (no table).
// #unrolled: bindings

const THREADS: u32 = 64u;

@compute @workgroup_size(THREADS)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = workgroup_index(wid, nwg) * THREADS + lid;
    if row >= p.rows {
        return;
    }
    let a = x1_row(row);
    let b = x2_row(row);
    let o = p.out_offset + row * p.d3;
    var sum = 0.0;
    var part = 0.0;
    // #unrolled: loads
    // #unrolled: sums
}
