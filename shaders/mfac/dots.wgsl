// Dot products of the rows of R ([rows, d]: M-FAC's V, or the sliding window's gradients)
// with k vectors x ([k, d]), in partial sums over chunks of d:
//   partial[v][chunk][row0 + i] = Σ_{t ∈ chunk} R[i][t]·x_v[t]
// coefficients.wgsl adds the chunks. A workgroup covers 8 rows × one chunk; 32 lanes walk a
// row's chunk in coalesced steps, then one lane adds their 32 sums.

// #include "util/workgroup.inc.wgsl"

// #include "mfac/dots_params.inc.wgsl"
@group(0) @binding(1) var<storage, read> r: array<f32>;
fn read_r(i: u32) -> f32 { return r[i]; }
@group(0) @binding(2) var<storage, read> x: array<f32>;

// This lane's part of row i's dot with x_v over [first, last): coordinates LANES apart.
fn lane_dot(i: u32, v: u32, first: u32, last: u32, lane: u32) -> f32 {
    var acc = 0.0;
    for (var t = first + lane; t < last; t += LANES) {
        acc += read_r(p.r_offset + i * p.d + t) * x[p.x_offset + v * p.d + t];
    }
    return acc;
}
