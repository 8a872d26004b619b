//! Every WGSL kernel under shaders/ parses and validates with naga, with no device, after
//! its `// #include "<path>"` lines are expanded by the very resolver the pipelines use
//! (src/gpu/includes.rs, included here by path); `*.inc.wgsl` files are validated inside
//! their includers.

#[allow(dead_code)]
#[path = "../src/gpu/includes.rs"]
mod includes;

#[test]
fn every_shader_validates() {
    let kernels: Vec<_> = includes::kernels().collect();
    assert!(kernels.len() > 20, "only {} kernels found", kernels.len());
    let mut failures = Vec::new();
    // Each kernel as a device without subgroup operations expands it, and as one with them.
    let forms: [(&str, &[(&str, &str)]); 2] =
        [("", &[]), (" (subgroup forms)", includes::SUBGROUP_FORMS)];
    for ((path, text), (form, swaps)) in kernels.iter().flat_map(|k| forms.map(|f| (k, f))) {
        let result = includes::expand_with(text, swaps).and_then(|source| {
            let module =
                naga::front::wgsl::parse_str(&source).map_err(|e| e.emit_to_string(&source))?;
            naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::all(),
            )
            .validate(&module)
            .map_err(|e| format!("{e:?}"))
        });
        if let Err(message) = result {
            failures.push(format!("{path}{form}: {message}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("{} shaders validated", kernels.len());
}

#[test]
fn every_include_is_used_and_resolves() {
    // The includes reached from the kernels, directly or through other includes.
    let mut reached: Vec<&str> = Vec::new();
    let mut open: Vec<&str> = includes::kernels().map(|(_, text)| text).collect();
    while let Some(text) = open.pop() {
        for line in text.lines() {
            let Some(path) = line
                .trim()
                .strip_prefix("// #include \"")
                .and_then(|rest| rest.strip_suffix('"'))
            else {
                continue;
            };
            if !reached.contains(&path) {
                reached.push(path);
                open.extend(includes::source(path));
            }
        }
    }
    let includes: Vec<&str> = includes::SHADER_FILES
        .iter()
        .map(|(path, _)| *path)
        .filter(|path| path.ends_with(".inc.wgsl"))
        .collect();
    for include in includes {
        // A subgroup form is used where its workgroup form is.
        let include = includes::SUBGROUP_FORMS
            .iter()
            .find(|(_, subgroup_form)| *subgroup_form == include)
            .map_or(include, |(workgroup_form, _)| *workgroup_form);
        assert!(
            includes::HOST_INCLUDES.contains(&include) || reached.contains(&include),
            "{include} is included by no kernel"
        );
    }
    assert!(includes::expand("// #include \"nowhere.inc.wgsl\"").is_err());
}
