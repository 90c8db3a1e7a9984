//! Writing to standard output and standard error without panicking: a closed pipe ends the
//! process quietly (exit 141), any other failure (a full disk) with one line and exit 2.

use std::fmt;
use std::io::{self, Write};

use super::{EXIT_BROKEN_PIPE, EXIT_USAGE};

pub fn stdout(text: fmt::Arguments) {
    let mut out = io::stdout().lock();
    finish(out.write_fmt(text).and_then(|()| out.flush()), "standard output");
}

pub fn stderr(text: fmt::Arguments) {
    let mut err = io::stderr().lock();
    finish(err.write_fmt(text).and_then(|()| err.flush()), "standard error");
}

/// The arguments, or the end of the process after clap's help, version or usage error, said
/// as any other output is (clap's own printing drops write errors).
pub fn parse_args() -> super::Cli {
    use clap::Parser;
    super::Cli::try_parse().unwrap_or_else(|e| {
        let stream = if e.use_stderr() { "standard error" } else { "standard output" };
        finish(e.print(), stream);
        std::process::exit(e.exit_code())
    })
}

/// Ends the process if the write failed: whatever was to follow has nowhere to go.
fn finish(written: io::Result<()>, stream: &str) {
    let Err(e) = written else { return };
    if e.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(EXIT_BROKEN_PIPE.into());
    }
    // Said on standard error, which may be the stream that failed: then it is lost too.
    let _ = writeln!(io::stderr(), "error: cannot write to {stream}: {e}");
    std::process::exit(EXIT_USAGE.into());
}
