// The vector–Jacobian product of spherical_harmonics.wgsl written out for one lmax, one
// vector per thread: the host (src/so3/harmonics/unrolled.rs) fills the marks with the
// forward recursion, each Y_l[k] a `let` (recomputed here: no harmonics are read), then the
// reverse pass of spherical_harmonics_backward.wgsl term by term in the table's order,
//   ȳ_{l−1}[i] += c_l·C[i,j,k]·Y_1[j]·ȳ_l[k],   ȳ_1[j] += c_l·C[i,j,k]·Y_{l−1}[i]·ȳ_l[k],
// each ȳ a `var` starting at ∂L/∂Y; then ∂v from ȳ_1 as the looping form.

// #include "util/workgroup.inc.wgsl"

// #include "so3/harmonics_gradient.inc.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
// #include "so3/vectors.inc.wgsl"
@group(0) @binding(2) var<storage, read> g: array<f32>;
fn read_g(i: u32) -> f32 { return g[i]; }
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

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
    let v = vector_at(t);
    let o = p.out_offset + 3u * t;
    if !gradient_needs_recursion(v, o) {
        return;
    }
    let gbase = p.g_offset + t * p.dim;
    let u = v / largest_component(v);
    let y1 = sqrt(3.0) * u / length(u);
    var sum = 0.0;
    var back = 0.0;
    // #unrolled: forward
    var y1_bar = vec3<f32>(0.0);
    // #unrolled: reverse
    store_gradient(v, o, y1_bar);
}
