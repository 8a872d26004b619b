// The parameters of the softmax attention forward, softmax.wgsl and softmax_rows.wgsl.

struct Params {
    heads: u32,
    n: u32,
    dk: u32,
    dv: u32,
    causal: u32,
    k_tiles: u32,      // ceil(dk / 32)
    v_tiles: u32,
    total_groups: u32,
    q_offset: u32,
    k_offset: u32,
    v_offset: u32,
    out_offset: u32,
    scale: f32,        // 1/√dk
    lse_offset: u32,
    _pad0: u32,
    _pad1: u32,
}
