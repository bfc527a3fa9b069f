//! The `recommande` command.

/// mimalloc instead of glibc's malloc. Rendering, encrypting and sealing letters on every
/// core allocates from many threads at once: glibc either gives each thread an arena of its
/// own (and keeps their freed memory: hundreds of MiB) or, capped, makes the threads wait on
/// each other's arena locks (a tenth of the processor time of a composed batch, measured with
/// `perf`). mimalloc keeps a heap per thread without locks and returns freed pages.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tune_allocator();
    recommande::cli::main()
}

/// `mi_option_purge_delay` and `mi_option_arena_eager_commit`: their values in the
/// `mi_option_e` enumeration of the mimalloc 3 header `mimalloc.h` that libmimalloc-sys
/// 0.1.49 (pinned in Cargo.lock) builds; its Rust bindings do not name them.
const MI_OPTION_ARENA_EAGER_COMMIT: std::ffi::c_int = 4;
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

#[allow(unsafe_code)]
mod ffi {
    unsafe extern "C" {
        /// Sets a mimalloc option (`mimalloc.h`).
        pub fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    }
}

/// Pages freed by the allocator go back to the system at once (`purge_delay` 0, instead of
/// 10 ms later) and its arenas are committed as they are used rather than up front: a
/// 10,000-letter composed batch then peaks at about 200 MiB instead of about 330 MiB for the
/// same speed (`recommande bench batch --compose`). An operator's `MIMALLOC_PURGE_DELAY` or
/// `MIMALLOC_ARENA_EAGER_COMMIT` (read by mimalloc itself) wins.
#[allow(unsafe_code)]
fn tune_allocator() {
    for (variable, option) in [
        ("MIMALLOC_PURGE_DELAY", MI_OPTION_PURGE_DELAY),
        ("MIMALLOC_ARENA_EAGER_COMMIT", MI_OPTION_ARENA_EAGER_COMMIT),
    ] {
        if std::env::var_os(variable).is_some() {
            continue;
        }
        // SAFETY: mi_option_set only stores an integer in mimalloc's option table (an
        // atomic store); it touches no memory of ours, and either value of either option
        // leaves the allocator correct, only its memory use and speed differ.
        unsafe { ffi::mi_option_set(option, 0) };
    }
}
