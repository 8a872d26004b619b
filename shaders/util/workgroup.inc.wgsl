// The number of this workgroup in a launch. Launches past the per-dimension limit (65 535)
// are folded into a 2-D grid of x · y workgroups (src/gpu/dispatch.rs, `grid`), numbered
// x fastest; a grid may hold a few spare workgroups at the end, which return at once
// (uniformly for the workgroup) when their number is past the work.
fn workgroup_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}
