//! Finds every WGSL file under `shaders/` and writes two files to `$OUT_DIR`:
//! - `shader_files.rs`: a table of their paths and texts (`include_str!`), from which kernels
//!   and their `// #include` lines are resolved — adding a shader or an include file never
//!   means editing a list by hand;
//! - `shader_constants.rs`: every `const NAME: u32 = <n>u;` of every shader as a Rust
//!   `usize`, in a module named after the file (`so3/gaunt_grid.wgsl` → `so3_gaunt_grid`), so
//!   that sizes host and shader must agree on are written once, in the shader.

use std::fmt::Write;
use std::path::{Path, PathBuf};

fn wgsl_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("shaders/ is readable")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            wgsl_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "wgsl") {
            out.push(path);
        }
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    wgsl_files(&root, &mut files);
    let mut table = String::from(
        "/// Every file under `shaders/`: its path there and its text.\n\
         pub(crate) const SHADER_FILES: &[(&str, &str)] = &[\n",
    );
    for path in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let relative = path.strip_prefix(&root).expect("under shaders/");
        let name = relative.to_string_lossy().replace('\\', "/");
        writeln!(table, "    ({name:?}, include_str!({:?})),", path.display()).unwrap();
    }
    table.push_str("];\n");
    let mut constants = String::new();
    for path in &files {
        let relative = path.strip_prefix(&root).expect("under shaders/");
        let module = relative
            .to_string_lossy()
            .trim_end_matches(".wgsl")
            .replace(['/', '\\', '.'], "_");
        let text = std::fs::read_to_string(path).expect("a readable shader");
        let found: Vec<(String, String)> = text.lines().filter_map(u32_constant).collect();
        if found.is_empty() {
            continue;
        }
        writeln!(
            constants,
            "/// The `u32` constants of `shaders/{}`.",
            relative.display()
        )
        .unwrap();
        writeln!(constants, "pub(crate) mod {module} {{").unwrap();
        for (name, value) in found {
            writeln!(constants, "    pub(crate) const {name}: usize = {value};").unwrap();
        }
        constants.push_str("}\n");
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("shader_files.rs"), table).expect("OUT_DIR is writable");
    std::fs::write(out.join("shader_constants.rs"), constants).expect("OUT_DIR is writable");
}

/// `(NAME, value)` of a line `const NAME: u32 = <digits>u;` (a comment may follow).
fn u32_constant(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix("const ")?;
    let (name, rest) = rest.split_once(": u32 = ")?;
    let (value, _) = rest.split_once("u;")?;
    let plain = |s: &str, ok: fn(char) -> bool| !s.is_empty() && s.chars().all(ok);
    (plain(name, |c| {
        c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'
    }) && plain(value, |c| c.is_ascii_digit()))
    .then(|| (name.to_string(), value.to_string()))
}
