//! How every product kernel is launched: over blocks of whole samples that fit one binding
//! each, with an optional per-row scratch in storage for rows whose stages do not fit
//! workgroup memory.

use std::sync::Arc;

use crate::gpu::pool::PooledBuffer;
use crate::gpu::{Kernel, Operand};
use crate::op::Gpu;
use crate::{Result, Tensor};

/// A product `x1 [n, c, d1]`, `x2 [n, c or 1, d2]` → `out [n, c, d3]` as the kernels see it.
pub(crate) struct ProductShape {
    pub channels: usize,
    /// x2 is `[n, 1, ·]`, one row per sample shared by its channels.
    pub broadcast: bool,
    pub d3: usize,
}

/// Runs a product kernel over blocks of whole samples that fit one binding each (a
/// broadcast x2 row stays with its channels), bound as `[params, x1, x2, extra…, tables…,
/// out]`; `launch(rows, [x1, x2, out] skips, extra skips)` gives a block's uniform and
/// workgroup count. `extra` operands split with the samples give their elements per sample.
pub(super) fn launch_products<P: bytemuck::Pod>(
    gpu: &Gpu<'_>,
    (op, kernel): (&'static str, &Arc<Kernel>),
    ([x1, x2], out): ([&Tensor; 2], &Tensor),
    (extra, tables): (&[(Operand<'_>, Option<usize>)], &[&wgpu::Buffer]),
    shape: &ProductShape,
    launch: impl Fn(usize, [u32; 3], &[u32]) -> (P, u32),
) -> Result<()> {
    let ProductShape {
        channels,
        broadcast,
        d3,
    } = *shape;
    let (samples, d1, d2) = (x1.shape()[0], x1.shape()[2], x2.shape()[2]);
    let x2_rows_per_sample = if broadcast { 1 } else { channels };
    let mut operands = vec![
        x1.rows("x1", channels * d1),
        x2.rows("x2", x2_rows_per_sample * d2),
    ];
    operands.extend(extra.iter().map(|(operand, _)| *operand));
    operands.extend(tables.iter().map(|t| Operand::whole(t)));
    operands.push(out.rows("output", channels * d3));
    let mut per_row = vec![
        ("x1", channels * d1),
        ("x2", x2_rows_per_sample * d2),
        ("output", channels * d3),
    ];
    per_row.extend(
        extra
            .iter()
            .filter_map(|(_, len)| len.map(|l| ("extra", l))),
    );
    let mut recording = gpu.recording();
    for rows in gpu.binding.row_blocks(op, samples, &per_row)? {
        let bound = gpu.binding.bind_slice(op, rows, &operands)?;
        let skips = [0, 1, bound.len() - 1].map(|i| bound[i].skip());
        let extra_skips: Vec<u32> = (0..extra.len()).map(|i| bound[2 + i].skip()).collect();
        let (params, groups) = launch(rows.count * channels, skips, &extra_skips);
        recording.dispatch(kernel, &params, &bound, groups)?;
    }
    recording.submit()
}

/// Scratch for the `*_global.wgsl` kernels, which keep a row's stages in storage: `per_sample`
/// f32s for each sample of the largest launch (as many samples as fit one binding; launch
/// blocks are cut to that by `launch_products`). None when `per_sample` is 0 (the stages fit
/// workgroup memory).
fn row_scratch(gpu: &Gpu<'_>, samples: usize, per_sample: usize) -> Result<Option<PooledBuffer>> {
    if per_sample == 0 {
        return Ok(None);
    }
    let fit = (gpu.binding.max_elements() / per_sample as u64) as usize;
    Ok(Some(gpu.storage(samples.min(fit).max(1) * per_sample)?))
}

/// The scratch as `launch_products`' extra operand: the same window in every block, and
/// `per_sample` f32s per sample for cutting the blocks.
fn scratch_operand(
    scratch: &Option<PooledBuffer>,
    per_sample: usize,
) -> Vec<(Operand<'_>, Option<usize>)> {
    scratch
        .iter()
        .map(|s| {
            let len = (s.buffer().size() / 4) as usize;
            (Operand::fixed("scratch", s.buffer(), len), Some(per_sample))
        })
        .collect()
}

/// [`launch_products`] for the kernels that keep a row's stages in storage where they do
/// not fit workgroup memory: `per_row` f32s of scratch per (sample, channel) row, 0 when
/// they fit (no scratch is bound then); the scratch is the one extra operand.
pub(super) fn launch_with_scratch<P: bytemuck::Pod>(
    gpu: &Gpu<'_>,
    kernel: (&'static str, &Arc<Kernel>),
    io: ([&Tensor; 2], &Tensor),
    (per_row, tables): (usize, &[&wgpu::Buffer]),
    shape: &ProductShape,
    launch: impl Fn(usize, [u32; 3]) -> (P, u32),
) -> Result<()> {
    let per_sample = shape.channels * per_row;
    let scratch = row_scratch(gpu, io.0[0].shape()[0], per_sample)?;
    let extra = scratch_operand(&scratch, per_sample);
    launch_products(
        gpu,
        kernel,
        io,
        (&extra, tables),
        shape,
        |rows, skips, _| launch(rows, skips),
    )
}
