//! A follow-up check-in end to end: the real bot, the fake Bot API, and a controlled clock.
//! The check-in is scheduled, the bot is killed and restarted before it is due, the clock
//! jumps past the due time, and the check-in arrives exactly once.

mod fake_api;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fake_api::{FakeApi, FakeUser};

const TOKEN: &str = "6660002:e2e-checkin-TEST_token";
const CHAT: i64 = 5151;

const SORENESS: [&str; 11] = [
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

struct Bot(Child);

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(api: &FakeApi, db: &Path, clock: &Path, log: &Path) -> Bot {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_gymtriage"))
        .arg("run")
        .arg("--db")
        .arg(db)
        .arg("--clock-file")
        .arg(clock)
        .args(["--checkin-poll-secs", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("TELOXIDE_TOKEN", TOKEN)
        .env("TELOXIDE_API_URL", api.url())
        .env("RUST_LOG", "info")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    Bot(child)
}

fn status_messages(api: &FakeApi) -> usize {
    api.messages_in(CHAT)
        .iter()
        .filter(|m| m.text.contains("since your check"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_in_survives_a_restart_and_arrives_exactly_once() {
    let api = FakeApi::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let (db, clock, log) = (
        dir.path().join("g.db"),
        dir.path().join("clock"),
        dir.path().join("bot.log"),
    );
    std::fs::write(&clock, "0").unwrap();
    let ana = FakeUser::new(CHAT, "Ana");
    let bot = start(&api, &db, &clock, &log);

    api.user_text(CHAT, &ana, "/check");
    let q = api
        .wait_for("the first question", |s| {
            s.last_message_in(CHAT).map(|m| m.message_id)
        })
        .await;
    for label in SORENESS {
        let before = api.with_state(|s| s.message(CHAT, q).map_or(0, |m| m.edits));
        api.press_button(CHAT, q, &ana, label);
        api.wait_for("the next step", |s| {
            let edited = s.message(CHAT, q).is_some_and(|m| m.edits > before);
            (edited || s.messages_in(CHAT).len() > 1).then_some(())
        })
        .await;
    }
    let offer = api
        .wait_for("the check-in offer", |s| {
            s.messages_in(CHAT)
                .iter()
                .find(|m| m.text.contains("check in on you later"))
                .map(|m| m.message_id)
        })
        .await;
    api.press_button(CHAT, offer, &ana, "In 3 days (suggested)");
    api.wait_for("the confirmation", |s| {
        s.message(CHAT, offer)
            .filter(|m| m.text.contains("in 3 days"))
            .map(|_| ())
    })
    .await;

    // Restart before it is due, then let time pass while the bot is down.
    drop(bot);
    std::fs::write(&clock, (2 * 86_400).to_string()).unwrap();
    let bot = start(&api, &db, &clock, &log);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(status_messages(&api), 0, "not due yet after 2 days");
    drop(bot);
    std::fs::write(&clock, (4 * 86_400).to_string()).unwrap();
    let bot = start(&api, &db, &clock, &log);
    api.wait_for("the check-in", |s| {
        s.messages_in(CHAT)
            .iter()
            .any(|m| m.text.contains("4 day(s) since your check"))
            .then_some(())
    })
    .await;
    // More scheduler rounds, and one more restart: still exactly one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(bot);
    let _bot = start(&api, &db, &clock, &log);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        status_messages(&api),
        1,
        "the check-in arrives exactly once"
    );
    println!("check-in: scheduled, 2 restarts, due while down, delivered: 1");
}
