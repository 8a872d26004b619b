//! GPU launches of the sparse products: the forward (or an input gradient, with a regrouped
//! table) per output element or per few rows staged in workgroup memory, and the path
//! weights' gradient.

use crate::gpu::{shader, Operand, Shader};
use crate::op::Gpu;
use crate::so3::products::launch::{launch_products, ProductShape};
use crate::so3::products::tables::{PathTable, ProductTable};

use super::unrolled;
use crate::{Result, Tensor};

const SPARSE_PRODUCT: Shader = shader!("so3/sparse_product.wgsl");
const SPARSE_PRODUCT_ROWS: Shader = shader!("so3/sparse_product_rows.wgsl");

/// The forms of the sparse product, chosen per adapter and shape class by the device's tuner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SparseForm {
    /// A workgroup per few rows staged in workgroup memory; a thread per output index walks
    /// its terms for all of them (sparse_product.wgsl).
    Staged,
    /// A thread per output element, reading its operands from memory
    /// (sparse_product_rows.wgsl).
    Outputs,
    /// A thread per row, the table written out as FMAs (sparse_product_unrolled.wgsl), for
    /// tables of up to [`GpuOptions::unrolled_max_terms`](crate::GpuOptions::unrolled_max_terms)
    /// terms.
    Unrolled,
}

impl SparseForm {
    const ALL: [SparseForm; 3] = [
        SparseForm::Staged,
        SparseForm::Outputs,
        SparseForm::Unrolled,
    ];

    fn name(self) -> &'static str {
        match self {
            SparseForm::Staged => "staged",
            SparseForm::Outputs => "outputs",
            SparseForm::Unrolled => "unrolled",
        }
    }

    fn named(name: &str) -> Option<SparseForm> {
        SparseForm::ALL.into_iter().find(|form| form.name() == name)
    }

    /// The forms that can run `table`, written out up to `max_terms` terms.
    fn for_table(table: &ProductTable, max_terms: usize) -> Vec<SparseForm> {
        let unrolls = table.terms.len() <= max_terms;
        SparseForm::ALL
            .into_iter()
            .filter(|form| *form != SparseForm::Unrolled || unrolls)
            .collect()
    }

    /// The default form: written out on a CPU adapter where the table allows; elsewhere, and
    /// past that, a thread per output element for rows up to degree 2, staged rows above.
    /// On lavapipe (n·c = 4096, CG 0..l ⊗ 0..l → 0..l) the per-output kernel takes 3.0 ms at
    /// l = 2 against the staged one's 3.6, and 12.5 against 7.3 at l = 3; for the potential's
    /// per-edge products (l ≤ 2, 9 terms) it is 4–8× faster.
    fn default_for(gpu: &Gpu<'_>, table: &ProductTable, dims: [usize; 3]) -> SparseForm {
        let cpu = gpu.device_type == wgpu::DeviceType::Cpu;
        if cpu && table.terms.len() <= gpu.unrolled_max_terms {
            SparseForm::Unrolled
        } else if dims.into_iter().max().unwrap_or(0) <= PER_OUTPUT_MAX_DIM {
            SparseForm::Outputs
        } else {
            SparseForm::Staged
        }
    }
}

/// The widest rows (coefficients: degree 2) the per-output kernel is the default for.
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
    let forms = SparseForm::for_table(product, gpu.unrolled_max_terms);
    let names: Vec<String> = forms.iter().map(|f| f.name().to_string()).collect();
    let default = SparseForm::default_for(gpu, product, [d1, d2, shape.d3]).name();
    let dtypes: Vec<String> = operand_types.iter().map(|(_, t)| t.to_string()).collect();
    let class = format!(
        "{OP} {table_key} [{}] {}",
        (x1.shape()[0] * shape.channels).max(1).next_power_of_two(),
        dtypes.join(" ")
    );
    let run = |form: SparseForm| {
        launch_form(
            gpu,
            form,
            (&table_key, product),
            inputs,
            weights,
            shape,
            out,
            &operand_types,
        )
    };
    let chosen = gpu.tuner.choose(&class, &names, default, |name| {
        run(SparseForm::named(name).unwrap_or(SparseForm::Staged))?;
        gpu.wait()
    })?;
    run(SparseForm::named(&chosen).unwrap_or(SparseForm::Staged))
}

/// [`sparse_product`] in `form`.
#[allow(clippy::too_many_arguments)]
fn launch_form(
    gpu: &Gpu<'_>,
    form: SparseForm,
    (table_key, product): (&str, &ProductTable),
    inputs: [&Tensor; 2],
    weights: Option<&PathWeights<'_>>,
    shape: &ProductShape,
    out: &Tensor,
    operand_types: &[(&str, crate::DType)],
) -> Result<()> {
    const OP: &str = "so3::product";
    let [x1, x2] = inputs;
    let written;
    let shader = match form {
        SparseForm::Staged => &SPARSE_PRODUCT,
        SparseForm::Outputs => &SPARSE_PRODUCT_ROWS,
        SparseForm::Unrolled => {
            written = unrolled::shader(table_key, product, weights.is_some());
            &written
        }
    };
    let kernel = gpu.kernel_for(shader, operand_types)?;
    let terms = gpu.constant(&format!("{table_key}/terms"), || product.gpu_terms())?;
    let starts = gpu.constant(&format!("{table_key}/starts"), || product.starts.clone())?;
    let per_group = rows_per_group(&[x1.shape()[2], x2.shape()[2]]);
    let weight_operand = match weights {
        Some(w) if w.shared => Some((w.tensor.all("weights"), None)),
        Some(w) => {
            let per_sample = shape.channels * w.paths;
            Some((w.tensor.rows("weights", per_sample), Some(per_sample)))
        }
        // The looping forms bind the terms in the weights' place (never read).
        None if form != SparseForm::Unrolled => Some((Operand::whole(terms.buffer()), None)),
        None => None,
    };
    // The written-out form reads no table, and binds none.
    let tables = match form {
        SparseForm::Unrolled => vec![],
        _ => vec![terms.buffer(), starts.buffer()],
    };
    launch_products(
        gpu,
        (OP, &kernel),
        (inputs, out),
        (weight_operand.as_slice(), &tables),
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
                w_offset: extra.first().copied().unwrap_or(0),
                per_group: per_group as u32,
                _pad: [0; 3],
            };
            let groups = match form {
                SparseForm::Staged => rows.div_ceil(per_group),
                SparseForm::Outputs => {
                    (rows * shape.d3).div_ceil(crate::gpu::ELEMENTWISE_WORKGROUP as usize)
                }
                SparseForm::Unrolled => {
                    use crate::gpu::shader_constants::so3_sparse_product_unrolled::THREADS;
                    rows.div_ceil(THREADS)
                }
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

#[cfg(test)]
mod tests {
    use super::SparseForm;
    use crate::gpu::UNROLLED_MAX_TERMS;
    use crate::so3::products::tables::{product_table, Coefficients};

    /// Tables up to the limit are written out; past it only the looping forms compete.
    #[test]
    fn tables_past_the_limit_are_not_written_out() {
        let cg = |l: usize, lout: usize| product_table(Coefficients::ClebschGordan, l, l, lout);
        let (small, large) = (cg(4, 8), cg(5, 5));
        assert!(small.terms.len() <= UNROLLED_MAX_TERMS && large.terms.len() > UNROLLED_MAX_TERMS);
        assert!(SparseForm::for_table(&small, UNROLLED_MAX_TERMS).contains(&SparseForm::Unrolled));
        assert_eq!(
            SparseForm::for_table(&large, UNROLLED_MAX_TERMS),
            [SparseForm::Staged, SparseForm::Outputs]
        );
        // A raised limit writes the larger table out too.
        assert!(SparseForm::for_table(&large, 6000).contains(&SparseForm::Unrolled));
    }
}
