//! Which form of the GEMM runs a product: per adapter and shape class, by the device's
//! [`Tuner`](crate::gpu::tune::Tuner).

use super::gemm::Gemm;
use super::kernels::{GemmForm, ROWS_TILES};
use crate::dtype::DType;
use crate::gpu::GpuDevice;
use crate::{Context, Result};

/// The shape class of a product: `op`, each dimension rounded up to a power of two, the
/// transposes and the operands' dtypes, e.g. `matmul [1024, 64, 512] NT f32 f16`.
pub(super) fn class(op: &str, g: Gemm, [a, b]: [DType; 2]) -> String {
    let p = |x: usize| x.max(1).next_power_of_two();
    let t = |transposed: bool| if transposed { 'T' } else { 'N' };
    format!(
        "{op} [{}, {}, {}] {}{} {a} {b}",
        p(g.m),
        p(g.n),
        p(g.k),
        t(g.transpose_a),
        t(g.transpose_b)
    )
}

/// The default form: on a CPU adapter the register-blocked rows, in the widest tile that C's
/// columns fill (the narrowest where none does); the tiled kernel elsewhere.
fn default_form(gpu: &GpuDevice, g: Gemm) -> GemmForm {
    match gpu.device_type {
        wgpu::DeviceType::Cpu => {
            let fits = ROWS_TILES.into_iter().find(|t| t.columns() <= g.n);
            GemmForm::Rows(fits.unwrap_or(ROWS_TILES[ROWS_TILES.len() - 1]))
        }
        _ => GemmForm::Tiled,
    }
}

fn names() -> Vec<String> {
    GemmForm::tunable().map(|form| form.name()).collect()
}

/// The form `op` on `g` runs with now: forced, remembered or default; never timed.
pub(super) fn chosen_form(gpu: &GpuDevice, op: &str, g: Gemm, dtypes: [DType; 2]) -> GemmForm {
    let default = default_form(gpu, g).name();
    let name = gpu.tuner.chosen(&class(op, g, dtypes), &names(), &default);
    GemmForm::named(&name).unwrap_or(GemmForm::Tiled)
}

/// The form to run `op` on `g` with, timing every form by `run` (which runs one to
/// completion) on the first call of the shape class where the device measures.
pub(super) fn choose_form(
    gpu: &GpuDevice,
    op: &str,
    g: Gemm,
    dtypes: [DType; 2],
    mut run: impl FnMut(GemmForm) -> Result<()>,
) -> Result<GemmForm> {
    let default = default_form(gpu, g).name();
    let name = gpu
        .tuner
        .choose(&class(op, g, dtypes), &names(), &default, |name| {
            run(GemmForm::named(name).unwrap_or(GemmForm::Tiled))
        })?;
    Ok(GemmForm::named(&name).unwrap_or(GemmForm::Tiled))
}

impl Gemm {
    /// The form of the GEMM that [`matmul`](super::matmul) runs this product with on `ctx`:
    /// `"tiled"` (64×64 workgroup tiles), `"rows<r>x<v>x<t>"` (register-blocked rows), or
    /// `"cpu"` on the CPU path. Where the context measures ([`Tuning`](crate::Tuning)) and this
    /// shape class has not run yet, the default form, which its first call may replace.
    pub fn form(&self, ctx: &Context) -> String {
        match ctx.gpu_device() {
            Some(gpu) => {
                let dtypes = [crate::DType::F32; 2];
                chosen_form(gpu, "matmul", *self, dtypes).name()
            }
            None => "cpu".into(),
        }
    }
}
