//! Load benchmark of `gymtriage run` (issue 5), against a baseline teloxide dialogue bot.
//!
//! ```sh
//! cargo run --release --example loadbench                # everything: baseline, SQLite, Redis
//! cargo run --release --example loadbench -- --help      # members, rates, backends, profiling
//! ```
//!
//! It builds `gymtriage` and `examples/baseline_bot.rs` (release), starts a lean fake Bot API
//! server on 127.0.0.1 inside this process (examples/load_support/server.rs), which is also
//! the load generator, and for each target (baseline, gymtriage with SQLite, gymtriage with
//! Redis) starts the bot as a process against it and drives identical load: N members (most in
//! private chats, some in groups) each answering a whole 11-question check by buttons.
//!
//! - Open loop: presses at a fixed overall rate (default 500/s) for a fixed time: latency.
//! - Closed loop: C private members (and every group member) in flight, each pressing its next
//!   button the moment the edit that answers the previous press arrives: the bot's maximum
//!   throughput, counted until every private member is done; best of `--repeat` runs, each on a
//!   freshly started bot.
//! - Memory (gymtriage only): RSS idle and after 1,000 checks, with 1,000 and with 100,000
//!   stored sessions.
//!
//! Results, method and the profile are in BENCHMARKS.md.
//!
//! Every member's check is stored before the bot starts, at its first question (as if the
//! member had sent /check and received the question): the check's first message is a
//! sendMessage, which teloxide's Throttle paces to 30 per second overall, so starting thousands
//! of checks through /check would measure the pacing, not the bot. A press is one update; its
//! reply is the editMessageText of the pressed message; latency is from the moment the press
//! is queued in the fake server to the moment that edit arrives.

mod load_support;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Parser;
use gymtriage::{Dialogues, Input, Step};

use load_support::procstat::{self, CpuSnap, CpuUse};
use load_support::seed;
use load_support::server::{self, FakeBotApi, GROUP, Member, PRIVATE, Phase, Script};

/// The check every member answers, by button label (a back check ending in self-care, the
/// same as the end-to-end test's): 11 presses.
const PATH_LABELS: [&str; 11] = [
    "Lower back or the base of the spine",
    "No",
    "No",
    "No",
    "None of these",
    "Hours later: 12 to 72 hours after training",
    "A dull, stiff or cramping ache",
    "Spread over an area of muscle",
    "It eases as I get moving",
    "Less than 3 days",
    "None of these",
];

/// First user id of the benchmark's members.
const USER_BASE: i64 = 100_000_000;

#[derive(Parser, Clone)]
#[command(about = "Load benchmark of gymtriage run against a baseline teloxide bot")]
struct Args {
    /// Members in the throughput and latency runs (each answers one whole check).
    #[arg(long, default_value_t = 4000)]
    members: usize,
    /// Share of the members that are in group chats.
    #[arg(long, default_value_t = 0.2)]
    group_share: f64,
    /// Members per group chat.
    #[arg(long, default_value_t = 8)]
    group_size: usize,
    /// Targets, in order: baseline, sqlite, redis.
    #[arg(long, value_delimiter = ',', default_value = "baseline,sqlite,redis")]
    targets: Vec<String>,
    /// Open loop: presses per second.
    #[arg(long, default_value_t = 500.0)]
    rate: f64,
    /// Open loop: seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Closed loop: members in flight at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Stored sessions in the memory run.
    #[arg(long, default_value_t = 100_000)]
    sessions: usize,
    /// Members driven in each memory run.
    #[arg(long, default_value_t = 1000)]
    memory_members: usize,
    /// Skip the memory runs.
    #[arg(long)]
    skip_memory: bool,
    /// Only the open loop (with `--wrap`, a fixed number of updates, each handled alone:
    /// instruction counts per update that do not depend on how updates were batched).
    #[arg(long)]
    open_only: bool,
    /// Redis database for the Redis target; it is emptied (FLUSHDB) before each run.
    #[arg(long, default_value = "redis://127.0.0.1:6379/13")]
    redis: String,
    /// Do not run `cargo build --release` for the bots first.
    #[arg(long)]
    no_build: bool,
    /// Record a perf profile (perf record -g, DWARF call graphs) of each bot during its closed
    /// loop, into DIR/<target>.perf.data.
    #[arg(long, value_name = "DIR")]
    perf_dir: Option<PathBuf>,
    /// Start each bot under this command, split at spaces (e.g. `valgrind --tool=callgrind
    /// --callgrind-out-file=/tmp/cg.%p`, for repeatable instruction counts; use a small
    /// `--members` and a large `--stall`). A wrapped bot is stopped with SIGINT, so that the
    /// wrapper can write its results.
    #[arg(long, value_name = "COMMAND")]
    wrap: Option<String>,
    /// Folder for the bots' logs and the SQLite files (default: a new temporary folder).
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Also write the results (markdown) to this file.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Closed-loop runs per target, each on a fresh bot; the fastest is reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Seconds without a reply after which a phase is declared stalled.
    #[arg(long, default_value_t = 10.0)]
    stall: f64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    Baseline,
    Sqlite,
    Redis,
}

impl Target {
    fn parse(s: &str) -> anyhow::Result<Target> {
        Ok(match s.trim() {
            "baseline" => Target::Baseline,
            "sqlite" => Target::Sqlite,
            "redis" => Target::Redis,
            other => bail!("unknown target {other:?} (baseline, sqlite, redis)"),
        })
    }

    fn name(self) -> &'static str {
        match self {
            Target::Baseline => "baseline (teloxide InMemStorage)",
            Target::Sqlite => "gymtriage SQLite",
            Target::Redis => "gymtriage Redis",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Target::Baseline => "baseline",
            Target::Sqlite => "sqlite",
            Target::Redis => "redis",
        }
    }
}

/// Everything the runs share.
struct Cx {
    args: Args,
    d: Arc<Dialogues>,
    path: Vec<String>,
    members: Arc<Vec<Member>>,
    memory_members: Arc<Vec<Member>>,
    api: FakeBotApi,
    work: PathBuf,
    bins: PathBuf,
    ticks: f64,
    redis_pid: Option<String>,
}

impl Cx {
    fn script(&self, target: Target) -> Script {
        match target {
            Target::Baseline => Script::Baseline {
                presses: self.path.len(),
            },
            _ => Script::Gymtriage {
                path: self.path.clone(),
            },
        }
    }
}

/// Latency and CPU of one phase.
struct Stats {
    /// Replies counted in the throughput (closed loop: until the last private member
    /// finished).
    replies: u64,
    rate: f64,
    /// p50, p99, max in ms: all presses, private chats, groups. Presses still unanswered at
    /// the end of the phase count with their age then (a lower bound of their latency).
    lat: [[f64; 3]; 3],
    /// From the getUpdates answer that carried the press to the reply, answered presses.
    handling: [f64; 3],
    /// Presses unanswered at the end of the phase: private, group.
    unanswered: [usize; 2],
    cpu: CpuUse,
    errors: u64,
    sends: u64,
    stalled: bool,
    threads: u64,
    /// Mean number of new updates per getUpdates answer that carried any.
    batch: f64,
    /// Longest time without a reply, in seconds.
    gap: f64,
    /// Closed loop: the throughput of every run (the best one is reported).
    runs: Vec<f64>,
}

impl Stats {
    fn new(p: &Phase, cpu: CpuUse, threads: u64) -> Stats {
        let wall = p.wall.as_secs_f64();
        let with_unanswered = |k: usize| {
            let mut v = p.latency_us[k].clone();
            v.extend_from_slice(&p.unanswered_us[k]);
            v
        };
        let private = with_unanswered(PRIVATE);
        let group = with_unanswered(GROUP);
        let mut all = private.clone();
        all.extend_from_slice(&group);
        let mut handled = p.handling_us[PRIVATE].clone();
        handled.extend_from_slice(&p.handling_us[GROUP]);
        Stats {
            replies: p.replies,
            rate: if wall > 0.0 {
                p.replies as f64 / wall
            } else {
                0.0
            },
            lat: [
                percentiles(&all),
                percentiles(&private),
                percentiles(&group),
            ],
            handling: percentiles(&handled),
            unanswered: [p.unanswered_us[PRIVATE].len(), p.unanswered_us[GROUP].len()],
            cpu,
            errors: p.counters.errors(),
            sends: p.counters.sends,
            stalled: p.stalled,
            threads,
            gap: p.counters.longest_gap_us as f64 / 1e6,
            runs: Vec::new(),
            batch: if p.counters.batches > 0 {
                p.counters.fetched as f64 / p.counters.batches as f64
            } else {
                0.0
            },
        }
    }

    fn per_1000(&self, cpu: f64) -> f64 {
        if self.replies == 0 {
            0.0
        } else {
            cpu * 1000.0 / self.replies as f64
        }
    }
}

/// p50, p99 and max in milliseconds.
fn percentiles(us: &[u32]) -> [f64; 3] {
    if us.is_empty() {
        return [0.0; 3];
    }
    let mut v = us.to_vec();
    v.sort_unstable();
    let at = |q: f64| {
        let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        v[i] as f64 / 1000.0
    };
    [at(0.50), at(0.99), v[v.len() - 1] as f64 / 1000.0]
}

/// Samples a process's thread count while a phase runs; `stop` gives the peak.
struct ThreadSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl ThreadSampler {
    fn start(pid: &str) -> ThreadSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let (s, p, pid) = (stop.clone(), peak.clone(), pid.to_string());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                if let Some(t) = procstat::threads(&pid) {
                    p.fetch_max(t, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        ThreadSampler { stop, peak, task }
    }

    async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.peak.load(Ordering::Relaxed)
    }
}

struct Memory {
    /// (idle RSS, RSS after the checks, peak) in KiB and the peak thread count, with few and
    /// with many stored sessions.
    few: (u64, u64, u64, u64),
    many: (u64, u64, u64, u64),
    few_sessions: usize,
    many_sessions: usize,
}

struct TargetResult {
    target: Target,
    startup: Duration,
    idle_kib: u64,
    rss_kib: u64,
    peak_kib: u64,
    open: Stats,
    closed: Stats,
    memory: Option<Memory>,
}

/// A bot process, killed when dropped.
struct BotProcess {
    child: Child,
    pid: String,
    log: PathBuf,
    /// Stop with SIGINT and wait (a wrapper such as valgrind writes its results at exit).
    gently: bool,
}

impl Drop for BotProcess {
    fn drop(&mut self) {
        if self.gently {
            let _ = Command::new("kill").args(["-INT", &self.pid]).status();
            for _ in 0..600 {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl BotProcess {
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

fn spawn_bot(cx: &Cx, target: Target, storage: &str, log_name: &str) -> anyhow::Result<BotProcess> {
    let log = cx.work.join(format!("{log_name}.log"));
    let out = File::create(&log)?;
    let (program, args) = match target {
        Target::Baseline => (cx.bins.join("examples").join("baseline_bot"), vec![]),
        _ => (cx.bins.join("gymtriage"), vec!["run", "--storage", storage]),
    };
    let wrapper: Vec<&str> = cx
        .args
        .wrap
        .as_deref()
        .map_or(vec![], |w| w.split_whitespace().collect());
    let mut cmd = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(&program);
            c
        }
        None => Command::new(&program),
    };
    cmd.args(args);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("TELOXIDE_TOKEN", server::TOKEN)
        .env("TELOXIDE_API_URL", cx.api.url())
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("RUST_LOG")
        .env_remove("TELOXIDE_PROXY")
        .stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone()?))
        .stderr(Stdio::from(out));
    for var in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        cmd.env_remove(var);
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("start {:?}", cmd.get_program()))?;
    Ok(BotProcess {
        pid: child.id().to_string(),
        child,
        log,
        gently: !wrapper.is_empty(),
    })
}

/// Seeds the target's store with `members` (+ filler sessions); returns the --storage value.
async fn prepare_store(
    cx: &Cx,
    target: Target,
    members: &Arc<Vec<Member>>,
    filler: usize,
    name: &str,
) -> anyhow::Result<String> {
    let d = cx.d.clone();
    let path = cx.path.clone();
    let members = members.clone();
    Ok(match target {
        Target::Baseline => String::new(),
        Target::Sqlite => {
            let file = cx.work.join(format!("{name}.db"));
            seed::sqlite(&file, &d, &path, &members, filler).await?;
            format!("sqlite:{}", file.display())
        }
        Target::Redis => {
            let url = cx.args.redis.clone();
            seed::redis(&url, &d, &path, &members, filler).await?;
            url
        }
    })
}

async fn start_bot(
    cx: &Cx,
    target: Target,
    storage: &str,
    name: &str,
) -> anyhow::Result<(BotProcess, Duration)> {
    let t0 = Instant::now();
    let bot = spawn_bot(cx, target, storage, name)?;
    if !cx.api.wait_ready(Duration::from_secs(60)).await {
        bail!(
            "{name}: the bot did not start polling within 60 s; its log:\n{}",
            bot.log_tail()
        );
    }
    Ok((bot, t0.elapsed()))
}

fn start_perf(cx: &Cx, name: &str, pid: &str) -> Option<Child> {
    let dir = cx.args.perf_dir.as_ref()?;
    let _ = std::fs::create_dir_all(dir);
    let data = dir.join(format!("{name}.perf.data"));
    let child = Command::new("perf")
        .args([
            "record",
            "-e",
            "cpu-clock",
            "-F",
            "499",
            "-g",
            "--call-graph",
            "dwarf,16384",
            "-p",
            pid,
            "-o",
        ])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| eprintln!("perf record failed to start: {e}"))
        .ok()?;
    eprintln!("  profiling into {}", data.display());
    Some(child)
}

fn stop_perf(child: Option<Child>) {
    if let Some(mut c) = child {
        let _ = Command::new("kill")
            .args(["-INT", &c.id().to_string()])
            .status();
        let _ = c.wait();
    }
}

fn snap(cx: &Cx, bot: &BotProcess, target: Target) -> CpuSnap {
    let redis = (target == Target::Redis)
        .then_some(cx.redis_pid.as_deref())
        .flatten();
    CpuSnap::take(&bot.pid, redis, cx.ticks)
}

fn report_phase(name: &str, what: &str, s: &Stats, bot: &BotProcess, cx: &Cx) {
    let cores = |x: f64| {
        if s.cpu.wall > 0.0 {
            x / s.cpu.wall
        } else {
            0.0
        }
    };
    eprintln!(
        "  {what}: {} replies, {:.0}/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms (private p99 {:.2} ms, group p99 {:.2} ms; unanswered {} private, {} group); cores: bot {:.2}, harness {:.2}, redis {:.2}, other {:.2}; {} threads; errors {}{}",
        s.replies,
        s.rate,
        s.lat[0][0],
        s.lat[0][1],
        s.lat[0][2],
        s.lat[1][1],
        s.lat[2][1],
        s.unanswered[0],
        s.unanswered[1],
        cores(s.cpu.bot),
        cores(s.cpu.harness),
        cores(s.cpu.redis),
        cores(s.cpu.other),
        s.threads,
        s.errors,
        if s.stalled { " STALLED" } else { "" }
    );
    if s.stalled || s.errors > 0 {
        eprintln!(
            "  {name} {what}: {}\n  bot log:\n{}",
            cx.api.describe(),
            bot.log_tail()
        );
    }
}

/// The open loop of `target`, on a freshly started bot: its result with the closed-loop
/// figures still empty (see [`closed_run`]).
async fn open_phase(cx: &Cx, target: Target) -> anyhow::Result<TargetResult> {
    let name = target.short();
    let stall = Duration::from_secs_f64(cx.args.stall);
    eprintln!("== {}: open loop", target.name());
    let run = format!("{name}-open");
    let storage = prepare_store(cx, target, &cx.members, 0, &run).await?;
    cx.api.reset(cx.members.clone(), cx.script(target));
    let (bot, startup) = start_bot(cx, target, &storage, &run).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_kib = procstat::memory_kib(&bot.pid).map_or(0, |m| m.0);
    let sampler = ThreadSampler::start(&bot.pid);
    let a = snap(cx, &bot, target);
    let open = cx
        .api
        .run_open(
            cx.args.rate,
            Duration::from_secs_f64(cx.args.duration),
            stall,
        )
        .await;
    let b = snap(cx, &bot, target);
    let threads = sampler.stop().await;
    let mut open_stats = Stats::new(&open, CpuUse::between(&a, &b), threads);
    // Offered rate: the phase's wall time includes waiting for the last replies.
    open_stats.rate = open.replies as f64 / cx.args.duration;
    report_phase(name, "open loop", &open_stats, &bot, cx);
    drop(bot);
    Ok(TargetResult {
        target,
        startup,
        idle_kib,
        rss_kib: 0,
        peak_kib: 0,
        // Replaced by the best closed loop; with --open-only, the open loop's figures.
        closed: Stats::new(&open, CpuUse::between(&a, &b), threads),
        open: open_stats,
        memory: None,
    })
}

/// Closed loop number `i` of `r`'s target, on another freshly started bot and store (no
/// backlog from the open loop); the fastest run is kept (other processes on the machine can
/// only slow a run down).
async fn closed_run(cx: &Cx, r: &mut TargetResult, i: usize) -> anyhow::Result<()> {
    let target = r.target;
    let name = target.short();
    let stall = Duration::from_secs_f64(cx.args.stall);
    let run = format!("{name}-closed{}", i + 1);
    let storage = prepare_store(cx, target, &cx.members, 0, &run).await?;
    cx.api.reset(cx.members.clone(), cx.script(target));
    let (bot, _) = start_bot(cx, target, &storage, &run).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let perf = if i == 0 {
        start_perf(cx, name, &bot.pid)
    } else {
        None
    };
    if perf.is_some() {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let sampler = ThreadSampler::start(&bot.pid);
    let c = snap(cx, &bot, target);
    let closed = cx.api.run_closed(cx.args.concurrency, stall).await;
    let d = snap(cx, &bot, target);
    let threads = sampler.stop().await;
    stop_perf(perf);
    let stats = Stats::new(&closed, CpuUse::between(&c, &d), threads);
    report_phase(
        name,
        &format!("{}: closed loop {}", target.name(), i + 1),
        &stats,
        &bot,
        cx,
    );
    let (rss_kib, peak_kib) = procstat::memory_kib(&bot.pid).unwrap_or((0, 0));
    drop(bot);
    let mut runs = std::mem::take(&mut r.closed.runs);
    runs.push(stats.rate);
    if i == 0 || stats.rate > r.closed.rate {
        r.closed = stats;
        (r.rss_kib, r.peak_kib) = (rss_kib, peak_kib);
    }
    r.closed.runs = runs;
    Ok(())
}

/// Idle RSS and RSS after `memory_members` whole checks, with only those members stored and
/// with `sessions` stored in all.
async fn memory_runs(cx: &Cx, target: Target) -> anyhow::Result<Memory> {
    let few_sessions = cx.memory_members.len();
    let many_sessions = cx.args.sessions.max(few_sessions);
    let mut out = [(0, 0, 0, 0); 2];
    for (i, total) in [few_sessions, many_sessions].into_iter().enumerate() {
        let name = format!("{}-mem{}", target.short(), total);
        let t0 = Instant::now();
        let storage =
            prepare_store(cx, target, &cx.memory_members, total - few_sessions, &name).await?;
        eprintln!(
            "  memory run with {total} stored sessions (stored in {:.1} s)",
            t0.elapsed().as_secs_f64()
        );
        cx.api.reset(cx.memory_members.clone(), cx.script(target));
        let (bot, _) = start_bot(cx, target, &storage, &name).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let idle = procstat::memory_kib(&bot.pid).map_or(0, |m| m.0);
        let sampler = ThreadSampler::start(&bot.pid);
        let phase = cx
            .api
            .run_closed(cx.args.concurrency, Duration::from_secs_f64(cx.args.stall))
            .await;
        let threads = sampler.stop().await;
        if phase.stalled || phase.counters.errors() > 0 {
            eprintln!(
                "  {name}: stalled {} errors {}: {}\n{}",
                phase.stalled,
                phase.counters.errors(),
                cx.api.describe(),
                bot.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (after, peak) = procstat::memory_kib(&bot.pid).unwrap_or((0, 0));
        eprintln!(
            "    idle {:.1} MiB, after {} checks {:.1} MiB, peak {:.1} MiB, {threads} threads at most",
            mib(idle),
            phase.counters.checks_finished,
            mib(after),
            mib(peak)
        );
        out[i] = (idle, after, peak, threads);
    }
    if target == Target::Redis {
        let _ = seed::flush_redis(&cx.args.redis);
    }
    Ok(Memory {
        few: out[0],
        many: out[1],
        few_sessions,
        many_sessions,
    })
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The option ids of `PATH_LABELS`, checked to be a whole check.
fn path_ids(d: &Dialogues) -> anyhow::Result<Vec<String>> {
    let lang = d.lang("en").context("no English dialogue")?;
    let mut session = d.start_session(lang);
    let mut ids = Vec::new();
    for (k, label) in PATH_LABELS.iter().enumerate() {
        let Step::Ask(ask) = d.current(&session) else {
            bail!("the check ended after {k} answers");
        };
        let id = ask
            .options()
            .find(|(_, l)| l == label)
            .map(|(id, _)| id.to_string())
            .with_context(|| format!("no option {label:?} in question {}", ask.id()))?;
        d.answer(&mut session, Input::Choice(&id))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        ids.push(id);
    }
    ensure!(
        d.current(&session).is_done(),
        "the path does not end the check"
    );
    Ok(ids)
}

/// `n` members; `group_share` of them spread over groups of `group_size`, interleaved with the
/// private ones.
fn make_members(n: usize, group_share: f64, group_size: usize, user_base: i64) -> Vec<Member> {
    let size = group_size.max(1);
    let mut in_groups = ((n as f64) * group_share.clamp(0.0, 1.0)).round() as usize;
    in_groups -= in_groups % size;
    let groups = (in_groups / size).max(1);
    let stride = if in_groups > 0 {
        n as f64 / in_groups as f64
    } else {
        f64::INFINITY
    };
    let mut slot = 0usize;
    (0..n)
        .map(|i| {
            let user = user_base + i as i64;
            let check_id = (i as u32).wrapping_mul(2_654_435_761) ^ 0x5bd1_e995;
            if slot < in_groups && i as f64 >= slot as f64 * stride {
                let (g, pos) = (slot % groups, slot / groups);
                slot += 1;
                Member {
                    user,
                    chat: -(1_000_000 + g as i64),
                    message_id: 100 + pos as i32,
                    check_id,
                }
            } else {
                Member {
                    user,
                    chat: user,
                    message_id: 100,
                    check_id,
                }
            }
        })
        .collect()
}

fn build() -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("building gymtriage and examples/baseline_bot.rs (release)...");
    // Two builds: the bot exactly as `cargo build --release` makes it (building it together
    // with an example would unify the dev-dependencies' features into it), then the baseline.
    for what in [["--bin", "gymtriage"], ["--example", "baseline_bot"]] {
        let status = Command::new(&cargo)
            .args(["build", "--release"])
            .args(what)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .context("run cargo build")?;
        ensure!(status.success(), "cargo build {} failed", what.join(" "));
    }
    Ok(())
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!(
        "{cores} cores ({model}), {:.1} GiB RAM, Linux {}; {date}; load average before the run: {}",
        mem_kib as f64 / 1024.0 / 1024.0,
        kernel.trim(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

fn ratio(x: f64, base: Option<f64>) -> String {
    match base {
        Some(b) if b > 0.0 => format!("{:.2}x", x / b),
        _ => "-".into(),
    }
}

fn ms3(l: &[f64; 3]) -> String {
    format!("{:.2} / {:.2} / {:.1}", l[0], l[1], l[2])
}

fn table(cx: &Cx, results: &[TargetResult]) -> String {
    let a = &cx.args;
    let base = results.iter().find(|r| r.target == Target::Baseline);
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |label: String, f: &dyn Fn(&TargetResult) -> String| {
        rows.push((label, results.iter().map(f).collect()));
    };
    let cores = |x: f64, c: &CpuUse| if c.wall > 0.0 { x / c.wall } else { 0.0 };
    row("**closed loop: updates/s**".into(), &|r| {
        format!("**{:.0}**", r.closed.rate)
    });
    row(
        "closed loop: every run, updates/s (the best is reported)".into(),
        &|r| {
            r.closed
                .runs
                .iter()
                .map(|x| format!("{x:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
    row("**closed loop: throughput vs baseline**".into(), &|r| {
        format!("**{}**", ratio(r.closed.rate, base.map(|b| b.closed.rate)))
    });
    row(
        "closed loop: throughput vs the baseline's run of the same round".into(),
        &|r| match base {
            Some(b) => r
                .closed
                .runs
                .iter()
                .zip(&b.closed.runs)
                .map(|(x, y)| ratio(*x, Some(*y)))
                .collect::<Vec<_>>()
                .join(", "),
            None => "-".into(),
        },
    );
    row(
        format!(
            "closed loop ({} private members in flight + every group member): latency p50 / p99 / max, ms",
            a.concurrency
        ),
        &|r| ms3(&r.closed.lat[0]),
    );
    row(
        "closed loop, private chats: p50 / p99 / max, ms".into(),
        &|r| ms3(&r.closed.lat[1]),
    );
    row("closed loop, groups: p50 / p99 / max, ms".into(), &|r| {
        ms3(&r.closed.lat[2])
    });
    row(
        "closed loop: group presses unanswered when the last private check finished".into(),
        &|r| r.closed.unanswered[1].to_string(),
    );
    row(
        format!("**open loop {:.0}/s: latency p50 / p99 / max, ms**", a.rate),
        &|r| format!("**{}**", ms3(&r.open.lat[0])),
    );
    row("open loop: p50 / p99 vs baseline".into(), &|r| {
        format!(
            "{} / {}",
            ratio(r.open.lat[0][0], base.map(|b| b.open.lat[0][0])),
            ratio(r.open.lat[0][1], base.map(|b| b.open.lat[0][1]))
        )
    });
    row(
        "open loop, private chats: p50 / p99 / max, ms".into(),
        &|r| ms3(&r.open.lat[1]),
    );
    row("open loop, groups: p50 / p99 / max, ms".into(), &|r| {
        ms3(&r.open.lat[2])
    });
    row(
        "open loop: from the getUpdates answer to the reply, p50 / p99, ms".into(),
        &|r| format!("{:.2} / {:.2}", r.open.handling[0], r.open.handling[1]),
    );
    row(
        "open loop: group presses unanswered at the end (counted at their age)".into(),
        &|r| r.open.unanswered[1].to_string(),
    );
    row(
        "**bot CPU s per 1,000 updates: closed / open**".into(),
        &|r| {
            format!(
                "**{:.3} / {:.3}**",
                r.closed.per_1000(r.closed.cpu.bot),
                r.open.per_1000(r.open.cpu.bot)
            )
        },
    );
    row(
        "redis-server CPU s per 1,000 updates: closed / open".into(),
        &|r| {
            if r.target == Target::Redis {
                format!(
                    "{:.3} / {:.3}",
                    r.closed.per_1000(r.closed.cpu.redis),
                    r.open.per_1000(r.open.cpu.redis)
                )
            } else {
                "-".into()
            }
        },
    );
    row(
        "closed loop: cores used by bot / harness / redis-server / other processes".into(),
        &|r| {
            let c = &r.closed.cpu;
            format!(
                "{:.2} / {:.2} / {:.2} / {:.2}",
                cores(c.bot, c),
                cores(c.harness, c),
                cores(c.redis, c),
                cores(c.other, c)
            )
        },
    );
    row(
        "harness (fake server + load generator) share of the CPU used: closed / open".into(),
        &|r| {
            let share = |c: &CpuUse| {
                let all = c.bot + c.harness + c.redis;
                if all > 0.0 {
                    c.harness / all * 100.0
                } else {
                    0.0
                }
            };
            format!("{:.0}% / {:.0}%", share(&r.closed.cpu), share(&r.open.cpu))
        },
    );
    row(
        "closed loop: mean updates per getUpdates answer (≫ 1: updates wait for the bot)".into(),
        &|r| format!("{:.1}", r.closed.batch),
    );
    row(
        "longest time without any reply, s: closed / open".into(),
        &|r| format!("{:.2} / {:.2}", r.closed.gap, r.open.gap),
    );
    row("bot threads, peak: closed / open".into(), &|r| {
        format!("{} / {}", r.closed.threads, r.open.threads)
    });
    row("start to first getUpdates, ms".into(), &|r| {
        format!("{:.0}", r.startup.as_secs_f64() * 1000.0)
    });
    row(
        format!("**idle RSS, MiB** ({} members stored)", cx.members.len()),
        &|r| format!("**{:.1}**", mib(r.idle_kib)),
    );
    row(
        "**peak RSS (VmHWM) in the closed loop, MiB**".into(),
        &|r| format!("**{:.1}**", mib(r.peak_kib)),
    );
    row("RSS at the end of the closed loop, MiB".into(), &|r| {
        format!("{:.1}", mib(r.rss_kib))
    });
    let (few, many) = results
        .iter()
        .find_map(|r| r.memory.as_ref().map(|m| (m.few_sessions, m.many_sessions)))
        .unwrap_or((0, 0));
    row(
        format!("**idle RSS, MiB: {few} → {many} stored sessions**"),
        &|r| match &r.memory {
            Some(m) => format!(
                "**{:.1} → {:.1} ({:+.1})**",
                mib(m.few.0),
                mib(m.many.0),
                mib(m.many.0) - mib(m.few.0)
            ),
            None => "-".into(),
        },
    );
    row(
        format!(
            "RSS after {few} members' checks, MiB: {few} → {many} stored sessions (peak bot threads)"
        ),
        &|r| match &r.memory {
            Some(m) => format!(
                "{:.1} → {:.1} ({:+.1}) ({} / {} threads)",
                mib(m.few.1),
                mib(m.many.1),
                mib(m.many.1) - mib(m.few.1),
                m.few.3,
                m.many.3
            ),
            None => "-".into(),
        },
    );
    row("updates counted: closed / open".into(), &|r| {
        format!("{} / {}", r.closed.replies, r.open.replies)
    });
    row(
        "sendMessage calls (outcomes) made: closed / open".into(),
        &|r| format!("{} / {}", r.closed.sends, r.open.sends),
    );
    row("errors (closed / open); stalls".into(), &|r| {
        format!(
            "{} / {}{}",
            r.closed.errors,
            r.open.errors,
            if r.closed.stalled || r.open.stalled {
                "; STALLED"
            } else {
                ""
            }
        )
    });

    let mut s = String::new();
    s.push_str("| metric |");
    for r in results {
        s.push_str(&format!(" {} |", r.target.name()));
    }
    s.push_str("\n| --- |");
    for _ in results {
        s.push_str(" ---: |");
    }
    s.push('\n');
    for (label, cells) in rows {
        s.push_str(&format!("| {label} |"));
        for c in cells {
            s.push_str(&format!(" {c} |"));
        }
        s.push('\n');
    }
    s
}

fn verdicts(results: &[TargetResult]) -> String {
    let mut s = String::new();
    let base = results
        .iter()
        .find(|r| r.target == Target::Baseline)
        .map(|b| b.closed.rate);
    let mut check = |ok: bool, text: String| {
        s.push_str(&format!("- {} {text}\n", if ok { "PASS" } else { "MISS" }));
    };
    for r in results.iter().filter(|r| r.target != Target::Baseline) {
        let name = r.target.name();
        let want = if r.target == Target::Sqlite { 0.7 } else { 0.6 };
        if let Some(b) = base {
            let x = r.closed.rate / b;
            check(
                x >= want,
                format!("{name}: throughput {x:.2}x the baseline's (target ≥ {want}x)"),
            );
        }
        if r.target == Target::Sqlite {
            check(
                r.closed.rate >= 2000.0,
                format!(
                    "{name}: {:.0} updates/s end to end (target ≥ 2,000)",
                    r.closed.rate
                ),
            );
        }
        check(
            r.open.lat[0][1] < 25.0,
            format!(
                "{name}: p99 {:.2} ms at {:.0} updates/s (private chats {:.2} ms, groups {:.2} ms; target < 25 ms)",
                r.open.lat[0][1], r.open.rate, r.open.lat[1][1], r.open.lat[2][1]
            ),
        );
        check(
            mib(r.idle_kib) < 30.0,
            format!(
                "{name}: idle RSS {:.1} MiB (target < 30 MB)",
                mib(r.idle_kib)
            ),
        );
        if let Some(m) = &r.memory {
            let idle = mib(m.many.0) - mib(m.few.0);
            let after = mib(m.many.1) - mib(m.few.1);
            check(
                idle <= 1.0,
                format!(
                    "{name}: {} stored sessions add {idle:+.1} MiB to the idle RSS (target: none; within 1 MiB counts as none); after load {after:+.1} MiB, which varies with the number of threads the bot started",
                    m.many_sessions
                ),
            );
        }
    }
    s
}

async fn run(args: Args) -> anyhow::Result<()> {
    let targets = args
        .targets
        .iter()
        .map(|t| Target::parse(t))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let d = gymtriage::load(&root.join("dialogues")).map_err(|e| anyhow::anyhow!("{e}"))?;
    let path = path_ids(&d)?;
    let members = Arc::new(make_members(
        args.members,
        args.group_share,
        args.group_size,
        USER_BASE,
    ));
    let memory_members = Arc::new(make_members(
        args.memory_members,
        args.group_share,
        args.group_size,
        USER_BASE,
    ));
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bins = target_dir.join("release");
    let (work, _tmp) = match &args.work_dir {
        Some(w) => {
            std::fs::create_dir_all(w)?;
            (w.clone(), None)
        }
        None => {
            let t = tempfile::tempdir()?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let redis_pid = if targets.contains(&Target::Redis) {
        seed::flush_redis(&args.redis)
            .with_context(|| format!("Redis at {} (start redis-server, or pass --redis, or leave redis out of --targets)", args.redis))?;
        seed::redis_pid(&args.redis)
    } else {
        None
    };
    let machine = machine();
    let api = FakeBotApi::start().await?;
    let cx = Cx {
        args: args.clone(),
        d: Arc::new(d),
        path,
        members,
        memory_members,
        api,
        work,
        bins,
        ticks: procstat::clock_ticks(),
        redis_pid,
    };
    let groups = cx.members.iter().filter(|m| m.chat < 0).count();
    eprintln!(
        "{} members ({} in groups of {}), {} presses each; fake Bot API at {}",
        cx.members.len(),
        groups,
        args.group_size,
        cx.path.len(),
        cx.api.url()
    );
    let started = Instant::now();
    let mut results = Vec::new();
    for t in targets {
        results.push(open_phase(&cx, t).await?);
    }
    // The closed loops take turns (baseline, SQLite, Redis, baseline...), so that a change in
    // the machine's speed during the run weighs on every target alike.
    if !cx.args.open_only {
        for i in 0..cx.args.repeat.max(1) {
            for r in results.iter_mut() {
                closed_run(&cx, r, i).await?;
            }
        }
    }
    for r in results.iter_mut() {
        if r.target != Target::Baseline && !cx.args.skip_memory && !cx.args.open_only {
            r.memory = Some(memory_runs(&cx, r.target).await?);
        }
    }
    let command = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    let report = format!(
        "Machine: {machine}\n\nCommand: `cargo run --release --example loadbench{}` ({:.0} s)\n\nLoad: {} members ({} in groups of {}), one {}-press check each; open loop {:.0} presses/s for {:.0} s, then {} rounds of closed loops, the targets taking turns, each on a fresh bot: {} private members in flight (and every group member) until every private member's check is done; the fastest run of each target is reported.\n\n{}\n{}",
        if command.is_empty() {
            String::new()
        } else {
            format!(" -- {command}")
        },
        started.elapsed().as_secs_f64(),
        cx.members.len(),
        groups,
        args.group_size,
        cx.path.len(),
        args.rate,
        args.duration,
        args.repeat,
        args.concurrency,
        table(&cx, &results),
        verdicts(&results)
    );
    println!("{report}");
    if let Some(out) = &args.out {
        std::fs::write(out, &report)?;
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.no_build {
        build()?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}
