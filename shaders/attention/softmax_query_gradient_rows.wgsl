// softmax_query_gradient.wgsl in registers, for devices where workgroup memory and barriers
// cost more than they save (CPU adapters):
//   lse_i = m + ln l,  Δ_i = Σ_j P_ij (g_i·v_j),  ∂q_i = scale · Σ_j P_ij (g_i·v_j − Δ_i) k_j,
// with P_ij = exp(q_i·k_j·scale − lse_i), over the keys j of query i (j ≤ i when causal).
//
// A workgroup owns 8 queries × 64 columns of ∂q (softmax_gradient_rows.inc.wgsl); lane l
// takes keys 2l and 2l + 1 of every 32-key block. Pass 1 keeps each lane's own online
// statistics over its keys (max, Σ P, Σ P·g·v), with no barrier; one barrier joins them per
// query. Pass 2 recomputes the lane's scores as ∂S_ij and hands the block over (one barrier);
// every lane adds its ∂q columns, and a second barrier frees the block.

// #include "attention/qkv.inc.wgsl"

// #include "attention/gradient_g.inc.wgsl"

// #include "attention/softmax_query_gradient_rows.inc.wgsl"
