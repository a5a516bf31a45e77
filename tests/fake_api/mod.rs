//! A fake Telegram Bot API server for tests and load benchmarks.
//!
//! An axum server on `127.0.0.1:0` that speaks the Bot API the way teloxide uses it:
//! `POST /bot<token>/<Method>` with a JSON body (form-encoded, query-string and empty bodies
//! are accepted too), answering `{"ok":true,"result":...}` or
//! `{"ok":false,"error_code":N,"description":"...","parameters":{"retry_after":S}}`.
//!
//! What it models, because real bots trip over it:
//! - `getUpdates` with `offset` (ids below it are confirmed and dropped; a negative offset keeps
//!   the last `-offset`), `limit`, `allowed_updates` (remembered, as Telegram does) and the
//!   `timeout` long poll, held until an update is queued or the timeout passes (capped by
//!   [`FakeConfig::max_poll_hold`]). A second `getUpdates` while one is held ends the first
//!   with 409 "Conflict: terminated by other getUpdates request".
//! - Messages with per-chat increasing ids (users' and the bot's share the sequence),
//!   `parse_mode` HTML / MarkdownV2 / Markdown checked and rendered to plain text (a malformed
//!   text is refused with "can't parse entities"), 1..=4096 characters, inline keyboards
//!   validated (`callback_data` 1..=64 bytes, `http(s)://` or `tg://` urls) and echoed back.
//!   `editMessageText` without `reply_markup` removes the keyboard, as Telegram does.
//! - "message is not modified", "message to edit not found", "chat not found", 403 "bot can't
//!   initiate conversation with a user" for a user who never wrote to the bot in private,
//!   `answerCallbackQuery` accepted once per query within 15 s of the press.
//! - A wrong token: 401 "Unauthorized". An unknown method: 404 "Not Found" (like Telegram;
//!   teloxide reads both as `ApiError::InvalidToken`).
//! - Fault injection per method ([`FakeApi::fail_next`], [`FakeApi::fail_every`],
//!   [`FakeApi::fail_share`] for a seeded random share of calls): 429 with `retry_after` (then
//!   enforced for that chat: sends and edits to it are refused with 429 until the time has
//!   passed), a 5xx status, or a dropped connection. [`State::fault_counts`] tells what fired.
//! - Webhooks: `setWebhook` (url, `secret_token`) and `deleteWebhook` are remembered
//!   ([`State::webhook_url`], [`State::webhook_secret`]); while a webhook is set `getUpdates`
//!   is refused with 409, as Telegram does, and the test posts updates itself: the queue
//!   helpers still build them, and [`FakeApi::take_update`] hands one out as JSON.
//! - Redelivery: an update handed out by `getUpdates` and not confirmed is handed out again
//!   to the next poll (a restarted bot); [`State::updates_handed_out_again`] counts those.
//!
//! The hot path is a mutex, hash-map lookups and an append: no sleeps, no scans over history.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{Path, RawQuery, State as AxumState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::serve::{IncomingStream, Listener};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The bot's display name and username, as `getMe` reports them.
pub const BOT_FIRST_NAME: &str = "GymTriage";
pub const BOT_USERNAME: &str = "gymtriage_bot";

const NOT_MODIFIED: &str = "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message";
const QUERY_TOO_OLD: &str =
    "Bad Request: query is too old and response timeout expired or query ID is invalid";
const CONFLICT: &str = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running";
const CANT_INITIATE: &str = "Forbidden: bot can't initiate conversation with a user";

// ---------------------------------------------------------------------------------------------
// Public test-side types
// ---------------------------------------------------------------------------------------------

/// Settings of a [`FakeApi`]. `FakeConfig::new(token)` gives the defaults.
#[derive(Clone, Debug)]
pub struct FakeConfig {
    pub token: String,
    /// Longest time a `getUpdates` long poll is held (Telegram holds up to `timeout`).
    pub max_poll_hold: Duration,
    /// Keep every request (method and body) for [`State::requests`]. Off for load runs.
    pub record_requests: bool,
    /// After a 429, refuse sends and edits to that chat until `retry_after` has passed.
    pub enforce_retry_after: bool,
    /// 403 on a private message to a user who never wrote to the bot in private.
    pub strict_private_chats: bool,
    /// How long `answerCallbackQuery` is accepted after the press.
    pub callback_answer_deadline: Duration,
    /// Timeout of [`FakeApi::wait_for`].
    pub wait_timeout: Duration,
}

impl FakeConfig {
    pub fn new(token: &str) -> Self {
        FakeConfig {
            token: token.to_owned(),
            max_poll_hold: Duration::from_secs(1),
            record_requests: true,
            enforce_retry_after: true,
            strict_private_chats: true,
            callback_answer_deadline: Duration::from_secs(15),
            wait_timeout: Duration::from_secs(20),
        }
    }
}

/// A Telegram user that sends messages and presses buttons.
#[derive(Clone, Copy, Debug)]
pub struct FakeUser<'a> {
    pub id: i64,
    pub first_name: &'a str,
    pub language_code: Option<&'a str>,
}

impl<'a> FakeUser<'a> {
    pub const fn new(id: i64, first_name: &'a str) -> Self {
        FakeUser {
            id,
            first_name,
            language_code: Some("en"),
        }
    }
}

/// A chat that updates come from.
#[derive(Clone, Copy, Debug)]
pub enum FakeChat<'a> {
    /// A private chat with a user; its id is normally the user's id.
    Private(i64),
    /// A basic group (negative id).
    Group { id: i64, title: &'a str },
    /// A supergroup (id like -100xxxxxxxxxx).
    Supergroup { id: i64, title: &'a str },
}

impl FakeChat<'_> {
    fn id(&self) -> i64 {
        match *self {
            FakeChat::Private(id) => id,
            FakeChat::Group { id, .. } | FakeChat::Supergroup { id, .. } => id,
        }
    }
}

/// What a queue helper queued.
#[derive(Clone, Debug)]
pub struct Queued {
    pub update_id: u32,
    /// The user's message id, for messages.
    pub message_id: Option<i32>,
    /// The callback query id, for presses.
    pub query_id: Option<String>,
}

impl Queued {
    pub fn query_id(&self) -> &str {
        self.query_id.as_deref().expect("not a callback query")
    }
    pub fn message_id(&self) -> i32 {
        self.message_id.expect("not a message")
    }
}

/// An injected failure.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// 429 "Too Many Requests: retry after N" with `parameters.retry_after`.
    TooManyRequests { retry_after: u32 },
    /// This HTTP status: 500 with a JSON error body, other 5xx with nginx's HTML page (as
    /// Telegram's front end sends), 4xx with a JSON error body.
    Status(u16),
    /// Close the connection without answering.
    Drop,
}

impl Fault {
    /// A short name for figures: "429", "500", "502", "drop".
    pub fn kind(&self) -> String {
        match self {
            Fault::TooManyRequests { .. } => "429".to_owned(),
            Fault::Status(code) => code.to_string(),
            Fault::Drop => "drop".to_owned(),
        }
    }
}

/// When a fault rule fires. New modes (a share of calls, a time window...) go here.
#[derive(Clone, Debug)]
enum Schedule {
    /// The next `remaining` matching calls.
    Next { remaining: u32 },
    /// Every `k`-th matching call (the k-th, 2k-th, ...), forever.
    Every { k: u64, seen: u64 },
    /// Each matching call with probability `threshold / 2^64`, drawn from a seeded
    /// generator (the same seed and the same calls give the same faults); at most `left`
    /// times when set.
    Share {
        threshold: u64,
        rng: u64,
        left: Option<u64>,
    },
}

/// splitmix64: a tiny seeded generator, enough to pick a share of calls.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D4_9BB1_3311_1049);
    z ^ (z >> 31)
}

#[derive(Clone, Debug)]
struct FaultRule {
    /// Lower-case method name, or "*" for any method.
    method: String,
    schedule: Schedule,
    fault: Fault,
}

/// One request the bot made.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub seq: u64,
    /// The method as sent (`sendMessage`).
    pub method: String,
    /// The parameters as a JSON object, whatever the encoding.
    pub body: Arc<Value>,
    /// The HTTP status answered; `None` while in flight, `Some(0)` for a connection dropped by
    /// [`Fault::Drop`], `Some(499)` when the client went away before the answer (a held long
    /// poll of a killed bot, for instance).
    pub status: Option<u16>,
    /// The error's `description`, for answers with `"ok":false`.
    pub error: Option<String>,
    pub at: Instant,
}

impl Recorded {
    /// Same method, ignoring case (`sendMessage` = `sendmessage`).
    pub fn is(&self, method: &str) -> bool {
        self.method.eq_ignore_ascii_case(method)
    }
    pub fn chat_id(&self) -> Option<i64> {
        self.body.get("chat_id").and_then(as_i64)
    }
    pub fn ok(&self) -> bool {
        self.status == Some(200)
    }
}

/// An inline keyboard button.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Button {
    pub text: String,
    pub callback_data: Option<String>,
    pub url: Option<String>,
}

/// A message the bot sent, as it stands now.
#[derive(Clone, Debug)]
pub struct BotMessage {
    pub chat_id: i64,
    pub message_id: i32,
    /// The text as a user sees it (HTML / Markdown rendered to plain text, trimmed).
    pub text: String,
    /// The text as the bot sent it.
    pub source_text: String,
    pub parse_mode: Option<String>,
    /// Inline keyboard rows (empty when there is none).
    pub keyboard: Vec<Vec<Button>>,
    /// The `reply_markup` echoed in `Message` objects (inline keyboards only).
    pub reply_markup: Option<Value>,
    pub date: i64,
    pub edit_date: Option<i64>,
    /// How many successful edits (text or markup) it has had.
    pub edits: u32,
    pub deleted: bool,
    pub reply_to_message_id: Option<i32>,
}

impl BotMessage {
    pub fn buttons(&self) -> impl Iterator<Item = &Button> {
        self.keyboard.iter().flatten()
    }
    pub fn callback_buttons(&self) -> impl Iterator<Item = &Button> {
        self.buttons().filter(|b| b.callback_data.is_some())
    }
    pub fn url_buttons(&self) -> impl Iterator<Item = &Button> {
        self.buttons().filter(|b| b.url.is_some())
    }
    /// The callback button with exactly this label.
    pub fn button(&self, label: &str) -> Option<&Button> {
        self.callback_buttons().find(|b| b.text == label)
    }
    /// Labels of the callback buttons, in order.
    pub fn labels(&self) -> Vec<&str> {
        self.callback_buttons().map(|b| b.text.as_str()).collect()
    }
    pub fn has_callback_buttons(&self) -> bool {
        self.callback_buttons().next().is_some()
    }
}

/// An `answerCallbackQuery` the fake accepted.
#[derive(Clone, Debug)]
pub struct CallbackAnswer {
    pub query_id: String,
    pub text: Option<String>,
    pub show_alert: bool,
    pub url: Option<String>,
    pub at: Instant,
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

struct PendingUpdate {
    id: u32,
    kind: &'static str,
    json: String,
    /// How many `getUpdates` answers carried it.
    handed_out: u32,
}

struct ChatEntry {
    json: Value,
    next_message_id: i32,
    bot_messages: Vec<i32>,
}

struct QueryInfo {
    pressed_at: Instant,
}

/// Everything the fake knows; read it in [`FakeApi::with_state`] and the wait helpers.
pub struct State {
    record_requests: bool,
    requests: Vec<Recorded>,
    next_seq: u64,
    calls: HashMap<String, u64>,
    updates: VecDeque<PendingUpdate>,
    next_update_id: u32,
    confirmed_below: u32,
    allowed_updates: Option<HashSet<String>>,
    poll_generation: u64,
    webhook_url: String,
    webhook_secret: Option<String>,
    handed_out_again: u64,
    chats: HashMap<i64, ChatEntry>,
    users: HashMap<i64, Value>,
    started: HashSet<i64>,
    messages: HashMap<(i64, i32), BotMessage>,
    queries: HashMap<String, QueryInfo>,
    next_query: u64,
    answers: Vec<CallbackAnswer>,
    answer_index: HashMap<String, usize>,
    commands: HashMap<String, Value>,
    faults: Vec<FaultRule>,
    faults_fired: u64,
    fault_counts: HashMap<(String, String), u64>,
    flood_until: HashMap<i64, Instant>,
}

impl State {
    fn new(config: &FakeConfig) -> Self {
        State {
            record_requests: config.record_requests,
            requests: Vec::new(),
            next_seq: 0,
            calls: HashMap::new(),
            updates: VecDeque::new(),
            next_update_id: 1,
            confirmed_below: 0,
            allowed_updates: None,
            poll_generation: 0,
            webhook_url: String::new(),
            webhook_secret: None,
            handed_out_again: 0,
            chats: HashMap::new(),
            users: HashMap::new(),
            started: HashSet::new(),
            messages: HashMap::new(),
            queries: HashMap::new(),
            next_query: 0,
            answers: Vec::new(),
            answer_index: HashMap::new(),
            commands: HashMap::new(),
            faults: Vec::new(),
            faults_fired: 0,
            fault_counts: HashMap::new(),
            flood_until: HashMap::new(),
        }
    }

    /// Every request, in arrival order (empty when recording is off).
    pub fn requests(&self) -> &[Recorded] {
        &self.requests
    }

    /// The recorded requests of one method (any case).
    pub fn requests_for<'a>(&'a self, method: &'a str) -> impl Iterator<Item = &'a Recorded> + 'a {
        self.requests.iter().filter(move |r| r.is(method))
    }

    /// How many calls of this method arrived (counted even when recording is off).
    pub fn calls(&self, method: &str) -> u64 {
        self.calls
            .get(&method.to_ascii_lowercase())
            .copied()
            .unwrap_or(0)
    }

    /// How many injected faults have fired.
    pub fn faults_fired(&self) -> u64 {
        self.faults_fired
    }

    /// Injected faults that fired, as (method in lower case, [`Fault::kind`], count), sorted.
    pub fn fault_counts(&self) -> Vec<(String, String, u64)> {
        let mut v: Vec<(String, String, u64)> = self
            .fault_counts
            .iter()
            .map(|((m, k), n)| (m.clone(), k.clone(), *n))
            .collect();
        v.sort();
        v
    }

    /// How many injected faults of this kind ([`Fault::kind`]) fired, on any method.
    pub fn faults_of_kind(&self, kind: &str) -> u64 {
        self.fault_counts
            .iter()
            .filter(|((_, k), _)| k == kind)
            .map(|(_, n)| *n)
            .sum()
    }

    /// The URL of the webhook set with `setWebhook` ("" when none).
    pub fn webhook_url(&self) -> &str {
        &self.webhook_url
    }

    /// The `secret_token` given with the last `setWebhook`, if any.
    pub fn webhook_secret(&self) -> Option<&str> {
        self.webhook_secret.as_deref()
    }

    /// Updates that `getUpdates` handed out more than once (not confirmed in time, e.g. by
    /// a bot killed before its next poll), each counted once.
    pub fn updates_handed_out_again(&self) -> u64 {
        self.handed_out_again
    }

    pub fn message(&self, chat_id: i64, message_id: i32) -> Option<&BotMessage> {
        self.messages.get(&(chat_id, message_id))
    }

    /// The bot's messages in a chat, oldest first (deleted ones included, flagged).
    pub fn messages_in(&self, chat_id: i64) -> Vec<&BotMessage> {
        match self.chats.get(&chat_id) {
            Some(c) => c
                .bot_messages
                .iter()
                .filter_map(|id| self.messages.get(&(chat_id, *id)))
                .collect(),
            None => Vec::new(),
        }
    }

    pub fn last_message_in(&self, chat_id: i64) -> Option<&BotMessage> {
        let id = self.chats.get(&chat_id)?.bot_messages.last()?;
        self.messages.get(&(chat_id, *id))
    }

    /// The highest message id used in a chat so far (users' and bot's), 0 if none.
    pub fn last_message_id(&self, chat_id: i64) -> i32 {
        self.chats
            .get(&chat_id)
            .map_or(0, |c| c.next_message_id - 1)
    }

    pub fn callback_answers(&self) -> &[CallbackAnswer] {
        &self.answers
    }

    pub fn callback_answer(&self, query_id: &str) -> Option<&CallbackAnswer> {
        self.answer_index.get(query_id).map(|i| &self.answers[*i])
    }

    pub fn is_answered(&self, query_id: &str) -> bool {
        self.answer_index.contains_key(query_id)
    }

    /// Whether the bot has confirmed this update (asked for an offset above it).
    pub fn is_confirmed(&self, update_id: u32) -> bool {
        update_id < self.confirmed_below
    }

    /// Updates with ids below this are confirmed (the highest offset the bot asked for).
    pub fn confirmed_below(&self) -> u32 {
        self.confirmed_below
    }

    /// How many `getUpdates` calls have started waiting (a held long poll counts once it is
    /// registered, which is when a newer call would end it with 409).
    pub fn polls_started(&self) -> u64 {
        self.poll_generation
    }

    /// Updates queued and not yet confirmed.
    pub fn pending_updates(&self) -> usize {
        self.updates.len()
    }

    /// The commands last set with `setMyCommands` for the default scope and no language.
    pub fn commands(&self) -> Option<&Value> {
        self.commands.get("default|")
    }

    /// A readable summary of the last `recent` requests, for failure messages.
    pub fn describe(&self, recent: usize) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "fake Bot API: {} requests, {} updates pending, confirmed below update {}",
            self.next_seq,
            self.updates.len(),
            self.confirmed_below
        );
        if !self.record_requests {
            s.push_str("  (request recording is off)\n");
        }
        let from = self.requests.len().saturating_sub(recent);
        for r in &self.requests[from..] {
            let body = r.body.to_string();
            let body: String = if body.chars().count() > 300 {
                body.chars().take(300).chain("...".chars()).collect()
            } else {
                body
            };
            let status = match (r.status, &r.error) {
                (None, _) => "...".to_owned(),
                (Some(0), _) => "dropped".to_owned(),
                (Some(499), _) => "client gone".to_owned(),
                (Some(s), Some(e)) => format!("{s} {e:?}"),
                (Some(s), None) => s.to_string(),
            };
            let t = r.at.duration_since(self.requests[0].at).as_secs_f64();
            let _ = writeln!(
                s,
                "  #{} +{t:.3}s {} -> {}: {}",
                r.seq, r.method, status, body
            );
        }
        s
    }

    // --- server side -------------------------------------------------------------------------

    fn record(&mut self, method: &str, lower: &str, body: &Arc<Value>) -> Option<usize> {
        let seq = self.next_seq;
        self.next_seq += 1;
        match self.calls.get_mut(lower) {
            Some(n) => *n += 1,
            None => {
                self.calls.insert(lower.to_owned(), 1);
            }
        }
        if !self.record_requests {
            return None;
        }
        self.requests.push(Recorded {
            seq,
            method: method.to_owned(),
            body: body.clone(),
            status: None,
            error: None,
            at: Instant::now(),
        });
        Some(self.requests.len() - 1)
    }

    fn take_fault(&mut self, lower: &str) -> Option<Fault> {
        let mut fired = None;
        let mut exhausted = None;
        for (i, rule) in self.faults.iter_mut().enumerate() {
            if rule.method != "*" && rule.method != lower {
                continue;
            }
            match &mut rule.schedule {
                Schedule::Next { remaining } => {
                    *remaining -= 1;
                    if *remaining == 0 {
                        exhausted = Some(i);
                    }
                    fired = Some(rule.fault.clone());
                }
                Schedule::Every { k, seen } => {
                    *seen += 1;
                    if *seen % *k != 0 {
                        continue;
                    }
                    fired = Some(rule.fault.clone());
                }
                Schedule::Share {
                    threshold,
                    rng,
                    left,
                } => {
                    if splitmix64(rng) >= *threshold {
                        continue;
                    }
                    if let Some(n) = left {
                        *n -= 1;
                        if *n == 0 {
                            exhausted = Some(i);
                        }
                    }
                    fired = Some(rule.fault.clone());
                }
            }
            break;
        }
        if let Some(i) = exhausted {
            self.faults.remove(i);
        }
        if let Some(f) = &fired {
            self.faults_fired += 1;
            *self
                .fault_counts
                .entry((lower.to_owned(), f.kind()))
                .or_insert(0) += 1;
        }
        fired
    }

    fn confirm(&mut self, offset: i64) -> bool {
        let before = self.updates.len();
        if offset < 0 {
            let keep = offset.unsigned_abs() as usize;
            while self.updates.len() > keep {
                let u = self.updates.pop_front().expect("non-empty");
                self.confirmed_below = self.confirmed_below.max(u.id + 1);
            }
        } else {
            let offset = u32::try_from(offset).unwrap_or(u32::MAX);
            while self.updates.front().is_some_and(|u| u.id < offset) {
                self.updates.pop_front();
            }
            self.confirmed_below = self.confirmed_below.max(offset.min(self.next_update_id));
        }
        before != self.updates.len()
    }

    /// `{"ok":true,"result":[...]}` with up to `limit` deliverable updates, or None.
    fn collect_updates(&mut self, limit: usize) -> Option<String> {
        let mut out = String::new();
        let mut n = 0;
        let mut again = 0;
        for u in &mut self.updates {
            if n == limit {
                break;
            }
            if !kind_allowed(&self.allowed_updates, u.kind) {
                continue;
            }
            u.handed_out += 1;
            if u.handed_out == 2 {
                again += 1;
            }
            out.push(if n == 0 { '[' } else { ',' });
            out.push_str(&u.json);
            n += 1;
        }
        self.handed_out_again += again;
        if n == 0 {
            return None;
        }
        out.push(']');
        Some(out)
    }

    fn target_chat(&mut self, p: &Map<String, Value>, strict: bool) -> Result<i64, Reply> {
        let chat_id = match p.get("chat_id") {
            None | Some(Value::Null) => return Err(Reply::bad("Bad Request: chat_id is empty")),
            Some(v) => as_i64(v).ok_or_else(|| Reply::bad("Bad Request: chat not found"))?,
        };
        if self.chats.contains_key(&chat_id) {
            return Ok(chat_id);
        }
        if chat_id > 0
            && let Some(user) = self.users.get(&chat_id)
        {
            if strict {
                return Err(Reply::error(403, CANT_INITIATE));
            }
            let json = private_chat_json(
                chat_id,
                user.get("first_name")
                    .and_then(Value::as_str)
                    .unwrap_or("User"),
            );
            self.chats.insert(
                chat_id,
                ChatEntry {
                    json,
                    next_message_id: 1,
                    bot_messages: Vec::new(),
                },
            );
            return Ok(chat_id);
        }
        Err(Reply::bad("Bad Request: chat not found"))
    }

    fn flood_check(&mut self, chat_id: i64) -> Option<Reply> {
        let until = *self.flood_until.get(&chat_id)?;
        let now = Instant::now();
        if now >= until {
            self.flood_until.remove(&chat_id);
            return None;
        }
        let left = (until - now).as_millis().div_ceil(1000).max(1) as u32;
        Some(Reply::too_many(left))
    }

    fn message_json(&self, m: &BotMessage, bot_user: &Value) -> Value {
        let chat = self
            .chats
            .get(&m.chat_id)
            .map_or(Value::Null, |c| c.json.clone());
        let mut o = Map::new();
        o.insert("message_id".into(), m.message_id.into());
        o.insert("from".into(), bot_user.clone());
        o.insert("chat".into(), chat);
        o.insert("date".into(), m.date.into());
        if let Some(e) = m.edit_date {
            o.insert("edit_date".into(), e.into());
        }
        o.insert("text".into(), m.text.clone().into());
        if let Some(mk) = &m.reply_markup {
            o.insert("reply_markup".into(), mk.clone());
        }
        Value::Object(o)
    }

    fn send_message(&mut self, inner: &Inner, p: &Map<String, Value>) -> Reply {
        let chat_id = match self.target_chat(p, inner.config.strict_private_chats) {
            Ok(c) => c,
            Err(r) => return r,
        };
        if let Some(r) = self.flood_check(chat_id) {
            return r;
        }
        let source = p.get("text").map(value_text).unwrap_or_default();
        let parse_mode = p
            .get("parse_mode")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let text = match render_text(&source, parse_mode) {
            Ok(t) => t,
            Err(r) => return r,
        };
        if text.is_empty() {
            return Reply::bad("Bad Request: message text is empty");
        }
        if text.encode_utf16().count() > 4096 {
            return Reply::bad("Bad Request: message is too long");
        }
        let (keyboard, reply_markup) = match parse_markup(p.get("reply_markup")) {
            Ok(k) => k,
            Err(r) => return r,
        };
        let reply_to = p
            .get("reply_parameters")
            .and_then(|r| json_arg(r).get("message_id").and_then(as_i64))
            .or_else(|| p.get("reply_to_message_id").and_then(as_i64))
            .map(|v| v as i32);
        let entry = self.chats.get_mut(&chat_id).expect("checked above");
        let message_id = entry.next_message_id;
        entry.next_message_id += 1;
        entry.bot_messages.push(message_id);
        let m = BotMessage {
            chat_id,
            message_id,
            text,
            source_text: source,
            parse_mode: parse_mode.map(str::to_owned),
            keyboard,
            reply_markup,
            date: now_unix(),
            edit_date: None,
            edits: 0,
            deleted: false,
            reply_to_message_id: reply_to,
        };
        let reply = Reply::ok_value(&self.message_json(&m, &inner.bot_user));
        self.messages.insert((chat_id, message_id), m);
        reply
    }

    fn edit_message(&mut self, inner: &Inner, p: &Map<String, Value>, with_text: bool) -> Reply {
        if p.get("inline_message_id").is_some_and(|v| !v.is_null()) {
            return Reply::bad("Bad Request: MESSAGE_ID_INVALID");
        }
        let chat_id = match p.get("chat_id").and_then(as_i64) {
            Some(c) => c,
            None => return Reply::bad("Bad Request: chat_id is empty"),
        };
        let Some(chat) = self.chats.get(&chat_id) else {
            return Reply::bad("Bad Request: chat not found");
        };
        let Some(message_id) = p.get("message_id").and_then(as_i64).map(|v| v as i32) else {
            return Reply::bad("Bad Request: message identifier is not specified");
        };
        let next_id = chat.next_message_id;
        if let Some(r) = self.flood_check(chat_id) {
            return r;
        }
        let Some(m) = self
            .messages
            .get(&(chat_id, message_id))
            .filter(|m| !m.deleted)
        else {
            if message_id > 0
                && message_id < next_id
                && !self.messages.contains_key(&(chat_id, message_id))
            {
                return Reply::bad("Bad Request: message can't be edited");
            }
            return Reply::bad("Bad Request: message to edit not found");
        };
        let (text, source, parse_mode) = if with_text {
            let source = p.get("text").map(value_text).unwrap_or_default();
            let parse_mode = p
                .get("parse_mode")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty());
            let text = match render_text(&source, parse_mode) {
                Ok(t) => t,
                Err(r) => return r,
            };
            if text.is_empty() {
                return Reply::bad("Bad Request: message text is empty");
            }
            if text.encode_utf16().count() > 4096 {
                return Reply::bad("Bad Request: MESSAGE_TOO_LONG");
            }
            (text, source, parse_mode.map(str::to_owned))
        } else {
            (m.text.clone(), m.source_text.clone(), m.parse_mode.clone())
        };
        let (keyboard, reply_markup) = match parse_markup(p.get("reply_markup")) {
            Ok(k) => k,
            Err(r) => return r,
        };
        let same_text = text == m.text
            && (parse_mode.is_none() && m.parse_mode.is_none() || source == m.source_text);
        if same_text && keyboard == m.keyboard && reply_markup == m.reply_markup {
            return Reply::bad(NOT_MODIFIED);
        }
        let m = self
            .messages
            .get_mut(&(chat_id, message_id))
            .expect("found above");
        m.text = text;
        m.source_text = source;
        m.parse_mode = parse_mode;
        m.keyboard = keyboard;
        m.reply_markup = reply_markup;
        m.edit_date = Some(now_unix());
        m.edits += 1;
        let m = &self.messages[&(chat_id, message_id)];
        Reply::ok_value(&self.message_json(m, &inner.bot_user))
    }

    fn delete_message(&mut self, p: &Map<String, Value>) -> Reply {
        let chat_id = p.get("chat_id").and_then(as_i64).unwrap_or(0);
        let message_id = p.get("message_id").and_then(as_i64).unwrap_or(0) as i32;
        match self.messages.get_mut(&(chat_id, message_id)) {
            Some(m) if !m.deleted => {
                m.deleted = true;
                m.keyboard.clear();
                m.reply_markup = None;
                Reply::ok_value(&Value::Bool(true))
            }
            _ => Reply::bad("Bad Request: message to delete not found"),
        }
    }

    fn answer_callback(&mut self, inner: &Inner, p: &Map<String, Value>) -> Reply {
        let Some(id) = p.get("callback_query_id").map(value_text) else {
            return Reply::bad("Bad Request: QUERY_ID_INVALID");
        };
        let Some(q) = self.queries.remove(&id) else {
            return Reply::bad(QUERY_TOO_OLD);
        };
        if q.pressed_at.elapsed() > inner.config.callback_answer_deadline {
            return Reply::bad(QUERY_TOO_OLD);
        }
        let text = p.get("text").map(value_text);
        if text.as_ref().is_some_and(|t| t.chars().count() > 200) {
            return Reply::bad("Bad Request: MESSAGE_TOO_LONG");
        }
        self.answer_index.insert(id.clone(), self.answers.len());
        self.answers.push(CallbackAnswer {
            query_id: id,
            text,
            show_alert: p.get("show_alert").is_some_and(as_bool),
            url: p.get("url").map(value_text),
            at: Instant::now(),
        });
        Reply::ok_value(&Value::Bool(true))
    }

    fn set_commands(&mut self, p: &Map<String, Value>) -> Reply {
        let commands = p.get("commands").map(json_arg).unwrap_or(Value::Null);
        let Some(list) = commands.as_array() else {
            return Reply::bad("Bad Request: parameter \"commands\" is required");
        };
        for c in list {
            let name = c.get("command").and_then(Value::as_str).unwrap_or("");
            let valid = !name.is_empty()
                && name.len() <= 32
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !valid {
                return Reply::bad("Bad Request: BOT_COMMAND_INVALID");
            }
            let description = c.get("description").and_then(Value::as_str).unwrap_or("");
            if description.is_empty() || description.chars().count() > 256 {
                return Reply::bad("Bad Request: command description must be 1-256 characters");
            }
        }
        self.commands.insert(commands_key(p), commands.clone());
        Reply::ok_value(&Value::Bool(true))
    }
}

/// Whether `getUpdates` hands out updates of this kind, given the remembered
/// `allowed_updates` (None: Telegram's default, every kind but these three).
fn kind_allowed(allowed: &Option<HashSet<String>>, kind: &str) -> bool {
    match allowed {
        Some(set) => set.contains(kind),
        None => !matches!(
            kind,
            "chat_member" | "message_reaction" | "message_reaction_count"
        ),
    }
}

fn commands_key(p: &Map<String, Value>) -> String {
    let scope = match p.get("scope").map(json_arg) {
        None | Some(Value::Null) => "default".to_owned(),
        Some(v) if v.get("type").and_then(Value::as_str) == Some("default") => "default".to_owned(),
        Some(v) => v.to_string(),
    };
    let lang = p.get("language_code").and_then(Value::as_str).unwrap_or("");
    format!("{scope}|{lang}")
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

struct Inner {
    config: FakeConfig,
    bot_id: i64,
    bot_user: Value,
    state: Mutex<State>,
    /// Anything changed (for test waits).
    changed: Notify,
    /// An update was queued, or a newer `getUpdates` arrived (for long polls).
    updates: Notify,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running fake Bot API server. Dropping it stops the server.
pub struct FakeApi {
    inner: Arc<Inner>,
    addr: SocketAddr,
    server: JoinHandle<()>,
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeApi {
    /// Starts a server with the default [`FakeConfig`] for this token.
    pub async fn start(token: &str) -> FakeApi {
        FakeApi::start_with(FakeConfig::new(token)).await
    }

    pub async fn start_with(config: FakeConfig) -> FakeApi {
        let bot_id = config
            .token
            .split(':')
            .next()
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(7_000_000_001);
        let bot_user = json!({
            "id": bot_id,
            "is_bot": true,
            "first_name": BOT_FIRST_NAME,
            "username": BOT_USERNAME,
        });
        let inner = Arc::new(Inner {
            state: Mutex::new(State::new(&config)),
            config,
            bot_id,
            bot_user,
            changed: Notify::new(),
            updates: Notify::new(),
        });
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake Bot API: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake Bot API: local address");
        let app = Router::new()
            .route("/{token}/{method}", any(handle))
            .fallback(|| async { Reply::error(404, "Not Found").into_response() })
            .with_state(inner.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(
                KillableListener(listener),
                app.into_make_service_with_connect_info::<ConnHandle>(),
            )
            .await;
        });
        FakeApi {
            inner,
            addr,
            server,
        }
    }

    /// `http://127.0.0.1:PORT/`, with the trailing slash (for `TELOXIDE_API_URL`).
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn token(&self) -> &str {
        &self.inner.config.token
    }

    /// The bot's user id (the number before ':' in the token, when there is one).
    pub fn bot_id(&self) -> i64 {
        self.inner.bot_id
    }

    // --- queueing updates --------------------------------------------------------------------

    /// A text message from `user` in their private chat `chat_id` (normally `user.id`).
    pub fn user_text(&self, chat_id: i64, user: &FakeUser, text: &str) -> Queued {
        self.text(FakeChat::Private(chat_id), user, text)
    }

    /// A text message from `user` in a basic group.
    pub fn group_text(&self, chat_id: i64, title: &str, user: &FakeUser, text: &str) -> Queued {
        self.text(FakeChat::Group { id: chat_id, title }, user, text)
    }

    /// A text message in any chat. Text starting with '/' gets a `bot_command` entity.
    pub fn text(&self, chat: FakeChat, user: &FakeUser, text: &str) -> Queued {
        let mut content = Map::new();
        content.insert("text".into(), text.into());
        if text.starts_with('/') {
            let len = text
                .split_whitespace()
                .next()
                .unwrap_or("")
                .encode_utf16()
                .count();
            content.insert(
                "entities".into(),
                json!([{"type": "bot_command", "offset": 0, "length": len}]),
            );
        }
        self.chat_message(chat, user, content)
    }

    /// A sticker message from `user` in their private chat.
    pub fn user_sticker(&self, chat_id: i64, user: &FakeUser, emoji: &str) -> Queued {
        self.sticker(FakeChat::Private(chat_id), user, emoji)
    }

    pub fn sticker(&self, chat: FakeChat, user: &FakeUser, emoji: &str) -> Queued {
        let mut content = Map::new();
        content.insert(
            "sticker".into(),
            json!({
                "file_id": "CAACAgIAAxkBAAEFAKEtestStickerFileId",
                "file_unique_id": "AgADtestSticker",
                "file_size": 23456,
                "width": 512,
                "height": 512,
                "type": "regular",
                "is_animated": false,
                "is_video": false,
                "emoji": emoji,
                "set_name": "GymTriageTestStickers",
            }),
        );
        self.chat_message(chat, user, content)
    }

    fn chat_message(&self, chat: FakeChat, user: &FakeUser, content: Map<String, Value>) -> Queued {
        let mut message_id = 0;
        let update_id = self.queue("message", |st, bot| {
            let _ = bot;
            let chat_id = chat.id();
            let user_json = user_json(user);
            st.users.insert(user.id, user_json.clone());
            if let FakeChat::Private(id) = chat {
                st.started.insert(user.id);
                if let Some(c) = st.chats.get_mut(&id) {
                    // The user may have been known only from a group; now the chat is real.
                    c.json = private_chat_json(id, user.first_name);
                }
            }
            let entry = st.chats.entry(chat_id).or_insert_with(|| ChatEntry {
                json: match chat {
                    FakeChat::Private(id) => private_chat_json(id, user.first_name),
                    FakeChat::Group { id, title } => {
                        json!({"id": id, "type": "group", "title": title})
                    }
                    FakeChat::Supergroup { id, title } => {
                        json!({"id": id, "type": "supergroup", "title": title})
                    }
                },
                next_message_id: 1,
                bot_messages: Vec::new(),
            });
            message_id = entry.next_message_id;
            entry.next_message_id += 1;
            let mut msg = Map::new();
            msg.insert("message_id".into(), message_id.into());
            msg.insert("from".into(), user_json);
            msg.insert("chat".into(), entry.json.clone());
            msg.insert("date".into(), now_unix().into());
            msg.extend(content);
            Ok(Value::Object(msg))
        });
        Queued {
            update_id,
            message_id: Some(message_id),
            query_id: None,
        }
    }

    /// A press of an inline button with this `data` on the bot's message, by `from`. The update
    /// carries the message as the bot last set it, a fresh query id and a `chat_instance`.
    /// Panics if the bot has no such message.
    pub fn press(&self, chat_id: i64, message_id: i32, from: &FakeUser, data: &str) -> Queued {
        let mut query_id = String::new();
        let update_id = self.queue("callback_query", |st, bot| {
            let m = match st.messages.get(&(chat_id, message_id)) {
                Some(m) if !m.deleted => m,
                Some(_) => {
                    return Err(format!(
                        "message {message_id} in chat {chat_id} was deleted"
                    ));
                }
                None => {
                    return Err(format!(
                        "the bot has no message {message_id} in chat {chat_id}"
                    ));
                }
            };
            let message = st.message_json(m, bot);
            st.next_query += 1;
            query_id = (4_000_000_000_000_000_000u64 + st.next_query).to_string();
            st.queries.insert(
                query_id.clone(),
                QueryInfo {
                    pressed_at: Instant::now(),
                },
            );
            let from_json = user_json(from);
            st.users.insert(from.id, from_json.clone());
            Ok(json!({
                "id": query_id,
                "from": from_json,
                "message": message,
                "chat_instance": format!("{}", 8_000_000_000_000_000_000u64 ^ chat_id as u64),
                "data": data,
            }))
        });
        Queued {
            update_id,
            message_id: None,
            query_id: Some(query_id),
        }
    }

    /// Presses the callback button labelled `label` on the bot's message (URL buttons are
    /// ignored). An exact label wins; otherwise a single button whose label contains `label`
    /// (ignoring case). Panics with the available labels if there is none.
    pub fn press_button(
        &self,
        chat_id: i64,
        message_id: i32,
        from: &FakeUser,
        label: &str,
    ) -> Queued {
        let data = {
            let st = self.inner.lock();
            let Some(m) = st.message(chat_id, message_id) else {
                drop(st);
                panic!(
                    "press_button({label:?}): the bot has no message {message_id} in chat {chat_id}"
                );
            };
            match find_button(m, label) {
                Ok(b) => b.callback_data.clone().expect("callback button"),
                Err(e) => {
                    let text = m.text.clone();
                    drop(st);
                    panic!(
                        "press_button: {e} on message {message_id} in chat {chat_id}\n  text: {text:?}"
                    );
                }
            }
        };
        self.press(chat_id, message_id, from, &data)
    }

    /// Queues any update: `kind` is its field (`"edited_message"`, `"my_chat_member"`...),
    /// `payload` its value. Returns the update id.
    pub fn queue_raw(&self, kind: &'static str, payload: Value) -> u32 {
        self.queue(kind, |_, _| Ok(payload))
    }

    fn queue(
        &self,
        kind: &'static str,
        build: impl FnOnce(&mut State, &Value) -> Result<Value, String>,
    ) -> u32 {
        let result = {
            let mut st = self.inner.lock();
            match build(&mut st, &self.inner.bot_user) {
                Ok(payload) => {
                    let id = st.next_update_id;
                    st.next_update_id += 1;
                    let mut update = Map::new();
                    update.insert("update_id".into(), id.into());
                    update.insert(kind.into(), payload);
                    let json = Value::Object(update).to_string();
                    st.updates.push_back(PendingUpdate {
                        id,
                        kind,
                        json,
                        handed_out: 0,
                    });
                    Ok(id)
                }
                Err(e) => Err(e),
            }
        };
        match result {
            Ok(id) => {
                self.inner.updates.notify_waiters();
                self.inner.changed.notify_waiters();
                id
            }
            Err(e) => panic!("fake Bot API: cannot queue a {kind}: {e}"),
        }
    }

    /// Takes a queued update out of the `getUpdates` queue and returns it as the JSON Telegram
    /// would post to a webhook (`{"update_id":N,"message":{...}}`); None if it is not queued
    /// (already confirmed or taken).
    pub fn take_update(&self, update_id: u32) -> Option<String> {
        let mut st = self.inner.lock();
        let at = st.updates.iter().position(|u| u.id == update_id)?;
        let u = st.updates.remove(at)?;
        Some(u.json)
    }

    // --- reading state -----------------------------------------------------------------------

    /// Runs `f` on the state under its lock (do not block in it).
    pub fn with_state<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.inner.lock())
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.lock().requests.clone()
    }

    pub fn calls(&self, method: &str) -> u64 {
        self.inner.lock().calls(method)
    }

    pub fn message(&self, chat_id: i64, message_id: i32) -> Option<BotMessage> {
        self.inner.lock().message(chat_id, message_id).cloned()
    }

    pub fn messages_in(&self, chat_id: i64) -> Vec<BotMessage> {
        self.inner
            .lock()
            .messages_in(chat_id)
            .into_iter()
            .cloned()
            .collect()
    }

    pub fn callback_answers(&self) -> Vec<CallbackAnswer> {
        self.inner.lock().answers.clone()
    }

    pub fn describe(&self, recent: usize) -> String {
        self.inner.lock().describe(recent)
    }

    // --- waiting -----------------------------------------------------------------------------

    /// Waits until `f` returns `Some`, re-checking on every change of the fake's state, for
    /// [`FakeConfig::wait_timeout`]. Panics on timeout with `what` and the recent requests.
    pub async fn wait_for<T>(&self, what: &str, f: impl FnMut(&State) -> Option<T>) -> T {
        self.wait_for_within(self.inner.config.wait_timeout, what, f)
            .await
    }

    /// [`FakeApi::wait_for`] with a boolean condition.
    pub async fn wait_until(&self, what: &str, mut f: impl FnMut(&State) -> bool) {
        self.wait_for(what, |s| f(s).then_some(())).await
    }

    pub async fn wait_for_within<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut f: impl FnMut(&State) -> Option<T>,
    ) -> T {
        match self.try_wait_for(timeout, &mut f).await {
            Some(v) => v,
            None => {
                let state = self.describe(15);
                panic!("fake Bot API: timed out after {timeout:?} waiting for {what}\n{state}");
            }
        }
    }

    /// Like [`FakeApi::wait_for_within`], but gives `None` on timeout instead of panicking.
    pub async fn try_wait_for<T>(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&State) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(v) = f(&self.inner.lock()) {
                return Some(v);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return f(&self.inner.lock());
            }
        }
    }

    /// Waits until the bot has confirmed this update (polled with a higher offset).
    pub async fn wait_confirmed(&self, update_id: u32) {
        self.wait_until(&format!("the bot to confirm update {update_id}"), |s| {
            s.is_confirmed(update_id)
        })
        .await
    }

    // --- faults ------------------------------------------------------------------------------

    /// The next `n` calls of `method` (any case; "*" for any method) fail with `fault`.
    pub fn fail_next(&self, method: &str, n: u32, fault: Fault) {
        if n == 0 {
            return;
        }
        self.add_fault(method, Schedule::Next { remaining: n }, fault);
    }

    /// Every `k`-th call of `method` from now on (the k-th, 2k-th, ...) fails with `fault`.
    pub fn fail_every(&self, method: &str, k: u32, fault: Fault) {
        assert!(k > 0, "fail_every: k must be at least 1");
        self.add_fault(
            method,
            Schedule::Every {
                k: u64::from(k),
                seen: 0,
            },
            fault,
        );
    }

    /// A share of the calls of `method` (any case; "*" for any method) from now on fail with
    /// `fault`: each call with probability `share` (0.0 to 1.0), drawn from a generator seeded
    /// with `seed`, so a run can be replayed.
    pub fn fail_share(&self, method: &str, share: f64, seed: u64, fault: Fault) {
        self.add_share(method, share, seed, None, fault);
    }

    /// Like [`FakeApi::fail_share`], but fires at most `limit` times.
    pub fn fail_share_at_most(
        &self,
        method: &str,
        share: f64,
        seed: u64,
        limit: u64,
        fault: Fault,
    ) {
        if limit == 0 {
            return;
        }
        self.add_share(method, share, seed, Some(limit), fault);
    }

    fn add_share(&self, method: &str, share: f64, seed: u64, left: Option<u64>, fault: Fault) {
        assert!(
            (0.0..=1.0).contains(&share),
            "fail_share: share must be within 0.0..=1.0"
        );
        // share * 2^64, saturating at u64::MAX for 1.0.
        let threshold = (share * 18_446_744_073_709_551_616.0) as u64;
        self.add_fault(
            method,
            Schedule::Share {
                threshold,
                rng: seed,
                left,
            },
            fault,
        );
    }

    /// Removes every fault rule that has not fired yet.
    pub fn clear_faults(&self) {
        self.inner.lock().faults.clear();
    }

    fn add_fault(&self, method: &str, schedule: Schedule, fault: Fault) {
        self.inner.lock().faults.push(FaultRule {
            method: method.to_ascii_lowercase(),
            schedule,
            fault,
        });
    }
}

/// Finds a callback button: the exact label, else the single one containing it (any case).
pub fn find_button<'m>(m: &'m BotMessage, label: &str) -> Result<&'m Button, String> {
    if let Some(b) = m.button(label) {
        return Ok(b);
    }
    let needle = label.to_lowercase();
    let matches: Vec<&Button> = m
        .callback_buttons()
        .filter(|b| b.text.to_lowercase().contains(&needle))
        .collect();
    match matches.as_slice() {
        [b] => Ok(b),
        [] => Err(format!(
            "no callback button labelled {label:?}; buttons: {:?}",
            m.labels()
        )),
        _ => Err(format!(
            "several callback buttons match {label:?}: {:?}",
            m.labels()
        )),
    }
}

async fn handle(
    AxumState(inner): AxumState<Arc<Inner>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    Path((bot_token, method)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token_ok = bot_token.strip_prefix("bot") == Some(inner.config.token.as_str());
    let lower = method.to_ascii_lowercase();
    let (params, parse_error) = match parse_params(&headers, query.as_deref(), &body) {
        Ok(p) => (p, None),
        Err(r) => (Map::new(), Some(r)),
    };
    let params = Arc::new(Value::Object(params));
    let (idx, early) = {
        let mut st = inner.lock();
        let idx = st.record(&method, &lower, &params);
        let early = if !token_ok {
            Some(Reply::error(401, "Unauthorized"))
        } else if let Some(r) = parse_error {
            Some(r)
        } else {
            st.take_fault(&lower).map(|fault| {
                if let (Fault::TooManyRequests { retry_after }, Some(chat)) =
                    (&fault, params.get("chat_id").and_then(as_i64))
                    && inner.config.enforce_retry_after
                {
                    let until = Instant::now() + Duration::from_secs(u64::from(*retry_after));
                    st.flood_until.insert(chat, until);
                }
                Reply::from_fault(&fault)
            })
        };
        (idx, early)
    };
    // Marks the request 499 if the client goes away and the server drops this future.
    let mut guard = InFlight {
        inner: &inner,
        idx,
        done: false,
    };
    let p = params.as_object().expect("object");
    let reply = match early {
        Some(r) => r,
        None if lower == "getupdates" => get_updates(&inner, p).await,
        None => dispatch(&inner, &lower, p),
    };
    guard.done = true;
    if let Some(i) = idx {
        let mut st = inner.lock();
        let r = &mut st.requests[i];
        r.status = Some(reply.status());
        if let Reply::Err { description, .. } = &reply {
            r.error = Some(description.clone());
        }
    }
    inner.changed.notify_waiters();
    if matches!(reply, Reply::Drop) {
        conn.kill();
    }
    reply.into_response()
}

struct InFlight<'a> {
    inner: &'a Inner,
    idx: Option<usize>,
    done: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Some(i) = self.idx {
            self.inner.lock().requests[i].status = Some(499);
        }
        self.inner.changed.notify_waiters();
    }
}

fn dispatch(inner: &Inner, method: &str, p: &Map<String, Value>) -> Reply {
    let mut st = inner.lock();
    match method {
        "getme" => {
            let mut me = inner.bot_user.clone();
            let o = me.as_object_mut().expect("object");
            o.insert("can_join_groups".into(), true.into());
            o.insert("can_read_all_group_messages".into(), false.into());
            o.insert("supports_inline_queries".into(), false.into());
            o.insert("can_connect_to_business".into(), false.into());
            o.insert("has_main_web_app".into(), false.into());
            Reply::ok_value(&me)
        }
        "getwebhookinfo" => Reply::ok_value(&json!({
            "url": st.webhook_url,
            "has_custom_certificate": false,
            "pending_update_count": st.updates.len(),
        })),
        "deletewebhook" => {
            st.webhook_url.clear();
            st.webhook_secret = None;
            if p.get("drop_pending_updates").is_some_and(as_bool) {
                let next = i64::from(st.next_update_id);
                st.confirm(next);
            }
            Reply::ok_value(&Value::Bool(true))
        }
        "setwebhook" => {
            let url = p.get("url").map(value_text).unwrap_or_default();
            if !url.is_empty() && !url.starts_with("https://") {
                return Reply::bad(
                    "Bad Request: bad webhook: An HTTPS URL must be provided for webhook",
                );
            }
            let secret = p
                .get("secret_token")
                .map(value_text)
                .filter(|s| !s.is_empty());
            if secret.as_ref().is_some_and(|s| {
                s.len() > 256
                    || !s
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            }) {
                return Reply::bad("Bad Request: secret token contains unallowed characters");
            }
            if p.get("drop_pending_updates").is_some_and(as_bool) {
                let next = i64::from(st.next_update_id);
                st.confirm(next);
            }
            st.webhook_url = url;
            st.webhook_secret = secret;
            Reply::ok_value(&Value::Bool(true))
        }
        "sendmessage" => st.send_message(inner, p),
        "editmessagetext" => st.edit_message(inner, p, true),
        "editmessagereplymarkup" => st.edit_message(inner, p, false),
        "deletemessage" => st.delete_message(p),
        "answercallbackquery" => st.answer_callback(inner, p),
        "setmycommands" => st.set_commands(p),
        "getmycommands" => {
            let commands = st
                .commands
                .get(&commands_key(p))
                .cloned()
                .unwrap_or_else(|| json!([]));
            Reply::ok_value(&commands)
        }
        "deletemycommands" => {
            st.commands.remove(&commands_key(p));
            Reply::ok_value(&Value::Bool(true))
        }
        "sendchataction" => match st.target_chat(p, inner.config.strict_private_chats) {
            Ok(_) => Reply::ok_value(&Value::Bool(true)),
            Err(r) => r,
        },
        _ => Reply::error(404, "Not Found"),
    }
}

async fn get_updates(inner: &Inner, p: &Map<String, Value>) -> Reply {
    let offset = p.get("offset").and_then(as_i64);
    let limit = p.get("limit").and_then(as_i64).unwrap_or(100).clamp(1, 100) as usize;
    let timeout = p.get("timeout").and_then(as_i64).unwrap_or(0).max(0) as u64;
    let hold = Duration::from_secs(timeout).min(inner.config.max_poll_hold);
    let deadline = Instant::now() + hold;
    let generation = {
        let mut st = inner.lock();
        if !st.webhook_url.is_empty() {
            return Reply::error(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
            );
        }
        if let Some(list) = p
            .get("allowed_updates")
            .map(json_arg)
            .and_then(|v| v.as_array().cloned())
        {
            st.allowed_updates = if list.is_empty() {
                None
            } else {
                Some(
                    list.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect(),
                )
            };
        }
        if let Some(offset) = offset
            && st.confirm(offset)
        {
            inner.changed.notify_waiters();
        }
        st.poll_generation += 1;
        st.poll_generation
    };
    // Ends an older long poll, as Telegram does.
    inner.updates.notify_waiters();
    loop {
        let notified = inner.updates.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut st = inner.lock();
            if st.poll_generation != generation {
                return Reply::error(409, CONFLICT);
            }
            if let Some(result) = st.collect_updates(limit) {
                return Reply::Ok(result);
            }
        }
        if Instant::now() >= deadline {
            return Reply::Ok("[]".to_owned());
        }
        let _ = tokio::time::timeout_at(deadline, notified).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------------------------

enum Reply {
    /// 200 with this serialized `result`.
    Ok(String),
    Err {
        code: u16,
        description: String,
        retry_after: Option<u32>,
    },
    Raw {
        status: u16,
        content_type: &'static str,
        body: String,
    },
    Drop,
}

impl Reply {
    fn ok_value(v: &Value) -> Reply {
        Reply::Ok(v.to_string())
    }
    fn error(code: u16, description: &str) -> Reply {
        Reply::Err {
            code,
            description: description.to_owned(),
            retry_after: None,
        }
    }
    fn bad(description: &str) -> Reply {
        Reply::error(400, description)
    }
    fn too_many(retry_after: u32) -> Reply {
        Reply::Err {
            code: 429,
            description: format!("Too Many Requests: retry after {retry_after}"),
            retry_after: Some(retry_after),
        }
    }
    fn from_fault(fault: &Fault) -> Reply {
        match *fault {
            Fault::TooManyRequests { retry_after } => Reply::too_many(retry_after),
            Fault::Status(500) => Reply::error(500, "Internal Server Error"),
            Fault::Status(code) if code >= 500 => {
                let reason = StatusCode::from_u16(code)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("Error");
                Reply::Raw {
                    status: code,
                    content_type: "text/html",
                    body: format!(
                        "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n<center><h1>{code} {reason}</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n"
                    ),
                }
            }
            Fault::Status(code) => Reply::error(code, &format!("Error {code}: injected fault")),
            Fault::Drop => Reply::Drop,
        }
    }
    fn status(&self) -> u16 {
        match self {
            Reply::Ok(_) => 200,
            Reply::Err { code, .. } => *code,
            Reply::Raw { status, .. } => *status,
            Reply::Drop => 0,
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let (status, content_type, body) = match self {
            Reply::Ok(result) => (
                200,
                "application/json",
                format!("{{\"ok\":true,\"result\":{result}}}"),
            ),
            Reply::Err {
                code,
                description,
                retry_after,
            } => {
                let mut o = json!({"ok": false, "error_code": code, "description": description});
                if let Some(s) = retry_after {
                    o["parameters"] = json!({ "retry_after": s });
                }
                (code, "application/json", o.to_string())
            }
            Reply::Raw {
                status,
                content_type,
                body,
            } => (status, content_type, body),
            Reply::Drop => (500, "text/plain", String::new()),
        };
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
    }
}

// ---------------------------------------------------------------------------------------------
// Connections that a fault can drop
// ---------------------------------------------------------------------------------------------

struct KillableListener(TcpListener);

struct KillableIo {
    stream: TcpStream,
    killed: Arc<AtomicBool>,
}

#[derive(Clone)]
struct ConnHandle(Arc<AtomicBool>);

impl ConnHandle {
    fn kill(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Listener for KillableListener {
    type Io = KillableIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    return (
                        KillableIo {
                            stream,
                            killed: Arc::new(AtomicBool::new(false)),
                        },
                        addr,
                    );
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl Connected<IncomingStream<'_, KillableListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        ConnHandle(stream.io().killed.clone())
    }
}

fn killed_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "connection dropped by an injected fault",
    )
}

impl AsyncRead for KillableIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed_error()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed_error()));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed_error()));
        }
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

// ---------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------

fn parse_params(
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<Map<String, Value>, Reply> {
    let mut params = Map::new();
    if let Some(q) = query {
        for (k, v) in parse_form(q.as_bytes()) {
            params.insert(k, form_value(v));
        }
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let trimmed = body.trim_ascii();
    if trimmed.is_empty() {
        return Ok(params);
    }
    if content_type.starts_with("application/x-www-form-urlencoded") {
        for (k, v) in parse_form(body) {
            params.insert(k, form_value(v));
        }
    } else if content_type.starts_with("application/json") || trimmed.starts_with(b"{") {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(o)) => params.extend(o),
            Ok(_) | Err(_) => return Err(Reply::bad("Bad Request: can't parse JSON object")),
        }
    } else if content_type.starts_with("multipart/form-data") {
        // Only text fields matter here (files are not modelled).
        if let Some(boundary) = content_type.split("boundary=").nth(1) {
            let raw = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let boundary = raw
                .split("boundary=")
                .nth(1)
                .unwrap_or(boundary)
                .trim_matches('"')
                .to_owned();
            for (k, v) in parse_multipart(body, &boundary) {
                params.insert(k, form_value(v));
            }
        }
    }
    Ok(params)
}

fn parse_form(raw: &[u8]) -> Vec<(String, String)> {
    raw.split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let mut it = pair.splitn(2, |b| *b == b'=');
            let k = percent_decode(it.next().unwrap_or(b""));
            let v = percent_decode(it.next().unwrap_or(b""));
            (k, v)
        })
        .collect()
}

fn percent_decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < raw.len() => {
                let hex = std::str::from_utf8(&raw[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_multipart(body: &[u8], boundary: &str) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    let delimiter = format!("--{boundary}");
    let mut out = Vec::new();
    for part in text.split(delimiter.as_str()) {
        let Some((head, value)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        if head.contains("filename=") {
            continue;
        }
        let Some(name) = head
            .split("name=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
        else {
            continue;
        };
        out.push((
            name.to_owned(),
            value.strip_suffix("\r\n").unwrap_or(value).to_owned(),
        ));
    }
    out
}

/// A form value: JSON objects and arrays (`reply_markup`, `allowed_updates`) are parsed.
fn form_value(v: String) -> Value {
    let t = v.trim_start();
    if (t.starts_with('{') || t.starts_with('['))
        && let Ok(parsed) = serde_json::from_str::<Value>(&v)
    {
        return parsed;
    }
    Value::String(v)
}

/// An argument that may arrive as JSON or as a JSON string.
fn json_arg(v: &Value) -> Value {
    match v {
        Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
        other => other.clone(),
    }
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn as_bool(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => s == "true" || s == "1",
        Value::Number(n) => n.as_i64() == Some(1),
        _ => false,
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn user_json(u: &FakeUser) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), u.id.into());
    o.insert("is_bot".into(), false.into());
    o.insert("first_name".into(), u.first_name.into());
    if let Some(l) = u.language_code {
        o.insert("language_code".into(), l.into());
    }
    Value::Object(o)
}

fn private_chat_json(id: i64, first_name: &str) -> Value {
    json!({"id": id, "type": "private", "first_name": first_name})
}

// ---------------------------------------------------------------------------------------------
// Inline keyboards
// ---------------------------------------------------------------------------------------------

type Markup = (Vec<Vec<Button>>, Option<Value>);

fn parse_markup(v: Option<&Value>) -> Result<Markup, Reply> {
    let Some(v) = v else {
        return Ok((Vec::new(), None));
    };
    let v = match v {
        Value::String(s) => serde_json::from_str::<Value>(s).map_err(|_| {
            Reply::bad("Bad Request: can't parse reply keyboard markup JSON object")
        })?,
        Value::Null => return Ok((Vec::new(), None)),
        other => other.clone(),
    };
    let Some(rows) = v.get("inline_keyboard") else {
        // Reply keyboards and keyboard removal are accepted but not part of `Message`.
        return Ok((Vec::new(), None));
    };
    let Some(rows) = rows.as_array() else {
        return Err(Reply::bad(
            "Bad Request: field \"inline_keyboard\" of the InlineKeyboardMarkup must be an Array",
        ));
    };
    let mut keyboard = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(row) = row.as_array() else {
            return Err(Reply::bad(
                "Bad Request: field \"inline_keyboard\" of the InlineKeyboardMarkup must be an Array of Arrays",
            ));
        };
        let mut buttons = Vec::with_capacity(row.len());
        for b in row {
            let Some(text) = b.get("text").and_then(Value::as_str) else {
                return Err(Reply::bad(
                    "Bad Request: can't parse inline keyboard button: Field \"text\" must be of type String",
                ));
            };
            let callback_data = b
                .get("callback_data")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let url = b.get("url").and_then(Value::as_str).map(str::to_owned);
            if let Some(d) = &callback_data
                && (d.is_empty() || d.len() > 64)
            {
                return Err(Reply::bad("Bad Request: BUTTON_DATA_INVALID"));
            }
            if let Some(u) = &url
                && !(u.starts_with("https://")
                    || u.starts_with("http://")
                    || u.starts_with("tg://"))
            {
                return Err(Reply::bad(&format!(
                    "Bad Request: inline keyboard button URL '{u}' is invalid: Unsupported URL protocol"
                )));
            }
            let other_kind = [
                "login_url",
                "switch_inline_query",
                "switch_inline_query_current_chat",
                "switch_inline_query_chosen_chat",
                "web_app",
                "callback_game",
                "pay",
                "copy_text",
            ]
            .iter()
            .any(|k| b.get(*k).is_some());
            if callback_data.is_none() && url.is_none() && !other_kind {
                return Err(Reply::bad(
                    "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard",
                ));
            }
            buttons.push(Button {
                text: text.to_owned(),
                callback_data,
                url,
            });
        }
        keyboard.push(buttons);
    }
    if keyboard.iter().all(Vec::is_empty) {
        return Ok((Vec::new(), None));
    }
    Ok((keyboard, Some(v)))
}

// ---------------------------------------------------------------------------------------------
// Text formatting: HTML, MarkdownV2, Markdown -> plain text
// ---------------------------------------------------------------------------------------------

fn render_text(source: &str, parse_mode: Option<&str>) -> Result<String, Reply> {
    let rendered = match parse_mode {
        None => Ok(source.to_owned()),
        Some(m) if m.eq_ignore_ascii_case("html") => render_html(source),
        Some(m) if m.eq_ignore_ascii_case("markdownv2") => render_markdown_v2(source),
        Some(m) if m.eq_ignore_ascii_case("markdown") => render_markdown(source),
        Some(m) => {
            return Err(Reply::bad(&format!(
                "Bad Request: unsupported parse_mode \"{m}\""
            )));
        }
    };
    match rendered {
        Ok(t) => Ok(t.trim().to_owned()),
        Err(e) => Err(Reply::bad(&format!(
            "Bad Request: can't parse entities: {e}"
        ))),
    }
}

const HTML_TAGS: &[&str] = &[
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "tg-emoji",
    "code",
    "pre",
    "blockquote",
];

/// Telegram's HTML subset. Errors carry Telegram's wording.
pub fn render_html(src: &str) -> Result<String, String> {
    let mut out = String::with_capacity(src.len());
    let mut stack: Vec<String> = Vec::new();
    let mut i = 0;
    while i < src.len() {
        let c = src[i..].chars().next().expect("in bounds");
        match c {
            '<' => {
                let rest = &src[i + 1..];
                let Some(end) = rest.find('>') else {
                    return Err(format!("Unclosed start tag at byte offset {i}"));
                };
                let tag = &rest[..end];
                if let Some(name) = tag.strip_prefix('/') {
                    let name = name.trim().to_ascii_lowercase();
                    match stack.pop() {
                        Some(open) if open == name => {}
                        Some(open) => {
                            return Err(format!(
                                "Unmatched end tag at byte offset {i}, expected \"</{open}>\", found \"</{name}>\""
                            ));
                        }
                        None => return Err(format!("Unexpected end tag at byte offset {i}")),
                    }
                } else {
                    let name = tag
                        .split(|c: char| c.is_whitespace() || c == '/')
                        .next()
                        .unwrap_or("")
                        .to_ascii_lowercase();
                    if !HTML_TAGS.contains(&name.as_str()) {
                        return Err(format!(
                            "Unsupported start tag \"{name}\" at byte offset {i}"
                        ));
                    }
                    stack.push(name);
                }
                i += end + 2;
            }
            '&' => {
                let rest = &src[i + 1..];
                let decoded = rest.find(';').filter(|e| *e <= 10).and_then(|e| {
                    let entity = &rest[..e];
                    let ch = match entity {
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "amp" => Some('&'),
                        "quot" => Some('"'),
                        _ => {
                            if let Some(hex) = entity
                                .strip_prefix("#x")
                                .or_else(|| entity.strip_prefix("#X"))
                            {
                                u32::from_str_radix(hex, 16).ok().and_then(char::from_u32)
                            } else if let Some(dec) = entity.strip_prefix('#') {
                                dec.parse::<u32>().ok().and_then(char::from_u32)
                            } else {
                                None
                            }
                        }
                    };
                    ch.map(|ch| (ch, e))
                });
                match decoded {
                    Some((ch, e)) => {
                        out.push(ch);
                        i += e + 2;
                    }
                    None => {
                        out.push('&');
                        i += 1;
                    }
                }
            }
            _ => {
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    if let Some(open) = stack.pop() {
        return Err(format!(
            "Can't find end tag corresponding to start tag \"{open}\""
        ));
    }
    Ok(out)
}

/// Telegram's MarkdownV2: every reserved character outside an entity must be escaped.
pub fn render_markdown_v2(src: &str) -> Result<String, String> {
    const RESERVED: &str = "_*[]()~`>#+-=|{}.!";
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    let mut out = String::with_capacity(src.len());
    let mut open: Vec<(&'static str, usize)> = Vec::new();
    let mut code: Option<(&'static str, usize)> = None;
    let mut line_start = true;
    let mut i = 0;
    let at = |j: usize| chars.get(j).map(|(_, c)| *c);
    while i < chars.len() {
        let (offset, c) = chars[i];
        let was_line_start = line_start;
        line_start = c == '\n';
        if c == '\\' {
            match at(i + 1) {
                Some(n) if (n as u32) >= 1 && (n as u32) <= 126 => {
                    out.push(n);
                    i += 2;
                    continue;
                }
                _ => {
                    return Err(
                        "Character '\\' is reserved and must be escaped with the preceding '\\'"
                            .to_owned(),
                    );
                }
            }
        }
        if let Some((marker, _)) = code {
            if marker == "```" && c == '`' && at(i + 1) == Some('`') && at(i + 2) == Some('`') {
                code = None;
                i += 3;
            } else if marker == "`" && c == '`' {
                code = None;
                i += 1;
            } else {
                out.push(c);
                i += 1;
            }
            continue;
        }
        match c {
            '`' if at(i + 1) == Some('`') && at(i + 2) == Some('`') => {
                code = Some(("```", offset));
                i += 3;
                // The language name runs to the end of the line.
                while i < chars.len() && chars[i].1 != '\n' && chars[i].1 != '`' {
                    i += 1;
                }
                if i < chars.len() && chars[i].1 == '\n' {
                    i += 1;
                }
                continue;
            }
            '`' => {
                code = Some(("`", offset));
                i += 1;
                continue;
            }
            '*' | '~' => {
                toggle(&mut open, if c == '*' { "*" } else { "~" }, offset)?;
                i += 1;
                continue;
            }
            '_' if at(i + 1) == Some('_') => {
                toggle(&mut open, "__", offset)?;
                i += 2;
                continue;
            }
            '_' => {
                toggle(&mut open, "_", offset)?;
                i += 1;
                continue;
            }
            '|' if at(i + 1) == Some('|') => {
                toggle(&mut open, "||", offset)?;
                i += 2;
                continue;
            }
            '[' => {
                open.push(("[", offset));
                i += 1;
                continue;
            }
            '!' if at(i + 1) == Some('[') => {
                open.push(("[", offset));
                i += 2;
                continue;
            }
            ']' if open.last().is_some_and(|(m, _)| *m == "[") => {
                open.pop();
                if at(i + 1) != Some('(') {
                    return Err(format!(
                        "Can't find end of URL for text URL at byte offset {offset}"
                    ));
                }
                i += 2;
                loop {
                    match at(i) {
                        None => {
                            return Err(format!("Can't find end of a URL at byte offset {offset}"));
                        }
                        Some('\\') => i += 2,
                        Some(')') => {
                            i += 1;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
                continue;
            }
            '>' if was_line_start => {
                i += 1;
                continue;
            }
            c if RESERVED.contains(c) => {
                return Err(format!(
                    "Character '{c}' is reserved and must be escaped with the preceding '\\'"
                ));
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    if let Some((marker, offset)) = code {
        let name = if marker == "`" { "Code" } else { "Pre" };
        return Err(format!(
            "Can't find end of {name} entity at byte offset {offset}"
        ));
    }
    if let Some((marker, offset)) = open.pop() {
        let name = match marker {
            "*" => "Bold",
            "_" => "Italic",
            "__" => "Underline",
            "~" => "Strikethrough",
            "||" => "Spoiler",
            _ => "TextUrl",
        };
        return Err(format!(
            "Can't find end of {name} entity at byte offset {offset}"
        ));
    }
    Ok(out)
}

fn toggle(
    open: &mut Vec<(&'static str, usize)>,
    marker: &'static str,
    offset: usize,
) -> Result<(), String> {
    if open.last().is_some_and(|(m, _)| *m == marker) {
        open.pop();
    } else if open.iter().any(|(m, _)| *m == marker) {
        return Err(format!(
            "Can't find end of the entity starting at byte offset {offset}"
        ));
    } else {
        open.push((marker, offset));
    }
    Ok(())
}

/// Telegram's legacy Markdown: `*bold*`, `_italic_`, `` `code` ``, ```` ```pre``` ````,
/// `[text](url)`; `\` escapes `_ * ` [` outside entities; nothing else is reserved.
pub fn render_markdown(src: &str) -> Result<String, String> {
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    let at = |j: usize| chars.get(j).map(|(_, c)| *c);
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < chars.len() {
        let (offset, c) = chars[i];
        match c {
            '\\' if matches!(at(i + 1), Some('_' | '*' | '`' | '[')) => {
                out.push(at(i + 1).expect("checked"));
                i += 2;
            }
            '*' | '_' | '`' => {
                let marker_len = if c == '`' && at(i + 1) == Some('`') && at(i + 2) == Some('`') {
                    3
                } else {
                    1
                };
                let mut j = i + marker_len;
                let mut found = None;
                while j < chars.len() {
                    if chars[j].1 == c
                        && (marker_len == 1 || (at(j + 1) == Some(c) && at(j + 2) == Some(c)))
                    {
                        found = Some(j);
                        break;
                    }
                    j += 1;
                }
                let Some(end) = found else {
                    return Err(format!(
                        "Can't find end of the entity starting at byte offset {offset}"
                    ));
                };
                for (_, ch) in &chars[i + marker_len..end] {
                    out.push(*ch);
                }
                i = end + marker_len;
            }
            '[' => {
                let close = (i + 1..chars.len()).find(|j| chars[*j].1 == ']');
                let Some(close) = close.filter(|c| at(c + 1) == Some('(')) else {
                    return Err(format!(
                        "Can't find end of the entity starting at byte offset {offset}"
                    ));
                };
                let Some(paren) = (close + 2..chars.len()).find(|j| chars[*j].1 == ')') else {
                    return Err(format!(
                        "Can't find end of the entity starting at byte offset {offset}"
                    ));
                };
                for (_, ch) in &chars[i + 1..close] {
                    out.push(*ch);
                }
                i = paren + 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}
