// The cotangent g of the attention backward's output at binding 4, read through read_g (the
// f32 form; the host generates the f16 and bf16 forms), as qkv.inc.wgsl binds q, k and v.

@group(0) @binding(4) var<storage, read> g: array<f32>;
fn read_g(i: u32) -> f32 { return g[i]; }

// Elements i .. i + 3.
fn read4_g(i: u32) -> vec4<f32> { return vec4<f32>(read_g(i), read_g(i + 1u), read_g(i + 2u), read_g(i + 3u)); }
