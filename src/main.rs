//! The `wick` command: parses arguments and calls the library.

mod cli;

use clap::Parser;

/// Training allocates and frees the same large buffers every step; mimalloc reuses them where
/// glibc's malloc returns them to the kernel and faults in fresh zeroed pages (BENCHMARKS.md:
/// +50% samples/s on the seed MLP, +15-25% on the small CNN).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    wick::lower::kernels::cpu::fix_thread_count();
    cli::run(cli::Cli::parse())
}
