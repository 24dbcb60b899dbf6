//! CPU time and peak memory of another process, from /proc (Linux).

/// `(user + system CPU ms, peak RSS MB, current RSS MB)` of `pid`.
pub fn sample(pid: u32) -> Option<(f64, f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(comm)`, which may contain spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let ticks = 100.0; // USER_HZ on Linux
    let cpu_ms = (utime + stime) * 1000.0 / ticks;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| -> Option<f64> {
        status
            .lines()
            .find(|l| l.starts_with(key))?
            .split_whitespace()
            .nth(1)?
            .parse::<f64>()
            .ok()
    };
    Some((cpu_ms, kb("VmHWM:")? / 1024.0, kb("VmRSS:")? / 1024.0))
}

/// CPU ms of every PostgreSQL process on this machine (the postmaster,
/// its backends and workers: `/proc/<pid>/comm` is `postgres`). Backends
/// that exit between two samples take their time with them, so a
/// difference of two samples undercounts; the bench's connections stay
/// open for the whole run, so little is lost.
pub fn postgres_cpu_ms() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .filter_map(sample)
        .map(|s| s.0)
        .sum()
}
