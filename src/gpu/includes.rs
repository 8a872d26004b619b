//! Shader sources: every file under `shaders/`, found by `build.rs`, and the expansion of
//! their `// #include "<path>"` lines (WGSL has no includes).
//!
//! This file depends on nothing else in the crate, so that `tests/shaders.rs` validates the
//! shaders with the very resolver the pipelines use (it includes this file by path).

include!(concat!(env!("OUT_DIR"), "/shader_files.rs"));

/// The text of `shaders/<path>`, if there is such a file.
pub(crate) fn source(path: &str) -> Option<&'static str> {
    SHADER_FILES
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, text)| *text)
}

/// The kernels: every shader file that is not an include (`*.inc.wgsl`).
#[allow(dead_code)] // used by the shader tests
pub(crate) fn kernels() -> impl Iterator<Item = (&'static str, &'static str)> {
    SHADER_FILES
        .iter()
        .copied()
        .filter(|(path, _)| !path.ends_with(".inc.wgsl"))
}

/// `text` with every `// #include "<path>"` line replaced by `shaders/<path>` (itself
/// expanded); `Err` naming the first include that does not exist or includes itself.
pub(crate) fn expand(text: &str) -> Result<String, String> {
    expand_within(text, &mut Vec::new())
}

fn expand_within(text: &str, open: &mut Vec<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        match line
            .trim()
            .strip_prefix("// #include \"")
            .and_then(|r| r.strip_suffix('"'))
        {
            Some(path) => {
                if open.iter().any(|p| p == path) {
                    return Err(format!("{path} includes itself"));
                }
                let included =
                    source(path).ok_or_else(|| format!("#include of unknown file {path}"))?;
                open.push(path.to_string());
                out += &expand_within(included, open)?;
                open.pop();
            }
            None => {
                out += line;
                out.push('\n');
            }
        }
    }
    Ok(out)
}
