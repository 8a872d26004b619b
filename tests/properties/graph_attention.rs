//! graph's gather and scatter, and attention: linear (both feature maps, causal or not) and
//! softmax, forward and backward, and the linear decoder.

use proptest::prelude::*;
use wgkernels::attention::{self, FeatureMap, LinearDecoder};
use wgkernels::graph;

use crate::check::{check, values};
use crate::strategies::{case, case_with, dim, near, small_dim, Case};

/// The index's size and range.
#[derive(Clone, Copy, Debug)]
struct Graph {
    edges: usize,
    nodes: usize,
}

/// An index of `edges` entries into `nodes` nodes (an entry equal to `nodes` is out of
/// range), a table [nodes, width] and edge values [edges, width] (both now and then of one
/// row more or less).
#[test]
fn graph_gather_and_scatter_sum() {
    let layout = (dim(), dim(), dim(), near(), near()).prop_map(
        |(edges, nodes, width, near_table, near_src)| {
            let shapes = [
                ("table", vec![near_table.of(nodes), width]),
                ("src", vec![near_src.of(edges), width]),
            ];
            (Graph { edges, nodes }, shapes)
        },
    );
    let index = |g: &Graph| prop::collection::vec(0..=g.nodes as u32, g.edges);
    check(case_with(layout, index), |p, (case, index)| {
        let [table, src] = &case.args;
        let nodes = case.params.nodes;
        p.both("graph::gather", case.extreme, &|c| {
            let idx = graph::Index::new(c, &index, nodes)?;
            Ok(vec![values(graph::gather(c, &table.on(c)?, &idx))?])
        })?;
        p.both("graph::scatter_sum", case.extreme, &|c| {
            let idx = graph::Index::new(c, &index, nodes)?;
            Ok(vec![values(graph::scatter_sum(c, &src.on(c)?, &idx))?])
        })
    });
}

/// q [b, h, n, dk], k [b, h, n, dk], v [b, h, n, dv] and ∂out [b, h, n, dv] (k and ∂out now
/// and then of one more or less), b and h at most 3.
fn qkv() -> impl Strategy<Value = Case<(), 4>> {
    let layout = (
        small_dim(),
        small_dim(),
        dim(),
        dim(),
        dim(),
        near(),
        near(),
    )
        .prop_map(|(b, h, n, dk, dv, near_k, near_out)| {
            let shapes = [
                ("q", vec![b, h, n, dk]),
                ("k", vec![b, h, near_k.of(n), dk]),
                ("v", vec![b, h, n, dv]),
                ("dout", vec![b, h, n, near_out.of(dv)]),
            ];
            ((), shapes)
        });
    case(layout)
}

const MAPS: [FeatureMap; 2] = [FeatureMap::EluPlusOne, FeatureMap::NormAware];

#[test]
fn attention_linear() {
    check(qkv(), |p, case| {
        let [q, k, v, _] = &case.args;
        for causal in [false, true] {
            for map in MAPS {
                let label = format!("attention::linear ({map:?}, causal {causal})");
                p.both(&label, case.extreme, &|c| {
                    Ok(vec![values(attention::linear(
                        c,
                        &q.on(c)?,
                        &k.on(c)?,
                        &v.on(c)?,
                        map,
                        causal,
                    ))?])
                })?;
            }
        }
        Ok(())
    });
}

#[test]
fn attention_linear_backward() {
    check(qkv(), |p, case| {
        let [q, k, v, dout] = &case.args;
        for causal in [false, true] {
            for map in MAPS {
                let label = format!("attention::linear_backward ({map:?}, causal {causal})");
                p.both(&label, case.extreme, &|c| {
                    let gr = attention::linear_backward(
                        c,
                        &q.on(c)?,
                        &k.on(c)?,
                        &v.on(c)?,
                        &dout.on(c)?,
                        map,
                        causal,
                    )?;
                    Ok(vec![gr.q.to_vec()?, gr.k.to_vec()?, gr.v.to_vec()?])
                })?;
            }
        }
        Ok(())
    });
}

#[test]
fn attention_softmax() {
    check(qkv(), |p, case| {
        let [q, k, v, _] = &case.args;
        for causal in [false, true] {
            let label = format!("attention::softmax (causal {causal})");
            p.both(&label, case.extreme, &|c| {
                Ok(vec![values(attention::softmax(
                    c,
                    &q.on(c)?,
                    &k.on(c)?,
                    &v.on(c)?,
                    causal,
                ))?])
            })?;
        }
        Ok(())
    });
}

#[test]
fn attention_softmax_backward() {
    check(qkv(), |p, case| {
        let [q, k, v, dout] = &case.args;
        for causal in [false, true] {
            let label = format!("attention::softmax_backward (causal {causal})");
            p.both(&label, case.extreme, &|c| {
                let gr = attention::softmax_backward(
                    c,
                    &q.on(c)?,
                    &k.on(c)?,
                    &v.on(c)?,
                    &dout.on(c)?,
                    causal,
                )?;
                Ok(vec![gr.q.to_vec()?, gr.k.to_vec()?, gr.v.to_vec()?])
            })?;
        }
        Ok(())
    });
}

/// The decoder's sizes.
#[derive(Clone, Copy, Debug)]
struct Decoder {
    batch: usize,
    heads: usize,
    dk: usize,
    dv: usize,
}

/// Decoding: three steps of tokens q, k [b, h, dk] and v [b, h, dv] (k now and then of the
/// wrong size), b and h at most 3.
#[test]
fn attention_linear_decoder() {
    let layout = (
        small_dim(),
        small_dim(),
        dim(),
        dim(),
        [near(), near(), near()],
    )
        .prop_map(|(batch, heads, dk, dv, nears)| {
            let [k0, k1, k2] = nears.map(|near| vec![batch, heads, near.of(dk)]);
            let (q, v) = (vec![batch, heads, dk], vec![batch, heads, dv]);
            let shapes = [
                ("q0", q.clone()),
                ("k0", k0),
                ("v0", v.clone()),
                ("q1", q.clone()),
                ("k1", k1),
                ("v1", v.clone()),
                ("q2", q),
                ("k2", k2),
                ("v2", v),
            ];
            let sizes = Decoder {
                batch,
                heads,
                dk,
                dv,
            };
            (sizes, shapes)
        });
    check(case(layout), |p, case| {
        let Decoder {
            batch,
            heads,
            dk,
            dv,
        } = case.params;
        for map in MAPS {
            let label = format!("attention::LinearDecoder::step ({map:?})");
            p.both(&label, case.extreme, &|c| {
                let mut decoder = LinearDecoder::new(c, batch, heads, dk, dv, map)?;
                let mut outs = Vec::new();
                for [q, k, v] in case.args.chunks(3).map(|t| [&t[0], &t[1], &t[2]]) {
                    outs.push(values(decoder.step(&q.on(c)?, &k.on(c)?, &v.on(c)?))?);
                }
                Ok(outs)
            })?;
        }
        Ok(())
    });
}
