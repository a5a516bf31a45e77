//! The real bot (`gymtriage run`) as a process, long polling the fake Bot API of tests/fake_api:
//! a private check by buttons, two members of a group at once, SIGKILL and restart on the same
//! SQLite file, and a 429 on sendMessage. Also: exit code 2 on a missing or rejected token.
//!
//! Buttons are pressed by their labels (callback data is opaque); labels come from
//! dialogues/flows/*.toml and the level names from dialogues/ui.toml. On failure the bot's log
//! and the last requests it made are printed; `E2E_DUMP=1` prints every request on success too.

mod fake_api;

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use fake_api::{BotMessage, FakeApi, FakeUser, Fault, State};
use tokio::time::Instant;

const TOKEN: &str = "5550001:e2e-polling-TEST_token";
const WAIT: Duration = Duration::from_secs(20);

const SELF_CARE: &str = "Self-care";
const URGENT: &str = "See a doctor within 24-48 hours";
const EMERGENCY: &str = "EMERGENCY";
const LEVELS: [&str; 4] = [
    SELF_CARE,
    "See a professional if it doesn't settle",
    URGENT,
    EMERGENCY,
];

const FIRST_ANSWER: &str = "Lower back or the base of the spine";

/// A back check that ends in self-care (11 answers).
const PRIVATE_SELF_CARE: [&str; 11] = [
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

/// A bone check that ends in "see a doctor within 24-48 hours" (a pinpoint tender spot).
const BONE_URGENT: [&str; 7] = [
    "A bone: shin, foot or another bone",
    "Yes",
    "No, only during or right after activity",
    "Yes, one very tender spot",
    "No",
    "It's new (a day or two) or already easing",
    "None of these",
];

/// Back pain with a change in bladder control: emergency at the second answer.
const BACK_EMERGENCY: [&str; 2] = ["Lower back or the base of the spine", "Yes"];

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

fn bot_command(db: &Path, api_url: &str, token: Option<&str>, log: &Path) -> Command {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open the bot log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gymtriage"));
    cmd.arg("run")
        .arg("--db")
        .arg(db)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("TELOXIDE_API_URL", api_url)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("TELOXIDE_PROXY")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().expect("clone the log handle")))
        .stderr(Stdio::from(log));
    for var in PROXY_VARS {
        cmd.env_remove(var);
    }
    match token {
        Some(t) => cmd.env("TELOXIDE_TOKEN", t),
        None => cmd.env_remove("TELOXIDE_TOKEN"),
    };
    cmd
}

/// A running `gymtriage run`; killed (SIGKILL) when dropped, with its log printed on failure.
struct BotProcess {
    child: Child,
    log: PathBuf,
}

impl BotProcess {
    fn spawn(api: &FakeApi, db: &Path, log: &Path) -> BotProcess {
        let mut cmd = bot_command(db, &api.url(), Some(api.token()), log);
        cmd.env("RUST_LOG", "info");
        let child = cmd.spawn().expect("start gymtriage run");
        BotProcess {
            child,
            log: log.to_owned(),
        }
    }

    /// SIGKILL, no chance to clean up.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn exited(&mut self) -> Option<ExitStatus> {
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
                "---- gymtriage log (last 80 lines of {}) ----\n{}",
                self.log.display(),
                tail(&self.log, 80)
            );
        }
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// Dialogue text the test presses and expects
// ---------------------------------------------------------------------------------------------

fn manifest_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Every English option label in dialogues/flows/*.toml.
fn answer_labels() -> HashSet<String> {
    let mut labels = HashSet::new();
    for entry in fs::read_dir(manifest_path("dialogues/flows")).expect("dialogues/flows") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        for line in fs::read_to_string(&path).expect("read a flow").lines() {
            if let Some(rest) = line.trim_start().strip_prefix("label = { en = \"") {
                labels.insert(toml_string(rest));
            }
        }
    }
    labels
}

/// The rest of a basic TOML string after its opening quote.
fn toml_string(rest: &str) -> String {
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => break,
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => break,
            },
            c => out.push(c),
        }
    }
    out
}

fn check_dialogue_text(labels: &HashSet<String>) {
    for answer in PRIVATE_SELF_CARE
        .iter()
        .chain(&BONE_URGENT)
        .chain(&BACK_EMERGENCY)
    {
        assert!(
            labels.contains(*answer),
            "{answer:?} is not an option label in dialogues/flows"
        );
    }
    let ui = fs::read_to_string(manifest_path("dialogues/ui.toml")).expect("dialogues/ui.toml");
    for level in LEVELS {
        assert!(
            ui.contains(&format!("en = \"{level}\"")),
            "level {level:?} is not in dialogues/ui.toml"
        );
    }
}

/// The level named first in the text (the outcome's heading names it before anything else).
fn level_of(text: &str) -> Option<&'static str> {
    LEVELS
        .into_iter()
        .filter_map(|l| text.find(l).map(|at| (at, l)))
        .min()
        .map(|(_, l)| l)
}

// ---------------------------------------------------------------------------------------------
// The scenario driver
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct Member<'a> {
    chat_id: i64,
    /// The group's title, or None in a private chat.
    group: Option<&'a str>,
    user: FakeUser<'a>,
}

impl Member<'_> {
    fn who(&self) -> String {
        match self.group {
            Some(g) => format!("{} in group {g:?}", self.user.first_name),
            None => format!("{} in private", self.user.first_name),
        }
    }
}

/// One member's check in progress: the question message and how many answers were given.
struct Check<'a> {
    member: Member<'a>,
    question: i32,
    answered: usize,
    script: &'a [&'a str],
    outcome: Option<String>,
    last_update: u32,
}

struct E2e {
    // Field order is drop order: the bot is killed (and its log printed) before the rest goes.
    bot: Option<BotProcess>,
    api: FakeApi,
    labels: HashSet<String>,
    db: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl E2e {
    async fn start() -> E2e {
        let labels = answer_labels();
        check_dialogue_text(&labels);
        let dir = tempfile::tempdir().expect("temp dir");
        let api = FakeApi::start(TOKEN).await;
        let mut e = E2e {
            bot: None,
            db: dir.path().join("gymtriage.db"),
            log: dir.path().join("gymtriage.log"),
            _dir: dir,
            api,
            labels,
        };
        e.spawn_bot().await;
        e
    }

    async fn spawn_bot(&mut self) {
        let polls = self.api.calls("getUpdates");
        self.bot = Some(BotProcess::spawn(&self.api, &self.db, &self.log));
        self.wait("the bot to start long polling (getUpdates)", |s| {
            (s.calls("getUpdates") > polls).then_some(())
        })
        .await;
    }

    fn kill_bot(&mut self) {
        if let Some(mut bot) = self.bot.take() {
            bot.kill();
        }
    }

    /// Waits for `f`, failing early if the bot process exits, or after [`WAIT`].
    async fn wait<T>(&mut self, what: &str, mut f: impl FnMut(&State) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(v) = self
                .api
                .try_wait_for(Duration::from_millis(200), &mut f)
                .await
            {
                return v;
            }
            if let Some(status) = self.bot.as_mut().and_then(BotProcess::exited) {
                panic!(
                    "the bot exited ({status}) while the test waited for {what}\n{}",
                    self.api.describe(20)
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {WAIT:?} waiting for {what}\n{}",
                    self.api.describe(20)
                );
            }
        }
    }

    fn message(&self, chat_id: i64, message_id: i32) -> BotMessage {
        self.api
            .message(chat_id, message_id)
            .expect("the question message exists")
    }

    /// Sends `command` and waits for the question message with the first question's buttons.
    async fn start_check<'a>(
        &mut self,
        member: Member<'a>,
        command: &str,
        script: &'a [&'a str],
    ) -> Check<'a> {
        let queued = match member.group {
            Some(title) => self
                .api
                .group_text(member.chat_id, title, &member.user, command),
            None => self.api.user_text(member.chat_id, &member.user, command),
        };
        let after = queued.message_id();
        let chat = member.chat_id;
        let what = format!(
            "{}: a question message with a {FIRST_ANSWER:?} button after {command:?}",
            member.who()
        );
        let question = self
            .wait(&what, |s| {
                s.messages_in(chat)
                    .into_iter()
                    .find(|m| m.message_id > after && m.button(FIRST_ANSWER).is_some())
                    .map(|m| m.message_id)
            })
            .await;
        Check {
            member,
            question,
            answered: 0,
            script,
            outcome: None,
            last_update: queued.update_id,
        }
    }

    /// Presses the next answer of the script on the check's question message and waits for the
    /// bot to answer the press and edit the message; after the last answer, also for the outcome.
    async fn answer(&mut self, check: &mut Check<'_>) {
        let m = check.member;
        let chat = m.chat_id;
        let step = check.answered + 1;
        let label = check.script[check.answered];
        let last = step == check.script.len();
        let who = m.who();

        let question = self.message(chat, check.question);
        self.check_question(&who, step, &question, m.group.is_some());
        let edits_before = question.edits;
        let last_id_before = self.api.with_state(|s| s.last_message_id(chat));

        let pressed = self.api.press_button(chat, check.question, &m.user, label);
        check.last_update = pressed.update_id;
        let query = pressed.query_id().to_owned();
        let qid = check.question;
        let what = format!(
            "{who}: answer {step} ({label:?}) to be acknowledged (answerCallbackQuery) and the question \
             message {qid} edited"
        );
        self.wait(&what, |s| {
            (s.is_answered(&query) && s.message(chat, qid).is_some_and(|q| q.edits > edits_before))
                .then_some(())
        })
        .await;
        check.answered = step;

        let now = self.message(chat, check.question);
        if !last {
            assert!(
                now.has_callback_buttons(),
                "{who}: after answer {step} ({label:?}) the question message has no buttons:\n{now:#?}"
            );
            let last_id = self.api.with_state(|s| s.last_message_id(chat));
            assert_eq!(
                last_id, last_id_before,
                "{who}: answer {step} ({label:?}) sent a new message instead of only editing the question"
            );
            return;
        }
        let what =
            format!("{who}: a new message with the outcome after the last answer ({label:?})");
        let outcome = self
            .wait(&what, |s| {
                s.messages_in(chat)
                    .into_iter()
                    .find(|o| o.message_id > last_id_before && level_of(&o.text).is_some())
                    .map(|o| o.text.clone())
            })
            .await;
        let left: Vec<&str> = now
            .callback_buttons()
            .map(|b| b.text.as_str())
            .filter(|t| self.labels.contains(*t))
            .collect();
        assert!(
            left.is_empty(),
            "{who}: the finished question message still has answer buttons {left:?}"
        );
        check.outcome = Some(outcome);
    }

    /// What every question message must offer.
    fn check_question(&self, who: &str, step: usize, q: &BotMessage, in_group: bool) {
        let has = |word: &str| {
            q.callback_buttons()
                .any(|b| b.text.to_lowercase().contains(word))
        };
        assert!(
            has("cancel"),
            "{who}: question {step} has no Cancel button: {:?}",
            q.labels()
        );
        if step > 1 {
            assert!(
                has("back"),
                "{who}: question {step} has no Back button: {:?}",
                q.labels()
            );
        }
        let sensitive = q.text.contains("bladder") || q.text.contains("saddle");
        if in_group && sensitive {
            let link = q
                .url_buttons()
                .find_map(|b| b.url.as_deref())
                .unwrap_or_else(|| {
                    panic!("{who}: the sensitive question {step} has no URL button: {q:#?}")
                });
            let payload = link
                .strip_prefix(&format!("https://t.me/{}?start=", fake_api::BOT_USERNAME))
                .unwrap_or_else(|| panic!("{who}: {link:?} is not a deep link to the bot"));
            assert!(
                !payload.is_empty()
                    && payload.len() <= 64
                    && payload
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
                "{who}: deep-link payload {payload:?} is not 1-64 characters of A-Z a-z 0-9 _ -"
            );
        }
    }

    async fn run_to_end(&mut self, check: &mut Check<'_>) -> String {
        while check.answered < check.script.len() {
            self.answer(check).await;
        }
        check.outcome.clone().expect("an outcome")
    }
}

fn assert_level(who: &str, outcome: &str, expected: &str) {
    assert_eq!(
        level_of(outcome),
        Some(expected),
        "{who}: expected the level {expected:?} first in the outcome:\n{outcome}"
    );
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_bot_end_to_end() {
    let started = Instant::now();
    let mut e = E2e::start().await;

    // (1) A private check by buttons, one question message edited in place.
    let alice = Member {
        chat_id: 1001,
        group: None,
        user: FakeUser::new(1001, "Alice"),
    };
    let mut check = e.start_check(alice, "/check", &PRIVATE_SELF_CARE).await;
    let reference = e.run_to_end(&mut check).await;
    assert_level("private check", &reference, SELF_CARE);
    // It asks Telegram only for the update kinds its routing table handles (in a busy group,
    // every other kind would be traffic to fetch, parse and drop). teloxide sends the list
    // with its first getUpdates; Telegram remembers it.
    let mut asked: Vec<String> = e.api.with_state(|s| {
        let list = s
            .requests_for("getUpdates")
            .find_map(|poll| poll.body.get("allowed_updates").cloned());
        let list = match list {
            Some(serde_json::Value::String(text)) => serde_json::from_str(&text).ok(),
            other => other,
        };
        list.and_then(|v| serde_json::from_value(v).ok())
            .expect("getUpdates names the update kinds it wants")
    });
    asked.sort();
    assert_eq!(asked, ["callback_query", "edited_message", "message"]);

    // (2) Two members of a group at once, each with their own question message.
    let (group, title) = (-2001, "Gym buddies");
    let ana = Member {
        chat_id: group,
        group: Some(title),
        user: FakeUser::new(2002, "Ana"),
    };
    let ben = Member {
        chat_id: group,
        group: Some(title),
        user: FakeUser::new(2003, "Ben"),
    };
    let mut a = e
        .start_check(ana, "/check@gymtriage_bot", &BONE_URGENT)
        .await;
    let mut b = e.start_check(ben, "/check", &BACK_EMERGENCY).await;
    assert_ne!(
        a.question, b.question,
        "each member gets their own question message"
    );
    for _ in 0..2 {
        e.answer(&mut a).await;
        let a_before = e.message(group, a.question);
        e.answer(&mut b).await;
        let a_after = e.message(group, a.question);
        assert_eq!(
            (a_before.edits, &a_before.text),
            (a_after.edits, &a_after.text),
            "Ben's answer changed Ana's question message"
        );
    }
    assert_level(
        "group, Ben",
        b.outcome.as_deref().expect("Ben's outcome"),
        EMERGENCY,
    );
    let a_outcome = e.run_to_end(&mut a).await;
    assert_level("group, Ana", &a_outcome, URGENT);

    // (3) SIGKILL after 4 answers, restart on the same database, finish: same outcome.
    let alice_again = Member {
        chat_id: 3001,
        group: None,
        user: FakeUser::new(3001, "Alice"),
    };
    let mut crash = e
        .start_check(alice_again, "/check", &PRIVATE_SELF_CARE)
        .await;
    for _ in 0..4 {
        e.answer(&mut crash).await;
    }
    // The 4th press is confirmed (no replay after the restart), and its edit was seen above.
    e.api.wait_confirmed(crash.last_update).await;
    e.kill_bot();
    e.spawn_bot().await;
    let after_crash = e.run_to_end(&mut crash).await;
    assert_level("check across a restart", &after_crash, SELF_CARE);
    assert_eq!(
        after_crash, reference,
        "the outcome after a crash differs from the one without"
    );

    // (4) A 429 on sendMessage (retry_after 1): the check still completes.
    let fired_before = e.api.with_state(|s| s.faults_fired());
    e.api
        .fail_next("sendMessage", 1, Fault::TooManyRequests { retry_after: 1 });
    let dora = Member {
        chat_id: 4001,
        group: None,
        user: FakeUser::new(4001, "Dora"),
    };
    let t429 = Instant::now();
    let mut flooded = e.start_check(dora, "/check", &PRIVATE_SELF_CARE).await;
    let retried_after = t429.elapsed();
    let flooded_outcome = e.run_to_end(&mut flooded).await;
    assert_level("check with a 429", &flooded_outcome, SELF_CARE);
    assert_eq!(
        e.api.with_state(|s| s.faults_fired()),
        fired_before + 1,
        "the injected 429 was used"
    );
    let refused = e.api.with_state(|s| {
        s.requests_for("sendMessage")
            .filter(|r| r.status == Some(429))
            .count()
    });

    if std::env::var_os("E2E_DUMP").is_some() {
        eprintln!("{}", e.api.describe(usize::MAX));
    }
    println!(
        "e2e polling OK in {:.1?}: private check by buttons -> {SELF_CARE} ({} answers, one question message \
         edited in place); group with 2 members interleaved -> {URGENT:?} and {EMERGENCY}; SIGKILL after 4 \
         answers + restart on the same db -> same outcome; 429 on sendMessage (retry_after 1, {refused} \
         refused) -> first question after {retried_after:.1?}, completed",
        started.elapsed(),
        PRIVATE_SELF_CARE.len(),
    );
}

/// Runs the bot to its exit (at most [`WAIT`]); returns the exit code and stderr.
async fn run_to_exit(mut cmd: Command, log: &Path) -> (Option<i32>, String) {
    let child = cmd.spawn().expect("start gymtriage run");
    let mut bot = BotProcess {
        child,
        log: log.to_owned(),
    };
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = bot.exited() {
            break status;
        }
        if Instant::now() >= deadline {
            panic!("gymtriage run did not exit within {WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut out = String::new();
    File::open(log)
        .and_then(|mut f| f.read_to_string(&mut out))
        .expect("read the log");
    (status.code(), out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_rejected_token_exits_with_code_2() {
    let api = FakeApi::start(TOKEN).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("gymtriage.db");

    let log = dir.path().join("missing.log");
    let mut cmd = bot_command(&db, &api.url(), None, &log);
    cmd.env_remove("RUST_LOG");
    let (code, stderr) = run_to_exit(cmd, &log).await;
    assert_eq!(
        code,
        Some(2),
        "a missing TELOXIDE_TOKEN must exit with 2; output:\n{stderr}"
    );
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "a one-line error:\n{stderr}"
    );
    assert_eq!(
        api.with_state(|s| s.requests().len()),
        0,
        "no request without a token"
    );

    let log = dir.path().join("rejected.log");
    let mut cmd = bot_command(&db, &api.url(), Some("5550001:rejected-token"), &log);
    cmd.env("RUST_LOG", "info");
    let (code, output) = run_to_exit(cmd, &log).await;
    assert_eq!(
        code,
        Some(2),
        "a token the API rejects must exit with 2; output:\n{output}"
    );
    assert!(
        api.with_state(|s| s.requests().iter().any(|r| r.status == Some(401))),
        "the bot never asked the API:\n{}",
        api.describe(10)
    );
    println!(
        "e2e polling: missing token -> exit 2 ({}); rejected token -> exit 2",
        stderr.trim()
    );
}
