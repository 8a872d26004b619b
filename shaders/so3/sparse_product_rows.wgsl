// The sparse product of sparse_product.wgsl with one thread per output element (row, i3)
// and no staging: each thread walks the terms of its i3 reading x1, x2 (and the weights)
// from memory. For small products (few terms per output, rows of a few coefficients: the
// per-edge products of a potential) this keeps every thread busy, where a workgroup per
// four rows would leave most of its threads idle.
//   out[row, i3] = Σ_(i1, i2, w, path) w · weight[row, path] · x1[row, i1] · x2[row / group, i2]

// #include "util/workgroup.inc.wgsl"

// #include "so3/sparse_product.inc.wgsl"

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = workgroup_index(wid, nwg) * 256u + lid;
    if t >= p.rows * p.d3 {
        return;
    }
    let row = t / p.d3;
    let i3 = t % p.d3;
    let a = x1_row(row);
    let b = x2_row(row);
    let w_row = weight_row(row);
    var sum = 0.0;
    for (var e = starts[i3]; e < starts[i3 + 1u]; e++) {
        let term = terms[e];
        var coefficient = term.z;
        if p.weighted == 1u {
            coefficient *= read_weights(w_row + u32(term.w));
        }
        sum = fma(coefficient * read_x1(a + u32(term.x)), read_x2(b + u32(term.y)), sum);
    }
    out[p.out_offset + t] = sum;
}
