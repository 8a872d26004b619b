// The sum over a workgroup of one f32 per invocation, by a tree in workgroup memory. The
// includer declares `const WORKGROUP: u32` (its workgroup size, a power of two). It has
// barriers: call it from uniform control flow, once per pass over `sum_lanes`.

var<workgroup> sum_lanes: array<f32, WORKGROUP>;

fn workgroup_sum(lid: u32, value: f32) -> f32 {
    sum_lanes[lid] = value;
    workgroupBarrier();
    for (var width = WORKGROUP / 2u; width > 0u; width /= 2u) {
        if lid < width {
            sum_lanes[lid] += sum_lanes[lid + width];
        }
        workgroupBarrier();
    }
    return sum_lanes[0];
}
