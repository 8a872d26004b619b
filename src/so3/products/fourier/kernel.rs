//! The GPU launch of the Fourier route: one workgroup (one FFT grid) per row, the grid in
//! workgroup memory where it fits, else in a storage scratch slice per row.

use super::plan::FourierPlan;
use crate::gpu::{shader, Shader};
use crate::op::Gpu;
use crate::so3::products::fft::{fft_shape, FFT_CAPACITY};
use crate::so3::products::launch::{launch_with_scratch, ProductShape};
use crate::{Result, Tensor};

const GAUNT_FOURIER: Shader = shader!("so3/gaunt_fourier.wgsl");
const GAUNT_FOURIER_GLOBAL: Shader = shader!("so3/gaunt_fourier_global.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct FourierParams {
    rows: u32,
    channels: u32,
    broadcast: u32,
    l1: u32,
    l2: u32,
    lmax_out: u32,
    l_table: u32,
    product_degree: u32,
    projection_offset: u32,
    x1_offset: u32,
    x2_offset: u32,
    out_offset: u32,
    scratch_stride: u32,
    _pad: [u32; 3],
}

/// Whether one product's FFT grid fits the workgroup array of fft.inc.wgsl.
pub(crate) fn fourier_fits(plan: &FourierPlan) -> bool {
    plan.n_u * plan.n_v <= FFT_CAPACITY
}

/// The Gaunt product by the 2D-Fourier route, one workgroup (one FFT grid) per row: the grid
/// in workgroup memory where it fits (`fourier_fits`), else in a storage scratch slice per row
/// (gaunt_fourier_global.wgsl, the same arithmetic).
pub(crate) fn gaunt_fourier(
    gpu: &Gpu<'_>,
    plan: &FourierPlan,
    inputs: [&Tensor; 2],
    shape: &ProductShape,
    out: &Tensor,
) -> Result<()> {
    const OP: &str = "so3::gaunt_product (Fourier)";
    let _call = crate::call::Call::enter(OP);
    let in_workgroup = fourier_fits(plan);
    let shader = if in_workgroup {
        &GAUNT_FOURIER
    } else {
        &GAUNT_FOURIER_GLOBAL
    };
    let (constants, [twiddles, positions]) = fft_shape(gpu, [plan.n_u, plan.n_v])?;
    let operands = Tensor::operands(["x1", "x2"], inputs);
    let kernel = gpu.kernel_with(shader, &operands, &constants)?;
    let key = format!("gaunt_fourier/{}/{}/{}", plan.l1, plan.l2, plan.lmax_out);
    let tables = gpu.constant(&key, || plan.gpu_table())?;
    let buffers = [tables.buffer(), twiddles.buffer(), positions.buffer()];
    let stride = if in_workgroup {
        0
    } else {
        2 * plan.n_u * plan.n_v
    };
    launch_with_scratch(
        gpu,
        (OP, &kernel),
        (inputs, out),
        (stride, &buffers),
        shape,
        |rows, [s1, s2, so]| {
            let params = FourierParams {
                rows: rows as u32,
                channels: shape.channels as u32,
                broadcast: shape.broadcast as u32,
                l1: plan.l1 as u32,
                l2: plan.l2 as u32,
                lmax_out: plan.lmax_out as u32,
                l_table: plan.l_table as u32,
                product_degree: (plan.l1 + plan.l2) as u32,
                projection_offset: plan.theta.len() as u32,
                x1_offset: s1,
                x2_offset: s2,
                out_offset: so,
                scratch_stride: stride as u32,
                _pad: [0; 3],
            };
            (params, rows as u32)
        },
    )
}
