// dots.wgsl four coordinates per load, where R is f32 and its rows, x and the chunks are
// 4-aligned (d % 4 = 0, offsets % 4 = 0, chunk_len % 128 = 0): R and x read as vec4s.
//   partial[v][chunk][row0 + i] = Σ_{t ∈ chunk} R[i][t]·x_v[t]

// #include "util/workgroup.inc.wgsl"

// #include "mfac/dots_params.inc.wgsl"
@group(0) @binding(1) var<storage, read> r4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> x4: array<vec4<f32>>;

// This lane's part of row i's dot with x_v over [first, last): vec4s LANES apart.
fn lane_dot(i: u32, v: u32, first: u32, last: u32, lane: u32) -> f32 {
    let r_row = (p.r_offset + i * p.d) / 4u;
    let x_row = (p.x_offset + v * p.d) / 4u;
    var acc = 0.0;
    for (var t = first / 4u + lane; t < last / 4u; t += LANES) {
        acc += dot(r4[r_row + t], x4[x_row + t]);
    }
    return acc;
}
