//! Bytes -> text (lossy) -> parse, elaborate, check; then render the diagnostics and, when a
//! model came out, its summary. Any panic, overflow trap or runaway allocation is a bug.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wick::diag::RenderStyle;
use wick::report::{self, TableStyle};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let c = wick::compile_source("fuzz.wick", &text, &wick::Options::default());
    let _ = c.render_diagnostics(RenderStyle::PLAIN);
    if let Some(summary) = c.summary(None) {
        let _ = report::render_table(&summary, TableStyle { unicode: true, color: false });
        let _ = report::render_json(&summary);
    }
});
