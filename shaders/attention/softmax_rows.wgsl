// softmax.wgsl in registers, for devices where workgroup memory and barriers cost more than
// they save (CPU adapters):
//   out_i = Σ_j softmax_j(q_i·k_j / √dk) v_j   over j (j ≤ i when causal),
// with the online softmax (running row max m and sum l, the accumulator rescaled by
// exp(m_old − m_new)) and each row's lse_i = m + ln l, as softmax.wgsl writes them.
//
// A workgroup of 16 lanes owns 8 queries × 64 value columns; lane l holds columns
// 4l .. 4l + 3 of each query in a vec4, and l (Σ of the weights) rides in the extra column.
// Keys come 32 at a time: lane l scores keys 2l and 2l + 1 against the 8 queries, and one
// barrier hands the 8 × 32 scores to every lane (softmax_pairs.inc.wgsl), which takes the
// rows' new maxima; lane l weighs its own two keys (16 exponentials, not the block's 256),
// and a second barrier hands the weights over for every lane to add the block's values.

// #include "attention/qkv.inc.wgsl"

// #include "attention/softmax_rows.inc.wgsl"
