//! Helpers shared by the integration tests that run the `wick` binary.

use std::process::{Command, Output};

/// Run the built `wick` with `args` from the repository root, without colour.
pub fn wick(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wick"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run wick")
}
