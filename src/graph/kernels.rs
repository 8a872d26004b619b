//! GPU launches of gather and scatter_sum: one thread per output element, the output split
//! into row blocks that fit one binding; the source is bound whole (its rows are read at
//! random), so it must fit one binding.

use super::reference::Segments;
use crate::gpu::pool::PooledBuffer;
use crate::gpu::{shader, Operand, Shader, ELEMENTWISE_WORKGROUP};
use crate::op::Gpu;
use crate::{DType, Result, Tensor};

const GATHER: Shader = shader!("graph/gather.wgsl");
const SCATTER_SUM: Shader = shader!("graph/scatter_sum.wgsl");

/// The index on the device: receivers (for gather), and the edges sorted by node with the
/// nodes' starts (for scatter_sum), as u32.
pub(crate) struct DeviceIndex {
    receivers: PooledBuffer,
    order: PooledBuffer,
    offsets: PooledBuffer,
}

impl DeviceIndex {
    pub(crate) fn upload(
        gpu: &Gpu<'_>,
        receivers: &[u32],
        segments: &Segments,
    ) -> Result<DeviceIndex> {
        Ok(DeviceIndex {
            receivers: gpu.upload("index", bytemuck::cast_slice(receivers))?,
            order: gpu.upload("index", bytemuck::cast_slice(&segments.order))?,
            offsets: gpu.upload("index", bytemuck::cast_slice(&segments.offsets))?,
        })
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32, // output rows in this block
    width: u32,
    first_row: u32, // of the block, in the whole output
    src_offset: u32,
    out_offset: u32,
    _pad: [u32; 3],
}

/// Runs `shader` over the output's row blocks, bound `[src, index tables…, out]`.
fn launch(
    gpu: &Gpu<'_>,
    op: &'static str,
    shader: &Shader,
    src: &Tensor,
    tables: &[(&'static str, &PooledBuffer, usize)],
    width: usize,
    out: &Tensor,
) -> Result<()> {
    let kernel = gpu.kernel_for(shader, &Tensor::operands(["src"], [src]))?;
    let rows = out.shape()[0];
    let mut operands = vec![src.all("src")];
    operands.extend(
        tables
            .iter()
            .map(|&(name, buffer, len)| Operand::range(name, buffer.buffer(), DType::F32, 0, len)),
    );
    operands.push(out.rows("output", width));
    let mut recording = gpu.recording();
    for block in gpu.binding.row_blocks(op, rows, &[("output", width)])? {
        let bound = gpu.binding.bind_slice(op, block, &operands)?;
        let params = Params {
            rows: block.count as u32,
            width: width as u32,
            first_row: block.first as u32,
            src_offset: bound[0].skip(),
            out_offset: bound[bound.len() - 1].skip(),
            _pad: [0; 3],
        };
        let groups = (block.count * width).div_ceil(ELEMENTWISE_WORKGROUP as usize);
        recording.dispatch(&kernel, &params, &bound, groups as u32)?;
    }
    recording.submit()
}

pub(super) fn gather(
    gpu: &Gpu<'_>,
    index: &DeviceIndex,
    table: &Tensor,
    width: usize,
    out: &Tensor,
) -> Result<()> {
    let edges = out.shape()[0];
    let tables = [("index", &index.receivers, edges)];
    launch(gpu, "graph::gather", &GATHER, table, &tables, width, out)
}

pub(super) fn scatter_sum(
    gpu: &Gpu<'_>,
    index: &DeviceIndex,
    src: &Tensor,
    width: usize,
    out: &Tensor,
) -> Result<()> {
    let (edges, nodes) = (src.shape()[0], out.shape()[0]);
    let tables = [
        ("index", &index.order, edges),
        ("index", &index.offsets, nodes + 1),
    ];
    launch(
        gpu,
        "graph::scatter_sum",
        &SCATTER_SUM,
        src,
        &tables,
        width,
        out,
    )
}
