//! The sparse product written out for one coefficient table
//! (`shaders/so3/sparse_product_unrolled.wgsl`): the table's terms become FMAs with literal
//! coefficients, and each coefficient of a row a register.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, OnceLock};

use crate::gpu::{lock, Shader};
use crate::so3::products::tables::ProductTable;

/// The template, with its `// #unrolled: ` marks.
const TEMPLATE: Shader = crate::gpu::shader!("so3/sparse_product_unrolled.wgsl");

/// The kernel of `table` (known to the caller as `key`), weighted by path or not, written
/// once per process: a string per table, kept for the pipelines' lifetime.
pub(crate) fn shader(key: &str, table: &ProductTable, weighted: bool) -> Shader {
    static WRITTEN: OnceLock<Mutex<HashMap<(String, bool), Shader>>> = OnceLock::new();
    let mut written = lock(WRITTEN.get_or_init(Default::default));
    *written
        .entry((key.to_string(), weighted))
        .or_insert_with(|| {
            let label = format!("so3/sparse_product_unrolled.wgsl ({key}, weighted {weighted})");
            Shader {
                label: Box::leak(label.into_boxed_str()),
                source: Box::leak(source(table, weighted).into_boxed_str()),
                entry: TEMPLATE.entry,
            }
        })
}

/// The template with its marks filled: `x1_i`, `x2_j` and `w_p` are the row's coefficients
/// and path weights that the table reads; each output is its terms' FMAs in table order.
fn source(table: &ProductTable, weighted: bool) -> String {
    let used = |index: fn(&(u32, u32, f64)) -> u32| -> BTreeSet<u32> {
        table.terms.iter().map(index).collect()
    };
    let mut loads: Vec<String> = Vec::new();
    for i in used(|t| t.0) {
        loads.push(format!("let x1_{i} = read_x1(a + {i}u);"));
    }
    for j in used(|t| t.1) {
        loads.push(format!("let x2_{j} = read_x2(b + {j}u);"));
    }
    if weighted {
        let paths: BTreeSet<u32> = table.paths.iter().copied().collect();
        loads.push("let w = weight_row(row);".into());
        for path in paths {
            loads.push(format!("let w_{path} = read_weights(w + {path}u);"));
        }
    }
    let out_binding = if weighted { 4 } else { 3 };
    let mut bindings = vec![format!(
        "@group(0) @binding({out_binding}) var<storage, read_write> out: array<f32>;"
    )];
    if weighted {
        bindings.insert(
            0,
            "fn read_weights(i: u32) -> f32 { return weights[i]; }".into(),
        );
        bindings.insert(
            0,
            "@group(0) @binding(3) var<storage, read> weights: array<f32>;".into(),
        );
    }
    let mut sums = Vec::with_capacity(table.terms.len() + 2 * table.starts.len());
    for (i3, span) in table.starts.windows(2).enumerate() {
        sums.push("sum = 0.0;".to_string());
        // The terms of one x1 coefficient together: Σ_i2 C·w·x2 first, then one FMA with x1.
        let mut by_x1: Vec<(u32, Vec<usize>)> = Vec::new();
        for t in span[0] as usize..span[1] as usize {
            let i1 = table.terms[t].0;
            match by_x1.iter_mut().find(|(i, _)| *i == i1) {
                Some((_, ts)) => ts.push(t),
                None => by_x1.push((i1, vec![t])),
            }
        }
        for (i1, ts) in by_x1 {
            for (k, &t) in ts.iter().enumerate() {
                let (_, i2, c) = table.terms[t];
                // The coefficient as the other forms read it, rounded to f32 once.
                let c = c as f32;
                let coefficient = match weighted {
                    true => format!("{c:?} * w_{}", table.paths[t]),
                    false => format!("{c:?}"),
                };
                sums.push(match k {
                    0 => format!("part = {coefficient} * x2_{i2};"),
                    _ => format!("part = fma({coefficient}, x2_{i2}, part);"),
                });
            }
            sums.push(format!("sum = fma(x1_{i1}, part, sum);"));
        }
        sums.push(format!("out[o + {i3}u] = sum;"));
    }
    crate::gpu::template::fill(TEMPLATE.source, "// #unrolled: ", |mark| match mark {
        "bindings" => Some(bindings.as_slice()),
        "loads" => Some(loads.as_slice()),
        "sums" => Some(sums.as_slice()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use crate::so3::products::tables::{grouped, Coefficients, Grouping};

    /// Tables of both kinds and every grouping, weighted or not, write kernels that
    /// validate with naga and read no table.
    #[test]
    fn written_kernels_validate() {
        for kind in [Coefficients::ClebschGordan, Coefficients::Gaunt] {
            for grouping in [Grouping::Output, Grouping::X1, Grouping::X2] {
                let table = grouped(kind, 2, 1, 3, grouping);
                for weighted in [false, true] {
                    let source = super::source(&table, weighted);
                    let expanded = crate::gpu::includes::expand(&source).unwrap();
                    let module = naga::front::wgsl::parse_str(&expanded)
                        .map_err(|e| e.emit_to_string(&expanded))
                        .unwrap();
                    naga::valid::Validator::new(
                        naga::valid::ValidationFlags::all(),
                        naga::valid::Capabilities::all(),
                    )
                    .validate(&module)
                    .unwrap_or_else(|e| panic!("{kind:?} {grouping:?}: {e:?}"));
                    assert!(!source.contains("#unrolled:") && source.contains("sum = fma(x1_"));
                    assert_eq!(source.contains("read_weights(w"), weighted);
                }
            }
        }
    }
}
