//! `layout_first`: proptest's `prop_flat_map` with the shrinking order reversed.
//!
//! A case is a layout (shapes, degrees, dtypes, whether values are extreme) and the values
//! drawn for it. `prop_flat_map` shrinks the values first and the layout only when no value
//! shrinks further: one step per element, thousands of calls on both paths before a shape
//! moves. Here the layout shrinks first (fresh values drawn for each smaller layout, a few
//! times over where they pass), then the values of the smallest failing layout.

use std::fmt;
use std::mem;
use std::sync::Arc;

use proptest::strategy::{NewTree, Strategy, ValueTree};
use proptest::test_runner::TestRunner;

/// How many other draws of the values a smaller layout gets where its first one passes.
const REDRAWS: u32 = 2;

/// Values drawn by `values(layout)` for a layout drawn by `layout`; shrinks the layout first.
pub fn layout_first<L, F, S>(layout: L, values: F) -> LayoutFirst<L, F>
where
    L: Strategy,
    F: Fn(L::Value) -> S,
    S: Strategy,
{
    LayoutFirst {
        layout,
        values: Arc::new(values),
    }
}

pub struct LayoutFirst<L, F> {
    layout: L,
    values: Arc<F>,
}

impl<L: fmt::Debug, F> fmt::Debug for LayoutFirst<L, F> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("LayoutFirst")
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

impl<L, F, S> Strategy for LayoutFirst<L, F>
where
    L: Strategy,
    F: Fn(L::Value) -> S,
    S: Strategy,
{
    type Tree = LayoutFirstTree<L::Tree, F, S>;
    type Value = S::Value;

    fn new_tree(&self, runner: &mut TestRunner) -> NewTree<Self> {
        let layout = self.layout.new_tree(runner)?;
        // Its own runner, forked from the case's, draws the values again as the layout shrinks.
        let mut own = TestRunner::new_with_rng(runner.config().clone(), runner.new_rng());
        let values = (self.values)(layout.current()).new_tree(&mut own)?;
        Ok(LayoutFirstTree {
            layout,
            values,
            failing: None,
            make: Arc::clone(&self.values),
            runner: own,
            layout_done: false,
            last_was_layout: false,
            redraws: 0,
        })
    }
}

pub struct LayoutFirstTree<T, F, S: Strategy> {
    layout: T,
    values: S::Tree,
    /// The values of the last failing case, while a smaller layout is tried.
    failing: Option<S::Tree>,
    make: Arc<F>,
    runner: TestRunner,
    /// The layout shrinks no further: the values shrink.
    layout_done: bool,
    /// Whether the last `simplify` shrank the layout (else the values).
    last_was_layout: bool,
    redraws: u32,
}

impl<T, F, S> LayoutFirstTree<T, F, S>
where
    T: ValueTree,
    F: Fn(T::Value) -> S,
    S: Strategy,
{
    fn draw(&mut self) -> Option<S::Tree> {
        (self.make)(self.layout.current())
            .new_tree(&mut self.runner)
            .ok()
    }
}

impl<T, F, S> ValueTree for LayoutFirstTree<T, F, S>
where
    T: ValueTree,
    F: Fn(T::Value) -> S,
    S: Strategy,
{
    type Value = S::Value;

    fn current(&self) -> S::Value {
        self.values.current()
    }

    fn simplify(&mut self) -> bool {
        self.redraws = 0;
        if !self.layout_done {
            if self.layout.simplify() {
                if let Some(values) = self.draw() {
                    self.failing = Some(mem::replace(&mut self.values, values));
                    self.last_was_layout = true;
                    self.redraws = REDRAWS;
                    return true;
                }
            }
            self.layout_done = true;
            self.failing = None;
        }
        self.last_was_layout = false;
        self.values.simplify()
    }

    fn complicate(&mut self) -> bool {
        if !self.last_was_layout {
            return self.values.complicate();
        }
        // The smaller layout passed: other values for it, then a layout between it and the
        // failing one, then back to the failing case (its layout shrinks no further there).
        if self.redraws > 0 {
            self.redraws -= 1;
            if let Some(values) = self.draw() {
                self.values = values;
                return true;
            }
        }
        if self.layout.complicate() {
            if let Some(values) = self.draw() {
                self.values = values;
                self.redraws = REDRAWS;
                return true;
            }
        }
        self.last_was_layout = false;
        match self.failing.take() {
            Some(values) => {
                self.values = values;
                true
            }
            None => false,
        }
    }
}
