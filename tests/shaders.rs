//! Every WGSL file under shaders/ parses and validates with naga, with no device. Kernels
//! are validated with their `// #include "<path>"` lines expanded (as src/gpu/mod.rs does
//! when it builds them); `*.inc.wgsl` files are validated inside their includers.

use std::path::Path;

fn wgsl_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            wgsl_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "wgsl")
            && !path.to_string_lossy().ends_with(".inc.wgsl")
        {
            out.push(path);
        }
    }
}

/// Replaces each `// #include "<path>"` line with `shaders/<path>`.
fn expand_includes(source: &str) -> String {
    let shaders = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let line = |line: &str| match line
        .trim()
        .strip_prefix("// #include \"")
        .and_then(|r| r.strip_suffix('"'))
    {
        Some(path) => std::fs::read_to_string(shaders.join(path)).unwrap(),
        None => line.to_string(),
    };
    source.lines().map(line).collect::<Vec<_>>().join("\n")
}

#[test]
fn every_shader_validates() {
    let mut files = Vec::new();
    wgsl_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders"),
        &mut files,
    );
    assert!(!files.is_empty());
    let mut failures = Vec::new();
    for path in &files {
        let source = expand_includes(&std::fs::read_to_string(path).unwrap());
        let result = naga::front::wgsl::parse_str(&source)
            .map_err(|e| e.emit_to_string(&source))
            .and_then(|module| {
                naga::valid::Validator::new(
                    naga::valid::ValidationFlags::all(),
                    naga::valid::Capabilities::all(),
                )
                .validate(&module)
                .map_err(|e| format!("{e:?}"))
            });
        if let Err(message) = result {
            failures.push(format!("{}: {message}", path.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("{} shaders validated", files.len());
}
