// Shared by linear_state.wgsl and linear_output.wgsl (spliced in where they say
// `// #include "attention/linear_common.inc.wgsl"`, see src/gpu/mod.rs): their uniform
// parameters and the key feature map φ_k, which both evaluate as they load keys. The
// including shader binds `p`, `key_max` and `k` (read through read_k).

struct Params {
    heads: u32,
    n: u32,
    dk: u32,
    dv: u32,
    features: u32,       // dk for elu+1, 2·dk for norm-aware
    norm_aware: u32,
    causal: u32,
    splits: u32,         // states per head
    keys_per_split: u32, // a multiple of TILE
    f_tiles: u32,
    v_tiles: u32,
    total_groups: u32,
    q_offset: u32,
    k_offset: u32,
    v_offset: u32,
    out_offset: u32,
    scale_offset: u32,
    eps: f32,
    _pad0: u32,
    _pad1: u32,
}

// #include "attention/features.inc.wgsl"

// 2^-e with max|k|·2^-e < 1 for the norm-aware map (see key_max.wgsl); 1 otherwise.
fn key_scale(head: u32) -> f32 {
    if p.norm_aware == 0u {
        return 1.0;
    }
    return power_of_two_below(bitcast<f32>(key_max[p.scale_offset + head]));
}

// φ_k(k)_f of key row `row` (head·n + j): elu(k)+1, or relu(±k·scale)³.
fn key_feature(row: u32, f: u32, scale: f32) -> f32 {
    if p.norm_aware == 0u {
        return elu_plus_one(read_k(p.k_offset + row * p.dk + f));
    }
    let x = read_k(p.k_offset + row * p.dk + f % p.dk) * scale;
    let y = relu(select(-x, x, f < p.dk));
    return y * y * y;
}
