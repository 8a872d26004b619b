//! The f64 CPU reference of the graph operations, and the edge order they sum in.

/// The edges of each node in increasing edge order: node v's edges are
/// `order[offsets[v]..offsets[v+1]]`.
#[derive(Clone, Debug)]
pub struct Segments {
    /// The receiving node of every edge.
    pub receivers: Vec<u32>,
    /// Edge ids sorted by receiver, stable.
    pub order: Vec<u32>,
    /// `nodes + 1` starts into `order`.
    pub offsets: Vec<u32>,
}

impl Segments {
    /// Counting sort of the edges by receiver (every entry `< nodes`).
    pub fn new(receivers: &[u32], nodes: usize) -> Segments {
        let mut offsets = vec![0u32; nodes + 1];
        for &v in receivers {
            offsets[v as usize + 1] += 1;
        }
        for v in 0..nodes {
            offsets[v + 1] += offsets[v];
        }
        let mut next = offsets.clone();
        let mut order = vec![0u32; receivers.len()];
        for (e, &v) in receivers.iter().enumerate() {
            order[next[v as usize] as usize] = e as u32;
            next[v as usize] += 1;
        }
        Segments {
            receivers: receivers.to_vec(),
            order,
            offsets,
        }
    }
}

/// `out[e] = table[receivers[e]]`, rows of `width`.
pub fn gather(table: &[f32], width: usize, receivers: &[u32]) -> Vec<f64> {
    receivers
        .iter()
        .flat_map(|&v| {
            table[v as usize * width..][..width]
                .iter()
                .map(|&x| x as f64)
        })
        .collect()
}

/// `out[v] = Σ_{e: receivers[e] = v} src[e]`, in increasing e, rows of `width`.
pub fn scatter_sum(src: &[f32], width: usize, segments: &Segments) -> Vec<f64> {
    let nodes = segments.offsets.len() - 1;
    let mut out = vec![0.0; nodes * width];
    for (v, row) in out.chunks_mut(width.max(1)).enumerate().take(nodes) {
        let edges = segments.offsets[v] as usize..segments.offsets[v + 1] as usize;
        for &e in &segments.order[edges] {
            for (o, &x) in row.iter_mut().zip(&src[e as usize * width..][..width]) {
                *o += x as f64;
            }
        }
    }
    out
}
