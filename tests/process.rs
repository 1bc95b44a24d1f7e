//! What a process has cost so far, read from /proc: shared by the tests
//! and the benches (which include this file by path).

use std::time::Duration;

/// The CPU time process `pid` has spent so far, all its threads, user and
/// system; zero when it cannot be read. Each thread's `schedstat` has its
/// time on a CPU in nanoseconds, and their sum is used where it can be
/// read: `/proc/<pid>/stat`'s clock ticks, 100 a second, are too coarse
/// for a run of a second or two, and are the fallback.
pub fn cpu_time(pid: u32) -> Duration {
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten();
    let ran: u64 = threads
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    if ran > 0 {
        return Duration::from_nanos(ran);
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command's name, which is in brackets and may
    // hold spaces: utime and stime are fields 14 and 15 of the whole line,
    // 12 and 13 after the name.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}
