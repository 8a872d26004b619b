// Real spherical harmonics in e3nn-jax's basis, one vector per thread, by the recursion of
// so3::reference::spherical_harmonics:
//   Y_0 = 1,  Y_1 = √3·v/|v|,  Y_l[k] = Σ_(i,j) c_l·C^{l−1,1,l}[i,j,k]·Y_{l−1}[i]·Y_1[j]
// The nonzero (i, j, k, c_l·C) of every step are in `table`, step l at starts[l]..starts[l+1].
// A zero vector gives Y_0 = 1 and zeros (as do vectors below f32's smallest normal number,
// 1.2e-38, on devices that flush those to zero); a vector with a NaN or infinite component
// gives Y_0 = 1 and NaN for every l ≥ 1 (its direction is undefined), as the CPU path does.

// #include "util/workgroup.inc.wgsl"

// #include "so3/harmonics_start.inc.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
// #include "so3/vectors.inc.wgsl"
@group(0) @binding(2) var<storage, read> table: array<vec4<f32>>; // (i, j, k, weight)
@group(0) @binding(3) var<storage, read> starts: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const MAX_DEGREE_WIDTH: u32 = 49u; // 2·MAX_L + 1 (MAX_L = 24, src/so3/degrees.rs)

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
    var prev: array<f32, MAX_DEGREE_WIDTH>;
    prev[0] = y1.x;
    prev[1] = y1.y;
    prev[2] = y1.z;
    for (var l = 2u; l <= p.lmax; l++) {
        var cur: array<f32, MAX_DEGREE_WIDTH>;
        for (var e = starts[l]; e < starts[l + 1u]; e++) {
            let c = table[e];
            let k = u32(c.z);
            cur[k] += c.w * prev[u32(c.x)] * y1[u32(c.y)];
        }
        let width = 2u * l + 1u;
        for (var k = 0u; k < width; k++) {
            out[base + l * l + k] = cur[k];
            prev[k] = cur[k];
        }
    }
}
