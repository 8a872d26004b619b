//! DoRA adapters saved and loaded in Hugging Face PEFT's layout (`dora::peft`).

mod common;

use std::path::PathBuf;

use safetensors::SafeTensors;
use wgkernels::dora::peft::{self, AdapterLayer};
use wgkernels::{Context, DType, Error};

/// A fresh directory under the system's temp dir (removed at the end of the test).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "wgkernels-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Two layers of rank 3 (d_in 5 and 7, d_out 4 and 6), the second with bf16 A and an f16
/// magnitude.
fn layers(ctx: &Context) -> Vec<AdapterLayer> {
    let mut rng = common::rng();
    let mut t = |shape: &[usize], dtype: DType| {
        let len = shape.iter().product();
        ctx.tensor_as(&common::uniform(&mut rng, len), shape, dtype)
            .unwrap()
    };
    vec![
        AdapterLayer {
            module: "model.layers.1.mlp.down_proj".into(),
            a: t(&[3, 7], DType::BF16),
            b: t(&[6, 3], DType::F32),
            magnitude: t(&[6], DType::F16),
        },
        AdapterLayer {
            module: "model.layers.0.self_attn.q_proj".into(),
            a: t(&[3, 5], DType::F32),
            b: t(&[4, 3], DType::F32),
            magnitude: t(&[4], DType::F32),
        },
    ]
}

fn contexts() -> Vec<Context> {
    let mut contexts = vec![Context::cpu()];
    contexts.extend(common::gpu());
    contexts
}

#[test]
fn an_adapter_round_trips_exactly_with_peft_key_names() {
    for ctx in contexts() {
        let name = ctx.device_name();
        let dir = TempDir::new("round-trip");
        let saved = layers(&ctx);
        peft::save(&dir.0, &saved, 2.5).unwrap();

        // The file as PEFT reads it: its key names, shapes, dtypes and metadata.
        let bytes = std::fs::read(dir.0.join(peft::WEIGHTS_FILE)).unwrap();
        let file = SafeTensors::deserialize(&bytes).unwrap();
        let mut keys = file.names();
        keys.sort();
        assert_eq!(
            keys,
            [
                "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
                "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
                "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector",
                "base_model.model.model.layers.1.mlp.down_proj.lora_A.weight",
                "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight",
                "base_model.model.model.layers.1.mlp.down_proj.lora_magnitude_vector",
            ]
        );
        let a = file
            .tensor("base_model.model.model.layers.1.mlp.down_proj.lora_A.weight")
            .unwrap();
        assert_eq!(a.shape(), [3, 7]);
        assert_eq!(a.dtype(), safetensors::Dtype::BF16);
        let (_, metadata) = SafeTensors::read_metadata(&bytes).unwrap();
        let format = metadata.metadata().as_ref().and_then(|m| m.get("format"));
        assert_eq!(format.map(String::as_str), Some("pt"));

        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.0.join(peft::CONFIG_FILE)).unwrap())
                .unwrap();
        assert_eq!(config["peft_type"], "LORA");
        assert_eq!(config["use_dora"], true);
        assert_eq!(config["r"], 3);
        assert_eq!(config["lora_alpha"], 7.5);
        assert_eq!(
            config["target_modules"],
            serde_json::json!(["down_proj", "q_proj"])
        );

        // Loaded back: every value bit-equal, in its dtype, layers in module-path order.
        let (loaded, scale) = peft::load(&ctx, &dir.0).unwrap();
        assert_eq!(scale, 2.5);
        assert_eq!(loaded.len(), 2);
        for got in &loaded {
            let want = saved.iter().find(|l| l.module == got.module).unwrap();
            for (g, w) in [
                (&got.a, &want.a),
                (&got.b, &want.b),
                (&got.magnitude, &want.magnitude),
            ] {
                assert_eq!(g.shape(), w.shape(), "{name}");
                assert_eq!(g.dtype(), w.dtype(), "{name}");
                let bits = |t: &wgkernels::Tensor| -> Vec<u32> {
                    t.to_vec().unwrap().iter().map(|x| x.to_bits()).collect()
                };
                assert_eq!(bits(g), bits(w), "{name} {}", got.module);
            }
        }
        assert_eq!(loaded[0].module, "model.layers.0.self_attn.q_proj");
    }
}

#[test]
fn bad_adapters_are_refused_before_anything_is_written() {
    let ctx = Context::cpu();
    let dir = TempDir::new("refused");
    let mut bad = layers(&ctx);
    bad[1].b = ctx.tensor(&[1.0; 8], &[4, 2]).unwrap(); // rank 2 against 3
    match peft::save(&dir.0, &bad, 1.0) {
        Err(Error::Shape { op, message }) => {
            assert_eq!(op, "dora::peft::save");
            assert!(
                message.contains("model.layers.0.self_attn.q_proj"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    let mut repeated = layers(&ctx);
    repeated[1].module = repeated[0].module.clone();
    assert!(matches!(
        peft::save(&dir.0, &repeated, 1.0),
        Err(Error::InvalidArgument { arg: "layers", .. })
    ));
    assert!(matches!(
        peft::save(&dir.0, &[], 1.0),
        Err(Error::InvalidArgument { arg: "layers", .. })
    ));
    assert!(matches!(
        peft::save(&dir.0, &layers(&ctx), f32::NAN),
        Err(Error::InvalidArgument { arg: "scale", .. })
    ));
    assert!(!dir.0.exists(), "a refused save wrote {:?}", dir.0);
    // Loading what is not there, or not a DoRA adapter.
    match peft::load(&ctx, &dir.0) {
        Err(e @ Error::File { .. }) => {
            assert!(e.to_string().starts_with("dora::peft::load: `"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_file_with_a_missing_or_foreign_key_is_an_err() {
    let ctx = Context::cpu();
    let dir = TempDir::new("foreign");
    peft::save(&dir.0, &layers(&ctx), 1.0).unwrap();
    let file = dir.0.join(peft::WEIGHTS_FILE);
    let bytes = std::fs::read(&file).unwrap();
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    let rewrite = |keep: &dyn Fn(&str) -> bool, extra: Option<&str>| {
        let mut views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
            .names()
            .into_iter()
            .filter(|name| keep(name))
            .map(|name| (name.to_string(), tensors.tensor(name).unwrap()))
            .collect();
        if let Some(extra) = extra {
            let view = tensors.names()[0];
            views.push((extra.to_string(), tensors.tensor(view).unwrap()));
        }
        safetensors::serialize(views, None).unwrap()
    };
    let without_magnitude = rewrite(
        &|name| !name.ends_with("q_proj.lora_magnitude_vector"),
        None,
    );
    std::fs::write(&file, without_magnitude).unwrap();
    match peft::load(&ctx, &dir.0) {
        Err(Error::InvalidArgument { message, .. }) => {
            assert!(
                message.contains("q_proj.lora_magnitude_vector"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    let foreign = rewrite(&|_| true, Some("base_model.model.lm_head.weight"));
    std::fs::write(&file, foreign).unwrap();
    match peft::load(&ctx, &dir.0) {
        Err(Error::InvalidArgument { message, .. }) => {
            assert!(message.contains("lm_head.weight"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}
