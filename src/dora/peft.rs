//! DoRA adapters on disk in Hugging Face PEFT's layout, so that what is trained here loads
//! with `PeftModel.from_pretrained(base, dir)` and the other way round.
//!
//! A directory holds `adapter_model.safetensors` and `adapter_config.json`. For a layer at
//! module path `<m>` of the base model (e.g. `model.layers.0.self_attn.q_proj`) the file has
//! `base_model.model.<m>.lora_A.weight [r, d_in]`, `base_model.model.<m>.lora_B.weight
//! [d_out, r]` and `base_model.model.<m>.lora_magnitude_vector [d_out]` (no `.weight`, no
//! adapter name: PEFT strips both when it saves). PEFT scales the adapter by
//! `lora_alpha / r`, so `lora_alpha = s·r`; its DoRA detaches the norm, as
//! [`NormGradient::Detached`](super::NormGradient::Detached) does.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use crate::{Context, DType, Error, Result, Tensor};

/// The file of the tensors in a PEFT adapter directory.
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";
/// The file of the adapter's settings in a PEFT adapter directory.
pub const CONFIG_FILE: &str = "adapter_config.json";

const PREFIX: &str = "base_model.model.";
const A: &str = ".lora_A.weight";
const B: &str = ".lora_B.weight";
const MAGNITUDE: &str = ".lora_magnitude_vector";

/// One adapted linear layer: its module path in the base model and its trained tensors,
/// `a [r, d_in]`, `b [d_out, r]`, `magnitude [d_out]` (f32, f16 or bf16; saved as they are).
#[derive(Debug)]
pub struct AdapterLayer {
    /// The layer's module path in the base model, e.g. `model.layers.0.self_attn.q_proj`.
    pub module: String,
    /// `A [r, d_in]`.
    pub a: Tensor,
    /// `B [d_out, r]`.
    pub b: Tensor,
    /// `m [d_out]`.
    pub magnitude: Tensor,
}

/// Writes `layers` (one rank `r` for all, scale `s` so that `lora_alpha = s·r`) into `dir`
/// as a PEFT DoRA adapter; `dir` is created if missing. Every layer is checked before
/// anything is written.
///
/// ```no_run
/// # fn main() -> wgkernels::Result<()> {
/// # let ctx = wgkernels::Context::cpu();
/// use wgkernels::dora::peft::{save, AdapterLayer};
/// let layer = AdapterLayer {
///     module: "model.layers.0.mlp.down_proj".into(),
///     a: ctx.tensor(&[0.1; 8], &[2, 4])?,
///     b: ctx.tensor(&[0.0; 6], &[3, 2])?,
///     magnitude: ctx.tensor(&[1.0; 3], &[3])?,
/// };
/// save(std::path::Path::new("adapter"), &[layer], 2.0)?;
/// # Ok(())
/// # }
/// ```
pub fn save(dir: &Path, layers: &[AdapterLayer], scale: f32) -> Result<()> {
    let _call = crate::call::Call::enter("dora::peft::save");
    const OP: &str = "dora::peft::save";
    let rank = check_layers(OP, layers)?;
    if !scale.is_finite() {
        return Err(Error::InvalidArgument {
            op: OP,
            arg: "scale",
            message: format!("must be finite, got {scale}"),
        });
    }
    let mut tensors = Vec::new();
    for layer in layers {
        for (suffix, tensor) in [(A, &layer.a), (B, &layer.b), (MAGNITUDE, &layer.magnitude)] {
            let name = format!("{PREFIX}{}{suffix}", layer.module);
            tensors.push((name, encode(tensor)?));
        }
    }
    let views = tensors
        .iter()
        .map(|(name, (dtype, shape, bytes))| {
            safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes)
                .map(|view| (name.clone(), view))
                .map_err(|e| file_error(OP, dir, e))
        })
        .collect::<Result<Vec<_>>>()?;
    let config = config_json(layers, rank, scale);
    std::fs::create_dir_all(dir).map_err(|e| file_error(OP, dir, e))?;
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize_to_file(views, Some(metadata), &dir.join(WEIGHTS_FILE))
        .map_err(|e| file_error(OP, dir, e))?;
    std::fs::write(dir.join(CONFIG_FILE), config).map_err(|e| file_error(OP, dir, e))
}

/// Reads the PEFT DoRA adapter in `dir` onto `ctx`: its layers (in module-path order, each
/// tensor in the dtype it was saved in) and the scale `s = lora_alpha / r`.
pub fn load(ctx: &Context, dir: &Path) -> Result<(Vec<AdapterLayer>, f32)> {
    let _call = crate::call::Call::enter("dora::peft::load");
    const OP: &str = "dora::peft::load";
    let bytes = std::fs::read(dir.join(WEIGHTS_FILE)).map_err(|e| file_error(OP, dir, e))?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| file_error(OP, dir, e))?;
    let mut modules: BTreeMap<String, [Option<Tensor>; 3]> = BTreeMap::new();
    for name in file.names() {
        let (module, slot) = [A, B, MAGNITUDE]
            .iter()
            .enumerate()
            .find_map(|(slot, suffix)| {
                let module = name.strip_prefix(PREFIX)?.strip_suffix(suffix)?;
                Some((module, slot))
            })
            .ok_or_else(|| Error::InvalidArgument {
                op: OP,
                arg: "dir",
                message: format!(
                    "holds `{name}`, not a DoRA key (`{PREFIX}<module>{A}`, `{B}` or `{MAGNITUDE}`)"
                ),
            })?;
        let view = file.tensor(name).map_err(|e| file_error(OP, dir, e))?;
        let tensor = decode(ctx, OP, name, view.dtype(), view.shape(), view.data())?;
        modules.entry(module.to_string()).or_default()[slot] = Some(tensor);
    }
    let layers = modules
        .into_iter()
        .map(|(module, [a, b, magnitude])| {
            let missing = |suffix: &str| Error::InvalidArgument {
                op: OP,
                arg: "dir",
                message: format!("has no `{PREFIX}{module}{suffix}`"),
            };
            Ok(AdapterLayer {
                a: a.ok_or_else(|| missing(A))?,
                b: b.ok_or_else(|| missing(B))?,
                magnitude: magnitude.ok_or_else(|| missing(MAGNITUDE))?,
                module,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let rank = check_layers(OP, &layers)?;
    let config =
        std::fs::read_to_string(dir.join(CONFIG_FILE)).map_err(|e| file_error(OP, dir, e))?;
    let alpha = config_number(&config, "lora_alpha").ok_or_else(|| Error::InvalidArgument {
        op: OP,
        arg: "dir",
        message: format!("{CONFIG_FILE} has no numeric `lora_alpha`"),
    })?;
    Ok((layers, (alpha / rank as f64) as f32))
}

/// The common rank of `layers`; `Err` naming the first layer whose shapes do not fit
/// together, an empty or repeated module path, or no layers at all.
fn check_layers(op: &'static str, layers: &[AdapterLayer]) -> Result<usize> {
    let Some(first) = layers.first() else {
        return Err(Error::InvalidArgument {
            op,
            arg: "layers",
            message: "is empty: an adapter has at least one layer".into(),
        });
    };
    let rank = first.a.shape().first().copied().unwrap_or(0);
    let mut seen = std::collections::HashSet::new();
    for layer in layers {
        let m = &layer.module;
        if m.is_empty() || !seen.insert(m.as_str()) {
            return Err(Error::InvalidArgument {
                op,
                arg: "layers",
                message: format!("has an empty or repeated module path `{m}`"),
            });
        }
        let (a, b, g) = (layer.a.shape(), layer.b.shape(), layer.magnitude.shape());
        let fits = matches!((a, b, g), (&[r, _], &[d_out, r_b], &[d_g]) if r == rank && r_b == r && d_g == d_out);
        if !fits {
            return Err(Error::Shape {
                op,
                message: format!(
                    "layer `{m}`: `a` {a:?}, `b` {b:?}, `magnitude` {g:?} must be [r, d_in], [d_out, r], [d_out] with one r = {rank} for every layer"
                ),
            });
        }
    }
    Ok(rank)
}

/// A tensor's safetensors dtype, shape and little-endian bytes (exact: f16 and bf16 are
/// written as such, in the device encoding without its padding to whole words).
fn encode(t: &Tensor) -> Result<(Dtype, Vec<usize>, Vec<u8>)> {
    let values = t.to_vec()?;
    let mut bytes = t.dtype().encode(&values);
    bytes.truncate(values.len() * t.dtype().size());
    let dtype = match t.dtype() {
        DType::F32 => Dtype::F32,
        DType::F16 => Dtype::F16,
        DType::BF16 => Dtype::BF16,
    };
    Ok((dtype, t.shape().to_vec(), bytes))
}

/// A tensor on `ctx` from a safetensors entry of dtype F32, F16 or BF16.
fn decode(
    ctx: &Context,
    op: &'static str,
    name: &str,
    dtype: Dtype,
    shape: &[usize],
    bytes: &[u8],
) -> Result<Tensor> {
    let ours = match dtype {
        Dtype::F32 => DType::F32,
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        other => {
            return Err(Error::InvalidArgument {
                op,
                arg: "dir",
                message: format!("holds `{name}` as {other:?}; adapters are F32, F16 or BF16"),
            })
        }
    };
    let len = bytes.len() / ours.size();
    ctx.tensor_as(&ours.decode(bytes, len), shape, ours)
}

/// PEFT's `adapter_config.json` for a DoRA adapter on `layers`: `target_modules` lists the
/// layers' last path components, as PEFT's own configs do.
fn config_json(layers: &[AdapterLayer], rank: usize, scale: f32) -> String {
    let targets: std::collections::BTreeSet<&str> = layers
        .iter()
        .map(|layer| layer.module.rsplit('.').next().unwrap_or(&layer.module))
        .collect();
    let config = serde_json::json!({
        "peft_type": "LORA",
        "use_dora": true,
        "r": rank,
        "lora_alpha": scale as f64 * rank as f64,
        "target_modules": targets,
        "lora_dropout": 0.0,
        "bias": "none",
        "fan_in_fan_out": false,
        "use_rslora": false,
        "init_lora_weights": true,
        "base_model_name_or_path": null,
        "task_type": null,
    });
    format!("{config:#}\n")
}

/// The number at `key` in a JSON object.
fn config_number(json: &str, key: &str) -> Option<f64> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    value.get(key)?.as_f64()
}

fn file_error(op: &'static str, dir: &Path, e: impl std::fmt::Display) -> Error {
    Error::File {
        op,
        path: dir.display().to_string(),
        message: e.to_string(),
    }
}
