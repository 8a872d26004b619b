//! Compiled pipelines, built once per shader, entry point, dtype variant and set of
//! `override` constants, inside an error scope so that a failure is an `Err`.

use std::borrow::Cow;
use std::sync::Arc;

use super::{includes, lock, specialize, GpuDevice};
use crate::dtype::DType;
use crate::{Error, Result};

/// A WGSL file and the entry point to run, known at compile time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shader {
    /// Path under `shaders/`, used as the cache key and in error messages.
    pub label: &'static str,
    pub source: &'static str,
    pub entry: &'static str,
}

/// Declares a [`Shader`] for `shaders/<path>` with entry point `main`.
macro_rules! shader {
    ($path:literal) => {
        $crate::gpu::Shader {
            label: $path,
            source: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/", $path)),
            entry: "main",
        }
    };
}
pub(crate) use shader;

/// A compiled pipeline and the layout of its bind group 0.
pub(crate) struct Kernel {
    pub(super) pipeline: wgpu::ComputePipeline,
    pub(super) layout: wgpu::BindGroupLayout,
    pub(super) label: &'static str,
}

/// Shader label, entry point and variant (dtypes and override constants).
pub(super) type KernelKey = (&'static str, &'static str, String);

impl GpuDevice {
    /// The cached pipeline for `shader`, compiled on first use inside an error scope.
    pub(crate) fn kernel(&self, shader: &Shader) -> Result<Arc<Kernel>> {
        self.kernel_with(shader, &[], &[])
    }

    /// The cached pipeline for `shader` with the named operands read as their dtypes (see
    /// [`specialize`](specialize::specialize)).
    pub(crate) fn kernel_for(
        &self,
        shader: &Shader,
        operands: &[(&str, DType)],
    ) -> Result<Arc<Kernel>> {
        self.kernel_with(shader, operands, &[])
    }

    /// [`kernel_for`](Self::kernel_for) with values for the shader's `override` constants,
    /// one pipeline per set: sizes known at pipeline creation let the driver fold branches
    /// and unroll loops (CPU drivers such as lavapipe otherwise run every branch, masked).
    pub(crate) fn kernel_with(
        &self,
        shader: &Shader,
        operands: &[(&str, DType)],
        constants: &[(&str, f64)],
    ) -> Result<Arc<Kernel>> {
        let overrides: Vec<String> = constants.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let key = (
            shader.label,
            shader.entry,
            specialize::variant_key(operands) + ";" + &overrides.join(","),
        );
        if let Some(kernel) = lock(&self.pipelines).get(&key) {
            return Ok(kernel.clone());
        }
        self.check_alive()?;
        let shader_error = |message: String| Error::Shader {
            op: crate::call::name("compile"),
            label: shader.label.to_string(),
            message,
        };
        let swaps = match self.subgroups {
            true => includes::SUBGROUP_FORMS,
            false => &[],
        };
        let source = includes::expand_with(shader.source, swaps).map_err(shader_error)?;
        let source = specialize::specialize(shader.label, &source, operands)?;
        let built = self.scoped_or(
            "pipeline",
            0,
            || {
                let module = self
                    .device
                    .create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(shader.label),
                        source: wgpu::ShaderSource::Wgsl(Cow::Borrowed(&source)),
                    });
                let pipeline =
                    self.device
                        .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                            label: Some(shader.label),
                            layout: None,
                            module: &module,
                            entry_point: Some(shader.entry),
                            compilation_options: wgpu::PipelineCompilationOptions {
                                constants,
                                ..Default::default()
                            },
                            cache: None,
                        });
                // Inside the scopes too: on a lost device the pipeline is invalid and asking it
                // for its layout is a validation error.
                let layout = pipeline.get_bind_group_layout(0);
                (module, pipeline, layout)
            },
            |error| shader_error(error.to_string()),
        );
        let (_module, pipeline, layout) = built?;
        let kernel = Arc::new(Kernel {
            layout,
            pipeline,
            label: shader.label,
        });
        lock(&self.pipelines).insert(key, kernel.clone());
        Ok(kernel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_shader_or_entry_point_is_an_error() {
        let Some(ctx) = crate::context::test_gpu(crate::GpuOptions::default()) else {
            return;
        };
        let gpu = ctx.gpu_device().unwrap();
        let type_error = Shader {
            label: "bad/type_error.wgsl",
            source: "@compute @workgroup_size(1) fn main() { let x: f32 = 1u; }",
            entry: "main",
        };
        let e = gpu
            .kernel(&type_error)
            .err()
            .expect("a type error compiled");
        assert!(
            matches!(&e, Error::Shader { label, .. } if label == "bad/type_error.wgsl"),
            "{e}"
        );
        let no_entry = Shader {
            label: "bad/no_entry.wgsl",
            source: "@compute @workgroup_size(1) fn main() {}",
            entry: "missing",
        };
        assert!(matches!(gpu.kernel(&no_entry), Err(Error::Shader { .. })));
        let unknown_include = Shader {
            label: "bad/include.wgsl",
            source: "// #include \"nowhere.inc.wgsl\"\n@compute @workgroup_size(1) fn main() {}",
            entry: "main",
        };
        assert!(matches!(
            gpu.kernel(&unknown_include),
            Err(Error::Shader { .. })
        ));
        // The device is still usable afterwards.
        assert_eq!(
            ctx.tensor(&[2.0], &[1]).unwrap().to_vec().unwrap(),
            vec![2.0]
        );
    }
}
