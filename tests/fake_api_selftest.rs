//! The fake Bot API server (tests/fake_api) checked with teloxide itself as the client.

mod fake_api;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use fake_api::{FakeApi, FakeConfig, FakeUser, Fault};
use teloxide::prelude::*;
use teloxide::types::{
    AllowedUpdate, BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, MessageId, ParseMode,
    UpdateKind,
};
use teloxide::{ApiError, RequestError};
use tokio::time::Instant;

const TOKEN: &str = "123456789:fake-API-selftest_token";
const ALICE: FakeUser = FakeUser {
    id: 101,
    first_name: "Alice",
    language_code: Some("en"),
};
const BOB: FakeUser = FakeUser {
    id: 202,
    first_name: "Bob",
    language_code: None,
};
const GROUP: i64 = -4001;

fn bot(api: &FakeApi) -> Bot {
    Bot::new(TOKEN).set_api_url(api.url().parse().expect("fake url"))
}

fn keyboard(rows: &[&[(&str, &str)]]) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(rows.iter().map(|row| {
        row.iter()
            .map(|(text, data)| {
                if data.starts_with("https://") {
                    InlineKeyboardButton::url(*text, data.parse().expect("url"))
                } else {
                    InlineKeyboardButton::callback(*text, *data)
                }
            })
            .collect::<Vec<_>>()
    }))
}

/// One HTTP/1.1 request over a plain socket: (status, body), or None if the connection was
/// closed without an answer.
async fn raw_http(
    addr: SocketAddr,
    verb: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> Option<(u16, String)> {
    let mut request = format!(
        "{verb} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(ct) = content_type {
        request.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).expect("connect to the fake");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut buf = Vec::new();
        if s.read_to_end(&mut buf).is_err() || buf.is_empty() {
            return None;
        }
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text.get(9..12)?.parse().ok()?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Some((status, body))
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_me_webhook_info_and_commands() {
    let api = FakeApi::start(TOKEN).await;
    let bot = bot(&api);

    let me = bot.get_me().await.expect("getMe");
    assert_eq!(me.username(), "gymtriage_bot");
    assert_eq!(me.first_name, "GymTriage");
    assert!(me.is_bot && me.can_join_groups && !me.can_read_all_group_messages);
    assert_eq!(me.id.0 as i64, api.bot_id());
    assert_eq!(api.bot_id(), 123456789);

    let info = bot.get_webhook_info().await.expect("getWebhookInfo");
    assert!(info.url.is_none());
    assert_eq!(info.pending_update_count, 0);
    bot.delete_webhook().await.expect("deleteWebhook");

    let commands = vec![
        BotCommand::new("check", "Start a pain check"),
        BotCommand::new("cancel", "Stop the current check"),
    ];
    bot.set_my_commands(commands.clone())
        .await
        .expect("setMyCommands");
    assert_eq!(
        bot.get_my_commands().await.expect("getMyCommands"),
        commands
    );
    api.with_state(|s| {
        let stored = s.commands().expect("commands stored");
        assert_eq!(stored[0]["command"], "check");
    });
    let bad = bot
        .set_my_commands(vec![BotCommand::new("Check!", "bad")])
        .await;
    assert!(matches!(bad, Err(RequestError::Api(_))), "{bad:?}");

    // teloxide names methods in PascalCase (`GetMe`); the Bot API ignores case.
    let methods: Vec<String> = api
        .requests()
        .iter()
        .map(|r| r.method.to_ascii_lowercase())
        .collect();
    assert_eq!(
        methods,
        [
            "getme",
            "getwebhookinfo",
            "deletewebhook",
            "setmycommands",
            "getmycommands",
            "setmycommands"
        ]
    );
    assert_eq!(api.calls("setmycommands"), 2);
    assert!(api.requests().iter().take(5).all(|r| r.ok()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_keyboards_edits_and_callback_answers() {
    let api = FakeApi::start(TOKEN).await;
    let bot = bot(&api);
    let chat = ChatId(ALICE.id);

    let start = api.user_text(ALICE.id, &ALICE, "/start");
    assert_eq!(start.message_id(), 1);
    let updates = bot.get_updates().await.expect("getUpdates");
    assert_eq!(updates.len(), 1);
    let UpdateKind::Message(m) = &updates[0].kind else {
        panic!("{:?}", updates[0].kind)
    };
    assert_eq!(m.text(), Some("/start"));
    assert!(m.chat.is_private());
    assert_eq!(m.from.as_ref().unwrap().first_name, "Alice");
    assert_eq!(
        m.from.as_ref().unwrap().language_code.as_deref(),
        Some("en")
    );
    assert_eq!(m.entities().unwrap().len(), 1, "a bot_command entity");

    // sendMessage with an inline keyboard: echoed back, ids continue the chat's sequence.
    let kb = keyboard(&[
        &[("Lower back or the base of the spine", "a:lower_back")],
        &[(
            "Open in private",
            "https://t.me/gymtriage_bot?start=abc_123",
        )],
        &[("Cancel", "c:cancel")],
    ]);
    let sent = bot
        .send_message(chat, "Where does it hurt?")
        .reply_markup(kb.clone())
        .await
        .expect("send");
    assert_eq!(sent.id, MessageId(2));
    assert_eq!(sent.text(), Some("Where does it hurt?"));
    assert_eq!(sent.reply_markup(), Some(&kb));
    assert!(sent.from.as_ref().unwrap().is_bot);
    let stored = api.message(ALICE.id, 2).expect("stored");
    assert_eq!(
        stored.labels(),
        ["Lower back or the base of the spine", "Cancel"]
    );
    assert_eq!(stored.url_buttons().count(), 1);
    assert_eq!(stored.edits, 0);

    // editMessageText: new text and keyboard; the same again is "not modified".
    let kb2 = keyboard(&[
        &[("Yes", "a:yes"), ("No", "a:no")],
        &[("Back", "c:back"), ("Cancel", "c:cancel")],
    ]);
    let edited = bot
        .edit_message_text(chat, sent.id, "Any trouble with bladder control?")
        .reply_markup(kb2.clone())
        .await
        .expect("edit");
    assert_eq!(edited.id, sent.id);
    assert_eq!(edited.text(), Some("Any trouble with bladder control?"));
    assert!(edited.edit_date().is_some());
    assert_eq!(edited.reply_markup(), Some(&kb2));
    let again = bot
        .edit_message_text(chat, sent.id, "Any trouble with bladder control?")
        .reply_markup(kb2.clone())
        .await;
    assert!(
        matches!(again, Err(RequestError::Api(ApiError::MessageNotModified))),
        "{again:?}"
    );
    let missing = bot.edit_message_text(chat, MessageId(99), "x").await;
    assert!(
        matches!(
            missing,
            Err(RequestError::Api(ApiError::MessageToEditNotFound))
        ),
        "{missing:?}"
    );
    let users = bot.edit_message_text(chat, MessageId(1), "x").await;
    assert!(
        matches!(users, Err(RequestError::Api(ApiError::MessageCantBeEdited))),
        "{users:?}"
    );
    assert_eq!(api.message(ALICE.id, 2).unwrap().edits, 1);

    // A press carries the message as the bot last set it.
    let press = api.press_button(ALICE.id, 2, &ALICE, "Yes");
    let updates = bot
        .get_updates()
        .offset(start.update_id as i32 + 1)
        .await
        .expect("getUpdates");
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].id.0, press.update_id);
    let UpdateKind::CallbackQuery(q) = &updates[0].kind else {
        panic!("{:?}", updates[0].kind)
    };
    assert_eq!(q.id.0, press.query_id());
    assert_eq!(q.data.as_deref(), Some("a:yes"));
    assert!(!q.chat_instance.is_empty());
    assert_eq!(q.from.id.0, ALICE.id as u64);
    let qm = q.regular_message().expect("a regular message");
    assert_eq!(qm.id, sent.id);
    assert_eq!(qm.text(), Some("Any trouble with bladder control?"));
    assert_eq!(qm.reply_markup(), Some(&kb2));

    bot.answer_callback_query(q.id.clone())
        .text("Noted")
        .await
        .expect("answer");
    api.with_state(|s| {
        let a = s
            .callback_answer(press.query_id())
            .expect("answer recorded");
        assert_eq!(a.text.as_deref(), Some("Noted"));
        assert!(!a.show_alert);
    });
    let twice = bot.answer_callback_query(q.id.clone()).await;
    match twice {
        Err(RequestError::Api(ApiError::Unknown(text))) => {
            assert!(text.contains("query is too old"), "{text}")
        }
        other => panic!("a second answer must fail: {other:?}"),
    }

    // An edit without reply_markup removes the keyboard, as Telegram does.
    let last = bot
        .edit_message_text(chat, sent.id, "Done.")
        .await
        .expect("edit");
    assert!(last.reply_markup().is_none());
    let stored = api.message(ALICE.id, 2).unwrap();
    assert!(stored.keyboard.is_empty() && !stored.has_callback_buttons());
    assert_eq!(stored.edits, 2);

    // Per-chat id sequences.
    let outcome = bot.send_message(chat, "Self-care").await.expect("send");
    assert_eq!(outcome.id, MessageId(3));
    let g = api.group_text(GROUP, "Gym buddies", &BOB, "/check@gymtriage_bot");
    assert_eq!(g.message_id(), 1);
    let in_group = bot
        .send_message(ChatId(GROUP), "Question 1")
        .await
        .expect("send to group");
    assert_eq!(in_group.id, MessageId(2));
    assert!(in_group.chat.is_group());
    assert_eq!(in_group.chat.title(), Some("Gym buddies"));
    let ids: Vec<i32> = api
        .messages_in(ALICE.id)
        .iter()
        .map(|m| m.message_id)
        .collect();
    assert_eq!(ids, [2, 3]);

    // Chats the bot cannot write to.
    let unknown = bot.send_message(ChatId(555), "hi").await;
    assert!(
        matches!(unknown, Err(RequestError::Api(ApiError::ChatNotFound))),
        "{unknown:?}"
    );
    let not_started = bot.send_message(ChatId(BOB.id), "hi").await;
    match not_started {
        Err(RequestError::Api(ApiError::Unknown(text))) => {
            assert_eq!(
                text,
                "Forbidden: bot can't initiate conversation with a user"
            )
        }
        other => panic!("{other:?}"),
    }

    // Formatting is checked and rendered.
    let html = bot
        .send_message(chat, "<b>Self-care</b> &amp; rest &lt;3")
        .parse_mode(ParseMode::Html)
        .await
        .expect("valid HTML");
    assert_eq!(html.text(), Some("Self-care & rest <3"));
    let bad_html = bot
        .send_message(chat, "<b>Self-care")
        .parse_mode(ParseMode::Html)
        .await;
    assert!(
        matches!(
            bad_html,
            Err(RequestError::Api(ApiError::CantParseEntities(_)))
        ),
        "{bad_html:?}"
    );
    let bad_md = bot
        .send_message(chat, "See a doctor within 24-48 hours.")
        .parse_mode(ParseMode::MarkdownV2)
        .await;
    assert!(
        matches!(
            bad_md,
            Err(RequestError::Api(ApiError::CantParseEntities(_)))
        ),
        "{bad_md:?}"
    );
    let md = bot
        .send_message(chat, "*See a doctor* within 24\\-48 hours\\.")
        .parse_mode(ParseMode::MarkdownV2)
        .await
        .expect("valid MarkdownV2");
    assert_eq!(md.text(), Some("See a doctor within 24-48 hours."));

    // Button and text limits.
    let long_data = "x".repeat(65);
    let bad_button = bot
        .send_message(chat, "q")
        .reply_markup(keyboard(&[&[("Yes", &long_data)]]))
        .await;
    assert!(
        matches!(
            bad_button,
            Err(RequestError::Api(ApiError::ButtonDataInvalid))
        ),
        "{bad_button:?}"
    );
    let too_long = bot.send_message(chat, "x".repeat(4097)).await;
    assert!(
        matches!(too_long, Err(RequestError::Api(ApiError::MessageIsTooLong))),
        "{too_long:?}"
    );
    let empty = bot.send_message(chat, "  ").await;
    assert!(
        matches!(empty, Err(RequestError::Api(ApiError::MessageTextIsEmpty))),
        "{empty:?}"
    );

    bot.delete_message(chat, outcome.id).await.expect("delete");
    let deleted = bot.delete_message(chat, outcome.id).await;
    assert!(
        matches!(
            deleted,
            Err(RequestError::Api(ApiError::MessageToDeleteNotFound))
        ),
        "{deleted:?}"
    );
    assert!(api.message(ALICE.id, 3).unwrap().deleted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_updates_offsets_kinds_and_long_polls() {
    let mut config = FakeConfig::new(TOKEN);
    config.max_poll_hold = Duration::from_secs(5);
    let api = FakeApi::start_with(config).await;
    let bot = bot(&api);

    let a = api.user_text(ALICE.id, &ALICE, "my lower back hurts");
    let b = api.group_text(GROUP, "Gym buddies", &BOB, "/check@gymtriage_bot");
    let c = api.user_sticker(ALICE.id, &ALICE, "💪");
    assert!(a.update_id < b.update_id && b.update_id < c.update_id);

    let all = bot.get_updates().await.expect("getUpdates");
    let ids: Vec<u32> = all.iter().map(|u| u.id.0).collect();
    assert_eq!(ids, [a.update_id, b.update_id, c.update_id]);
    let kinds: Vec<String> = all
        .iter()
        .map(|u| match &u.kind {
            UpdateKind::Message(m) if m.chat.is_group() => {
                assert_eq!(m.chat.title(), Some("Gym buddies"));
                format!("group:{}", m.text().unwrap())
            }
            UpdateKind::Message(m) if m.sticker().is_some() => {
                format!("sticker:{}", m.sticker().unwrap().emoji.as_deref().unwrap())
            }
            UpdateKind::Message(m) => format!("text:{}", m.text().unwrap()),
            other => panic!("unexpected update (a JSON shape teloxide did not parse?): {other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "text:my lower back hurts",
            "group:/check@gymtriage_bot",
            "sticker:💪"
        ]
    );

    // Nothing is dropped until confirmed by a higher offset.
    assert_eq!(bot.get_updates().await.unwrap().len(), 3);
    let rest = bot.get_updates().offset(b.update_id as i32).await.unwrap();
    assert_eq!(rest.len(), 2);
    api.with_state(|s| {
        assert!(s.is_confirmed(a.update_id) && !s.is_confirmed(b.update_id));
        assert_eq!(s.pending_updates(), 2);
    });
    let none = bot
        .get_updates()
        .offset(c.update_id as i32 + 1)
        .timeout(0)
        .await
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(api.with_state(|s| s.pending_updates()), 0);

    // A long poll returns as soon as an update is queued.
    let started = Instant::now();
    let poll = tokio::spawn({
        let bot = bot.clone();
        async move {
            bot.get_updates()
                .offset(c.update_id as i32 + 1)
                .timeout(10)
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let d = api.user_text(ALICE.id, &ALICE, "hello?");
    let got = poll.await.unwrap().expect("long poll");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id.0, d.update_id);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );

    // A newer getUpdates ends the held one with 409, as Telegram does.
    let polls = api.with_state(|s| s.polls_started());
    let held = tokio::spawn({
        let bot = bot.clone();
        async move {
            bot.get_updates()
                .offset(d.update_id as i32 + 1)
                .timeout(10)
                .await
        }
    });
    api.wait_until("the long poll to be held", |s| {
        s.polls_started() == polls + 1
    })
    .await;
    let newer = bot
        .get_updates()
        .offset(d.update_id as i32 + 1)
        .timeout(0)
        .await
        .unwrap();
    assert!(newer.is_empty());
    let ended = held.await.unwrap();
    assert!(
        matches!(
            ended,
            Err(RequestError::Api(ApiError::TerminatedByOtherGetUpdates))
        ),
        "{ended:?}"
    );

    // allowed_updates is remembered and filters what is delivered.
    let e = api.user_text(ALICE.id, &ALICE, "text");
    let only_presses = bot
        .get_updates()
        .allowed_updates(vec![AllowedUpdate::CallbackQuery])
        .timeout(0)
        .await
        .unwrap();
    assert!(only_presses.is_empty());
    assert!(
        bot.get_updates().timeout(0).await.unwrap().is_empty(),
        "the setting is remembered"
    );
    let messages = bot
        .get_updates()
        .allowed_updates(vec![AllowedUpdate::Message])
        .await
        .unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].id.0, e.update_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polls_are_capped() {
    let mut config = FakeConfig::new(TOKEN);
    config.max_poll_hold = Duration::from_millis(300);
    let api = FakeApi::start_with(config).await;
    let started = Instant::now();
    let got = bot(&api)
        .get_updates()
        .timeout(10)
        .await
        .expect("getUpdates");
    assert!(got.is_empty());
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_arrive_as_teloxide_errors() {
    let api = FakeApi::start(TOKEN).await;
    let bot = bot(&api);
    api.user_text(ALICE.id, &ALICE, "/check");
    api.user_text(BOB.id, &BOB, "/check");

    // 429: RetryAfter, then enforced for that chat only until it has passed.
    api.fail_next("sendMessage", 1, Fault::TooManyRequests { retry_after: 1 });
    match bot.send_message(ChatId(ALICE.id), "q1").await {
        Err(RequestError::RetryAfter(s)) => assert_eq!(s.seconds(), 1),
        other => panic!("expected RetryAfter: {other:?}"),
    }
    let refused_at = Instant::now();
    let early = bot.send_message(ChatId(ALICE.id), "q1").await;
    assert!(
        matches!(early, Err(RequestError::RetryAfter(_))),
        "{early:?}"
    );
    bot.send_message(ChatId(BOB.id), "q1")
        .await
        .expect("another chat is not limited");
    tokio::time::sleep_until(refused_at + Duration::from_millis(1010)).await;
    bot.send_message(ChatId(ALICE.id), "q1")
        .await
        .expect("after retry_after");
    let statuses: Vec<Option<u16>> =
        api.with_state(|s| s.requests_for("sendMessage").map(|r| r.status).collect());
    assert_eq!(statuses, [Some(429), Some(429), Some(200), Some(200)]);
    let body = raw_http(api.addr(), "POST", &format!("/bot{TOKEN}/getMe"), None, "").await;
    assert!(body.is_some());

    // A dropped connection: a network error; the next call works.
    api.fail_next("getMe", 1, Fault::Drop);
    let dropped = bot.get_me().await;
    assert!(
        matches!(dropped, Err(RequestError::Network(_))),
        "{dropped:?}"
    );
    bot.get_me().await.expect("getMe after a drop");
    api.fail_next("getMe", 1, Fault::Drop);
    assert_eq!(
        raw_http(api.addr(), "POST", &format!("/bot{TOKEN}/getMe"), None, "").await,
        None
    );
    assert!(api.with_state(|s| s.requests_for("getMe").any(|r| r.status == Some(0))));

    // 5xx, checked over a raw socket (teloxide sleeps 10 s after a 5xx).
    api.fail_next("getMe", 1, Fault::Status(500));
    let (status, body) = raw_http(api.addr(), "POST", &format!("/bot{TOKEN}/getMe"), None, "")
        .await
        .unwrap();
    assert_eq!(status, 500);
    assert!(
        body.contains("\"ok\":false") && body.contains("\"error_code\":500"),
        "{body}"
    );
    api.fail_next("*", 1, Fault::Status(502));
    let (status, body) = raw_http(api.addr(), "POST", &format!("/bot{TOKEN}/getMe"), None, "")
        .await
        .unwrap();
    assert_eq!(status, 502);
    assert!(body.contains("502 Bad Gateway"), "{body}");

    // Every k-th call.
    api.fail_every("sendMessage", 3, Fault::Status(503));
    let mut statuses = Vec::new();
    for i in 0..6 {
        let body = format!(r#"{{"chat_id":{},"text":"n{i}"}}"#, BOB.id);
        let path = format!("/bot{TOKEN}/sendMessage");
        let (status, _) = raw_http(api.addr(), "POST", &path, Some("application/json"), &body)
            .await
            .unwrap();
        statuses.push(status);
    }
    assert_eq!(statuses, [200, 200, 503, 200, 200, 503]);
    api.clear_faults();
    bot.send_message(ChatId(BOB.id), "fine")
        .await
        .expect("no faults left");
    assert_eq!(api.with_state(|s| s.faults_fired()), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_token_unknown_methods_and_other_encodings() {
    let api = FakeApi::start(TOKEN).await;
    let wrong = Bot::new("111:wrong").set_api_url(api.url().parse().unwrap());
    let err = wrong.get_me().await;
    assert!(
        matches!(err, Err(RequestError::Api(ApiError::InvalidToken))),
        "{err:?}"
    );
    assert_eq!(api.with_state(|s| s.requests()[0].status), Some(401));

    let addr = api.addr();
    let path = |m: &str| format!("/bot{TOKEN}/{m}");
    let (status, body) = raw_http(addr, "POST", &path("getMe"), None, "")
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("\"username\":\"gymtriage_bot\""), "{body}");
    let (status, _) = raw_http(addr, "GET", &path("getMe"), None, "")
        .await
        .unwrap();
    assert_eq!(status, 200);

    let (status, body) = raw_http(
        addr,
        "POST",
        &path("sendPigeon"),
        Some("application/json"),
        "{}",
    )
    .await
    .unwrap();
    assert_eq!(
        (status, body.as_str()),
        (
            404,
            r#"{"description":"Not Found","error_code":404,"ok":false}"#
        )
    );
    let (status, _) = raw_http(addr, "POST", "/nothing/here/at/all", None, "")
        .await
        .unwrap();
    assert_eq!(status, 404);
    let (status, _) = raw_http(
        addr,
        "POST",
        &path("getMe"),
        Some("application/json"),
        "{oops",
    )
    .await
    .unwrap();
    assert_eq!(status, 400);

    // Form-encoded, with a JSON reply_markup.
    api.user_text(ALICE.id, &ALICE, "/check");
    let form = format!(
        "chat_id={}&text=Hello+there%21&reply_markup=%7B%22inline_keyboard%22%3A%5B%5B%7B%22text%22%3A%22Yes%22%2C%22callback_data%22%3A%22y%22%7D%5D%5D%7D",
        ALICE.id
    );
    let (status, body) = raw_http(
        addr,
        "POST",
        &path("sendMessage"),
        Some("application/x-www-form-urlencoded"),
        &form,
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let m = api.message(ALICE.id, 2).expect("sent");
    assert_eq!(m.text, "Hello there!");
    assert_eq!(m.labels(), ["Yes"]);
    let (status, body) = raw_http(
        addr,
        "POST",
        &format!("{}?chat_id={}&text=q", path("sendMessage"), ALICE.id),
        None,
        "",
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
#[should_panic(expected = "timed out after")]
async fn wait_for_fails_with_a_clear_message() {
    let api = FakeApi::start(TOKEN).await;
    api.wait_for_within(
        Duration::from_millis(100),
        "a message that never comes",
        |s| s.last_message_in(1).map(|m| m.message_id),
    )
    .await;
}

#[test]
fn formatting_rules() {
    use fake_api::{render_html, render_markdown, render_markdown_v2};
    assert_eq!(
        render_html("<b>a</b> <i>b</i> &quot;c&quot; &#39;d&#x27; e & f").unwrap(),
        "a b \"c\" 'd' e & f"
    );
    assert_eq!(
        render_html("<a href=\"https://t.me/x\">link</a>").unwrap(),
        "link"
    );
    assert!(
        render_html("<h1>x</h1>")
            .unwrap_err()
            .contains("Unsupported start tag \"h1\"")
    );
    assert!(
        render_html("<b><i>x</b></i>")
            .unwrap_err()
            .contains("Unmatched end tag")
    );
    assert!(render_html("1 < 2").is_err());
    assert_eq!(
        render_markdown_v2("_it_ __u__ ~s~ ||sp|| `a-b.` [t](https://x.y/a_b)").unwrap(),
        "it u s sp a-b. t"
    );
    assert_eq!(
        render_markdown_v2("```rust\nlet x = 1;\n```").unwrap(),
        "let x = 1;\n"
    );
    assert!(
        render_markdown_v2("Don't panic!")
            .unwrap_err()
            .contains("Character '!' is reserved")
    );
    assert!(
        render_markdown_v2("*bold")
            .unwrap_err()
            .contains("Can't find end of Bold entity")
    );
    assert_eq!(render_markdown_v2(">quoted\\.").unwrap(), "quoted.");
    assert_eq!(
        render_markdown("*Self-care* (DOMS). [more](https://x.y)").unwrap(),
        "Self-care (DOMS). more"
    );
    assert!(render_markdown("*open").is_err());
}
