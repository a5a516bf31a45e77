//! Health data stays out of the logs: the real bot runs with `RUST_LOG=trace` and a sentinel
//! token through a whole check with typed and pressed answers; neither the token, nor what the
//! person typed, nor the answers and reasons appear anywhere in its output.

mod fake_api;

use std::process::{Command, Stdio};
use std::time::Duration;

use fake_api::{FakeApi, FakeUser};

const TOKEN: &str = "7771234:SENTINELtokenDoNotLog_abcdefghij";
/// A word typed by the person, inside an answer the bot understands.
const TYPED: &str = "zebrafruitache";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neither_the_token_nor_answers_reach_the_logs_even_at_trace() {
    let api = FakeApi::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("bot.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_gymtriage"))
        .arg("run")
        .arg("--db")
        .arg(dir.path().join("g.db"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("TELOXIDE_TOKEN", TOKEN)
        .env("TELOXIDE_API_URL", api.url())
        .env("RUST_LOG", "trace")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log_file.try_clone().unwrap()))
        .stderr(Stdio::from(log_file))
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let guard = Kill(child);

    let ana = FakeUser::new(4242, "Ana");
    api.user_text(4242, &ana, &format!("my lower back hurts, {TYPED}"));
    let q = api
        .wait_for("the bladder question", |s| {
            s.last_message_in(4242)
                .filter(|m| m.text.contains("bladder"))
                .map(|m| m.message_id)
        })
        .await;
    for label in [
        "No",
        "No",
        "Yes, but it is not getting worse",
        "Pain shoots down a leg, past the knee",
        "Suddenly, during the session or right after it",
        "Sharp, stabbing or intense",
        "One spot I can point to",
        "Moving makes it worse",
        "Yes, my range of movement is limited",
        "3 to 7 days",
        "Heavy lifting, maxing out, or my form slipped (rounded back)",
    ] {
        let before = api.with_state(|s| s.message(4242, q).map_or(0, |m| m.edits));
        api.press_button(4242, q, &ana, label);
        api.wait_for("the next step", |s| {
            let edited = s.message(4242, q).is_some_and(|m| m.edits > before);
            let outcome = s.messages_in(4242).len() > 1;
            (edited || outcome).then_some(())
        })
        .await;
    }
    api.wait_for("the outcome", |s| {
        s.messages_in(4242)
            .iter()
            .any(|m| m.text.contains("See a doctor within 24-48 hours"))
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(guard);

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("TRACE") || text.contains("DEBUG"),
        "ran at trace level:\n{text}"
    );
    let secret_part = TOKEN.split(':').nth(1).unwrap();
    for (what, needle) in [
        ("the token", secret_part),
        ("typed words", TYPED),
        ("an answer label", "Pain shoots down a leg"),
        ("a reason", "irritated or compressed nerve root"),
        ("a question", "trouble controlling your bladder"),
        ("the outcome", "within 24 to 48 hours"),
    ] {
        assert!(
            !text.contains(needle),
            "{what} leaked into the log:\n{text}"
        );
    }
    println!(
        "privacy: {} log lines at RUST_LOG=trace, no token, no answers",
        text.lines().count()
    );
}
