//! What a GEMM kernel does with its finished tile of C: one choice every form offers.

/// What a GEMM kernel does with its finished tile of C.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Epilogue {
    /// Stores it (`matmul`).
    Store,
    /// Stores it, and the row sums of squares of op(A) beside it (`matmul_row_squares`).
    RowSquares,
    /// Stores only each row's Σ (E + s·C)² over the tile (`shifted_row_squares`).
    ShiftedSquares,
}
