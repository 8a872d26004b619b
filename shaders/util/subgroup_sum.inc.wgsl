// The subgroup form of `workgroup_sum.inc.wgsl`, swapped in for it by the host where the
// device has subgroup operations (src/gpu/pipelines.rs, `GpuOptions::subgroups`): the same
// function, one f32 per invocation summed over the workgroup, in two barriers instead of
// log2(WORKGROUP) + 1. Call it from uniform control flow, with every invocation active.
//
// Each subgroup adds its lanes (subgroupAdd) and leaves the sum in the slot of its lowest
// invocation index, zeros in its other slots. Then every subgroup reads all WORKGROUP slots
// the same way — lane t of a subgroup of size S takes slots t, t+S, … in order — and adds its
// lanes again. The order is fixed for a device (its subgroup size and layout), so the sum is
// deterministic, and every invocation gets the same value. Lane rank and size come from scans
// of 1, so the includer needs no subgroup builtins.

var<workgroup> sum_lanes: array<f32, WORKGROUP>;

fn workgroup_sum(lid: u32, value: f32) -> f32 {
    let subgroup_sum = subgroupAdd(value);
    let first = subgroupMin(lid);
    sum_lanes[lid] = select(0.0, subgroup_sum, lid == first);
    workgroupBarrier();
    let rank = subgroupExclusiveAdd(1u);
    let size = subgroupAdd(1u);
    var part = 0.0;
    for (var slot = rank; slot < WORKGROUP; slot += size) {
        part += sum_lanes[slot];
    }
    let total = subgroupAdd(part);
    // Before sum_lanes is written again by a later call.
    workgroupBarrier();
    return total;
}
