//! Message passing on a graph: [`gather`] copies node rows onto edges, [`scatter_sum`] sums
//! edge rows back onto nodes. Each is the other's backward: the gradient of
//! `gather(table, index)` with respect to `table` is `scatter_sum(d_out, index)`, and that of
//! `scatter_sum(src, index)` with respect to `src` is `gather(d_out, index)`.
//!
//! WGSL has no float atomics, and atomics would make the sums depend on thread timing: an
//! [`Index`] sorts its edges by receiving node once, and every node's sum runs over its edges
//! in increasing edge order — the same bits on every run and every device of one kind.
//!
//! ```
//! use wgkernels::{graph, Context};
//! # fn main() -> wgkernels::Result<()> {
//! let ctx = Context::new()?;
//! let receivers = graph::Index::new(&ctx, &[1, 0, 1], 2)?; // edge e → node receivers[e]
//! let messages = ctx.tensor(&[1.0, 10.0, 2.0, 20.0, 3.0, 30.0], &[3, 2])?; // [edges, 2]
//! let summed = graph::scatter_sum(&ctx, &messages, &receivers)?; // [nodes, 2]
//! assert_eq!(summed.to_vec()?, vec![2.0, 20.0, 4.0, 40.0]);
//! let back = graph::gather(&ctx, &summed, &receivers)?; // [edges, 2]
//! assert_eq!(back.to_vec()?, vec![4.0, 40.0, 2.0, 20.0, 4.0, 40.0]);
//! # Ok(())
//! # }
//! ```

mod kernels;
pub mod reference;

use crate::op::{self, Resident};
use crate::{Context, Error, Result, Tensor};

/// An edge → node map, validated and sorted once: `index[e] < nodes` is the node of edge e.
/// Cloning is cheap and shares the device copy.
#[derive(Clone)]
pub struct Index {
    ctx: Context,
    nodes: usize,
    edges: usize,
    state: std::sync::Arc<Resident<reference::Segments, kernels::DeviceIndex>>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("edges", &self.edges)
            .field("nodes", &self.nodes)
            .finish()
    }
}

impl Index {
    /// The map of `index.len()` edges onto `nodes` nodes; `Err` when an entry is `≥ nodes`
    /// or either count is 0. Sorting by node is O(edges + nodes) (a counting sort, stable in
    /// the edge order).
    pub fn new(ctx: &Context, index: &[u32], nodes: usize) -> Result<Index> {
        const OP: &str = "graph::Index::new";
        let _call = crate::call::Call::enter(OP);
        if index.is_empty() || nodes == 0 {
            return Err(Error::InvalidArgument {
                op: OP,
                arg: if index.is_empty() { "index" } else { "nodes" },
                message: format!(
                    "needs at least one edge and one node, got {} edges and {nodes} nodes",
                    index.len()
                ),
            });
        }
        if nodes > u32::MAX as usize || index.len() > u32::MAX as usize {
            return Err(Error::InvalidArgument {
                op: OP,
                arg: "nodes",
                message: format!(
                    "edges and nodes must fit in u32, got {} and {nodes}",
                    index.len()
                ),
            });
        }
        if let Some((e, &v)) = index.iter().enumerate().find(|(_, &v)| v as usize >= nodes) {
            return Err(Error::InvalidArgument {
                op: OP,
                arg: "index",
                message: format!("edge {e} points at node {v}, but there are {nodes} nodes"),
            });
        }
        // The counting sort's offsets and cursors, 2·(nodes + 1) u32: a request the host
        // refuses is an Err, not an abort.
        op::reserve(OP, "nodes", nodes + 1)?;
        let segments = reference::Segments::new(index, nodes);
        let state = Resident::new(
            ctx,
            || Ok(segments.clone()),
            |gpu| kernels::DeviceIndex::upload(gpu, index, &segments),
        )?;
        Ok(Index {
            ctx: ctx.clone(),
            nodes,
            edges: index.len(),
            state: std::sync::Arc::new(state),
        })
    }

    /// Edges.
    pub fn len(&self) -> usize {
        self.edges
    }

    /// Always false: an index has at least one edge.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Nodes.
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    fn check(&self, ctx: &Context, op: &'static str) -> Result<()> {
        if self.ctx.same_as(ctx) {
            Ok(())
        } else {
            Err(Error::ContextMismatch {
                op,
                arg: "index",
                arg_device: self.ctx.describe(),
                device: ctx.describe(),
            })
        }
    }
}

/// Checks that `x` is `[rows, …]` with at least one dimension; returns the row width.
fn row_width(op: &'static str, arg: &'static str, x: &Tensor, rows: usize) -> Result<usize> {
    match x.shape().first() {
        Some(&r) if r == rows => Ok(x.len() / rows),
        _ => Err(Error::Shape {
            op,
            message: format!(
                "`{arg}` {:?} must have {rows} rows ([{rows}, …])",
                x.shape()
            ),
        }),
    }
}

/// `gather(table, index)[e] = table[index[e]]`: `table [nodes, …]` → `[edges, …]`.
///
/// Its backward is [`scatter_sum`] of the upstream gradient, whatever the table; so its double
/// backward along a cotangent `dd` of that gradient is `gather(dd)` (towards the upstream
/// gradient) and 0 (towards the table): both ops are linear and each other's adjoint.
pub fn gather(ctx: &Context, table: &Tensor, index: &Index) -> Result<Tensor> {
    const OP: &str = "graph::gather";
    let _call = crate::call::Call::enter(OP);
    ctx.check_owns(OP, "table", table)?;
    index.check(ctx, OP)?;
    let width = row_width(OP, "table", table, index.nodes)?;
    let mut shape = table.shape().to_vec();
    shape[0] = index.edges;
    let [out] = index.state.run(
        ctx,
        OP,
        [&shape],
        |segments| Ok([reference::gather(table.host(), width, &segments.receivers)]),
        |device, gpu, [out]| kernels::gather(gpu, device, table, width, out),
    )?;
    Ok(out)
}

/// `scatter_sum(src, index)[v] = Σ_{e: index[e] = v} src[e]`, summed in increasing e (0 where
/// no edge arrives): `src [edges, …]` → `[nodes, …]`.
///
/// Its backward is [`gather`] of the upstream gradient; its double backward along `dd` is
/// `scatter_sum(dd)` (and 0 towards `src`).
pub fn scatter_sum(ctx: &Context, src: &Tensor, index: &Index) -> Result<Tensor> {
    const OP: &str = "graph::scatter_sum";
    let _call = crate::call::Call::enter(OP);
    ctx.check_owns(OP, "src", src)?;
    index.check(ctx, OP)?;
    let width = row_width(OP, "src", src, index.edges)?;
    let mut shape = src.shape().to_vec();
    shape[0] = index.nodes;
    let [out] = index.state.run(
        ctx,
        OP,
        [&shape],
        |segments| Ok([reference::scatter_sum(src.host(), width, segments)]),
        |device, gpu, [out]| kernels::scatter_sum(gpu, device, src, width, out),
    )?;
    Ok(out)
}
