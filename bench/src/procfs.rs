//! Readings from /proc (no libc: the workspace forbids unsafe code): a process's CPU time and
//! memory, the calling thread's CPU time, and what machine this is.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

/// Clock ticks per second of the `utime`/`stime` fields, from `getconf CLK_TCK` (100 on
/// Linux when that cannot run).
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|ticks| *ticks > 0.0)
        .unwrap_or(100.0)
}

/// `utime + stime` (fields 14 and 15) of a `stat` file, in clock ticks. The fields are
/// counted after the `)` closing the command name, which may itself hold spaces.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // After the name come field 3 (state) onwards, so fields 14 and 15 are the 12th and 13th.
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn read_cpu_ticks(path: &Path) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    stat_cpu_ticks(&stat).with_context(|| format!("parse {}", path.display()))
}

/// CPU time a process (all its threads) has used so far, in clock ticks.
pub fn process_cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    read_cpu_ticks(Path::new(&format!("/proc/{pid}/stat")))
}

/// CPU time that all of `pids` have used so far, summed, in clock ticks: a server of several
/// processes (a primary and its workers) counts as one. Any unreadable process is an error, so
/// a worker that died is not silently left out.
pub fn processes_cpu_ticks(pids: &[u32]) -> anyhow::Result<u64> {
    pids.iter().map(|&pid| process_cpu_ticks(pid)).sum()
}

/// The parent pid (field 4) of a `stat` file.
fn stat_ppid(stat: &str) -> Option<u32> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

/// The pids of the live processes whose parent is `pid` (a cluster's workers), from every
/// `/proc/<pid>/stat`: `/proc/<pid>/task/*/children` needs a kernel option this may lack.
pub fn children(pid: u32) -> anyhow::Result<Vec<u32>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").context("read /proc")? {
        let Some(child) = entry?.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        // A process may exit between the listing and the read: skip it.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
        if stat_ppid(&stat) == Some(pid) {
            found.push(child);
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// The pids of the live processes whose command name (`/proc/<pid>/comm`) is `name`.
pub fn named(name: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name)
        })
        .collect()
}

/// CPU time of each of `pids` that can be read, in clock ticks.
pub fn cpu_ticks_of(pids: &[u32]) -> Vec<(u32, u64)> {
    pids.iter().filter_map(|&pid| Some((pid, process_cpu_ticks(pid).ok()?))).collect()
}

/// CPU ticks used between two readings of [`cpu_ticks_of`], by the processes in both.
pub fn ticks_between(before: &[(u32, u64)], after: &[(u32, u64)]) -> u64 {
    after
        .iter()
        .filter_map(|(pid, late)| {
            let early = before.iter().find(|(p, _)| p == pid)?.1;
            Some(late.saturating_sub(early))
        })
        .sum()
}

/// CPU time the calling thread has used so far, in clock ticks.
pub fn thread_cpu_ticks() -> anyhow::Result<u64> {
    read_cpu_ticks(Path::new("/proc/thread-self/stat"))
}

/// A `kB` line of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in KiB.
pub fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    status_field(&status, field).with_context(|| format!("no {field} in {path}"))
}

/// The summed `VmRSS` of those of `pids` that can be read, in KiB.
pub fn total_rss_kib(pids: &[u32]) -> u64 {
    pids.iter().filter_map(|&pid| status_kib(pid, "VmRSS").ok()).sum()
}

fn status_field(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Samples the `VmRSS` of a set of processes on a thread of its own and keeps the peak of
/// their sum: a server of several processes is measured whole, at the same instants.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<u64>,
}

impl RssSampler {
    pub fn start(pids: Vec<u32>, every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(Ordering::Relaxed) {
                peak = peak.max(total_rss_kib(&pids));
                std::thread::sleep(every);
            }
            peak
        });
        Self { stop, thread }
    }

    /// Stops sampling; the highest summed `VmRSS` seen, in KiB.
    pub fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or(0)
    }
}

/// The machine a run was made on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpu_model: String,
    pub cores: usize,
    pub kernel: String,
    pub git_commit: String,
    /// Tracked files differ from the commit.
    pub git_dirty: bool,
}

impl Machine {
    pub fn describe(workspace: &Path) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|(_, v)| v.trim()))
            .unwrap_or("unknown")
            .to_owned();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let kernel = command_line(workspace, "uname", &["-r"])
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/osrelease").ok())
            .map_or_else(|| "unknown".to_owned(), |k| k.trim().to_owned());
        let git_commit = command_line(workspace, "git", &["rev-parse", "--short", "HEAD"])
            .unwrap_or_else(|| "unknown".to_owned());
        let git_dirty = command_line(workspace, "git", &["status", "--porcelain", "-uno"])
            .is_some_and(|s| !s.is_empty());
        Self { cpu_model, cores, kernel, git_commit, git_dirty }
    }
}

/// The trimmed stdout of a command that succeeded.
fn command_line(dir: &Path, program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).current_dir(dir).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_fields_14_and_15_even_with_spaces_in_the_name() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
        let stat = "42 (tokio (rt) 1) S 1 42 42 0 -1 4194304 100 0 0 0 250 75 0 0 20 0 9";
        assert_eq!(stat_cpu_ticks(stat), Some(325));
    }

    #[test]
    fn the_parent_pid_is_field_4_even_with_spaces_in_the_name() {
        let stat = "43 (node (worker) 2) S 42 42 42 0 -1 4194304 100 0 0 0 250 75 0 0 20 0 9";
        assert_eq!(stat_ppid(stat), Some(42));
        assert_eq!(stat_ppid("garbage"), None);
    }

    #[test]
    fn a_child_process_is_found_and_counted_with_its_parent() {
        let mut child = Command::new("sleep").arg("5").spawn().expect("spawn sleep");
        let me = std::process::id();
        let found = children(me).expect("children");
        let both = [me, child.id()];
        let cpu = processes_cpu_ticks(&both);
        let rss = total_rss_kib(&both);
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.contains(&child.id()), "{found:?} lacks {}", child.id());
        assert!(cpu.is_ok());
        assert!(rss > status_kib(me, "VmRSS").expect("rss") / 2);
        assert!(processes_cpu_ticks(&[me, u32::MAX]).is_err());
    }

    #[test]
    fn only_processes_read_twice_count() {
        let before = [(1, 100), (2, 50)];
        let after = [(1, 130), (3, 999)];
        assert_eq!(ticks_between(&before, &after), 30);
    }

    #[test]
    fn status_fields_read_in_kib() {
        let status = "Name:\tcastellan\nVmHWM:\t   61234 kB\nVmRSS:\t   40960 kB\n";
        assert_eq!(status_field(status, "VmRSS"), Some(40960));
        assert_eq!(status_field(status, "VmHWM"), Some(61234));
        assert_eq!(status_field(status, "VmSwap"), None);
    }

    #[test]
    fn this_thread_and_process_have_readable_cpu_times() {
        assert!(thread_cpu_ticks().is_ok());
        assert!(process_cpu_ticks(std::process::id()).is_ok());
        assert!(status_kib(std::process::id(), "VmRSS").expect("rss") > 0);
    }
}
