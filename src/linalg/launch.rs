//! One GEMM launched on the device: its blocks dispatched, split-K partials summed in a fixed
//! order, the row squares gathered where asked.

use super::gemm::Gemm;
use super::kernels::{GemmKernel, Params};
use super::plan::{plan, GemmBlock};
use super::reduce;
use crate::dtype::DType;
use crate::gpu::dispatch::Window;
use crate::gpu::{Bound, GpuDevice};
use crate::{Result, Tensor};

/// The rows form's last binding, op(A) again as vec4s: A's window, read four k at a time
/// (`params.a_vec4` set) where op(A) is f32 and row-major and its rows and k-slices start at
/// multiples of 4 within the binding; otherwise unread, and a small `scratch` where the window
/// is shorter than one vec4 (a binding must hold one element).
pub(super) fn bind_a4<'a>(
    g: Gemm,
    [a, scratch]: [&'a wgpu::Buffer; 2],
    a_dtype: DType,
    wa: Window,
    splits: usize,
    params: &mut Params,
) -> Bound<'a> {
    let aligned = a_dtype == DType::F32
        && !g.transpose_a
        && g.k % 4 == 0
        && wa.skip % 4 == 0
        && (splits == 1 || params.k_chunk % 4 == 0);
    params.a_vec4 = aligned as u32;
    match wa.size >= 16 {
        true => Bound::window(a, wa),
        false => Bound::whole(scratch),
    }
}

/// `C = op(A)·op(B)` (and the row squares of op(A) where `squares` is given) by `kernel`, over
/// the blocks and slices of [`plan`].
pub(super) fn launch(
    gpu: &GpuDevice,
    op: &'static str,
    kernel: &GemmKernel,
    g: Gemm,
    [a_tensor, b_tensor]: [&Tensor; 2],
    c: &wgpu::Buffer,
    squares: Option<&wgpu::Buffer>,
) -> Result<()> {
    let (a, b) = (a_tensor.buffer(), b_tensor.buffer());
    let (a_dtype, b_dtype) = (a_tensor.dtype(), b_tensor.dtype());
    let operands = [("a", a_dtype), ("b", b_dtype)];
    let pipeline = gpu.kernel_with(&kernel.shader, &operands, &kernel.constants)?;
    let limits = gpu.binding;
    let mut blocks = plan(gpu, op, kernel, g)?;
    let a4_scratch = match kernel.reads_a4 {
        true => Some(gpu.storage(4)?),
        false => None,
    };
    // The partial products of split blocks (and their row squares), one scratch reused by
    // every block. Where it cannot be allocated the product runs unsplit: split-K is a
    // speed-up, never a requirement.
    let most = |width: usize| {
        let split = blocks.iter().filter(|b| b.splits() > 1);
        split.map(|b| b.splits() * b.m * width).max()
    };
    let partials = most(g.n).and_then(|len| {
        let c_partials = gpu.storage(len).ok()?;
        let squares_partials = match squares {
            Some(_) => Some(gpu.storage(most(1)?).ok()?),
            None => None,
        };
        Some((c_partials, squares_partials))
    });
    let sum = match partials {
        Some(_) => Some(reduce::SumSlices::new(gpu)?),
        None => {
            blocks.iter_mut().for_each(|block| block.k_chunk = block.k);
            None
        }
    };

    // One dispatch per block of (m, n, k) (and one sum per split block), in one submission.
    let mut recording = gpu.recording();
    for block in &blocks {
        let GemmBlock {
            i0, m, j0, n, k0, ..
        } = *block;
        let splits = block.splits();
        let [(fa, na), (fb, nb)] = block.operand_spans(g);
        let (fc, nc) = (
            (i0 * g.n + j0) as u64,
            ((m - 1) * g.n + n) as u64, // rows i0 .. i0+m, columns j0 .. j0+n
        );
        let wa = limits.window_of(op, "a", a_dtype, fa, na, a.size())?;
        let wb = limits.window_of(op, "b", b_dtype, fb, nb, b.size())?;
        let wc = limits.window(op, "output", fc, nc, c.size())?;
        let mut params = block.params(g, kernel.tile, [wa.skip, wb.skip, wc.skip]);
        // Taken by the first block of columns only (each row once).
        params.squares = (squares.is_some() && j0 == 0) as u32;
        let mut bindings = vec![
            Bound::window(a, wa),
            Bound::window(b, wb),
            Bound::window(c, wc),
        ];
        let ws = match squares {
            Some(squares) => {
                Some(limits.window(op, "output", i0 as u64, m as u64, squares.size())?)
            }
            None => None,
        };
        match (&partials, &sum, splits) {
            (Some((c_partials, squares_partials)), Some(sum), 2..) => {
                // Each slice into its own partial, then C (+)= Σ_s partial_s in increasing s.
                let (c_partials, cells) = (c_partials.buffer(), (splits * m * n) as u64);
                let wp = limits.window(op, "output", 0, cells, c_partials.size())?;
                params.c_offset = wp.skip;
                params.accumulate = 0;
                bindings[2] = Bound::window(c_partials, wp);
                let mut sums = vec![(Bound::window(c_partials, wp), Bound::window(c, wc), m * n)];
                if let (Some(ws), Some(squares), Some(sq_partials)) =
                    (ws, squares, squares_partials)
                {
                    let sq_partials = sq_partials.buffer();
                    let wq =
                        limits.window(op, "output", 0, (splits * m) as u64, sq_partials.size())?;
                    params.squares_offset = wq.skip;
                    bindings.push(Bound::window(sq_partials, wq));
                    if j0 == 0 {
                        sums.push((
                            Bound::window(sq_partials, wq),
                            Bound::window(squares, ws),
                            m,
                        ));
                    }
                }
                if let Some(scratch) = &a4_scratch {
                    let buffers = [a, scratch.buffer()];
                    let a4 = bind_a4(g, buffers, a_dtype, wa, splits, &mut params);
                    bindings.push(a4);
                }
                recording.dispatch(
                    &pipeline,
                    &params,
                    &bindings,
                    params.total_tiles * params.splits,
                )?;
                for (from, to, inner) in sums {
                    sum.record(&mut recording, from, to, [splits, inner], k0 > 0)?;
                }
            }
            _ => {
                if let (Some(ws), Some(squares)) = (ws, squares) {
                    params.squares_offset = ws.skip;
                    bindings.push(Bound::window(squares, ws));
                }
                if let Some(scratch) = &a4_scratch {
                    let buffers = [a, scratch.buffer()];
                    bindings.push(bind_a4(g, buffers, a_dtype, wa, 1, &mut params));
                }
                recording.dispatch(&pipeline, &params, &bindings, params.total_tiles)?;
            }
        }
    }
    recording.submit()
}
