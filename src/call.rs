//! The public call a thread is serving, so that an error raised deep in the device layer
//! (an allocation, an upload, a submission, a lost device) names the call the user made —
//! `zeros`, `dora::backward` — rather than the internal step that failed.
//!
//! Every public operation enters its call on the thread; an operation built on others
//! (DoRA's backward runs GEMMs) keeps the outermost name, which is the one the user wrote.

use std::cell::Cell;

thread_local! {
    static CALL: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// Marks `op` as the call this thread serves until dropped, unless an outer call already is.
#[must_use = "the call is served only while the guard lives"]
pub(crate) struct Call {
    outermost: bool,
}

impl Call {
    pub(crate) fn enter(op: &'static str) -> Call {
        CALL.with(|call| {
            let outermost = call.get().is_none();
            if outermost {
                call.set(Some(op));
            }
            Call { outermost }
        })
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if self.outermost {
            CALL.with(|call| call.set(None));
        }
    }
}

/// The public call this thread serves, or `fallback` outside any.
pub(crate) fn name(fallback: &'static str) -> &'static str {
    CALL.with(|call| call.get()).unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outermost_call_names_the_error_and_ends_with_its_guard() {
        assert_eq!(name("none"), "none");
        {
            let _outer = Call::enter("dora::backward");
            {
                let _inner = Call::enter("matmul");
                assert_eq!(name("none"), "dora::backward");
            }
            assert_eq!(name("none"), "dora::backward");
        }
        assert_eq!(name("none"), "none");
    }
}
