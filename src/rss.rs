//! Process memory and CPU as the kernel counts them, from /proc: for
//! /api/metrics, the soak, the load test and the benchmarks. Each returns
//! `None` where there is no /proc (or no such process).

/// Resident set size of this process now, in MB.
pub fn rss_mb() -> Option<f64> {
    status_mb("self", "VmRSS:")
}

/// The highest resident set size this process has had, in MB.
pub fn peak_rss_mb() -> Option<f64> {
    status_mb("self", "VmHWM:")
}

/// Resident set size of process `pid` now, in MB.
pub fn rss_mb_of(pid: u32) -> Option<f64> {
    status_mb(&pid.to_string(), "VmRSS:")
}

/// The highest resident set size process `pid` has had, in MB.
pub fn peak_rss_mb_of(pid: u32) -> Option<f64> {
    status_mb(&pid.to_string(), "VmHWM:")
}

/// CPU time (user + system) process `pid` has used, in seconds.
pub fn cpu_seconds_of(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name (which may hold spaces);
    // utime and stime are the 14th and 15th fields of the whole line.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // Linux reports CPU time in USER_HZ ticks, 100 per second.
    Some((utime + stime) as f64 / 100.0)
}

fn status_mb(process: &str, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{process}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .map(|kb| kb as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_reads_the_same_by_pid_and_as_self() {
        let Some(own) = peak_rss_mb() else {
            panic!("/proc is readable on the machines Auralis runs on")
        };
        let by_pid = peak_rss_mb_of(std::process::id()).unwrap();
        assert!(own > 1.0 && (by_pid - own).abs() < 64.0, "{own} {by_pid}");
        assert!(rss_mb_of(std::process::id()).unwrap() > 1.0);
        assert!(cpu_seconds_of(std::process::id()).unwrap() >= 0.0);
        assert_eq!(rss_mb_of(u32::MAX), None);
    }
}
