//! This process as the kernel sees it, read from `/proc/self` (Linux, proc(5)), for the
//! standard `process_*` metrics. Elsewhere every figure is `None` and none is exposed.

/// Clock ticks per second of `/proc` times: `USER_HZ`, fixed at 100 in the Linux user ABI
/// on the architectures we run on (what `sysconf(_SC_CLK_TCK)` answers there).
const USER_HZ: f64 = 100.0;

/// What the process metrics expose.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessFigures {
    /// User and system processor time, seconds.
    pub cpu_seconds: Option<f64>,
    /// Resident set size, bytes.
    pub resident_bytes: Option<f64>,
    /// Virtual memory size, bytes.
    pub virtual_bytes: Option<f64>,
    /// Open file descriptors.
    pub open_fds: Option<f64>,
    /// The soft limit on open file descriptors.
    pub max_fds: Option<f64>,
    /// When the process started, Unix seconds.
    pub start_time_seconds: Option<f64>,
}

/// Reads the figures now.
pub fn figures() -> ProcessFigures {
    let stat = std::fs::read_to_string("/proc/self/stat").ok();
    let fields = stat.as_deref().map(stat_fields).unwrap_or_default();
    // Fields after the command name, numbered as in proc(5) from 3 (state).
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let boot_time = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<f64>().ok())
    });
    ProcessFigures {
        cpu_seconds: field(14)
            .zip(field(15))
            .map(|(user, system)| (user + system) / USER_HZ),
        resident_bytes: status_kib(&status, "VmRSS:").map(|kib| kib * 1024.0),
        virtual_bytes: field(23),
        open_fds: std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|entries| entries.count() as f64),
        max_fds: std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|limits| max_open_files(&limits)),
        start_time_seconds: boot_time
            .zip(field(22))
            .map(|(boot, ticks)| boot + ticks / USER_HZ),
    }
}

/// The fields of `/proc/self/stat` after `(comm)`; the command name may hold spaces and
/// parentheses, so the split starts after its last `)`.
fn stat_fields(stat: &str) -> Vec<String> {
    stat.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

fn status_kib(status: &str, key: &str) -> Option<f64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn max_open_files(limits: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()
        .and_then(|soft| soft.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stat_line_splits_after_the_command_name() {
        let fields = stat_fields("42 (a (b) c) S 1 42 42 0 -1 4194560 10 0 0 0 250 50");
        assert_eq!(fields[0], "S");
        assert_eq!(fields[14 - 3], "250");
        assert_eq!(fields[15 - 3], "50");
    }

    #[test]
    fn limits_and_status_are_read() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024.0));
        assert_eq!(
            status_kib("Name:\tx\nVmRSS:\t   1234 kB\n", "VmRSS:"),
            Some(1234.0)
        );
    }

    #[test]
    fn this_process_has_figures_on_linux() {
        if !std::path::Path::new("/proc/self/stat").exists() {
            return;
        }
        let figures = figures();
        assert!(
            figures.resident_bytes.is_some_and(|b| b > 0.0),
            "{figures:?}"
        );
        assert!(figures.open_fds.is_some_and(|n| n >= 3.0), "{figures:?}");
        assert!(figures.max_fds.is_some_and(|n| n >= 1.0), "{figures:?}");
        assert!(figures.cpu_seconds.is_some(), "{figures:?}");
        let start = figures.start_time_seconds.expect("start time");
        // Started after 2020 and not in the future.
        assert!(start > 1.577e9, "{start}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs_f64();
        assert!(start <= now + 1.0, "{start} > {now}");
    }
}
