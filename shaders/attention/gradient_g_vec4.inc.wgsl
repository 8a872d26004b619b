// gradient_g.inc.wgsl as vec4s, beside qkv_vec4.inc.wgsl (f32, rows and offsets aligned to 4).

@group(0) @binding(4) var<storage, read> g4: array<vec4<f32>>;

fn read_g(i: u32) -> f32 { return g4[i >> 2u][i & 3u]; }

// Elements i .. i + 3, i a multiple of 4.
fn read4_g(i: u32) -> vec4<f32> { return g4[i >> 2u]; }
