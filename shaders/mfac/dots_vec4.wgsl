// dots.wgsl four coordinates per load, where R is f32 and its rows, x and the chunks are
// 4-aligned (d % 4 = 0, offsets % 4 = 0, chunk_len % 1024 = 0): R and x read as vec4s.
//   partial[v][chunk][row0 + i] = Σ_{t ∈ chunk} R[i][t]·x_v[t]

// #include "util/workgroup.inc.wgsl"

@group(0) @binding(1) var<storage, read> r4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> x4: array<vec4<f32>>;

alias Lane = vec4<f32>;
const WIDTH: u32 = 4u;
fn r_load(index: u32) -> Lane { return r4[index]; }
fn x_load(index: u32) -> Lane { return x4[index]; }
// The four coordinates' sums in pairs.
fn lane_total(a: Lane) -> f32 { return (a.x + a.y) + (a.z + a.w); }

// #include "mfac/dots_params.inc.wgsl"
