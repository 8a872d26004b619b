// softmax_key_gradient.wgsl in registers, for devices where workgroup memory and barriers cost
// more than they save (CPU adapters):
//   P_ij = exp(q_i·k_j·scale − lse_i),   ∂S_ij = P_ij·(g_i·v_j − Δ_i),
//   ∂k_j = scale · Σ_i ∂S_ij q_i,   ∂v_j = Σ_i P_ij g_i,
// over the queries i that attend key j (i ≥ j when causal), with lse and Δ from
// softmax_query_gradient_rows.wgsl.
//
// A workgroup owns 8 keys × 64 columns of both ∂k and ∂v (softmax_gradient_rows.inc.wgsl);
// lane l takes queries 2l and 2l + 1 of every 32-query block, and one barrier hands the
// block's P and ∂S over; every lane adds its columns, and a second barrier frees them.

// #include "attention/qkv.inc.wgsl"

// #include "attention/gradient_g.inc.wgsl"

// #include "attention/softmax_key_gradient_rows.inc.wgsl"
