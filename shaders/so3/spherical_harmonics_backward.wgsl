// The vector–Jacobian product of spherical_harmonics.wgsl, one vector per thread: reverse
// mode through the recursion Y_l[k] = Σ c_l·C[i,j,k]·Y_{l−1}[i]·Y_1[j] (the same table),
//   ȳ_{l−1}[i] += c_l·C[i,j,k]·Y_1[j]·ȳ_l[k],   ȳ_1[j] += c_l·C[i,j,k]·Y_{l−1}[i]·ȳ_l[k],
// from l = lmax down to 2 with ȳ_l starting at ∂L/∂Y_l; then Y_1 = √3·v/|v| gives
//   ∂v = √3·(ȳ_1 − (ȳ_1·u)·u)/|v|,  u = v/|v|
// as so3::reference::spherical_harmonics_backward. Y comes from the forward, recomputed
// into `y`. A zero vector gets 0; a NaN or infinite component NaN.

// #include "util/workgroup.inc.wgsl"

// #include "so3/harmonics_gradient.inc.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
// #include "so3/vectors.inc.wgsl"
@group(0) @binding(2) var<storage, read> g: array<f32>;
fn read_g(i: u32) -> f32 { return g[i]; }
@group(0) @binding(3) var<storage, read> y: array<f32>;
@group(0) @binding(4) var<storage, read> table: array<vec4<f32>>; // (i, j, k, c_l·C)
@group(0) @binding(5) var<storage, read> starts: array<u32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

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
    let v = vector_at(t);
    let o = p.out_offset + 3u * t;
    if !gradient_needs_recursion(v, o) {
        return;
    }
    let ybase = p.y_offset + t * p.dim;
    let gbase = p.g_offset + t * p.dim;
    let y1 = vec3<f32>(y[ybase + 1u], y[ybase + 2u], y[ybase + 3u]);
    var y1_bar = vec3<f32>(0.0);
    var current: array<f32, MAX_DEGREE_WIDTH>;
    for (var k = 0u; k < 2u * p.lmax + 1u; k++) {
        current[k] = read_g(gbase + p.lmax * p.lmax + k);
    }
    for (var l = p.lmax; l >= 2u; l--) {
        var previous: array<f32, MAX_DEGREE_WIDTH>;
        let below = (l - 1u) * (l - 1u);
        for (var i = 0u; i < 2u * l - 1u; i++) {
            previous[i] = read_g(gbase + below + i);
        }
        for (var e = starts[l]; e < starts[l + 1u]; e++) {
            let c = table[e];
            let i = u32(c.x);
            let j = u32(c.y);
            let back = c.w * current[u32(c.z)];
            previous[i] += back * y1[j];
            y1_bar[j] += back * y[ybase + below + i];
        }
        for (var i = 0u; i < 2u * l - 1u; i++) {
            current[i] = previous[i];
        }
    }
    let total = vec3<f32>(current[0], current[1], current[2]) + y1_bar;
    store_gradient(v, o, total);
}
