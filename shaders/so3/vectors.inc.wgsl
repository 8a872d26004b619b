// The input vectors of spherical_harmonics.wgsl and its backward: binding 1, three f32 per
// vector read through read_vectors (the f32 form; the host generates the f16 and bf16 forms,
// packed two per u32, see src/gpu/specialize.rs), and the tests both make of a vector. The
// includer defines `p.v_offset` and binds its other buffers from binding 2 on.

@group(0) @binding(1) var<storage, read> vectors: array<f32>;
fn read_vectors(i: u32) -> f32 { return vectors[i]; }

// Vector t of this block.
fn vector_at(t: u32) -> vec3<f32> {
    return vec3<f32>(read_vectors(p.v_offset + 3u * t), read_vectors(p.v_offset + 3u * t + 1u),
                     read_vectors(p.v_offset + 3u * t + 2u));
}

// Whether a component is NaN or infinite. Tested by the bits: compilers may fold
// isnan-style comparisons away.
fn has_non_finite(v: vec3<f32>) -> bool {
    let bits = vec3<u32>(bitcast<u32>(v.x), bitcast<u32>(v.y), bitcast<u32>(v.z)) & vec3<u32>(0x7fffffffu);
    return any(bits >= vec3<u32>(0x7f800000u));
}

// The largest |component|: v is scaled by it first, so that |v|² neither overflows
// (|v| > 1e19) nor underflows (|v| < 1e-19) in f32.
fn largest_component(v: vec3<f32>) -> f32 {
    return max(max(abs(v.x), abs(v.y)), abs(v.z));
}
