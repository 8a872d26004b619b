// The harmonics of spherical_harmonics.wgsl written out for one lmax, one vector per thread:
// the host (src/so3/harmonics/unrolled.rs) fills the mark with the recursion's steps, each
// Y_l[k] a `let` summed from its terms with the coefficients as literals, in the table's order:
//   Y_0 = 1,  Y_1 = √3·v/|v|,  Y_l[k] = Σ_(i,j) c_l·C^{l−1,1,l}[i,j,k]·Y_{l−1}[i]·Y_1[j]
// No table loads and no stack arrays: every Y stays in a register until it is stored.
// Zero, tiny and non-finite vectors as in spherical_harmonics.wgsl.

// #include "util/workgroup.inc.wgsl"

// #include "so3/harmonics_start.inc.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
// #include "so3/vectors.inc.wgsl"
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = workgroup_index(wid, nwg) * 64u + lid;
    if t >= p.n {
        return;
    }
    let base = p.out_offset + t * p.dim;
    let first = first_degrees(t, base);
    if first.w == 0.0 {
        return;
    }
    let y1 = first.xyz;
    var sum = 0.0;
    // #unrolled: recursion
}
