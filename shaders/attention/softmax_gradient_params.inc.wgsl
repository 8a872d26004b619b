// The parameters of the softmax attention backward's kernels, tiled (softmax_gradient.inc.wgsl)
// or in registers (softmax_*_gradient_rows*.wgsl), and their reads of the inputs q, k, v, g,
// which the kernel binds at 1 to 4 (qkv.inc.wgsl and gradient_g.inc.wgsl, or their vec4
// forms); the kernel binds its outputs from 5 on.

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

// Columns c .. c + 3 of `load`'s operand where its width is a multiple of 4 (c + 3 inside it),
// 0 past the last row.
fn load_vec4(kind: u32, head: u32, row: u32, c: u32) -> vec4<f32> {
    let r = head * p.n + min(row, p.n - 1u);
    var value: vec4<f32>;
    switch kind {
        case 0u: { value = read4_q(p.q_offset + r * p.dk + c); }
        case 1u: { value = read4_k(p.k_offset + r * p.dk + c); }
        case 2u: { value = read4_v(p.v_offset + r * p.dv + c); }
        default: { value = read4_g(p.g_offset + r * p.dv + c); }
    }
    return select(vec4<f32>(0.0), value, row < p.n);
}

// The width of `load`'s operand: dk for q and k, dv for v and g.
fn width_of(kind: u32) -> u32 {
    return select(p.dv, p.dk, kind < 2u);
}
