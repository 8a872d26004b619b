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
