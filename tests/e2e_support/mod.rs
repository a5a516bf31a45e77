//! Shared by the end-to-end tests that run the real `gymtriage run` against the fake Bot API
//! (tests/fake_api): starting and SIGKILLing the bot process, scripted answer paths checked
//! against the engine, a driver that plays many members at once and copes with a bot that
//! dies under it, the final accounting of outcomes, and a raw HTTP client for webhooks.
//!
//! A test crate using it declares `mod fake_api;` and `mod e2e_support;`.
#![allow(dead_code)]

use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use gymtriage::{Dialogues, Input, Step, Urgency};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::fake_api::{BotMessage, FakeApi, FakeUser, State};

// ---------------------------------------------------------------------------------------------
// Dialogue text
// ---------------------------------------------------------------------------------------------

/// The English level labels of dialogues/ui.toml [levels], least urgent first.
pub const LEVELS: [&str; 4] = [
    "Self-care",
    "See a professional if it doesn't settle",
    "See a doctor within 24-48 hours",
    "EMERGENCY",
];

/// The first option of the first question: a question message offers it.
pub const FIRST_ANSWER: &str = "Lower back or the base of the spine";

/// What the question message becomes when the check ends (ui.toml [bot] finished).
pub const FINISHED: &str = "Check finished: the result is below.";

/// The toast of a press on a question already answered (ui.toml [bot] stale).
pub const STALE: &str = "That was already answered; here is the current question.";

/// A back check that ends in self-care (11 answers).
pub const BACK_SELF_CARE: [&str; 11] = [
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

/// A bone check with a pinpoint tender spot: see a doctor within 24-48 hours.
pub const BONE_URGENT: [&str; 7] = [
    "A bone: shin, foot or another bone",
    "Yes",
    "No, only during or right after activity",
    "Yes, one very tender spot",
    "No",
    "It's new (a day or two) or already easing",
    "None of these",
];

/// Back pain with a change in bladder control: emergency at the second answer.
pub const BACK_EMERGENCY: [&str; 2] = ["Lower back or the base of the spine", "Yes"];

/// A hamstring strain (tests/snapshots, by buttons): see a professional.
pub const HAMSTRING_SEE_PROFESSIONAL: [&str; 9] = [
    "Somewhere else: a muscle in the legs, arms, chest, glutes or abs",
    "The muscle: an ache or stiffness in its bulk",
    "Suddenly, during the session or right after it",
    "Sharp, stabbing or intense",
    "One spot I can point to",
    "Moving makes it worse",
    "Yes",
    "Less than 3 days",
    "None of these",
];

pub fn manifest_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The shipped dialogues, loaded and validated by the engine the bot runs.
pub fn dialogues() -> Dialogues {
    gymtriage::load(&manifest_path("dialogues")).expect("the shipped dialogues load")
}

/// The level named first in a text (an outcome names it in its heading), if any.
pub fn level_of(text: &str) -> Option<&'static str> {
    LEVELS
        .into_iter()
        .filter_map(|l| text.find(l).map(|at| (at, l)))
        .min()
        .map(|(_, l)| l)
}

/// `Question N` in a question message's heading.
pub fn question_number(text: &str) -> Option<usize> {
    let mut rest = text;
    while let Some(at) = rest.find("Question ") {
        let tail = &rest[at + "Question ".len()..];
        let digits: String = tail.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(n) = digits.parse() {
            return Some(n);
        }
        rest = tail;
    }
    None
}

/// Whether a group message is about `name`'s check ("Check for <name>", the name whole).
pub fn names_member(text: &str, name: &str) -> bool {
    let needle = format!("Check for {name}");
    text.match_indices(&needle).any(|(at, _)| {
        text[at + needle.len()..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_alphanumeric())
    })
}

/// One answer of a script: the question it answers (its English text) and the button.
#[derive(Clone, Debug)]
pub struct ScriptStep {
    pub question: String,
    pub label: String,
}

/// A check answered by buttons, from the first question to the outcome, and the level the
/// engine gives it.
#[derive(Clone, Debug)]
pub struct Script {
    pub name: String,
    pub steps: Vec<ScriptStep>,
    pub level: &'static str,
}

fn level_label(level: &str) -> &'static str {
    LEVELS
        .into_iter()
        .find(|l| *l == level)
        .unwrap_or_else(|| panic!("the engine gave the level {level:?}, not one of {LEVELS:?}"))
}

impl Script {
    /// Walks the engine through these button labels; panics if one is not an option of the
    /// question it answers or if the check does not end exactly after the last one.
    pub fn from_labels(d: &Dialogues, name: &str, labels: &[&str]) -> Script {
        let lang = d.lang("en").expect("English dialogues");
        let mut session = d.start_session(lang);
        let mut steps = Vec::new();
        for label in labels {
            let Step::Ask(ask) = d.current(&session) else {
                panic!("script {name}: the check ended before {label:?}");
            };
            let Some((id, _)) = ask.options().find(|(_, l)| l == label) else {
                panic!(
                    "script {name}: {label:?} is not an option of {:?}: {:?}",
                    ask.id(),
                    ask.options().map(|(_, l)| l).collect::<Vec<_>>()
                );
            };
            steps.push(ScriptStep {
                question: ask.text().to_owned(),
                label: (*label).to_owned(),
            });
            d.answer(&mut session, Input::Choice(id))
                .unwrap_or_else(|e| panic!("script {name}: {label:?} refused: {e:?}"));
        }
        match d.current(&session) {
            Step::Done(o) => Script {
                name: name.to_owned(),
                steps,
                level: level_label(o.level),
            },
            Step::Ask(a) => panic!("script {name}: not finished, still at {:?}", a.id()),
        }
    }

    /// A random walk through the dialogue graph by buttons. An answer that ends the check as
    /// an emergency is kept only a quarter of the time (when there is another option), so
    /// that the walks are not mostly two answers long.
    pub fn random(d: &Dialogues, rng: &mut StdRng, name: &str) -> Script {
        let lang = d.lang("en").expect("English dialogues");
        let mut session = d.start_session(lang);
        let mut labels: Vec<String> = Vec::new();
        while let Step::Ask(ask) = d.current(&session) {
            let options: Vec<(&str, &str)> = ask.options().collect();
            let ends_in_emergency = |id: &str| {
                let mut s = session.clone();
                matches!(
                    d.answer(&mut s, Input::Choice(id)),
                    Ok(Step::Done(o)) if o.urgency == Urgency::Emergency
                )
            };
            let calm: Vec<usize> = (0..options.len())
                .filter(|i| !ends_in_emergency(options[*i].0))
                .collect();
            let pick = if !calm.is_empty() && rng.random_bool(0.75) {
                calm[rng.random_range(0..calm.len())]
            } else {
                rng.random_range(0..options.len())
            };
            labels.push(options[pick].1.to_owned());
            d.answer(&mut session, Input::Choice(options[pick].0))
                .expect("an option of the question");
        }
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        Script::from_labels(d, name, &labels)
    }

    /// The first message of the outcome the bot sends for this check (its HTML, as the bot
    /// renders it), in a private chat (`member` None) or in a group for that member.
    pub fn outcome_html(&self, d: &Dialogues, member: Option<&str>) -> String {
        let lang = d.lang("en").expect("English dialogues");
        let mut session = d.start_session(lang);
        for step in &self.steps {
            let Step::Ask(ask) = d.current(&session) else {
                panic!("script {}: ended early", self.name);
            };
            let (id, _) = ask
                .options()
                .find(|(_, l)| *l == step.label)
                .expect("checked when the script was made");
            d.answer(&mut session, Input::Choice(id))
                .expect("checked when the script was made");
        }
        let Step::Done(o) = d.current(&session) else {
            panic!("script {}: not finished", self.name);
        };
        gymtriage::bot::render::outcome(d, &o, lang, member)
            .into_iter()
            .next()
            .expect("an outcome has a first message")
    }

    /// The four known paths, one per level.
    pub fn known(d: &Dialogues) -> Vec<Script> {
        vec![
            Script::from_labels(d, "back self-care", &BACK_SELF_CARE),
            Script::from_labels(d, "hamstring see-professional", &HAMSTRING_SEE_PROFESSIONAL),
            Script::from_labels(d, "bone urgent", &BONE_URGENT),
            Script::from_labels(d, "back emergency", &BACK_EMERGENCY),
        ]
    }
}

/// The seed of a test's randomness: `E2E_SEED` if set (to replay a run), else the clock.
pub fn seed() -> u64 {
    match std::env::var("E2E_SEED") {
        Ok(s) => s.trim().parse().expect("E2E_SEED is a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    }
}

// ---------------------------------------------------------------------------------------------
// The bot process
// ---------------------------------------------------------------------------------------------

const PROXY_VARS: [&str; 6] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
];

/// Where the bot keeps its state.
#[derive(Clone, Debug)]
pub enum Storage {
    /// `--db PATH`
    Sqlite(PathBuf),
    /// `--storage redis://...`
    Redis(String),
}

impl Storage {
    pub fn describe(&self) -> String {
        match self {
            Storage::Sqlite(p) => format!("SQLite {}", p.display()),
            Storage::Redis(url) => format!("Redis {url}"),
        }
    }
}

/// How to start `gymtriage run`.
#[derive(Clone, Debug)]
pub struct BotSpec {
    pub api_url: String,
    pub token: String,
    pub storage: Storage,
    /// More arguments after `run` (webhook options...).
    pub args: Vec<String>,
    /// stdout and stderr of every start are appended here.
    pub log: PathBuf,
    pub rust_log: String,
}

impl BotSpec {
    /// The log goes to `log`, or into `E2E_LOG_DIR` (kept after the test) when that is set.
    pub fn new(api: &FakeApi, storage: Storage, log: PathBuf) -> BotSpec {
        let log = match std::env::var_os("E2E_LOG_DIR") {
            Some(dir) => {
                let dir = PathBuf::from(dir);
                let _ = fs::create_dir_all(&dir);
                dir.join(log.file_name().expect("a log file name"))
            }
            None => log,
        };
        BotSpec {
            api_url: api.url(),
            token: api.token().to_owned(),
            storage,
            args: Vec::new(),
            log,
            rust_log: "info".to_owned(),
        }
    }

    pub fn command(&self) -> Command {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the bot log");
        // E2E_BOT_BIN runs another build of the bot (a release build, an older one).
        let bin = std::env::var_os("E2E_BOT_BIN").map_or_else(
            || PathBuf::from(env!("CARGO_BIN_EXE_gymtriage")),
            PathBuf::from,
        );
        let mut cmd = Command::new(bin);
        cmd.arg("run");
        match &self.storage {
            Storage::Sqlite(path) => cmd.arg("--db").arg(path),
            Storage::Redis(url) => cmd.arg("--storage").arg(url),
        };
        cmd.args(&self.args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("TELOXIDE_TOKEN", &self.token)
            .env("TELOXIDE_API_URL", &self.api_url)
            .env("RUST_LOG", &self.rust_log)
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env_remove("TELOXIDE_PROXY")
            .env_remove("GYMTRIAGE_WEBHOOK_SECRET")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("clone the log handle")))
            .stderr(Stdio::from(log));
        for var in PROXY_VARS {
            cmd.env_remove(var);
        }
        cmd
    }
}

/// A running `gymtriage run`; SIGKILLed when dropped, with its log printed if the test is
/// failing.
pub struct BotProcess {
    child: Child,
    log: PathBuf,
}

impl BotProcess {
    pub fn spawn(spec: &BotSpec) -> BotProcess {
        let child = spec.command().spawn().expect("start gymtriage run");
        BotProcess {
            child,
            log: spec.log.clone(),
        }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no chance to clean up; returns once the process is gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGINT (Ctrl-C), for a graceful stop; false if it could not be sent.
    pub fn interrupt(&mut self) -> bool {
        Command::new("kill")
            .arg("-INT")
            .arg(self.child.id().to_string())
            .status()
            .is_ok_and(|s| s.success())
    }

    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for BotProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- gymtriage log (last 60 lines of {}) ----\n{}",
                self.log.display(),
                tail(&self.log, 60)
            );
        }
    }
}

pub fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A kill of the bot: when, and which updates it had confirmed by then.
#[derive(Clone, Copy, Debug)]
pub struct Kill {
    pub at: Instant,
    pub confirmed_below: u32,
}

/// What the driver needs to know about the bot: whether it is polling (since when) and the
/// last kill.
#[derive(Clone, Copy, Debug, Default)]
pub struct BotStatus {
    /// When the running process was first seen polling (`getUpdates`); None while starting
    /// or dead.
    pub ready_since: Option<Instant>,
    pub last_kill: Option<Kill>,
}

/// The bot under test: started, killed and restarted on the same storage.
pub struct Bot {
    // Field order is drop order: the process goes first.
    process: Option<BotProcess>,
    pub spec: BotSpec,
    pub starts: u32,
    pub kills: u32,
    spawned_at: Option<Instant>,
    polls_at_spawn: u64,
    status: BotStatus,
    /// Time from spawn to the first `getUpdates`, per start that got there.
    pub startup_times: Vec<Duration>,
    /// Every kill, in order.
    pub kill_log: Vec<Kill>,
}

impl Bot {
    pub fn new(spec: BotSpec) -> Bot {
        Bot {
            process: None,
            spec,
            starts: 0,
            kills: 0,
            spawned_at: None,
            polls_at_spawn: 0,
            status: BotStatus::default(),
            startup_times: Vec::new(),
            kill_log: Vec::new(),
        }
    }

    pub fn spawn(&mut self, api: &FakeApi) {
        assert!(self.process.is_none(), "the bot is already running");
        self.polls_at_spawn = api.calls("getUpdates");
        self.process = Some(BotProcess::spawn(&self.spec));
        self.spawned_at = Some(Instant::now());
        self.status.ready_since = None;
        self.starts += 1;
    }

    /// SIGKILL, and note which updates the dead process had confirmed.
    pub fn kill(&mut self, api: &FakeApi) {
        if let Some(mut p) = self.process.take() {
            p.kill();
            self.kills += 1;
            self.status.ready_since = None;
            let kill = Kill {
                at: Instant::now(),
                confirmed_below: api.with_state(State::confirmed_below),
            };
            self.status.last_kill = Some(kill);
            self.kill_log.push(kill);
        }
    }

    pub fn is_running(&self) -> bool {
        self.process.is_some()
    }

    pub fn process(&mut self) -> Option<&mut BotProcess> {
        self.process.as_mut()
    }

    /// Updates the readiness (first `getUpdates` of this process); panics if the process
    /// exited by itself.
    pub fn refresh(&mut self, api: &FakeApi) -> BotStatus {
        if let Some(p) = self.process.as_mut() {
            if let Some(status) = p.exited() {
                panic!("the bot exited by itself ({status})\n{}", api.describe(20));
            }
            if self.status.ready_since.is_none() && api.calls("getUpdates") > self.polls_at_spawn {
                let now = Instant::now();
                self.status.ready_since = Some(now);
                if let Some(t) = self.spawned_at {
                    self.startup_times.push(now - t);
                }
            }
        }
        self.status
    }

    pub fn status(&self) -> BotStatus {
        self.status
    }

    pub fn spawned_at(&self) -> Option<Instant> {
        self.spawned_at
    }

    /// Waits until the running process polls.
    pub async fn wait_ready(&mut self, api: &FakeApi, within: Duration) {
        let deadline = Instant::now() + within;
        while self.refresh(api).ready_since.is_none() {
            assert!(
                Instant::now() < deadline,
                "the bot did not start polling within {within:?}\n{}",
                api.describe(20)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Simulated members
// ---------------------------------------------------------------------------------------------

/// A member of a chat: alone in a private chat, or one of a group.
#[derive(Clone, Debug)]
pub struct MemberSpec {
    pub chat_id: i64,
    /// The group's title; None in a private chat.
    pub group: Option<String>,
    pub user_id: i64,
    /// Unique among the members of a group.
    pub name: String,
}

impl MemberSpec {
    pub fn private(user_id: i64, name: &str) -> MemberSpec {
        MemberSpec {
            chat_id: user_id,
            group: None,
            user_id,
            name: name.to_owned(),
        }
    }

    pub fn in_group(chat_id: i64, title: &str, user_id: i64, name: &str) -> MemberSpec {
        MemberSpec {
            chat_id,
            group: Some(title.to_owned()),
            user_id,
            name: name.to_owned(),
        }
    }

    pub fn user(&self) -> FakeUser<'_> {
        FakeUser::new(self.user_id, &self.name)
    }

    pub fn who(&self) -> String {
        match &self.group {
            Some(g) => format!("{} in group {g:?}", self.name),
            None => format!("{} in private", self.name),
        }
    }

    /// Whether a bot message in this member's chat is about this member's checks.
    pub fn owns(&self, m: &BotMessage) -> bool {
        self.group.is_none() || names_member(&m.text, &self.name)
    }
}

/// `n` members: most in private chats, the rest spread over `groups` groups.
pub fn members(private: usize, groups: usize, per_group: usize) -> Vec<MemberSpec> {
    let mut out = Vec::new();
    for i in 0..private {
        out.push(MemberSpec::private(
            10_001 + i as i64,
            &format!("Pat{:02}", i + 1),
        ));
    }
    for g in 0..groups {
        let chat = -50_001 - g as i64;
        let title = format!("Gym group {}", g + 1);
        for m in 0..per_group {
            out.push(MemberSpec::in_group(
                chat,
                &title,
                20_001 + (g * 100 + m) as i64,
                &format!("G{}m{:02}", g + 1, m + 1),
            ));
        }
    }
    out
}

/// How members behave.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// Pause before each action once the bot has shown what the member waits for.
    pub think: (Duration, Duration),
    /// Pause between two checks of one member.
    pub between_checks: (Duration, Duration),
    /// After a kill that confirmed a member's last update, how long the restarted bot must
    /// have been polling (everything it owed sent) before the member sends it again.
    pub after_restart: Duration,
    /// Sends the last update again when nothing happened for this long while the bot was
    /// polling (a safety net; counted apart).
    pub fallback: Duration,
    /// Share of checks that follow a known path (the rest are random walks).
    pub known_share: f64,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            think: (Duration::from_millis(30), Duration::from_millis(250)),
            between_checks: (Duration::from_millis(100), Duration::from_millis(600)),
            after_restart: Duration::from_millis(400),
            fallback: Duration::from_secs(8),
            known_share: 0.5,
        }
    }
}

/// One check of a member.
#[derive(Clone, Debug)]
pub struct Round {
    pub script: Script,
    /// The HTML of the outcome message this check must get (see [`Script::outcome_html`]).
    pub expected: String,
    /// The member's /check message id (the check's messages come after it).
    pub floor: i32,
    /// The chat's last message id when the last answer was first pressed.
    pub final_floor: Option<i32>,
    /// The outcome message (id) and its level, once it arrived.
    pub outcome: Option<(i32, &'static str)>,
    pub started: Instant,
    pub finished: Option<Instant>,
    /// The question messages the member saw with buttons during this check.
    pub questions: Vec<i32>,
}

/// An update a member sent and waits to see the effect of.
#[derive(Clone, Copy, Debug)]
struct Sent {
    update: u32,
    at: Instant,
    /// The question message and number pressed on; None for /check.
    key: Option<(i32, usize)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Between checks.
    Idle,
    Running,
    Done,
}

/// One simulated member.
pub struct Sim {
    pub spec: MemberSpec,
    pub rounds: Vec<Round>,
    phase: Phase,
    not_before: Instant,
    seen_key: Option<(i32, usize)>,
    last: Option<Sent>,
    pub presses: u32,
    pub checks_sent: u32,
    pub resent_after_kill: u32,
    pub resent_fallback: u32,
}

/// What a member sees of its current check in the fake's state.
struct View {
    /// The newest of its question messages with buttons: (message id, number, text).
    live: Option<(i32, usize, String)>,
    /// Outcome messages after the floor: (message id, level, HTML as sent).
    outcomes: Vec<(i32, &'static str, String)>,
}

fn view(s: &State, spec: &MemberSpec, floor: i32) -> View {
    let mut live = None;
    let mut outcomes = Vec::new();
    for m in s.messages_in(spec.chat_id) {
        if m.message_id <= floor || m.deleted || !spec.owns(m) {
            continue;
        }
        if m.has_callback_buttons()
            && let Some(n) = question_number(&m.text)
        {
            live = Some((m.message_id, n, m.text.clone()));
        } else if let Some(level) = level_of(&m.text) {
            outcomes.push((m.message_id, level, m.source_text.clone()));
        }
    }
    View { live, outcomes }
}

/// Counts of what the driver did.
#[derive(Clone, Debug, Default)]
pub struct DriverStats {
    pub updates_sent: u64,
    pub presses: u64,
    pub checks_sent: u64,
    pub resent_after_kill: u64,
    pub resent_fallback: u64,
}

/// Plays many members at once against the fake Bot API.
pub struct Driver {
    pub sims: Vec<Sim>,
    pub config: DriverConfig,
    rng: StdRng,
    known: Vec<Script>,
    d: Dialogues,
    stop_new_checks: bool,
    /// Checks to run per member before stopping by itself (None: until told to stop).
    pub checks_per_member: Option<usize>,
    pub stats: DriverStats,
    random_scripts: usize,
}

impl Driver {
    pub fn new(members: Vec<MemberSpec>, config: DriverConfig, seed: u64) -> Driver {
        let d = dialogues();
        let known = Script::known(&d);
        let mut rng = StdRng::seed_from_u64(seed);
        let now = Instant::now();
        let sims = members
            .into_iter()
            .map(|spec| Sim {
                spec,
                rounds: Vec::new(),
                phase: Phase::Idle,
                // Members arrive over the first second.
                not_before: now + Duration::from_millis(rng.random_range(0..1000)),
                seen_key: None,
                last: None,
                presses: 0,
                checks_sent: 0,
                resent_after_kill: 0,
                resent_fallback: 0,
            })
            .collect();
        Driver {
            sims,
            config,
            rng,
            known,
            d,
            stop_new_checks: false,
            checks_per_member: None,
            stats: DriverStats::default(),
            random_scripts: 0,
        }
    }

    /// Members finish the check they are in and start no other.
    pub fn stop_new_checks(&mut self) {
        self.stop_new_checks = true;
    }

    pub fn all_done(&self) -> bool {
        self.sims.iter().all(|s| s.phase == Phase::Done)
    }

    pub fn members_done(&self) -> usize {
        self.sims.iter().filter(|s| s.phase == Phase::Done).count()
    }

    pub fn checks_finished(&self) -> usize {
        self.sims
            .iter()
            .flat_map(|s| &s.rounds)
            .filter(|r| r.outcome.is_some())
            .count()
    }

    fn pause(&mut self, range: (Duration, Duration)) -> Duration {
        let (lo, hi) = (range.0.as_millis() as u64, range.1.as_millis() as u64);
        Duration::from_millis(if hi > lo {
            self.rng.random_range(lo..hi)
        } else {
            lo
        })
    }

    fn next_script(&mut self) -> Script {
        if self.rng.random_bool(self.config.known_share) {
            self.known[self.rng.random_range(0..self.known.len())].clone()
        } else {
            self.random_scripts += 1;
            let name = format!("random walk {}", self.random_scripts);
            Script::random(&self.d, &mut self.rng, &name)
        }
    }

    /// One look at every member: each acts if it is its turn. Panics (with the member and
    /// the message) if the bot shows a member something its check cannot be at.
    pub fn tick(&mut self, api: &FakeApi, bot: BotStatus) {
        let now = Instant::now();
        for i in 0..self.sims.len() {
            self.step(i, api, bot, now);
        }
    }

    fn step(&mut self, i: usize, api: &FakeApi, bot: BotStatus, now: Instant) {
        match self.sims[i].phase {
            Phase::Done => {}
            Phase::Idle => {
                if now < self.sims[i].not_before {
                    return;
                }
                let enough = self
                    .checks_per_member
                    .is_some_and(|n| self.sims[i].rounds.len() >= n);
                if self.stop_new_checks || enough {
                    self.sims[i].phase = Phase::Done;
                    return;
                }
                // A check whose outcome reads exactly like the member's previous one would
                // make a late copy of that one indistinguishable: draw another.
                let member = self.sims[i]
                    .spec
                    .group
                    .as_ref()
                    .map(|_| self.sims[i].spec.name.clone());
                let previous = self.sims[i].rounds.last().map(|r| r.expected.clone());
                let (script, expected) = loop {
                    let script = self.next_script();
                    let expected = script.outcome_html(&self.d, member.as_deref());
                    if previous.as_ref() != Some(&expected) {
                        break (script, expected);
                    }
                };
                let q = send_check(api, &self.sims[i].spec);
                self.stats.updates_sent += 1;
                self.stats.checks_sent += 1;
                let sim = &mut self.sims[i];
                sim.checks_sent += 1;
                sim.rounds.push(Round {
                    script,
                    expected,
                    floor: q.1,
                    final_floor: None,
                    outcome: None,
                    started: now,
                    finished: None,
                    questions: Vec::new(),
                });
                sim.phase = Phase::Running;
                sim.seen_key = None;
                sim.last = Some(Sent {
                    update: q.0,
                    at: now,
                    key: None,
                });
            }
            Phase::Running => self.step_running(i, api, bot, now),
        }
    }

    fn step_running(&mut self, i: usize, api: &FakeApi, bot: BotStatus, now: Instant) {
        let think = self.pause(self.config.think);
        let between = self.pause(self.config.between_checks);
        let config = self.config.clone();
        let sim = &mut self.sims[i];
        let check_no = sim.rounds.len();
        let (done, running) = sim.rounds.split_at_mut(check_no - 1);
        let previous = done.last().map(|r| r.expected.as_str());
        let round = &mut running[0];
        let v = api.with_state(|s| view(s, &sim.spec, round.floor));

        // Finished: its outcome came. Any other outcome after the floor can only be a late
        // copy of the previous check's (a redelivery after a kill).
        for (mid, level, html) in &v.outcomes {
            assert!(
                *html == round.expected || Some(html.as_str()) == previous,
                "{}: check {} ({}) got an outcome it cannot have (message {mid}, level \
                 {level:?}, expected {:?}):\n{html}\nexpected:\n{}",
                sim.spec.who(),
                check_no,
                round.script.name,
                round.script.level,
                round.expected
            );
        }
        if let Some((mid, level, _)) = v.outcomes.iter().find(|(_, _, h)| *h == round.expected) {
            round.outcome = Some((*mid, level));
            round.finished = Some(now);
            sim.phase = Phase::Idle;
            sim.not_before = now + between;
            sim.last = None;
            sim.seen_key = None;
            return;
        }

        let Some((mid, number, text)) = v.live else {
            // No question with buttons: the first one is on its way, or the check is
            // finished and its outcome is on its way. Only a lost /check is sent again.
            if let Some(last) = sim.last
                && last.key.is_none()
                && let Some(why) = resend_reason(&last, bot, now, &config)
            {
                let q = send_check(api, &sim.spec);
                sim.checks_sent += 1;
                sim.count_resend(why);
                self.stats.count_resend(why);
                self.stats.updates_sent += 1;
                self.stats.checks_sent += 1;
                sim.last = Some(Sent {
                    update: q.0,
                    at: now,
                    key: None,
                });
            }
            return;
        };

        let key = (mid, number);
        if !round.questions.contains(&mid) {
            round.questions.push(mid);
        }
        let who = sim.spec.who();
        let script = &round.script;
        let Some(step) = number.checked_sub(1).and_then(|k| script.steps.get(k)) else {
            panic!(
                "{who}: the bot shows question {number}, but the check ({}) has only {} \
                 answers:\n{text}",
                script.name,
                script.steps.len()
            );
        };
        assert!(
            text.contains(&step.question),
            "{who}: question {number} of the check ({}) should be {:?}, the bot shows:\n{text}",
            script.name,
            step.question
        );
        if sim.seen_key != Some(key) {
            // Something new to read: think before pressing.
            sim.seen_key = Some(key);
            sim.not_before = now + think;
            return;
        }
        if now < sim.not_before {
            return;
        }
        let pressed_here = sim.last.is_some_and(|l| l.key == Some(key));
        let why = match sim.last {
            Some(last) if pressed_here => match resend_reason(&last, bot, now, &config) {
                Some(why) => Some(why),
                None => return,
            },
            _ => None,
        };
        let label = step.label.clone();
        let last_step = number == script.steps.len();
        let Some(q) = press(api, &sim.spec, mid, &label) else {
            // The message changed under us; look again next time.
            return;
        };
        if last_step && round.final_floor.is_none() {
            round.final_floor = Some(q.1);
        }
        sim.presses += 1;
        self.stats.presses += 1;
        self.stats.updates_sent += 1;
        if let Some(why) = why {
            sim.count_resend(why);
            self.stats.count_resend(why);
        }
        sim.last = Some(Sent {
            update: q.0,
            at: now,
            key: Some(key),
        });
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resend {
    /// Confirmed by a process that was killed, and the restarted bot shows no effect.
    AfterKill,
    /// Nothing happened for [`DriverConfig::fallback`].
    Fallback,
}

impl Sim {
    fn count_resend(&mut self, why: Resend) {
        match why {
            Resend::AfterKill => self.resent_after_kill += 1,
            Resend::Fallback => self.resent_fallback += 1,
        }
    }
}

impl DriverStats {
    fn count_resend(&mut self, why: Resend) {
        match why {
            Resend::AfterKill => self.resent_after_kill += 1,
            Resend::Fallback => self.resent_fallback += 1,
        }
    }
}

/// Whether an update whose effect has not shown should be sent again, and why.
fn resend_reason(
    sent: &Sent,
    bot: BotStatus,
    now: Instant,
    config: &DriverConfig,
) -> Option<Resend> {
    let ready = bot.ready_since?;
    if let Some(kill) = bot.last_kill
        && kill.at > sent.at
        && sent.update < kill.confirmed_below
        && ready > kill.at
        && now >= ready + config.after_restart
    {
        // The dead process had taken it; the restarted one sent everything owed before
        // polling, and still nothing: it was lost with the process.
        return Some(Resend::AfterKill);
    }
    (now >= sent.at.max(ready) + config.fallback).then_some(Resend::Fallback)
}

/// Sends /check (in a group, addressed to the bot every other time); returns the update id
/// and the /check message id.
fn send_check(api: &FakeApi, spec: &MemberSpec) -> (u32, i32) {
    let user = spec.user();
    let q = match &spec.group {
        Some(title) => {
            let command = if spec.user_id % 2 == 0 {
                "/check@gymtriage_bot"
            } else {
                "/check"
            };
            api.group_text(spec.chat_id, title, &user, command)
        }
        None => api.user_text(spec.chat_id, &user, "/check"),
    };
    (q.update_id, q.message_id())
}

/// Presses the button labelled `label` on the message as it is now; returns the update id
/// and the chat's last message id at the press, or None if the message has no such button.
fn press(api: &FakeApi, spec: &MemberSpec, mid: i32, label: &str) -> Option<(u32, i32)> {
    let (data, last_id) = api.with_state(|s| {
        let m = s.message(spec.chat_id, mid)?;
        let data = m.button(label)?.callback_data.clone()?;
        Some((data, s.last_message_id(spec.chat_id)))
    })?;
    let q = api.press(spec.chat_id, mid, &spec.user(), &data);
    Some((q.update_id, last_id))
}

// ---------------------------------------------------------------------------------------------
// The accounting at the end
// ---------------------------------------------------------------------------------------------

/// A check that got its outcome message more than once.
#[derive(Clone, Debug)]
pub struct Duplicate {
    pub who: String,
    pub chat_id: i64,
    /// The outcome's HTML as sent (every copy is the same).
    pub html: String,
    pub copies: usize,
    /// When the check started, and when the member's next check but one started: every
    /// copy of this outcome was sent in between (the next check's outcome reads otherwise).
    pub from: Instant,
    pub until: Option<Instant>,
}

/// Every member's outcome messages against the checks it finished.
#[derive(Clone, Debug, Default)]
pub struct Accounting {
    pub members: usize,
    pub checks: usize,
    pub outcomes: usize,
    /// Checks without their outcome message.
    pub lost: usize,
    /// Outcome messages beyond one per check.
    pub duplicates: usize,
    pub duplicate_checks: Vec<Duplicate>,
    /// Outcome messages that are no check's (another level or text than the member's
    /// answers give).
    pub unexpected: usize,
    /// Outcomes per level, in [`LEVELS`] order.
    pub by_level: [usize; 4],
    /// Question messages seen beyond one per check (a /check handled twice, or a question
    /// sent again because the process died before it could note the send).
    pub extra_questions: usize,
    /// Presses answered "That was already answered" (a press sent again although the first
    /// one had worked).
    pub stale_presses: usize,
    pub problems: Vec<String>,
}

impl Accounting {
    pub fn levels_line(&self) -> String {
        LEVELS
            .iter()
            .zip(self.by_level)
            .map(|(l, n)| format!("{l}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Accounts, per member, for every outcome message of the whole run (each message in its
/// chat that names a level and, in a group, its name): each check must have exactly one
/// whose HTML is exactly what the engine and the renderer give for its answers, and nothing
/// else may name a level. Copies are told apart from the next check's outcome by their text
/// (the driver never gives a member two checks in a row with the same outcome text).
pub fn account(api: &FakeApi, sims: &[Sim]) -> Accounting {
    let mut a = Accounting {
        members: sims.len(),
        ..Accounting::default()
    };
    api.with_state(|s| {
        for sim in sims {
            let who = sim.spec.who();
            let outcomes: Vec<(i32, &'static str, &str)> = s
                .messages_in(sim.spec.chat_id)
                .into_iter()
                .filter(|m| sim.spec.owns(m) && !m.has_callback_buttons())
                .filter_map(|m| {
                    level_of(&m.text).map(|l| (m.message_id, l, m.source_text.as_str()))
                })
                .collect();
            a.outcomes += outcomes.len();
            let mut counted = vec![0usize; sim.rounds.len()];
            for &(mid, level, html) in &outcomes {
                // The check it belongs to: the last one started before it whose outcome
                // reads like this.
                let owner = sim
                    .rounds
                    .iter()
                    .rposition(|r| r.floor < mid && r.expected == html);
                match owner {
                    Some(k) => counted[k] += 1,
                    None => {
                        a.unexpected += 1;
                        a.problems.push(format!(
                            "{who}: outcome message {mid} ({level:?}) is not the outcome of \
                             any of its checks:\n{html}"
                        ));
                    }
                }
            }
            for (k, round) in sim.rounds.iter().enumerate() {
                a.checks += 1;
                a.extra_questions += round.questions.len().saturating_sub(1);
                match counted[k] {
                    0 => {
                        a.lost += 1;
                        a.problems.push(format!(
                            "{who}: check {} ({}) got no outcome message",
                            k + 1,
                            round.script.name
                        ));
                    }
                    n => {
                        if let Some(i) = LEVELS.iter().position(|l| *l == round.script.level) {
                            a.by_level[i] += 1;
                        }
                        if n > 1 {
                            a.duplicates += n - 1;
                            a.duplicate_checks.push(Duplicate {
                                who: who.clone(),
                                chat_id: sim.spec.chat_id,
                                html: round.expected.clone(),
                                copies: n,
                                from: round.started,
                                until: sim.rounds.get(k + 2).map(|r| r.started),
                            });
                        }
                    }
                }
            }
        }
        a.stale_presses = s
            .callback_answers()
            .iter()
            .filter(|c| c.text.as_deref() == Some(STALE))
            .count();
    });
    a
}

/// Why a check's outcome went out more than once, from the requests and the kills: each
/// copy after the first is explained when Telegram had accepted the previous copy (answered
/// 200) and the process that sent it was SIGKILLed before the next copy, within `window`
/// of that answer: the bot died between the send and clearing its outbox entry, and the
/// restarted bot sent it again (at-least-once delivery: the Bot API has no idempotent send).
/// Returns (explained, unexplained) descriptions.
pub fn explain_duplicates(
    api: &FakeApi,
    duplicates: &[Duplicate],
    kills: &[Kill],
    window: Duration,
) -> (Vec<String>, Vec<String>) {
    let requests = api.requests();
    let mut explained = Vec::new();
    let mut unexplained = Vec::new();
    for d in duplicates {
        let sends: Vec<Instant> = requests
            .iter()
            .filter(|r| r.is("sendMessage") && r.ok() && r.chat_id() == Some(d.chat_id))
            .filter(|r| r.body.get("text").and_then(|t| t.as_str()) == Some(d.html.as_str()))
            .filter(|r| r.at > d.from && d.until.is_none_or(|u| r.at < u))
            .map(|r| r.at)
            .collect();
        for pair in sends.windows(2) {
            let (first, again) = (pair[0], pair[1]);
            let kill = kills.iter().find(|k| k.at > first);
            match kill {
                Some(k) if k.at < again && k.at - first <= window => explained.push(format!(
                    "{}: outcome sent again after a SIGKILL {:.0?} after Telegram accepted it",
                    d.who,
                    k.at - first
                )),
                Some(k) if k.at < again => unexplained.push(format!(
                    "{}: outcome sent again after a SIGKILL, but {:.0?} after Telegram had \
                     accepted it (the process had time to clear its outbox)",
                    d.who,
                    k.at - first
                )),
                _ => unexplained.push(format!(
                    "{}: outcome sent twice by the same process ({:.0?} apart)",
                    d.who,
                    again - first
                )),
            }
        }
        if sends.len() < d.copies {
            unexplained.push(format!(
                "{}: {} copies of the outcome but {} accepted sends of it",
                d.who,
                d.copies,
                sends.len()
            ));
        }
    }
    (explained, unexplained)
}

/// Percentile of durations (p in 0..=100).
pub fn percentile(mut v: Vec<Duration>, p: usize) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    v[((v.len() - 1) * p).div_ceil(100).min(v.len() - 1)]
}

/// Check durations (first /check to outcome) of every finished check.
pub fn check_durations(sims: &[Sim]) -> Vec<Duration> {
    sims.iter()
        .flat_map(|s| &s.rounds)
        .filter_map(|r| r.finished.map(|f| f - r.started))
        .collect()
}

/// The member keys (chat, user) of the simulated members.
pub fn member_keys(sims: &[Sim]) -> HashSet<(i64, i64)> {
    sims.iter()
        .map(|s| (s.spec.chat_id, s.spec.user_id))
        .collect()
}

/// The timelines of the first `n` members still in a check, for failure messages.
pub fn stuck_timelines(api: &FakeApi, sims: &[Sim], kills: &[Kill], n: usize) -> String {
    let mut out = String::new();
    for sim in sims.iter().filter(|s| s.phase == Phase::Running).take(n) {
        let _ = writeln!(out, "timeline of {} (still in a check):", sim.spec.who());
        out.push_str(&chat_timeline(api, sim.spec.chat_id, kills));
    }
    out
}

/// One line per member, for failure messages.
pub fn describe_members(api: &FakeApi, sims: &[Sim]) -> String {
    let mut out = String::new();
    api.with_state(|s| {
        for sim in sims {
            let r = sim.rounds.last();
            let live = r.map(|r| view(s, &sim.spec, r.floor));
            let _ = writeln!(
                out,
                "  {}: {:?}, {} checks, last: {} (floor {:?}, final floor {:?}, outcome {:?}), live \
                 question {:?}, last update {:?}",
                sim.spec.who(),
                sim.phase,
                sim.rounds.len(),
                r.map_or("-".to_owned(), |r| r.script.name.clone()),
                r.map(|r| r.floor),
                r.and_then(|r| r.final_floor),
                r.and_then(|r| r.outcome),
                live.and_then(|v| v.live.map(|(mid, n, _)| (mid, n))),
                sim.last.map(|l| (l.update, l.key)),
            );
        }
    });
    out
}

/// The requests about one chat (and the updates queued in it), with the kills, on one time
/// line: for failure messages.
pub fn chat_timeline(api: &FakeApi, chat: i64, kills: &[Kill]) -> String {
    let requests = api.requests();
    let Some(t0) = requests.first().map(|r| r.at) else {
        return "  (no requests recorded)\n".to_owned();
    };
    let mut lines: Vec<(Instant, String)> = kills
        .iter()
        .enumerate()
        .map(|(i, k)| {
            (
                k.at,
                format!(
                    "---- SIGKILL #{} (updates confirmed below {})",
                    i + 1,
                    k.confirmed_below
                ),
            )
        })
        .collect();
    for r in &requests {
        let about_chat =
            r.chat_id() == Some(chat) || r.body.to_string().contains(&format!("\"id\":{chat},"));
        if !about_chat {
            continue;
        }
        let body = r.body.to_string();
        let body: String = body.chars().take(220).collect();
        lines.push((
            r.at,
            format!(
                "#{} {} -> {:?} {:?}: {body}",
                r.seq, r.method, r.status, r.error
            ),
        ));
    }
    lines.sort_by_key(|(at, _)| *at);
    let mut out = String::new();
    for (at, line) in lines {
        let _ = writeln!(
            out,
            "  +{:.3}s {line}",
            at.saturating_duration_since(t0).as_secs_f64()
        );
    }
    out
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One HTTP/1.1 POST of a JSON body over a plain socket, with extra headers; returns the
/// status and body, or an error if the connection failed or closed without an answer.
pub async fn http_post(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        let _ = write!(request, "{name}: {value}\r\n");
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in 10 s"))??;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not an HTTP answer: {text:?}"),
            )
        })?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned());
    Ok((status, body))
}
