//! CPU time and memory of processes, from /proc.

use std::time::Instant;

/// Clock ticks per second of /proc/*/stat times.
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a whole process (all its threads), in seconds; `None` once it is gone.
pub fn cpu_seconds(pid: &str, ticks: f64) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks)
}

/// (VmRSS, VmHWM) in KiB.
pub fn memory_kib(pid: &str) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// (busy, total) CPU time of the whole machine, in seconds (all cores).
pub fn machine_cpu(ticks: f64) -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return (0.0, 0.0);
    };
    let Some(line) = stat.lines().next() else {
        return (0.0, 0.0);
    };
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: f64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0.0) + v.get(4).copied().unwrap_or(0.0);
    ((total - idle) / ticks, total / ticks)
}

/// CPU seconds used so far by the bot, the harness (this process), Redis and the machine.
#[derive(Clone, Copy, Debug)]
pub struct CpuSnap {
    pub at: Instant,
    pub bot: f64,
    pub harness: f64,
    pub redis: f64,
    pub machine_busy: f64,
}

impl CpuSnap {
    pub fn take(bot: &str, redis: Option<&str>, ticks: f64) -> CpuSnap {
        CpuSnap {
            at: Instant::now(),
            bot: cpu_seconds(bot, ticks).unwrap_or(0.0),
            harness: cpu_seconds("self", ticks).unwrap_or(0.0),
            redis: redis.and_then(|p| cpu_seconds(p, ticks)).unwrap_or(0.0),
            machine_busy: machine_cpu(ticks).0,
        }
    }
}

/// CPU used between two snapshots, in seconds, and the wall time.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuUse {
    pub wall: f64,
    pub bot: f64,
    pub harness: f64,
    pub redis: f64,
    /// Everything else on the machine (other people's builds, the kernel's idle work...).
    pub other: f64,
}

impl CpuUse {
    pub fn between(a: &CpuSnap, b: &CpuSnap) -> CpuUse {
        let bot = b.bot - a.bot;
        let harness = b.harness - a.harness;
        let redis = b.redis - a.redis;
        let busy = b.machine_busy - a.machine_busy;
        CpuUse {
            wall: (b.at - a.at).as_secs_f64(),
            bot,
            harness,
            redis,
            other: (busy - bot - harness - redis).max(0.0),
        }
    }
}

/// The number of threads of a process.
pub fn threads(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
}
