// The double backward of spherical_harmonics.wgsl for the cotangent dd of the backward's
// output, one vector per thread: forward mode along dd, first through the recursion
// (the harmonics' tangent, ∂d_y = J(v)·dd, written to `out_g`)
//   Ẏ_1 = √3·u̇,  u̇ = (dd − (dd·u)·u)/|v|,
//   Ẏ_l[k] = Σ c_l·C[i,j,k]·(Ẏ_{l−1}[i]·Y_1[j] + Y_{l−1}[i]·Ẏ_1[j]),
// then through the backward's reverse pass (spherical_harmonics_backward.wgsl) with d_y held
// fixed, every ȳ carrying its tangent, and through ∂v = √3·(ȳ_1 − (ȳ_1·u)·u)/|v|:
//   ∂v' = √3·(ṫ − (ṫ·u + t·u̇)·u − (t·u)·u̇ − (t − (t·u)·u)·(u·dd)/|v|)/|v|
// (t = ȳ_1, written to `out_v`) — so3::reference::spherical_harmonics_double_backward, which
// carries dual numbers through the same steps. Y comes from the forward, recomputed into `y`.
// A zero vector gets zeros; a NaN or infinite component NaN (∂d_y from degree 1).

// #include "util/workgroup.inc.wgsl"
// #include "so3/vectors.inc.wgsl"

struct Params {
    n: u32,
    lmax: u32,
    dim: u32,
    v_offset: u32,
    g_offset: u32,
    dd_offset: u32,
    y_offset: u32,
    out_v_offset: u32,
    out_g_offset: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> g: array<f32>;
fn read_g(i: u32) -> f32 { return g[i]; }
@group(0) @binding(3) var<storage, read> dd: array<f32>;
fn read_dd(i: u32) -> f32 { return dd[i]; }
@group(0) @binding(4) var<storage, read> y: array<f32>;
@group(0) @binding(5) var<storage, read> table: array<vec4<f32>>; // (i, j, k, c_l·C)
@group(0) @binding(6) var<storage, read> starts: array<u32>;
@group(0) @binding(7) var<storage, read_write> out_v: array<f32>;
@group(0) @binding(8) var<storage, read_write> out_g: array<f32>;

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
    let ov = p.out_v_offset + 3u * t;
    let og = p.out_g_offset + t * p.dim;
    out_g[og] = 0.0;
    let undefined = has_non_finite(v);
    let largest = largest_component(v);
    if p.lmax == 0u || undefined || largest == 0.0 {
        // Zeros where the harmonics are constant (lmax 0, the zero vector), NaN where the
        // direction is undefined.
        var fill = 0.0;
        if p.lmax > 0u && undefined {
            fill = bitcast<f32>(0x7fc00000u);
        }
        out_v[ov] = fill;
        out_v[ov + 1u] = fill;
        out_v[ov + 2u] = fill;
        for (var i = 1u; i < p.dim; i++) {
            out_g[og + i] = fill;
        }
        return;
    }
    // Scaled by the largest component, as in the forward: |v| = norm·largest.
    let scaled = v / largest;
    let norm = length(scaled);
    let u = scaled / norm;
    let dd_scaled = vec3<f32>(read_dd(p.dd_offset + 3u * t), read_dd(p.dd_offset + 3u * t + 1u),
                              read_dd(p.dd_offset + 3u * t + 2u)) / largest;
    let u_dot = (dd_scaled - dot(dd_scaled, u) * u) / norm;
    let ybase = p.y_offset + t * p.dim;
    let y1 = vec3<f32>(y[ybase + 1u], y[ybase + 2u], y[ybase + 3u]);
    let y1_dot = sqrt(3.0) * u_dot;
    out_g[og + 1u] = y1_dot.x;
    out_g[og + 2u] = y1_dot.y;
    out_g[og + 3u] = y1_dot.z;

    // The tangent of the forward, degree by degree, into out_g (read back by this thread).
    for (var l = 2u; l <= p.lmax; l++) {
        let below = (l - 1u) * (l - 1u);
        for (var k = 0u; k < 2u * l + 1u; k++) {
            out_g[og + l * l + k] = 0.0;
        }
        for (var e = starts[l]; e < starts[l + 1u]; e++) {
            let c = table[e];
            let i = u32(c.x);
            let j = u32(c.y);
            let k = u32(c.z);
            out_g[og + l * l + k] += c.w * (out_g[og + below + i] * y1[j] + y[ybase + below + i] * y1_dot[j]);
        }
    }

    // The backward's reverse pass with every adjoint's tangent beside it.
    let gbase = p.g_offset + t * p.dim;
    var y1_bar = vec3<f32>(0.0);
    var y1_bar_dot = vec3<f32>(0.0);
    var current: array<f32, MAX_DEGREE_WIDTH>;
    var current_dot: array<f32, MAX_DEGREE_WIDTH>;
    for (var k = 0u; k < 2u * p.lmax + 1u; k++) {
        current[k] = read_g(gbase + p.lmax * p.lmax + k);
        current_dot[k] = 0.0;
    }
    for (var l = p.lmax; l >= 2u; l--) {
        var previous: array<f32, MAX_DEGREE_WIDTH>;
        var previous_dot: array<f32, MAX_DEGREE_WIDTH>;
        let below = (l - 1u) * (l - 1u);
        for (var i = 0u; i < 2u * l - 1u; i++) {
            previous[i] = read_g(gbase + below + i);
            previous_dot[i] = 0.0;
        }
        for (var e = starts[l]; e < starts[l + 1u]; e++) {
            let c = table[e];
            let i = u32(c.x);
            let j = u32(c.y);
            let back = c.w * current[u32(c.z)];
            let back_dot = c.w * current_dot[u32(c.z)];
            previous[i] += back * y1[j];
            previous_dot[i] += back_dot * y1[j] + back * y1_dot[j];
            y1_bar[j] += back * y[ybase + below + i];
            y1_bar_dot[j] += back_dot * y[ybase + below + i] + back * out_g[og + below + i];
        }
        for (var i = 0u; i < 2u * l - 1u; i++) {
            current[i] = previous[i];
            current_dot[i] = previous_dot[i];
        }
    }
    let total = vec3<f32>(current[0], current[1], current[2]) + y1_bar;
    let total_dot = vec3<f32>(current_dot[0], current_dot[1], current_dot[2]) + y1_bar_dot;
    let along = dot(total, u);
    let along_dot = dot(total_dot, u) + dot(total, u_dot);
    let radial_rate = dot(u, dd_scaled) / norm; // (d|v|/dε)/|v|
    let inner = total_dot - along_dot * u - along * u_dot - (total - along * u) * radial_rate;
    let second = sqrt(3.0) * inner / norm / largest;
    out_v[ov] = second.x;
    out_v[ov + 1u] = second.y;
    out_v[ov + 2u] = second.z;
}
