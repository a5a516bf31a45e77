//! The real bot in webhook mode (`gymtriage run --webhook URL --listen ADDR --webhook-secret
//! S`) against the fake Bot API: it registers the webhook with its secret and never polls;
//! updates posted to it without the `X-Telegram-Bot-Api-Secret-Token` header, or with a wrong
//! one, are refused and change nothing; with the right one they are handled; the same update
//! posted twice (one after the other, or both at once) is handled once; a whole check runs
//! to its outcome; Ctrl-C deletes the webhook.
//!
//! Updates are built by the fake (the same JSON `getUpdates` gives) and posted with a
//! hand-written HTTP/1.1 client, as Telegram's servers would.

mod e2e_support;
mod fake_api;

use std::net::SocketAddr;
use std::time::Duration;

use e2e_support::{
    BACK_EMERGENCY, BotProcess, BotSpec, FIRST_ANSWER, Storage, free_port, http_post, level_of,
};
use fake_api::{FakeApi, FakeUser, State};
use tokio::time::Instant;

const TOKEN: &str = "5550004:e2e-webhook-TEST_token";
const URL: &str = "https://bot.example.test/hook";
const SECRET: &str = "e2e-Webhook_secret-0123456789";
const HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";
/// How long "nothing happens" is watched for.
const QUIET: Duration = Duration::from_millis(1500);

/// Posts a queued update to the bot's webhook with these headers; the status.
async fn post(api: &FakeApi, addr: SocketAddr, update: &str, headers: &[(&str, &str)]) -> u16 {
    match http_post(addr, "/hook", headers, update).await {
        Ok((status, _)) => status,
        Err(e) => panic!("POST {addr}/hook failed: {e}\n{}", api.describe(10)),
    }
}

/// How many messages the bot sent to this chat.
fn sends_to(s: &State, chat: i64) -> usize {
    s.requests_for("sendMessage")
        .filter(|r| r.chat_id() == Some(chat))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_checks_the_secret_and_handles_each_update_once() {
    let started = Instant::now();
    let api = FakeApi::start(TOKEN).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    let mut spec = BotSpec::new(
        &api,
        Storage::Sqlite(dir.path().join("gymtriage.db")),
        dir.path().join("gymtriage-webhook.log"),
    );
    spec.args = vec![
        "--webhook".into(),
        URL.into(),
        "--listen".into(),
        addr.to_string(),
        "--webhook-secret".into(),
        SECRET.into(),
    ];
    let mut bot = BotProcess::spawn(&spec);

    // It registers the webhook with its secret...
    api.wait_until("setWebhook with the URL", |s| s.webhook_url() == URL)
        .await;
    let registered = api.with_state(|s| {
        let r = s
            .requests_for("setWebhook")
            .last()
            .expect("a setWebhook call")
            .body
            .clone();
        (s.webhook_secret().map(str::to_owned), r)
    });
    assert_eq!(
        registered.0.as_deref(),
        Some(SECRET),
        "setWebhook must carry the secret: {}",
        registered.1
    );
    // ...and listens.
    let listening = {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                break Instant::now();
            }
            if let Some(status) = bot.exited() {
                panic!("the bot exited ({status}) before listening on {addr}");
            }
            assert!(Instant::now() < until, "the bot does not listen on {addr}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };

    let alice = FakeUser::new(7001, "Alice");
    let chat = alice.id;
    let check = api.user_text(chat, &alice, "/check");
    let update = api
        .take_update(check.update_id)
        .expect("the update, out of the getUpdates queue");

    // (1) Refused: no secret header, a wrong secret, a malformed one. Nothing is handled.
    let missing = post(&api, addr, &update, &[]).await;
    let wrong = post(&api, addr, &update, &[(HEADER, "e2e-Webhook_secret-WRONG")]).await;
    let empty = post(&api, addr, &update, &[(HEADER, "")]).await;
    let malformed = post(&api, addr, &update, &[(HEADER, "not a valid secret!")]).await;
    assert_eq!(missing, 401, "no secret header");
    assert_eq!(wrong, 401, "a wrong secret");
    assert!(
        matches!(empty, 400 | 401),
        "an empty secret is refused, got {empty}"
    );
    assert!(
        matches!(malformed, 400 | 401),
        "a malformed secret is refused, got {malformed}"
    );
    tokio::time::sleep(QUIET).await;
    let after_refusals = api.with_state(|s| (sends_to(s, chat), s.messages_in(chat).len()));
    assert_eq!(
        after_refusals,
        (0, 0),
        "refused updates were handled:\n{}",
        api.describe(10)
    );

    // (2) The right secret: handled, the first question comes.
    let t = Instant::now();
    assert_eq!(post(&api, addr, &update, &[(HEADER, SECRET)]).await, 200);
    let question = api
        .wait_for("the first question after /check", |s| {
            s.messages_in(chat)
                .into_iter()
                .find(|m| m.button(FIRST_ANSWER).is_some())
                .map(|m| m.message_id)
        })
        .await;
    let first_reply = t.elapsed();

    // (3) The same update again: already handled, no second question.
    assert_eq!(post(&api, addr, &update, &[(HEADER, SECRET)]).await, 200);
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        api.with_state(|s| sends_to(s, chat)),
        1,
        "the same /check posted twice got two replies:\n{}",
        api.describe(10)
    );

    // (4) A button press posted twice at once: one edit, one callback answer.
    let press = api.press_button(chat, question, &alice, BACK_EMERGENCY[0]);
    let query = press.query_id().to_owned();
    let update = api.take_update(press.update_id).expect("the press");
    let (a, b) = tokio::join!(
        post(&api, addr, &update, &[(HEADER, SECRET)]),
        post(&api, addr, &update, &[(HEADER, SECRET)])
    );
    assert_eq!((a, b), (200, 200));
    api.wait_until("the question edited after the press", |s| {
        s.message(chat, question).is_some_and(|m| m.edits >= 1)
    })
    .await;
    tokio::time::sleep(QUIET).await;
    let (edits, answers) = api.with_state(|s| {
        (
            s.message(chat, question).map_or(0, |m| m.edits),
            s.callback_answers()
                .iter()
                .filter(|c| c.query_id == query)
                .count(),
        )
    });
    assert_eq!(
        (edits, answers),
        (1, 1),
        "a press posted twice at once was applied twice (edits, callback answers)"
    );

    // (5) A /check of someone else posted twice at once: one question.
    let bob = FakeUser::new(7002, "Bob");
    let bob_check = api.user_text(bob.id, &bob, "/check");
    let update = api.take_update(bob_check.update_id).expect("Bob's /check");
    let (a, b) = tokio::join!(
        post(&api, addr, &update, &[(HEADER, SECRET)]),
        post(&api, addr, &update, &[(HEADER, SECRET)])
    );
    assert_eq!((a, b), (200, 200));
    api.wait_until("Bob's first question", |s| sends_to(s, bob.id) >= 1)
        .await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        api.with_state(|s| sends_to(s, bob.id)),
        1,
        "a /check posted twice at once got two replies"
    );

    // (6) Alice finishes her check (back pain, bladder control changed): one outcome.
    let last = api.press_button(chat, question, &alice, BACK_EMERGENCY[1]);
    let update = api.take_update(last.update_id).expect("the last press");
    for _ in 0..2 {
        assert_eq!(post(&api, addr, &update, &[(HEADER, SECRET)]).await, 200);
    }
    let outcome = api
        .wait_for("Alice's outcome", |s| {
            s.messages_in(chat)
                .into_iter()
                .find_map(|m| level_of(&m.text))
        })
        .await;
    assert_eq!(outcome, "EMERGENCY");
    tokio::time::sleep(QUIET).await;
    let outcomes = api.with_state(|s| {
        s.messages_in(chat)
            .into_iter()
            .filter(|m| level_of(&m.text).is_some())
            .count()
    });
    assert_eq!(outcomes, 1, "one outcome message");
    assert_eq!(
        api.calls("getUpdates"),
        0,
        "a bot on a webhook must not poll"
    );

    // (7) Ctrl-C: the bot deletes its webhook on the way out.
    let t = Instant::now();
    assert!(bot.interrupt(), "send SIGINT");
    api.wait_until("deleteWebhook after Ctrl-C", |s| {
        s.calls("deleteWebhook") > 0
    })
    .await;
    let deleted_after = t.elapsed();
    let exit = {
        let until = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = bot.exited() {
                break status;
            }
            assert!(Instant::now() < until, "the bot did not exit after Ctrl-C");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert!(exit.success(), "exit status after Ctrl-C: {exit}");
    assert_eq!(api.with_state(|s| s.webhook_url().to_owned()), "");

    if std::env::var_os("E2E_DUMP").is_some() {
        eprintln!("{}", api.describe(usize::MAX));
    }
    println!(
        "e2e webhook OK in {:.1?}: setWebhook with the secret, listening {:.1?} after start; no \
         secret -> {missing}, wrong secret -> {wrong}, empty -> {empty}, malformed -> {malformed}, \
         nothing handled; right secret -> 200 and the first question in {first_reply:.1?}; the \
         same /check posted again -> 1 reply; a press posted twice at once -> 1 edit, 1 callback \
         answer; a /check posted twice at once -> 1 question; check finished -> 1 outcome \
         (EMERGENCY); no getUpdates; Ctrl-C -> deleteWebhook after {deleted_after:.1?}, exit {}",
        started.elapsed(),
        listening - started,
        exit.code().unwrap_or(-1),
    );
}
