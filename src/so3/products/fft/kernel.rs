//! The GPU launch of the 2D FFT, and the per-shape constants and tables every FFT kernel
//! (this one and the Fourier route's) is built with.

use std::sync::Arc;

use super::plan::{kernel_constants, kernel_tables, FftDirection};
use crate::gpu::dispatch::Block;
use crate::gpu::pool::PooledBuffer;
use crate::gpu::{shader, GpuDevice, Operand, Shader};
use crate::op::Gpu;
use crate::{Result, Tensor};

/// Values of a kernel's `override` constants.
type OverrideConstants = Vec<(&'static str, f64)>;

/// The `override` constants and the twiddle and order tables of a `[rows, cols]` FFT grid,
/// uploaded once per shape.
pub(crate) fn fft_shape(
    gpu: &GpuDevice,
    shape: [usize; 2],
) -> Result<(OverrideConstants, [Arc<PooledBuffer>; 2])> {
    let [rows, cols] = shape;
    let built = std::cell::OnceCell::new();
    let build = || built.get_or_init(|| kernel_tables(shape));
    let twiddles = gpu.constant(&format!("fft/{rows}/{cols}/twiddles"), || build().0.clone())?;
    let positions = gpu.constant(&format!("fft/{rows}/{cols}/positions"), || {
        build().1.clone()
    })?;
    Ok((kernel_constants(shape), [twiddles, positions]))
}

const FFT2: Shader = shader!("so3/fft.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Fft2Params {
    grids: u32,
    inverse: u32,
    input_offset: u32,
    output_offset: u32,
}

/// The 2D FFT of every `[rows, cols]` complex grid of `x`, one workgroup per grid.
pub(super) fn fft2(
    gpu: &Gpu<'_>,
    x: &Tensor,
    shape: [usize; 2],
    direction: FftDirection,
    out: &Tensor,
) -> Result<()> {
    const OP: &str = "so3::fft2";
    let _call = crate::call::Call::enter(OP);
    let (constants, [twiddles, positions]) = fft_shape(gpu, shape)?;
    let kernel = gpu.kernel_with(&FFT2, &[("input", x.dtype())], &constants)?;
    let size = 2 * shape[0] * shape[1];
    let operands = [
        x.rows("x", size),
        Operand::whole(twiddles.buffer()),
        Operand::whole(positions.buffer()),
        out.rows("output", size),
    ];
    let blocks: Vec<Block<'_, 4>> = gpu.binding.blocks(OP, x.shape()[0], operands)?;
    let mut recording = gpu.recording();
    recording.dispatch_blocks(&kernel, &blocks, |block| {
        let [wi, _, _, wo] = block.bound;
        let params = Fft2Params {
            grids: block.rows.count as u32,
            inverse: (direction == FftDirection::Inverse) as u32,
            input_offset: wi.skip(),
            output_offset: wo.skip(),
        };
        (params, block.rows.count as u32)
    })?;
    recording.submit()
}
