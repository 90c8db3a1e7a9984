//! The `wick` command: parses arguments and calls the library.

mod cli;

/// Training allocates and frees the same large buffers every step; mimalloc reuses them where
/// glibc's malloc returns them to the kernel and faults in fresh zeroed pages (BENCHMARKS.md:
/// +50% samples/s on the seed MLP, +15-25% on the small CNN).
#[cfg(feature = "lower")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let args = cli::parse_args();
    // candle attaches a backtrace to its errors whenever RUST_BACKTRACE is set, and their
    // messages print it: dozens of lines after the one that says what went wrong. std reads
    // RUST_LIB_BACKTRACE first, for library backtraces only (a panic still gets one), and on
    // first use: set here, while the process has one thread, it decides for every error.
    std::env::set_var("RUST_LIB_BACKTRACE", if args.verbose { "1" } else { "0" });
    #[cfg(feature = "lower")]
    wick::lower::kernels::cpu::fix_thread_count();
    cli::run(args)
}
