//! Helpers shared by the integration tests.
#![allow(dead_code)]

#[cfg(feature = "burn")]
pub mod burn;
pub mod dora;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wgkernels::{Context, GpuOptions, Tuning};

/// A GPU context that poisons fresh outputs with NaN, or `None` (test skipped) where there is
/// no adapter — unless `WGKERNELS_REQUIRE_GPU=1`, where a missing adapter fails the test.
pub fn gpu() -> Option<Context> {
    gpu_with(GpuOptions::default())
}

pub fn gpu_with(options: GpuOptions) -> Option<Context> {
    // Tests run the default forms (or the one they force): what they run never depends on
    // timings.
    let tuning = match options.tuning {
        Tuning::Measure { .. } => Tuning::Defaults,
        forced => forced,
    };
    let options = GpuOptions {
        poison_outputs: true,
        tuning,
        ..options
    };
    match Context::gpu_with(options) {
        Ok(ctx) => Some(ctx),
        Err(e) if std::env::var("WGKERNELS_REQUIRE_GPU").as_deref() == Ok("1") => {
            panic!("WGKERNELS_REQUIRE_GPU=1 but no GPU context: {e}")
        }
        Err(e) => {
            eprintln!("skipping GPU test: {e}");
            None
        }
    }
}

/// The CPU path, the default GPU context, and a second GPU context with what the default
/// does not run: the reductions' workgroup-memory forms (`GpuOptions::subgroups = false`) and
/// the GEMM's and linear attention's forms that are not this adapter's defaults (tiled on a
/// CPU adapter, rows on a GPU). Every form a test should see on this machine.
pub fn every_path() -> Vec<Context> {
    let mut all = vec![Context::cpu()];
    if let Some(gpu) = gpu() {
        let cpu_adapter = gpu.device_type() == Some(wgkernels::wgpu::DeviceType::Cpu);
        // The GEMM's and linear attention's other forms.
        let other_form = if cpu_adapter {
            "tiled,tiles"
        } else {
            "rows16x4x16,rows"
        };
        all.push(gpu);
        all.extend(gpu_with(GpuOptions {
            subgroups: false,
            tuning: Tuning::Force(other_form.into()),
            ..Default::default()
        }));
    }
    all
}

/// The sparse products' forms (`so3/sparse_product*.wgsl`), which the tuner chooses among:
/// workgroup-staged rows, a thread per output element, and the table written out.
pub const SPARSE_FORMS: [&str; 3] = ["staged", "outputs", "unrolled"];

/// A GPU context per sparse product form, each forced (a table too large to write out runs
/// its default form there).
pub fn gpu_per_sparse_form() -> Vec<Context> {
    SPARSE_FORMS
        .iter()
        .filter_map(|form| {
            gpu_with(GpuOptions {
                tuning: Tuning::Force(form.to_string()),
                ..Default::default()
            })
        })
        .collect()
}

/// [`gpu`] with at most 7 workgroups per dispatch dimension, so that every kernel's grid is
/// folded into two dimensions at test sizes, as 65535 folds it on real devices.
pub fn gpu_with_folded_grids() -> Option<Context> {
    gpu_with(GpuOptions {
        max_workgroups_per_dimension: Some(7),
        ..Default::default()
    })
}

/// A fresh random generator; the seed is printed so that a failure can be replayed with
/// `WGKERNELS_SEED`.
pub fn rng() -> StdRng {
    let seed = std::env::var("WGKERNELS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("WGKERNELS_SEED={seed}");
    StdRng::seed_from_u64(seed)
}

/// `len` values uniform in [-1, 1).
pub fn uniform(rng: &mut StdRng, len: usize) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// `max_i |a_i − b_i|`.
pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// `‖got − want‖ / ‖want‖`, both in f64 (the f64 references against finite differences).
pub fn relative_error_f64(got: &[f64], want: &[f64]) -> f64 {
    let diff: f64 = got.iter().zip(want).map(|(a, b)| (a - b).powi(2)).sum();
    let norm: f64 = want.iter().map(|b| b * b).sum();
    (diff / norm).sqrt()
}

/// A uniformly random rotation (from a uniformly random unit quaternion).
pub fn random_rotation(rng: &mut StdRng) -> wgkernels::so3::Rotation {
    loop {
        let q: [f64; 4] = std::array::from_fn(|_| rng.random_range(-1.0..1.0));
        if q.iter().map(|x| x * x).sum::<f64>() <= 1.0 {
            return wgkernels::so3::Rotation::from_quaternion(q).expect("a nonzero quaternion");
        }
    }
}

/// f32 values as f64.
pub fn wide(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

/// `∂f/∂x` by central differences with step 1e-5.
pub fn central_differences(f: impl Fn(&[f64]) -> f64, x: &[f64]) -> Vec<f64> {
    let h = 1e-5;
    (0..x.len())
        .map(|i| {
            let (mut plus, mut minus) = (x.to_vec(), x.to_vec());
            plus[i] += h;
            minus[i] -= h;
            (f(&plus) - f(&minus)) / (2.0 * h)
        })
        .collect()
}

/// `[rows·group, d]` summed over each group of consecutive rows: `[rows, d]`.
pub fn sum_groups(x: &[f64], group: usize, d: usize) -> Vec<f64> {
    x.chunks(group * d)
        .flat_map(|block| (0..d).map(move |i| (0..group).map(|r| block[r * d + i]).sum::<f64>()))
        .collect()
}
