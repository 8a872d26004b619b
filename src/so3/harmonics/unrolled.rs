//! The harmonics and their backward written out for one lmax
//! (`shaders/so3/spherical_harmonics_unrolled.wgsl`, `…_backward_unrolled.wgsl`): the
//! recursion's terms become FMAs with literal coefficients, and each Y and ȳ a register.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use super::reference::recursion_table;
use crate::gpu::{lock, Shader};

/// The template, with its `// #unrolled: ` mark.
const TEMPLATE: Shader = crate::gpu::shader!("so3/spherical_harmonics_unrolled.wgsl");

/// The template of the backward, with its `// #unrolled: ` marks.
const BACKWARD_TEMPLATE: Shader =
    crate::gpu::shader!("so3/spherical_harmonics_backward_unrolled.wgsl");

/// The forward's kernel of degree `lmax`, written once per process and degree.
pub(crate) fn shader(lmax: usize) -> Shader {
    written(TEMPLATE, lmax)
}

/// The backward's kernel of degree `lmax`, written once per process and degree.
pub(crate) fn backward_shader(lmax: usize) -> Shader {
    written(BACKWARD_TEMPLATE, lmax)
}

fn written(template: Shader, lmax: usize) -> Shader {
    static WRITTEN: OnceLock<Mutex<HashMap<(&'static str, usize), Shader>>> = OnceLock::new();
    let mut written = lock(WRITTEN.get_or_init(Default::default));
    *written.entry((template.label, lmax)).or_insert_with(|| {
        let label = format!("{} (lmax {lmax})", template.label);
        let source = match template.label == TEMPLATE.label {
            true => source(lmax),
            false => backward_source(lmax),
        };
        Shader {
            label: Box::leak(label.into_boxed_str()),
            source: Box::leak(source.into_boxed_str()),
            entry: template.entry,
        }
    })
}

/// The recursion's terms `(i, j, k, c)` of step l (Y_l from Y_{l−1} and Y_1).
fn step(table: &[[f32; 4]], starts: &[u32], l: usize) -> Vec<[f32; 4]> {
    table[starts[l] as usize..starts[l + 1] as usize].to_vec()
}

/// The forward up to degree `up_to` as lets, `y_l_k` = Y_l[k]: each k's terms summed in the
/// table's order, then stored at the coefficient's index when `store`.
fn forward_lines(lmax: usize, up_to: usize, store: bool) -> Vec<String> {
    let (table, starts) = recursion_table(lmax);
    let mut lines = vec![
        "let y_1_0 = y1.x;".to_string(),
        "let y_1_1 = y1.y;".to_string(),
        "let y_1_2 = y1.z;".to_string(),
    ];
    for l in 2..=up_to {
        let terms = step(&table, &starts, l);
        for k in 0..2 * l + 1 {
            lines.push("sum = 0.0;".into());
            for &[i, j, _, c] in terms.iter().filter(|t| t[2] as usize == k) {
                let y1 = ["x", "y", "z"][j as usize];
                lines.push(format!("sum = fma({c:?} * y_{}_{i}, y1.{y1}, sum);", l - 1));
            }
            lines.push(format!("let y_{l}_{k} = sum;"));
            if store {
                lines.push(format!("out[base + {}u] = y_{l}_{k};", l * l + k));
            }
        }
    }
    lines
}

/// The forward's template with its mark filled: the recursion, each Y stored.
fn source(lmax: usize) -> String {
    let steps = forward_lines(lmax, lmax, true);
    crate::gpu::template::fill(TEMPLATE.source, "// #unrolled: ", |mark| match mark {
        "recursion" => Some(steps.as_slice()),
        _ => None,
    })
}

/// The backward's template with its marks filled: the forward to Y_{lmax−1} (what the
/// reverse pass reads), then the reverse pass, `yb_l_k` = ȳ_l[k] starting at ∂L/∂Y_l[k],
/// ending with ȳ_1 added to `y1_bar`.
fn backward_source(lmax: usize) -> String {
    let forward = forward_lines(lmax, lmax.saturating_sub(1), false);
    let (table, starts) = recursion_table(lmax);
    let mut reverse = Vec::new();
    let cotangents = |l: usize| {
        (0..2 * l + 1).map(move |k| format!("var yb_{l}_{k} = read_g(gbase + {}u);", l * l + k))
    };
    if lmax >= 1 {
        reverse.extend(cotangents(lmax));
    }
    for l in (2..=lmax).rev() {
        reverse.extend(cotangents(l - 1));
        for [i, j, k, c] in step(&table, &starts, l) {
            let y1 = ["x", "y", "z"][j as usize];
            reverse.push(format!("back = {c:?} * yb_{l}_{k};"));
            reverse.push(format!(
                "yb_{}_{i} = fma(back, y1.{y1}, yb_{}_{i});",
                l - 1,
                l - 1
            ));
            reverse.push(format!(
                "y1_bar.{y1} = fma(back, y_{}_{i}, y1_bar.{y1});",
                l - 1
            ));
        }
    }
    if lmax >= 1 {
        reverse.push("y1_bar += vec3<f32>(yb_1_0, yb_1_1, yb_1_2);".into());
    }
    crate::gpu::template::fill(
        BACKWARD_TEMPLATE.source,
        "// #unrolled: ",
        |mark| match mark {
            "forward" => Some(forward.as_slice()),
            "reverse" => Some(reverse.as_slice()),
            _ => None,
        },
    )
}

#[cfg(test)]
mod tests {
    /// Every degree's kernels validate with naga; the forward stores every coefficient above
    /// Y_1, the backward reads every cotangent from Y_1 on.
    #[test]
    fn written_kernels_validate() {
        for lmax in [0, 1, 2, 5, crate::so3::MAX_L] {
            for source in [super::source(lmax), super::backward_source(lmax)] {
                let expanded = crate::gpu::includes::expand(&source).unwrap();
                let module = naga::front::wgsl::parse_str(&expanded)
                    .map_err(|e| e.emit_to_string(&expanded))
                    .unwrap();
                naga::valid::Validator::new(
                    naga::valid::ValidationFlags::all(),
                    naga::valid::Capabilities::all(),
                )
                .validate(&module)
                .unwrap_or_else(|e| panic!("lmax {lmax}: {e:?}"));
            }
            let last = (lmax + 1) * (lmax + 1) - 1;
            let stores = super::source(lmax).contains(&format!("out[base + {last}u]"));
            let reads = super::backward_source(lmax).contains(&format!("read_g(gbase + {last}u)"));
            assert_eq!(stores, lmax >= 2, "lmax {lmax}");
            assert_eq!(reads, lmax >= 1, "lmax {lmax}");
        }
    }
}
