//! graph::gather and graph::scatter_sum on both paths against the f64 reference; each is the
//! other's adjoint; scatter_sum gives the same bits on every run.
//!
//! Bound: gather copies (exact); a node's sum adds its edges' rows in one fixed order in f32,
//! a relative error of at most (edges per node)·2⁻²⁴: checked at 1e-6 relative L2.

mod common;

use rand::Rng;
use wgkernels::compare::relative_error;
use wgkernels::graph::{self, reference, Index};
use wgkernels::{Context, Error, GpuOptions};

fn contexts() -> Vec<Context> {
    [Some(Context::cpu()), common::gpu()]
        .into_iter()
        .flatten()
        .collect()
}

/// A random edge → node map in which some nodes receive nothing.
fn receivers(rng: &mut impl Rng, edges: usize, nodes: usize) -> Vec<u32> {
    (0..edges)
        .map(|_| rng.random_range(0..nodes.div_ceil(2).max(1)) as u32 * 2 % nodes as u32)
        .collect()
}

#[test]
fn gather_and_scatter_match_the_reference() {
    let mut rng = common::rng();
    for ctx in contexts() {
        for (edges, nodes, trailing) in [
            (1, 1, vec![1]),
            (37, 5, vec![3, 7]),
            (1000, 301, vec![17]),
            (300, 700, vec![2, 1, 3]),
        ] {
            let index = receivers(&mut rng, edges, nodes);
            let segments = reference::Segments::new(&index, nodes);
            let idx = Index::new(&ctx, &index, nodes).unwrap();
            assert_eq!((idx.len(), idx.nodes()), (edges, nodes));
            let width: usize = trailing.iter().product();
            let shape = |rows| [vec![rows], trailing.clone()].concat();

            let table = common::uniform(&mut rng, nodes * width);
            let t = ctx.tensor(&table, &shape(nodes)).unwrap();
            let got = graph::gather(&ctx, &t, &idx).unwrap();
            assert_eq!(got.shape(), shape(edges));
            let want = reference::gather(&table, width, &index);
            assert_eq!(relative_error(&got.to_vec().unwrap(), &want), 0.0, "gather");

            let src = common::uniform(&mut rng, edges * width);
            let s = ctx.tensor(&src, &shape(edges)).unwrap();
            let first = graph::scatter_sum(&ctx, &s, &idx).unwrap();
            assert_eq!(first.shape(), shape(nodes));
            let first = first.to_vec().unwrap();
            let want = reference::scatter_sum(&src, width, &segments);
            let e = relative_error(&first, &want);
            assert!(
                e < 1e-6,
                "{} scatter_sum {edges}→{nodes}: {e:e}",
                ctx.device_name()
            );
            // Nodes that receive nothing are 0 (outputs are poisoned with NaN first).
            for v in (1..nodes).step_by(2) {
                assert!(first[v * width..(v + 1) * width].iter().all(|&x| x == 0.0));
            }
            // The same bits on a second run.
            let second = graph::scatter_sum(&ctx, &s, &idx)
                .unwrap()
                .to_vec()
                .unwrap();
            assert!(first
                .iter()
                .zip(&second)
                .all(|(a, b)| a.to_bits() == b.to_bits()));

            // Adjoint: ⟨gather(t), s⟩ = ⟨t, scatter_sum(s)⟩.
            let gathered = reference::gather(&table, width, &index);
            let lhs: f64 = gathered.iter().zip(&src).map(|(a, &b)| a * b as f64).sum();
            let rhs: f64 = want.iter().zip(&table).map(|(a, &b)| a * b as f64).sum();
            assert!((lhs - rhs).abs() <= 1e-9 * lhs.abs().max(1.0));
        }
    }
}

/// Outputs split over 4 KiB bindings and grids folded past a per-dimension limit of 7; a
/// source over one binding is an Err.
#[test]
fn split_outputs_and_folded_grids() {
    let mut rng = common::rng();
    for options in [
        GpuOptions {
            max_binding_bytes: Some(4096),
            ..Default::default()
        },
        GpuOptions {
            max_workgroups_per_dimension: Some(7),
            ..Default::default()
        },
    ] {
        let small_bindings = options.max_binding_bytes.is_some();
        let Some(ctx) = common::gpu_with(options) else {
            return;
        };
        let (edges, nodes, width) = (900, 100, 3); // outputs of 10.8 KB and 1.2 KB
        let index = receivers(&mut rng, edges, nodes);
        let idx = Index::new(&ctx, &index, nodes).unwrap();
        let table = common::uniform(&mut rng, nodes * width);
        let got = graph::gather(&ctx, &ctx.tensor(&table, &[nodes, width]).unwrap(), &idx).unwrap();
        assert_eq!(
            relative_error(
                &got.to_vec().unwrap(),
                &reference::gather(&table, width, &index)
            ),
            0.0
        );
        let src = common::uniform(&mut rng, 300 * width); // 3.6 KB: fits
        let small = Index::new(&ctx, &index[..300], nodes).unwrap();
        let got =
            graph::scatter_sum(&ctx, &ctx.tensor(&src, &[300, width]).unwrap(), &small).unwrap();
        let want =
            reference::scatter_sum(&src, width, &reference::Segments::new(&index[..300], nodes));
        assert!(relative_error(&got.to_vec().unwrap(), &want) < 1e-6);
        if small_bindings {
            let big = ctx
                .tensor(&common::uniform(&mut rng, edges * width), &[edges, width])
                .unwrap();
            let r = graph::scatter_sum(&ctx, &big, &idx);
            assert!(matches!(r, Err(Error::TooLarge { .. })), "{r:?}");
        }
    }
}

#[test]
fn bad_arguments_are_errors() {
    for ctx in contexts() {
        for (index, nodes, arg) in [
            (vec![0, 3], 3, "index"),
            (vec![], 3, "index"),
            (vec![0], 0, "nodes"),
        ] {
            let r = Index::new(&ctx, &index, nodes);
            assert!(
                matches!(&r, Err(Error::InvalidArgument { arg: a, .. }) if *a == arg),
                "{index:?} {nodes}: {r:?}"
            );
        }
        let idx = Index::new(&ctx, &[0, 1, 1], 2).unwrap();
        let wrong_rows = ctx.tensor(&[1.0; 6], &[3, 2]).unwrap();
        assert!(matches!(
            graph::gather(&ctx, &wrong_rows, &idx),
            Err(Error::Shape { .. })
        ));
        let wrong_rows = ctx.tensor(&[1.0; 4], &[2, 2]).unwrap();
        assert!(matches!(
            graph::scatter_sum(&ctx, &wrong_rows, &idx),
            Err(Error::Shape { .. })
        ));
        let other = Context::cpu();
        let table = other.tensor(&[1.0; 4], &[2, 2]).unwrap();
        if ctx.is_gpu() {
            let r = graph::gather(&ctx, &table, &idx);
            assert!(
                matches!(r, Err(Error::ContextMismatch { arg: "table", .. })),
                "{r:?}"
            );
            let r = graph::gather(&other, &table, &idx);
            assert!(
                matches!(r, Err(Error::ContextMismatch { arg: "index", .. })),
                "{r:?}"
            );
        }
    }
}
