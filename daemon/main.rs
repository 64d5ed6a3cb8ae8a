//! The `kithd` binary: parses arguments and hands over to `kithd::cli::run`.

/// jemalloc rather than glibc's allocator: a delivery allocates on the async workers and
/// frees on the blocking pool (and back), where glibc's arenas took a sixth of the daemon's
/// CPU in a burst; jemalloc also hands a big plan's load-time garbage back to the system
/// (1M items: 364 MB settled against glibc's 415). See README, "Benchmarks".
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(kithd::cli::run(std::env::args_os()))
}
