//! The register-blocked GEMM of `shaders/linalg/matmul_rows.wgsl`, written out for one size:
//! the lines that name an accumulator, which WGSL cannot loop over (see the shader).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use super::epilogue::Epilogue;
use crate::gpu::includes::{ROWS_SHIFTED, ROW_SQUARES_OUT};
use crate::gpu::{lock, Shader};

/// The template, with its `// #rows:` marks.
const TEMPLATE: Shader = crate::gpu::shader!("linalg/matmul_rows.wgsl");

/// The template's declaration of op(A)'s vec4 binding.
const A4_BINDING: &str = "@group(0) @binding(4) var<storage, read> a4";

/// One size of the kernel: a workgroup of `threads` lanes computes `rows` rows ×
/// `4·threads·vecs` columns of C.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct RowsTile {
    pub rows: u32,
    pub vecs: u32,
    pub threads: u32,
}

impl RowsTile {
    pub(crate) const fn columns(&self) -> usize {
        (4 * self.threads * self.vecs) as usize
    }

    /// The override constants that go with [`source`](Self::source).
    pub(crate) fn constants(&self) -> [(&'static str, f64); 3] {
        [
            ("THREADS", self.threads as f64),
            ("ROWS", self.rows as f64),
            ("VECS", self.vecs as f64),
        ]
    }

    /// The kernel for this size and epilogue, written once per process: a handful of
    /// strings, kept for the pipelines' lifetime.
    pub(crate) fn shader(&self, epilogue: Epilogue) -> Shader {
        static WRITTEN: OnceLock<Mutex<HashMap<(RowsTile, Epilogue), Shader>>> = OnceLock::new();
        let mut written = lock(WRITTEN.get_or_init(Default::default));
        *written.entry((*self, epilogue)).or_insert_with(|| {
            let label = format!(
                "linalg/matmul_rows.wgsl ({}×{}×{}, {epilogue:?})",
                self.rows, self.vecs, self.threads,
            );
            Shader {
                label: Box::leak(label.into_boxed_str()),
                source: Box::leak(self.source(epilogue).into_boxed_str()),
                entry: TEMPLATE.entry,
            }
        })
    }

    /// The template with its marks filled: `acc_i_j` is row `row0 + i`, vec4 column `j`;
    /// `b_j` is op(B)'s vec4 at column j, `a_i` op(A)'s value in row i, for this kk.
    fn source(&self, epilogue: Epilogue) -> String {
        let row_squares = epilogue == Epilogue::RowSquares;
        let (rows, vecs) = (0..self.rows, 0..self.vecs);
        let mut accumulators = Vec::new();
        let mut step = Vec::new();
        // The four steps of k written out, op(A)'s four values taken from one vec4 per row.
        let mut four_steps = Vec::new();
        let mut finish = Vec::new();
        let column = |j: u32| format!("col0 + 4u * (lane + {j}u * THREADS)");
        for j in vecs.clone() {
            step.push(format!("let b_{j} = load_b4(kk, {}, inside);", column(j)));
        }
        for i in rows.clone() {
            four_steps.push(format!("let a4_{i} = load_a4(row0 + {i}u, kk);"));
        }
        for (q, lane) in ["x", "y", "z", "w"].into_iter().enumerate() {
            for j in vecs.clone() {
                let load = format!("load_b4(kk + {q}u, {}, inside)", column(j));
                four_steps.push(format!("let b{q}_{j} = {load};"));
            }
            for i in rows.clone() {
                let a = format!("a4_{i}.{lane}");
                if row_squares {
                    four_steps.push(format!("squares_{i} = fma({a}, {a}, squares_{i});"));
                }
                for j in vecs.clone() {
                    four_steps.push(format!(
                        "acc_{i}_{j} = fma(vec4<f32>({a}), b{q}_{j}, acc_{i}_{j});"
                    ));
                }
            }
        }
        for i in rows {
            step.push(format!("let a_{i} = load_a(row0 + {i}u, kk);"));
            if row_squares {
                accumulators.push(format!("var squares_{i} = 0.0;"));
                step.push(format!("squares_{i} = fma(a_{i}, a_{i}, squares_{i});"));
                finish.push(format!(
                    "if takes_squares {{ store_row_squares(split, row0 + {i}u, squares_{i}); }}"
                ));
            }
            if epilogue == Epilogue::ShiftedSquares {
                finish.push(format!("var part_{i} = 0.0;"));
            }
            for j in vecs.clone() {
                accumulators.push(format!("var acc_{i}_{j} = vec4<f32>(0.0);"));
                step.push(format!(
                    "acc_{i}_{j} = fma(vec4<f32>(a_{i}), b_{j}, acc_{i}_{j});"
                ));
                let column = column(j);
                finish.push(match epilogue {
                    Epilogue::ShiftedSquares => {
                        format!("part_{i} += shifted_squares(row0 + {i}u, {column}, acc_{i}_{j});")
                    }
                    _ => format!("store_c(split, row0 + {i}u, {column}, acc_{i}_{j});"),
                });
            }
            if epilogue == Epilogue::ShiftedSquares {
                finish.push(format!("row_parts[{i}u * THREADS + lane] = part_{i};"));
            }
        }
        let binding = match epilogue {
            Epilogue::Store => Vec::new(),
            Epilogue::RowSquares => vec![include(ROW_SQUARES_OUT)],
            Epilogue::ShiftedSquares => {
                finish.push("workgroupBarrier();".into());
                finish.push("store_row_parts(lane, row0, col0);".into());
                vec![
                    include(ROWS_SHIFTED),
                    format!(
                        "var<workgroup> row_parts: array<f32, {}>;",
                        self.rows * self.threads
                    ),
                ]
            }
        };
        let filled = crate::gpu::template::fill(TEMPLATE.source, "// #rows: ", |mark| {
            Some(match mark {
                "bindings" => binding.as_slice(),
                "accumulators" => accumulators.as_slice(),
                "four k steps" => four_steps.as_slice(),
                "k step" => step.as_slice(),
                "finish" => finish.as_slice(),
                _ => return None,
            })
        });
        // With a binding 4 of the epilogue's, op(A)'s vec4 binding comes after it.
        match epilogue {
            Epilogue::Store => filled,
            _ => filled.replace(
                A4_BINDING,
                &A4_BINDING.replace("@binding(4)", "@binding(5)"),
            ),
        }
    }
}

/// The line that includes `path`.
fn include(path: &str) -> String {
    format!("// #include \"{path}\"")
}

#[cfg(test)]
mod tests {
    use super::Epilogue;

    /// Every size the tuner offers, in every epilogue, validates with naga.
    #[test]
    fn every_written_size_validates() {
        for tile in super::super::kernels::ROWS_TILES {
            for epilogue in [
                Epilogue::Store,
                Epilogue::RowSquares,
                Epilogue::ShiftedSquares,
            ] {
                let shader = tile.shader(epilogue);
                let source = crate::gpu::includes::expand(shader.source).unwrap();
                let module = naga::front::wgsl::parse_str(&source)
                    .map_err(|e| e.emit_to_string(&source))
                    .unwrap();
                naga::valid::Validator::new(
                    naga::valid::ValidationFlags::all(),
                    naga::valid::Capabilities::all(),
                )
                .validate(&module)
                .unwrap_or_else(|e| panic!("{}: {e:?}", shader.label));
                let unfilled = source.lines().any(|l| l.trim().starts_with("// #rows: "));
                assert!(source.contains("acc_0_0") && !unfilled);
                let a4 = if epilogue == Epilogue::Store { 4 } else { 5 };
                assert!(source.contains(&format!("@binding({a4}) var<storage, read> a4")));
            }
        }
    }
}
