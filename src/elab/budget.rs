//! The work budget: elaboration stops cleanly once it has taken too many steps.
//!
//! The node cap bounds what a model holds, not what building it costs: `repeat 1000000 {
//! repeat 1000000 { [] } }` adds no layer, and a block that calls itself twice doubles its work
//! with each level. Every expression evaluated, stage applied, `repeat` iteration and block call
//! is one step, and the steps allowed grow with the node cap, so a spec that may build the
//! largest model may also take the steps it needs.

use super::diagnostics as diag;
use super::Elaborator;
use crate::diag::Diagnostic;
use crate::front::span::Span;

/// Steps a diagnostic costs, besides one per call in its chain: building its message and
/// chain costs more than a step, and a loop may make one per iteration.
const DIAGNOSTIC_STEPS: u64 = 16;

/// Steps allowed per node of the cap: the catalog's models spend three to six per node (a
/// call, its arguments, the pipe around it).
pub const STEPS_PER_NODE: u64 = 8;

impl Elaborator<'_> {
    /// Count `steps`; past the budget, report it once and stop elaborating. `false` once stopped.
    pub(super) fn spend(&mut self, steps: u64, here: Span) -> bool {
        if self.aborted {
            return false;
        }
        self.work = self.work.saturating_add(steps);
        if self.work <= self.max_work {
            return true;
        }
        // The outermost loop or call running is what to rewrite; the innermost is where it was.
        let outer = self.costly.first().cloned();
        let inner = self.costly.last().cloned();
        let d = match (outer, inner) {
            (Some((span, what)), Some((inner_span, inner_what))) => {
                let d = diag::work_budget(span, &what, self.max_work);
                if inner_span == span {
                    d
                } else {
                    d.also(inner_span, format!("still running this {inner_what}"))
                }
            }
            _ => diag::work_budget(here, "expression", self.max_work),
        };
        self.diags.push(d);
        self.aborted = true;
        false
    }

    /// Report a diagnostic, as work.
    pub(super) fn report(&mut self, d: Diagnostic) {
        let at = d.primary.as_ref().map_or(Span::default(), |l| l.span);
        self.spend(DIAGNOSTIC_STEPS + d.calls.len() as u64, at);
        self.diags.push(d);
    }

    /// Run `f` as a costly construct (a `repeat`, a block call) at `span`, named in a budget error.
    pub(super) fn running<T>(&mut self, span: Span, what: String, f: impl FnOnce(&mut Self) -> T) -> T {
        self.costly.push((span, what));
        let out = f(self);
        self.costly.pop();
        out
    }
}
