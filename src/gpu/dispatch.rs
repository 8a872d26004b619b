//! Geometry of launches: workgroup grids past the per-dimension limit, windows of a buffer
//! that fit one storage binding, and the split of a launch into blocks of whole rows whose
//! windows all fit ([`BindingLimits::blocks`]).

use crate::dtype::DType;
use crate::{Error, Result};

/// Lays `total` workgroups out as `(x, y, 1)` with `x, y ≤ max_per_dim`.
///
/// Shaders number their workgroup `wid.x + wid.y * nwg.x` and return early (uniformly for the
/// whole workgroup) when that is `≥ total`, so a grid may hold a few spare workgroups.
pub(crate) fn grid(total: u32, max_per_dim: u32) -> (u32, u32, u32) {
    if total <= max_per_dim {
        return (total.max(1), 1, 1);
    }
    let y = total.div_ceil(max_per_dim);
    let x = total.div_ceil(y);
    (x, y, 1)
}

/// A byte range of a buffer that fits one storage binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    /// Byte offset of the binding, a multiple of the device's offset alignment.
    pub offset: u64,
    /// Byte size of the binding.
    pub size: u64,
    /// Elements from the start of the binding to the first element wanted.
    pub skip: u32,
}

/// How large a binding may be and where it may start.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BindingLimits {
    pub max_bytes: u64,
    pub offset_alignment: u64,
}

impl BindingLimits {
    /// Most 4-byte elements a window may cover whatever its start (room for the alignment
    /// slack is kept).
    pub(crate) fn max_elements(&self) -> u64 {
        (self.max_bytes.saturating_sub(self.offset_alignment)) / 4
    }

    /// The window covering f32 elements `first .. first + count` of a buffer of `buffer_bytes`.
    pub(crate) fn window(
        &self,
        op: &'static str,
        arg: &'static str,
        first: u64,
        count: u64,
        buffer_bytes: u64,
    ) -> Result<Window> {
        self.window_of(op, arg, DType::F32, first, count, buffer_bytes)
    }

    /// The window covering elements `first .. first + count` of `dtype` (whole 32-bit words).
    pub(crate) fn window_of(
        &self,
        op: &'static str,
        arg: &'static str,
        dtype: DType,
        first: u64,
        count: u64,
        buffer_bytes: u64,
    ) -> Result<Window> {
        let elem = dtype.size() as u64;
        let start = first * elem;
        let offset = start - start % self.offset_alignment;
        let skip = (start - offset) / elem;
        let size = ((skip + count) * elem)
            .div_ceil(4)
            .saturating_mul(4)
            .min(buffer_bytes - offset);
        if size > self.max_bytes {
            return Err(Error::TooLarge {
                op,
                arg,
                bytes: size,
                limit: self.max_bytes,
            });
        }
        Ok(Window {
            offset,
            size,
            skip: skip as u32,
        })
    }
}

/// Rows `first .. first + count` of a launch split across bindings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rows {
    pub first: usize,
    pub count: usize,
}

/// A buffer as one dispatch binds it: a window of it, or all of it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bound<'a> {
    buffer: &'a wgpu::Buffer,
    window: Option<Window>,
}

impl<'a> Bound<'a> {
    /// The whole buffer (a table of constants, a small scratch buffer).
    pub(crate) fn whole(buffer: &'a wgpu::Buffer) -> Bound<'a> {
        Bound {
            buffer,
            window: None,
        }
    }

    /// A window of the buffer.
    pub(crate) fn window(buffer: &'a wgpu::Buffer, window: Window) -> Bound<'a> {
        Bound {
            buffer,
            window: Some(window),
        }
    }

    /// Elements from the start of the binding to the first one wanted (the shader's offset).
    pub(crate) fn skip(&self) -> u32 {
        self.window.map_or(0, |w| w.skip)
    }

    /// The bytes bound.
    pub(crate) fn bytes(&self) -> u64 {
        self.window.map_or(self.buffer.size(), |w| w.size)
    }

    /// The binding resource of a bind group entry.
    pub(crate) fn resource(&self) -> wgpu::BindingResource<'a> {
        match self.window {
            None => self.buffer.as_entire_binding(),
            Some(window) => wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: self.buffer,
                offset: window.offset,
                size: std::num::NonZeroU64::new(window.size),
            }),
        }
    }
}

/// One buffer of a launch and how each block binds it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Operand<'a> {
    arg: &'static str,
    buffer: &'a wgpu::Buffer,
    dtype: DType,
    part: Part,
}

#[derive(Clone, Copy, Debug)]
enum Part {
    /// Split with the launch: `row_len` elements per row.
    Rows(usize),
    /// Elements `first .. first + len`, in every block.
    Range(u64, u64),
    /// The whole buffer, in every block.
    Whole,
}

impl<'a> Operand<'a> {
    /// Split with the launch's rows, `row_len` elements of `dtype` per row.
    pub(crate) fn rows(
        arg: &'static str,
        buffer: &'a wgpu::Buffer,
        dtype: DType,
        row_len: usize,
    ) -> Operand<'a> {
        Operand {
            arg,
            buffer,
            dtype,
            part: Part::Rows(row_len),
        }
    }

    /// Elements `first .. first + len` of `dtype`, the same in every block.
    pub(crate) fn range(
        arg: &'static str,
        buffer: &'a wgpu::Buffer,
        dtype: DType,
        first: usize,
        len: usize,
    ) -> Operand<'a> {
        Operand {
            arg,
            buffer,
            dtype,
            part: Part::Range(first as u64, len as u64),
        }
    }

    /// The first `len` f32 elements, the same in every block.
    pub(crate) fn fixed(arg: &'static str, buffer: &'a wgpu::Buffer, len: usize) -> Operand<'a> {
        Operand::range(arg, buffer, DType::F32, 0, len)
    }

    /// The whole buffer (a table the device built), the same in every block.
    pub(crate) fn whole(buffer: &'a wgpu::Buffer) -> Operand<'a> {
        Operand {
            arg: "table",
            buffer,
            dtype: DType::F32,
            part: Part::Whole,
        }
    }
}

/// A block of a launch: its rows and every operand's binding for them.
pub(crate) struct Block<'a, const N: usize> {
    pub rows: Rows,
    pub bound: [Bound<'a>; N],
}

impl BindingLimits {
    /// Splits `rows` into blocks of whole rows such that each array of `per_row` (its name and
    /// f32 elements per row) fits one binding; `Err` naming the array when one row alone is
    /// too long.
    pub(crate) fn row_blocks(
        &self,
        op: &'static str,
        rows: usize,
        per_row: &[(&'static str, usize)],
    ) -> Result<Vec<Rows>> {
        let max = self.max_elements();
        let mut block = rows.max(1);
        for &(arg, len) in per_row {
            let fit = (max / len.max(1) as u64) as usize;
            if fit == 0 {
                return Err(Error::TooLarge {
                    op,
                    arg,
                    bytes: len as u64 * 4,
                    limit: self.max_bytes,
                });
            }
            block = block.min(fit);
        }
        Ok((0..rows)
            .step_by(block)
            .map(|first| Rows {
                first,
                count: block.min(rows - first),
            })
            .collect())
    }

    /// The bindings of `operands` for the block `rows`.
    pub(crate) fn bind<'a, const N: usize>(
        &self,
        op: &'static str,
        rows: Rows,
        operands: &[Operand<'a>; N],
    ) -> Result<[Bound<'a>; N]> {
        let bound = self.bind_slice(op, rows, operands)?;
        Ok(bound
            .try_into()
            .unwrap_or_else(|_| unreachable!("one binding per operand")))
    }

    /// [`bind`](Self::bind) for a list of operands whose length is not fixed.
    pub(crate) fn bind_slice<'a>(
        &self,
        op: &'static str,
        rows: Rows,
        operands: &[Operand<'a>],
    ) -> Result<Vec<Bound<'a>>> {
        operands
            .iter()
            .map(|operand| {
                let (first, len) = match operand.part {
                    Part::Whole => return Ok(Bound::whole(operand.buffer)),
                    Part::Rows(row_len) => {
                        ((rows.first * row_len) as u64, (rows.count * row_len) as u64)
                    }
                    Part::Range(first, len) => (first, len),
                };
                let window = self.window_of(
                    op,
                    operand.arg,
                    operand.dtype,
                    first,
                    len,
                    operand.buffer.size(),
                )?;
                Ok(Bound::window(operand.buffer, window))
            })
            .collect()
    }

    /// The bindings of operands none of which is split by rows.
    pub(crate) fn bind_all<'a, const N: usize>(
        &self,
        op: &'static str,
        operands: &[Operand<'a>; N],
    ) -> Result<[Bound<'a>; N]> {
        self.bind(op, Rows { first: 0, count: 0 }, operands)
    }

    /// `rows` split into blocks whose windows of every row operand fit one binding, each
    /// with the bindings of all `operands` (in order).
    pub(crate) fn blocks<'a, const N: usize>(
        &self,
        op: &'static str,
        rows: usize,
        operands: [Operand<'a>; N],
    ) -> Result<Vec<Block<'a, N>>> {
        let per_row: Vec<(&'static str, usize)> = operands
            .iter()
            .filter_map(|o| match o.part {
                Part::Rows(len) => Some((o.arg, len)),
                _ => None,
            })
            .collect();
        self.row_blocks(op, rows, &per_row)?
            .into_iter()
            .map(|rows| {
                Ok(Block {
                    rows,
                    bound: self.bind(op, rows, &operands)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_covers_total_within_limit() {
        for total in [1u32, 2, 65535, 65536, 65537, 200_000, 4_000_000] {
            let (x, y, z) = grid(total, 65535);
            assert!(x <= 65535 && y <= 65535 && z == 1);
            assert!(x as u64 * y as u64 >= total as u64);
            assert!(
                (x as u64 * y as u64) < total as u64 + y as u64,
                "spare at most one row"
            );
        }
    }

    #[test]
    fn row_blocks_cover_every_row_once() {
        let limits = BindingLimits {
            max_bytes: 4096,
            offset_alignment: 256,
        };
        let blocks = limits
            .row_blocks("t", 1000, &[("x", 100), ("y", 7)])
            .unwrap();
        assert_eq!(blocks[0], Rows { first: 0, count: 9 });
        assert_eq!(blocks.iter().map(|b| b.count).sum::<usize>(), 1000);
        assert!(matches!(
            limits.row_blocks("t", 3, &[("x", 5), ("y", 5000)]),
            Err(Error::TooLarge { arg: "y", .. })
        ));
    }

    #[test]
    fn windows_are_aligned_and_cover_the_range() {
        let limits = BindingLimits {
            max_bytes: 1024,
            offset_alignment: 256,
        };
        let w = limits.window("t", "x", 70, 100, 100_000).unwrap();
        assert_eq!(w.offset % 256, 0);
        assert_eq!(w.offset / 4 + w.skip as u64, 70);
        assert!(w.size >= (w.skip as u64 + 100) * 4);
        assert!(limits.window("t", "x", 0, 300, 100_000).is_err());
        // a window never runs past the end of its buffer
        let w = limits.window("t", "x", 10, 5, 60).unwrap();
        assert_eq!(w.offset + w.size, 60);
    }
}
