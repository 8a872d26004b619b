//! The one error type of the crate.

/// `std::result::Result` with [`Error`] as the error.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in a wgkernels call.
///
/// Messages name the argument and the shapes involved, so that a failed call can be
/// understood from its message alone. A call that returns `Err` has changed nothing the
/// caller owns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// [`Context::gpu`](crate::Context::gpu) found no GPU adapter.
    #[error("no GPU adapter found (on Linux without a GPU, install Mesa's lavapipe: apt-get install mesa-vulkan-drivers libvulkan1)")]
    NoAdapter,

    /// The adapter refused to create a device.
    #[error("the adapter refused to create a device: {0}")]
    RequestDevice(String),

    /// Arguments whose shapes do not fit together, or a shape the operation does not take.
    #[error("{op}: {message}")]
    Shape {
        /// The operation that was called.
        op: &'static str,
        /// Which arguments disagree, with their shapes.
        message: String,
    },

    /// A tensor with no elements where the operation needs some.
    #[error("{op}: `{arg}` is empty (shape {shape:?})")]
    Empty {
        /// The operation that was called.
        op: &'static str,
        /// The argument's name.
        arg: &'static str,
        /// Its shape.
        shape: Vec<usize>,
    },

    /// Host data whose length does not match the requested shape.
    #[error("tensor: data has {len} elements but shape {shape:?} needs {expected}")]
    DataLength {
        /// Length of the host slice.
        len: usize,
        /// The requested shape.
        shape: Vec<usize>,
        /// The product of the shape.
        expected: usize,
    },

    /// A tensor created by one [`Context`](crate::Context) passed to another.
    #[error("{op}: `{arg}` belongs to another context ({arg_device}); this one is {device}")]
    ContextMismatch {
        /// The operation that was called.
        op: &'static str,
        /// The argument's name.
        arg: &'static str,
        /// The device of the tensor's context.
        arg_device: String,
        /// The device of the context that ran the call.
        device: String,
    },

    /// A scalar argument outside the range the operation accepts.
    #[error("{op}: `{arg}` {message}")]
    InvalidArgument {
        /// The operation that was called.
        op: &'static str,
        /// The argument's name.
        arg: &'static str,
        /// What is wrong with it.
        message: String,
    },

    /// A buffer the device cannot hold, or one that cannot be split across storage bindings.
    #[error("{op}: `{arg}` needs {bytes} bytes in one piece but the device allows {limit}")]
    TooLarge {
        /// The operation that was called.
        op: &'static str,
        /// The argument (or output) that is too large.
        arg: &'static str,
        /// Bytes needed.
        bytes: u64,
        /// The device's limit.
        limit: u64,
    },

    /// The device ran out of memory, or the allocation would pass the context's
    /// [`GpuOptions::memory_budget`](crate::GpuOptions::memory_budget). The buffers the pool
    /// kept for reuse were freed and the allocation tried again before this; nothing was
    /// allocated, and the context stays usable once memory is freed.
    #[error("{op}: out of device memory: `{arg}` needs {bytes} bytes with {in_use} already in use{}", budget_text(*.budget))]
    OutOfMemory {
        /// The public call that was made.
        op: &'static str,
        /// The argument, output or scratch buffer that did not fit.
        arg: &'static str,
        /// Bytes requested.
        bytes: u64,
        /// Bytes in live buffers when it was requested.
        in_use: u64,
        /// The context's budget, when one was set and this request passed it.
        budget: Option<u64>,
    },

    /// A shader or pipeline failed to compile or validate on this device.
    #[error("{op}: shader `{label}` failed to build: {message}")]
    Shader {
        /// The public call that was made.
        op: &'static str,
        /// The shader file.
        label: String,
        /// The driver's or naga's message.
        message: String,
    },

    /// The device was lost (destroyed, driver reset, GPU timeout, unplugged) before or while
    /// the call ran; every later call on the context fails the same way. The message names
    /// the call. Recover by making a new [`Context`](crate::Context) (`Context::new()` falls
    /// back to the CPU path) and reloading state from the host.
    #[error("{0}")]
    DeviceLost(String),

    /// A file that could not be read or written, or whose contents are not what the call
    /// reads (an adapter directory, say).
    #[error("{op}: `{path}`: {message}")]
    File {
        /// The public call that was made.
        op: &'static str,
        /// The file or directory.
        path: String,
        /// What went wrong.
        message: String,
    },

    /// Any other error reported by wgpu, naming the call.
    #[error("{0}")]
    Gpu(String),
}

impl Error {
    /// [`Error::DeviceLost`] naming the public call being served.
    pub(crate) fn device_lost(detail: &str) -> Error {
        Error::DeviceLost(format!(
            "{}: the GPU device was lost ({detail})",
            crate::call::name("wgkernels")
        ))
    }

    /// [`Error::Gpu`] naming the public call being served.
    pub(crate) fn gpu(detail: impl std::fmt::Display) -> Error {
        Error::Gpu(format!(
            "{}: wgpu error: {detail}",
            crate::call::name("wgkernels")
        ))
    }
}

fn budget_text(budget: Option<u64>) -> String {
    match budget {
        Some(budget) => format!(" against a budget of {budget}"),
        None => String::new(),
    }
}
