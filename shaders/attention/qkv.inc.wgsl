// q, k and v at bindings 1, 2 and 3, as every attention kernel that reads all three binds
// them, each read through its loader read_q, read_k, read_v (the f32 form; the host generates
// the f16 and bf16 forms, packed two per u32, see src/gpu/specialize.rs). The includer binds
// `p` at 0 and its other buffers from binding 4 on.

@group(0) @binding(1) var<storage, read> q: array<f32>;
fn read_q(i: u32) -> f32 { return q[i]; }
@group(0) @binding(2) var<storage, read> k: array<f32>;
fn read_k(i: u32) -> f32 { return k[i]; }
@group(0) @binding(3) var<storage, read> v: array<f32>;
fn read_v(i: u32) -> f32 { return v[i]; }

// Elements i .. i + 3 of q, k or v (the rows forms' four-wide reads; qkv_vec4.inc.wgsl reads
// them in one load where the host has aligned every row and offset to 4).
fn read4_q(i: u32) -> vec4<f32> { return vec4<f32>(read_q(i), read_q(i + 1u), read_q(i + 2u), read_q(i + 3u)); }
fn read4_k(i: u32) -> vec4<f32> { return vec4<f32>(read_k(i), read_k(i + 1u), read_k(i + 2u), read_k(i + 3u)); }
fn read4_v(i: u32) -> vec4<f32> { return vec4<f32>(read_v(i), read_v(i + 1u), read_v(i + 2u), read_v(i + 3u)); }
