// The parameters and inputs of the softmax attention backward's kernels, tiled
// (softmax_gradient.inc.wgsl) or in registers (softmax_*_gradient_rows.wgsl): q, k, v, g at
// bindings 1 to 4; the includer binds its outputs from 5 on.

struct Params {
    heads: u32,
    n: u32,
    dk: u32,
    dv: u32,
    causal: u32,
    k_tiles: u32,       // ceil(dk / 32)
    v_tiles: u32,       // ceil(dv / 32)
    column_groups: u32, // workgroups per row block: GROUP_TILES tiles wide, or 64 columns (rows)
    total_groups: u32,
    q_offset: u32,
    k_offset: u32,
    v_offset: u32,
    g_offset: u32,
    dq_offset: u32,     // the query kernel's dq
    dk_offset: u32,     // the key kernel's dk
    dv_offset: u32,     // and its dv
    lse_offset: u32,    // lse and delta share their windows' layout
    scale: f32,         // 1/√dk
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// #include "attention/qkv.inc.wgsl"
@group(0) @binding(4) var<storage, read> g: array<f32>;
fn read_g(i: u32) -> f32 { return g[i]; }

// Element (row, c) of a [heads·n, width] operand read by `kind` (0 q, 1 k, 2 v, 3 g), 0
// past the ends.
fn load(kind: u32, head: u32, row: u32, c: u32) -> f32 {
    if row >= p.n {
        return 0.0;
    }
    let r = head * p.n + row;
    switch kind {
        case 0u: { if c < p.dk { return read_q(p.q_offset + r * p.dk + c); } }
        case 1u: { if c < p.dk { return read_k(p.k_offset + r * p.dk + c); } }
        case 2u: { if c < p.dv { return read_v(p.v_offset + r * p.dv + c); } }
        default: { if c < p.dv { return read_g(p.g_offset + r * p.dv + c); } }
    }
    return 0.0;
}
