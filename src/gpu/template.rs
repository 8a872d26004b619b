//! Kernels the host writes out from a template: lines `<prefix><mark>` replaced by the lines
//! the writer gives for that mark, at the mark's indentation (WGSL cannot loop over names,
//! and lavapipe only keeps in registers what is written out).

/// `template` with every line `<prefix><mark>` (after indentation) replaced by
/// `lines(mark)`; lines whose mark `lines` does not know (None) are kept.
pub(crate) fn fill<'a>(
    template: &str,
    prefix: &str,
    lines: impl Fn(&str) -> Option<&'a [String]>,
) -> String {
    let mut out = String::with_capacity(template.len() * 2);
    for line in template.lines() {
        let filled = line.trim().strip_prefix(prefix).and_then(&lines);
        match filled {
            Some(filled) => {
                let indent = &line[..line.len() - line.trim_start().len()];
                for filled_line in filled {
                    out += indent;
                    out += filled_line;
                    out.push('\n');
                }
            }
            None => {
                out += line;
                out.push('\n');
            }
        }
    }
    out
}
