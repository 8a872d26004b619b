// softmax_rows.wgsl with q, k and v read as vec4s: where they are f32, dk and dv are
// multiples of 4 and every window starts at a multiple of 4 (four steps of d per load).

// #include "attention/qkv_vec4.inc.wgsl"

// #include "attention/softmax_rows.inc.wgsl"
