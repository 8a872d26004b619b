//! Geometry of launches: workgroup grids past the per-dimension limit, and windows of a
//! buffer that fit one storage binding.

use crate::tensor::DType;
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

/// Splits `rows` rows of `row_len` f32 elements into blocks of whole rows whose windows fit
/// one binding: `(first_row, rows_in_block)`. `Err` when one row alone is too long.
pub(crate) fn row_blocks(
    op: &'static str,
    arg: &'static str,
    rows: usize,
    row_len: usize,
    limits: &BindingLimits,
) -> Result<Vec<(usize, usize)>> {
    let per_block = (limits.max_elements() / row_len.max(1) as u64) as usize;
    if per_block == 0 {
        return Err(Error::TooLarge {
            op,
            arg,
            bytes: row_len as u64 * 4,
            limit: limits.max_bytes,
        });
    }
    Ok((0..rows)
        .step_by(per_block)
        .map(|row0| (row0, per_block.min(rows - row0)))
        .collect())
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
        let blocks = row_blocks("t", "x", 1000, 100, &limits).unwrap();
        assert_eq!(blocks[0], (0, 9));
        assert_eq!(blocks.iter().map(|b| b.1).sum::<usize>(), 1000);
        assert!(row_blocks("t", "x", 3, 5000, &limits).is_err());
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
