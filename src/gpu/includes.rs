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

/// The includes that have a subgroup form, `(workgroup form, subgroup form)`: a device with
/// subgroup operations expands the second wherever a kernel includes the first.
pub(crate) const SUBGROUP_FORMS: &[(&str, &str)] =
    &[("util/workgroup_sum.inc.wgsl", "util/subgroup_sum.inc.wgsl")];

/// Includes that only kernels written by the host include (`src/linalg/rows.rs`, which
/// validates every kernel it writes in its tests).
#[allow(dead_code)] // read by tests/shaders.rs
pub(crate) const HOST_INCLUDES: &[&str] = &[ROWS_SHIFTED, ROW_SQUARES_OUT];
pub(crate) const ROWS_SHIFTED: &str = "linalg/rows_shifted.inc.wgsl";
pub(crate) const ROW_SQUARES_OUT: &str = "linalg/row_squares_out.inc.wgsl";

/// `text` with every `// #include "<path>"` line replaced by `shaders/<path>` (itself
/// expanded); `Err` naming the first include that does not exist or includes itself.
#[allow(dead_code)] // the pipelines expand with their device's swaps; the tests use this
pub(crate) fn expand(text: &str) -> Result<String, String> {
    expand_with(text, &[])
}

/// [`expand`], including the second path of each `(path, replacement)` pair of `swaps`
/// wherever the first is included (a device's [`SUBGROUP_FORMS`]).
pub(crate) fn expand_with(text: &str, swaps: &[(&str, &str)]) -> Result<String, String> {
    expand_within(text, swaps, &mut Vec::new())
}

fn expand_within(
    text: &str,
    swaps: &[(&str, &str)],
    open: &mut Vec<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        match line
            .trim()
            .strip_prefix("// #include \"")
            .and_then(|r| r.strip_suffix('"'))
        {
            Some(path) => {
                let path = swaps
                    .iter()
                    .find(|(from, _)| *from == path)
                    .map_or(path, |(_, to)| *to);
                if open.iter().any(|p| p == path) {
                    return Err(format!("{path} includes itself"));
                }
                let included =
                    source(path).ok_or_else(|| format!("#include of unknown file {path}"))?;
                open.push(path.to_string());
                out += &expand_within(included, swaps, open)?;
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
