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

    /// The device ran out of memory.
    #[error("out of device memory allocating {bytes} bytes for {label}")]
    OutOfMemory {
        /// Bytes requested.
        bytes: u64,
        /// What the buffer was for.
        label: String,
    },

    /// A shader or pipeline failed to compile or validate on this device.
    #[error("shader `{label}` failed to build: {message}")]
    Shader {
        /// The shader file.
        label: String,
        /// The driver's or naga's message.
        message: String,
    },

    /// The device was lost (driver reset, unplugged, destroyed); the context cannot be used.
    #[error("the GPU device was lost: {0}")]
    DeviceLost(String),

    /// Any other error reported by wgpu.
    #[error("wgpu error: {0}")]
    Gpu(String),
}
