//! The GPU launch of the grid route: one workgroup per (sample, channel) row, its stages in
//! workgroup memory where they fit, else in a storage scratch slice per row.

use super::plan::GridPlan;
use crate::gpu::{shader, Shader};
use crate::op::Gpu;
use crate::so3::products::launch::{launch_with_scratch, ProductShape};
use crate::{Result, Tensor};

const GAUNT_GRID: Shader = shader!("so3/gaunt_grid.wgsl");
const GAUNT_GRID_GLOBAL: Shader = shader!("so3/gaunt_grid_global.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct GridParams {
    rows: u32,
    channels: u32,
    broadcast: u32,
    l1: u32,
    l2: u32,
    lmax_out: u32,
    n_beta: u32,
    l_table: u32,
    theta_offset: u32,
    weighted_offset: u32,
    x1_offset: u32,
    x2_offset: u32,
    out_offset: u32,
    scratch_stride: u32,
    rings_at: u32,
    products_at: u32,
}

/// Whether the workgroup arrays of gaunt_grid.wgsl hold this plan: inputs of degree at most
/// `MAX_DEGREE` (`coefficients`), both inputs' complex ring coefficients c_k, k ≥ 0
/// (`rings`) and the output's, as sum and difference per mirrored ring pair (`products`).
pub(crate) fn grid_fits(plan: &GridPlan) -> bool {
    use crate::gpu::shader_constants::so3_gaunt_grid::{MAX_DEGREE, PRODUCTS, RINGS};
    let nb = plan.n_beta;
    plan.l1.max(plan.l2) <= MAX_DEGREE
        && nb * (plan.l1 + plan.l2 + 2) <= RINGS
        && 2 * nb.div_ceil(2) * (2 * plan.lmax_out + 1) <= PRODUCTS
}

/// A row's stages in gaunt_grid_global.wgsl's scratch, in f32s: `(stride, rings_at,
/// products_at)` — both inputs' coefficients, their rings' complex coefficients, the products.
fn grid_scratch_layout(plan: &GridPlan) -> (usize, usize, usize) {
    let coefficients = (plan.l1 + 1).pow(2) + (plan.l2 + 1).pow(2);
    let rings = 2 * plan.n_beta * (plan.l1 + plan.l2 + 2);
    let products = 2 * plan.n_beta.div_ceil(2) * (2 * plan.lmax_out + 1);
    (
        coefficients + rings + products,
        coefficients,
        coefficients + rings,
    )
}

/// The Gaunt product on the grid of `plan`, one workgroup per (sample, channel) row: its
/// stages in workgroup memory where they fit (`grid_fits`), else in a storage scratch slice
/// per row (gaunt_grid_global.wgsl: the same arithmetic, so every degree up to `MAX_L` runs
/// and gives what the CPU path gives; launches are cut so that the scratch fits one binding).
pub(crate) fn gaunt_grid(
    gpu: &Gpu<'_>,
    plan: &GridPlan,
    inputs: [&Tensor; 2],
    shape: &ProductShape,
    out: &Tensor,
) -> Result<()> {
    const OP: &str = "so3::gaunt_product (Grid)";
    let _call = crate::call::Call::enter(OP);
    let in_workgroup = grid_fits(plan);
    let shader = if in_workgroup {
        &GAUNT_GRID
    } else {
        &GAUNT_GRID_GLOBAL
    };
    let kernel = gpu.kernel_for(shader, &Tensor::operands(["x1", "x2"], inputs))?;
    let key = format!("gaunt_grid/{}/{}/{}", plan.l1, plan.l2, plan.lmax_out);
    let tables = gpu.constant(&key, || plan.gpu_table())?;
    let (stride, rings_at, products_at) = if in_workgroup {
        (0, 0, 0)
    } else {
        grid_scratch_layout(plan)
    };
    launch_with_scratch(
        gpu,
        (OP, &kernel),
        (inputs, out),
        (stride, &[tables.buffer()]),
        shape,
        |rows, [s1, s2, so]| {
            let params = GridParams {
                rows: rows as u32,
                channels: shape.channels as u32,
                broadcast: shape.broadcast as u32,
                l1: plan.l1 as u32,
                l2: plan.l2 as u32,
                lmax_out: plan.lmax_out as u32,
                n_beta: plan.n_beta as u32,
                l_table: plan.l_table as u32,
                theta_offset: 0,
                weighted_offset: plan.theta.len() as u32,
                x1_offset: s1,
                x2_offset: s2,
                out_offset: so,
                scratch_stride: stride as u32,
                rings_at: rings_at as u32,
                products_at: products_at as u32,
            };
            (params, rows as u32)
        },
    )
}
