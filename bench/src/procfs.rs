//! What the harness reads about a process from `/proc` (Linux).
//!
//! - CPU time: `utime + stime` from `/proc/PID/stat` (fields 14 and 15, in
//!   clock ticks), the whole process with all its threads.
//! - Waiting for a core: the second field of `/proc/PID/task/TID/schedstat`
//!   (run-queue delay, nanoseconds), summed over the threads.
//! - Memory: `VmRSS` from `/proc/PID/status`.

use std::io;
use std::time::Instant;

/// A process's CPU accounting at one moment.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    /// When it was read.
    pub at: Instant,
    /// User plus system time, in clock ticks.
    pub ticks: u64,
    /// Time its threads spent runnable but waiting for a core, in ns.
    pub run_delay_ns: u64,
}

/// CPU used and time waited between two samples.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuDelta {
    /// Wall-clock seconds between the samples.
    pub seconds: f64,
    /// CPU seconds used (user + system).
    pub cpu_seconds: f64,
    /// Seconds spent waiting for a core.
    pub wait_seconds: f64,
}

impl CpuDelta {
    /// From `before` to `after`, with `ticks_per_second` clock ticks.
    pub fn between(before: &CpuSample, after: &CpuSample, ticks_per_second: u64) -> CpuDelta {
        CpuDelta {
            seconds: after.at.saturating_duration_since(before.at).as_secs_f64(),
            cpu_seconds: after.ticks.saturating_sub(before.ticks) as f64
                / ticks_per_second.max(1) as f64,
            wait_seconds: after.run_delay_ns.saturating_sub(before.run_delay_ns) as f64 / 1e9,
        }
    }

    /// The share of the wall-clock time the process was on a core.
    pub fn busy(&self) -> f64 {
        ratio(self.cpu_seconds, self.seconds)
    }

    /// The share of the wall-clock time it waited for a core.
    pub fn waiting(&self) -> f64 {
        ratio(self.wait_seconds, self.seconds)
    }
}

fn ratio(part: f64, whole: f64) -> f64 {
    if whole > 0.0 { part / whole } else { 0.0 }
}

/// Reads the CPU accounting of process `pid`.
pub fn cpu(pid: u32) -> io::Result<CpuSample> {
    let at = Instant::now();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let ticks = parse_stat_ticks(&stat)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unreadable /proc/PID/stat"))?;
    let mut run_delay_ns = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = entry?.path().join("schedstat");
        // A thread may end between the listing and the read.
        if let Ok(schedstat) = std::fs::read_to_string(path) {
            run_delay_ns += parse_schedstat_delay(&schedstat).unwrap_or(0);
        }
    }
    Ok(CpuSample {
        at,
        ticks,
        run_delay_ns,
    })
}

/// The CPU accounting of several processes, added up (the time of the
/// first one's reading).
pub fn cpu_sum(pids: &[u32]) -> io::Result<CpuSample> {
    let mut sum: Option<CpuSample> = None;
    for &pid in pids {
        let sample = cpu(pid)?;
        sum = Some(match sum {
            None => sample,
            Some(sum) => CpuSample {
                at: sum.at,
                ticks: sum.ticks + sample.ticks,
                run_delay_ns: sum.run_delay_ns + sample.run_delay_ns,
            },
        });
    }
    sum.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no process"))
}

/// `utime + stime` from the text of `/proc/PID/stat`. The command name
/// (field 2) is in parentheses and may hold spaces: fields are counted
/// from the last `)`.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    // Field 3 (state) is the first after the name; utime is field 14.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The run-queue delay (second field) of a `schedstat` file.
pub fn parse_schedstat_delay(schedstat: &str) -> Option<u64> {
    schedstat.split_whitespace().nth(1)?.parse().ok()
}

/// The resident set size of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_status_rss(&status)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no VmRSS in /proc/PID/status"))
}

/// `VmRSS` in KiB from the text of `/proc/PID/status`.
pub fn parse_status_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line["VmRSS:".len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 if that fails).
pub fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|ticks| *ticks > 0)
        .unwrap_or(100)
}

/// This process's open-file limits (soft, hard), from `/proc/self/limits`.
pub fn open_files_limit() -> Option<(u64, u64)> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_files_limit(&limits)
}

/// The `Max open files` line of a `limits` file.
pub fn parse_open_files_limit(limits: &str) -> Option<(u64, u64)> {
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    let mut numbers = line["Max open files".len()..]
        .split_whitespace()
        .map(|field| {
            if field == "unlimited" {
                Some(u64::MAX)
            } else {
                field.parse().ok()
            }
        });
    Some((numbers.next()??, numbers.next()??))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_name_with_spaces() {
        let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 500 0 0 0 \
                    123 45 0 0 20 0 3 0 100 1000 200 18446744073709551615";
        assert_eq!(parse_stat_ticks(stat), Some(168));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn schedstat_status_and_limits() {
        assert_eq!(
            parse_schedstat_delay("179087314 25413417 700\n"),
            Some(25_413_417)
        );
        let status = "Name:\tnode\nVmPeak:\t  9000 kB\nVmRSS:\t   51234 kB\nThreads:\t7\n";
        assert_eq!(parse_status_rss(status), Some(51234));
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 20000                files\n";
        assert_eq!(parse_open_files_limit(limits), Some((1024, 20000)));
    }

    #[test]
    fn this_process_can_be_read() {
        let pid = std::process::id();
        let before = cpu(pid).unwrap();
        let mut spin = 0u64;
        while before.at.elapsed().as_millis() < 30 {
            spin = spin.wrapping_add(1);
        }
        let after = cpu(pid).unwrap();
        let delta = CpuDelta::between(&before, &after, clock_ticks());
        assert!(delta.seconds > 0.0 && spin > 0);
        assert!(rss_kib(pid).unwrap() > 0);
        let twice = cpu_sum(&[pid, pid]).unwrap();
        assert!(twice.ticks >= 2 * before.ticks);
        assert!(cpu_sum(&[]).is_err());
        assert!(open_files_limit().is_some());
    }
}
