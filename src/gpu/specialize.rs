//! Half-precision forms of a shader, generated from its f32 form.
//!
//! WGSL has no generics, so a kernel is written once in f32 and reads each operand that may
//! be stored in half precision through a one-line loader, declared right after the binding:
//!
//! ```wgsl
//! @group(0) @binding(1) var<storage, read> base: array<f32>;
//! fn read_base(i: u32) -> f32 { return base[i]; }
//! ```
//!
//! For an f16 or bf16 operand the binding becomes `array<u32>` (two values per word, element
//! `2k` in the low half) and the loader unpacks to f32, so arithmetic stays f32 throughout.
//! f16 uses WGSL's `unpack2x16float`; bf16 has no WGSL type and is widened by a shift (it is
//! the top half of an f32).

use crate::dtype::DType;
use crate::{Error, Result};

/// The source of `shader` with each named operand read as its dtype; `Err` when the shader
/// does not declare that operand in the form above.
pub(crate) fn specialize(label: &str, source: &str, operands: &[(&str, DType)]) -> Result<String> {
    let mut out = source.to_string();
    for &(name, dtype) in operands {
        if dtype == DType::F32 {
            continue;
        }
        let declaration = format!("var<storage, read> {name}: array<f32>;");
        let loader = format!("fn read_{name}(i: u32) -> f32 {{ return {name}[i]; }}");
        if !out.contains(&declaration) || !out.contains(&loader) {
            return Err(Error::Shader {
                op: crate::call::name("compile"),
                label: label.to_string(),
                message: format!(
                    "operand `{name}` has no f32 binding with a read_{name} loader to specialize"
                ),
            });
        }
        let unpack = match dtype {
            DType::F16 => format!("unpack2x16float({name}[i >> 1u])[i & 1u]"),
            DType::BF16 => format!("bitcast<f32>(({name}[i >> 1u] >> (16u * (i & 1u))) << 16u)"),
            DType::F32 => unreachable!(),
        };
        out = out
            .replace(
                &declaration,
                &format!("var<storage, read> {name}: array<u32>;"),
            )
            .replace(
                &loader,
                &format!("fn read_{name}(i: u32) -> f32 {{ return {unpack}; }}"),
            );
    }
    Ok(out)
}

/// The cache key of a specialization: `"base=f16,lora=bf16"`, empty when all are f32.
pub(crate) fn variant_key(operands: &[(&str, DType)]) -> String {
    operands
        .iter()
        .filter(|(_, dtype)| *dtype != DType::F32)
        .map(|(name, dtype)| format!("{name}={dtype}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shader with `read_<name>` loaders validates with naga in every dtype. (A loader
    /// over some other binding — `read_q` of `attention/qkv_vec4.inc.wgsl`, over q as vec4s —
    /// belongs to an f32-only kernel, which the host never specializes.)
    #[test]
    fn every_half_precision_form_validates() {
        let mut checked = 0;
        for (label, text) in crate::gpu::includes::kernels() {
            let source = crate::gpu::includes::expand(text).unwrap();
            let names: Vec<&str> = source
                .split("fn read_")
                .skip(1)
                .filter_map(|rest| rest.split('(').next())
                .filter(|name| source.contains(&format!("var<storage, read> {name}: array<f32>;")))
                .collect();
            for dtype in [DType::F16, DType::BF16] {
                let operands: Vec<(&str, DType)> = names.iter().map(|n| (*n, dtype)).collect();
                let specialized = specialize(label, &source, &operands).unwrap();
                let module = naga::front::wgsl::parse_str(&specialized).unwrap_or_else(|e| {
                    panic!("{label} {dtype}: {}", e.emit_to_string(&specialized))
                });
                naga::valid::Validator::new(
                    naga::valid::ValidationFlags::all(),
                    naga::valid::Capabilities::all(),
                )
                .validate(&module)
                .unwrap_or_else(|e| panic!("{label} {dtype}: {e:?}"));
                checked += !names.is_empty() as usize;
            }
        }
        assert!(checked >= 14, "only {checked} specializations checked");
    }

    #[test]
    fn an_operand_without_a_loader_is_an_error() {
        let source = "@group(0) @binding(0) var<storage, read> x: array<f32>;";
        assert!(specialize("t", source, &[("x", DType::F16)]).is_err());
        assert_eq!(
            specialize("t", source, &[("x", DType::F32)]).unwrap(),
            source
        );
        assert_eq!(
            variant_key(&[("x", DType::F32), ("y", DType::BF16)]),
            "y=bf16"
        );
    }
}
