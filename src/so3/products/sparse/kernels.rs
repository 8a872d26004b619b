//! GPU launches of the sparse products: the forward (or an input gradient, with a regrouped
//! table) per output element or per few rows staged in workgroup memory, and the path
//! weights' gradient.

use crate::gpu::{shader, Operand, Shader};
use crate::op::Gpu;
use crate::so3::products::launch::{launch_products, ProductShape};
use crate::so3::products::tables::{PathTable, ProductTable};
use crate::{Result, Tensor};

const SPARSE_PRODUCT: Shader = shader!("so3/sparse_product.wgsl");
const SPARSE_PRODUCT_ROWS: Shader = shader!("so3/sparse_product_rows.wgsl");

/// Whether a product is small enough for one thread per output element
/// (sparse_product_rows.wgsl) rather than a workgroup per few rows staged in workgroup memory.
/// On lavapipe (n·c = 4096, CG 0..l ⊗ 0..l → 0..l) the per-output kernel takes 3.0 ms at l = 2
/// against the staged one's 3.6, and 12.5 against 7.3 at l = 3; for the potential's per-edge
/// products (l ≤ 2, 9 terms) it is 4–8× faster.
fn per_output(d1: usize, d2: usize, d3: usize) -> bool {
    d1.max(d2).max(d3) <= PER_OUTPUT_MAX_DIM
}

/// The widest rows (coefficients: degree 2) the per-output kernel is chosen for.
const PER_OUTPUT_MAX_DIM: usize = 9;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ProductParams {
    rows: u32,
    d1: u32,
    d2: u32,
    d3: u32,
    group: u32,
    x1_offset: u32,
    x2_offset: u32,
    out_offset: u32,
    weighted: u32,
    paths: u32,
    w_channels: u32,
    w_offset: u32,
    per_group: u32,
    _pad: [u32; 3],
}

/// Rows a product workgroup stages at once: up to ROWS, as many as STAGE floats hold at the
/// widest of `widths` (4 up to degree 16, 1 at MAX_L).
fn rows_per_group(widths: &[usize]) -> usize {
    use crate::gpu::shader_constants::so3_sparse_product::{ROWS, STAGE};
    let widest = widths.iter().copied().max().unwrap_or(1).max(1);
    (STAGE / widest).clamp(1, ROWS)
}

/// Path weights of a product on the device: `[samples, channels, paths]`, or
/// `[1, channels, paths]` shared by every sample.
pub(crate) struct PathWeights<'a> {
    pub tensor: &'a Tensor,
    pub paths: usize,
    pub shared: bool,
}

/// `out[s, c, :] = table(x1[s, c, :], x2[s, c or 0, :])` for `samples × channels` rows, each
/// term times its path's weight when `weights` are given.
pub(crate) fn sparse_product(
    gpu: &Gpu<'_>,
    table_key: String,
    product: &ProductTable,
    inputs: [&Tensor; 2],
    weights: Option<&PathWeights<'_>>,
    shape: &ProductShape,
    out: &Tensor,
) -> Result<()> {
    const OP: &str = "so3::product";
    let _call = crate::call::Call::enter(OP);
    let [x1, x2] = inputs;
    let mut operand_types = Tensor::operands(["x1", "x2"], inputs).to_vec();
    if let Some(w) = weights {
        operand_types.push(("weights", w.tensor.dtype()));
    }
    let (d1, d2) = (x1.shape()[2], x2.shape()[2]);
    let small = per_output(d1, d2, shape.d3);
    let shader = if small {
        &SPARSE_PRODUCT_ROWS
    } else {
        &SPARSE_PRODUCT
    };
    let kernel = gpu.kernel_for(shader, &operand_types)?;
    let terms = gpu.constant(&format!("{table_key}/terms"), || product.gpu_terms())?;
    let starts = gpu.constant(&format!("{table_key}/starts"), || product.starts.clone())?;
    let tables = [terms.buffer(), starts.buffer()];
    let per_group = rows_per_group(&[x1.shape()[2], x2.shape()[2]]);
    // Unweighted products bind the terms in the weights' place (never read).
    let weight_operand = match weights {
        Some(w) if w.shared => (w.tensor.all("weights"), None),
        Some(w) => {
            let per_sample = shape.channels * w.paths;
            (w.tensor.rows("weights", per_sample), Some(per_sample))
        }
        None => (Operand::whole(terms.buffer()), None),
    };
    launch_products(
        gpu,
        (OP, &kernel),
        (inputs, out),
        (&[weight_operand], &tables),
        shape,
        |rows, [s1, s2, so], extra| {
            let params = ProductParams {
                rows: rows as u32,
                d1: x1.shape()[2] as u32,
                d2: x2.shape()[2] as u32,
                d3: shape.d3 as u32,
                group: if shape.broadcast {
                    shape.channels as u32
                } else {
                    1
                },
                x1_offset: s1,
                x2_offset: s2,
                out_offset: so,
                weighted: weights.is_some() as u32,
                paths: weights.map_or(0, |w| w.paths) as u32,
                w_channels: match weights {
                    Some(w) if w.shared => shape.channels as u32,
                    _ => 0,
                },
                w_offset: extra[0],
                per_group: per_group as u32,
                _pad: [0; 3],
            };
            let groups = if small {
                (rows * shape.d3).div_ceil(crate::gpu::ELEMENTWISE_WORKGROUP as usize)
            } else {
                rows.div_ceil(per_group)
            };
            (params, groups as u32)
        },
    )
}

const PATH_GRADIENT: Shader = shader!("so3/path_gradient.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PathGradientParams {
    rows: u32,
    d1: u32,
    d2: u32,
    d3: u32,
    group: u32,
    paths: u32,
    x1_offset: u32,
    x2_offset: u32,
    g_offset: u32,
    out_offset: u32,
    _pad: [u32; 2],
}

/// `out[s, c, p] = Σ_{terms of p} C·x1[s, c, i1]·x2[s, c or 0, i2]·g[s, c, i3]`: the
/// gradient of per-row path weights, `[samples, channels, paths]`.
pub(crate) fn path_gradient(
    gpu: &Gpu<'_>,
    table_key: String,
    paths: &PathTable,
    [x1, x2, g]: [&Tensor; 3],
    shape: &ProductShape,
    out: &Tensor,
) -> Result<()> {
    const OP: &str = "so3::weighted_cg_product_backward";
    let _call = crate::call::Call::enter(OP);
    let count = paths.starts.len() - 1;
    let kernel = gpu.kernel_for(
        &PATH_GRADIENT,
        &Tensor::operands(["x1", "x2", "g"], [x1, x2, g]),
    )?;
    let terms = gpu.constant(&format!("{table_key}/path_terms"), || paths.gpu_terms())?;
    let starts = gpu.constant(&format!("{table_key}/path_starts"), || paths.starts.clone())?;
    let d3 = g.shape()[2];
    let g_operand = (
        g.rows("d_out", shape.channels * d3),
        Some(shape.channels * d3),
    );
    // The product's layout with out = ∂w ([s, c, paths]) and g as an extra input.
    let as_product = ProductShape {
        channels: shape.channels,
        broadcast: shape.broadcast,
        d3: count,
    };
    launch_products(
        gpu,
        (OP, &kernel),
        ([x1, x2], out),
        (&[g_operand], &[terms.buffer(), starts.buffer()]),
        &as_product,
        |rows, [s1, s2, so], extra| {
            let params = PathGradientParams {
                rows: rows as u32,
                d1: x1.shape()[2] as u32,
                d2: x2.shape()[2] as u32,
                d3: d3 as u32,
                group: if shape.broadcast {
                    shape.channels as u32
                } else {
                    1
                },
                paths: count as u32,
                x1_offset: s1,
                x2_offset: s2,
                g_offset: extra[0],
                out_offset: so,
                _pad: [0; 2],
            };
            let groups = (rows * count).div_ceil(crate::gpu::ELEMENTWISE_WORKGROUP as usize);
            (params, groups as u32)
        },
    )
}
