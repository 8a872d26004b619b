// Dot products of the rows of R ([rows, d]: M-FAC's V, or the sliding window's gradients)
// with k vectors x ([k, d]), in partial sums over chunks of d:
//   partial[v][chunk][row0 + i] = Σ_{t ∈ chunk} R[i][t]·x_v[t]
// coefficients.wgsl adds the chunks. One coordinate per load; R in any dtype (read_r).

// #include "util/workgroup.inc.wgsl"

@group(0) @binding(1) var<storage, read> r: array<f32>;
fn read_r(i: u32) -> f32 { return r[i]; }
@group(0) @binding(2) var<storage, read> x: array<f32>;

alias Lane = f32;
const WIDTH: u32 = 1u;
fn r_load(index: u32) -> Lane { return read_r(index); }
fn x_load(index: u32) -> Lane { return x[index]; }
fn lane_total(a: Lane) -> f32 { return a; }

// #include "mfac/dots_params.inc.wgsl"
