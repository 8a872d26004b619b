// softmax_query_gradient_rows.wgsl with q, k, v and g read as vec4s: where they are f32, dk and
// dv are multiples of 4 and every window starts at a multiple of 4.

// #include "attention/qkv_vec4.inc.wgsl"

// #include "attention/gradient_g_vec4.inc.wgsl"

// #include "attention/softmax_query_gradient_rows.inc.wgsl"
