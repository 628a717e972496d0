//! The standard `process_*` figures of the running process, read from Linux's `/proc`.

/// What Prometheus's process collector reports, read once per scrape.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessStats {
    /// Resident set size, bytes.
    pub resident_memory_bytes: u64,
    /// Virtual memory size, bytes.
    pub virtual_memory_bytes: u64,
    /// User and system CPU time consumed, seconds.
    pub cpu_seconds: f64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// The soft limit on open file descriptors.
    pub max_fds: u64,
    /// When the process started, seconds since the Unix epoch.
    pub start_time_seconds: f64,
}

impl ProcessStats {
    /// This process's figures, or `None` where `/proc` cannot tell (not Linux).
    pub fn of_self() -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let ticks = clock_ticks_per_second()?;
        let page = page_size()?;
        // The command name (field 2) may hold spaces and parentheses: fields start after the
        // last ')', with field 3 (state) first.
        let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
        let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
        let (utime, stime) = (field(14)?, field(15)?);
        let start_ticks = field(22)?;
        let boot = boot_time_seconds().unwrap_or(0);
        Some(ProcessStats {
            resident_memory_bytes: field(24)? * page,
            virtual_memory_bytes: field(23)?,
            cpu_seconds: (utime + stime) as f64 / ticks as f64,
            open_fds: std::fs::read_dir("/proc/self/fd").ok()?.count() as u64,
            max_fds: max_open_files().unwrap_or(0),
            start_time_seconds: boot as f64 + start_ticks as f64 / ticks as f64,
        })
    }
}

fn clock_ticks_per_second() -> Option<u64> {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0)
}

fn page_size() -> Option<u64> {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(page).ok().filter(|&p| p > 0)
}

fn max_open_files() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0).then_some(limit.rlim_cur)
}

/// System boot time from `/proc/stat`'s `btime`, seconds since the epoch.
fn boot_time_seconds() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let btime = stat.lines().find_map(|l| l.strip_prefix("btime "))?;
    btime.trim().parse().ok()
}

/// Seconds since the Unix epoch now (for a sanity check of the start time in tests).
#[cfg(test)]
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_memory_cpu_fds_and_started_in_the_past() {
        let p = ProcessStats::of_self().expect("Linux /proc");
        assert!(p.resident_memory_bytes > 1 << 20, "{p:?}");
        assert!(p.virtual_memory_bytes >= p.resident_memory_bytes, "{p:?}");
        assert!(p.open_fds >= 3 && p.open_fds <= p.max_fds, "{p:?}");
        let now = unix_now();
        assert!(p.start_time_seconds <= now + 1.0, "{p:?}");
        assert!(p.start_time_seconds > now - 24.0 * 3600.0, "{p:?}");
    }
}
