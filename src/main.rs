//! The `recommande` command.

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    recommande::cli::main()
}

/// Caps glibc's malloc arenas at two. By default glibc gives each thread that allocates
/// while the others hold their arena a new one, up to eight per core, and memory freed in an
/// arena stays mapped to it: the threads that render and store letters then keep hundreds
/// of MiB between them. Two arenas keep the contention low on the async workers and the
/// resident memory flat. An operator's `MALLOC_ARENA_MAX` (read by glibc itself) wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    // SAFETY: mallopt(3) only sets an allocator parameter; it takes two integers, touches no
    // memory of ours, and runs here before any other thread exists. Its return value (1 on
    // success) only says whether the parameter was accepted, and either way the program is
    // correct, only its memory use differs.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}
