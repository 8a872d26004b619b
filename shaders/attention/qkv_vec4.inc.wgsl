// qkv.inc.wgsl for f32 operands whose rows and offsets the host has aligned to 4 (dk and dv
// multiples of 4, every window starting at a multiple of 4): q, k and v at bindings 1, 2 and 3
// as vec4s, so that read4_q and its kin are one load. read_q and its kin read one element.

@group(0) @binding(1) var<storage, read> q4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v4: array<vec4<f32>>;

fn read_q(i: u32) -> f32 { return q4[i >> 2u][i & 3u]; }
fn read_k(i: u32) -> f32 { return k4[i >> 2u][i & 3u]; }
fn read_v(i: u32) -> f32 { return v4[i >> 2u][i & 3u]; }

// Elements i .. i + 3, i a multiple of 4.
fn read4_q(i: u32) -> vec4<f32> { return q4[i >> 2u]; }
fn read4_k(i: u32) -> vec4<f32> { return k4[i >> 2u]; }
fn read4_v(i: u32) -> vec4<f32> { return v4[i >> 2u]; }
