//! A lean fake Telegram Bot API server that is also the load generator.
//!
//! Why not tests/fake_api: that server validates and renders every message, keeps every
//! message and request, and parses bodies into `serde_json::Value` maps: right for tests, too
//! dear when the harness must stay a small share of a 2-core machine. This one answers the few
//! methods the bots call (getMe, getWebhookInfo, setMyCommands, getUpdates with its long poll,
//! answerCallbackQuery, editMessageText, editMessageReplyMarkup, sendMessage) with a
//! hand-written HTTP/1.1 loop (keep-alive, Content-Length bodies) on the harness's single
//! thread, and drives the members from the replies it receives: a member's next press is
//! queued the moment the edit answering the previous one arrives (closed loop), or at a fixed
//! overall rate (open loop). Nothing per request is kept but counters and latencies.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gymtriage::bot::callback::{self, Action};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

pub const TOKEN: &str = "5550001:loadbench-TOKEN";
const BOT_USER: &str =
    r#"{"id":5550001,"is_bot":true,"first_name":"GymTriage","username":"gymtriage_bot"}"#;
const GET_ME: &str = r#"{"ok":true,"result":{"id":5550001,"is_bot":true,"first_name":"GymTriage","username":"gymtriage_bot","can_join_groups":true,"can_read_all_group_messages":false,"supports_inline_queries":false,"can_connect_to_business":false,"has_main_web_app":false}}"#;
const WEBHOOK_INFO: &str =
    r#"{"ok":true,"result":{"url":"","has_custom_certificate":false,"pending_update_count":0}}"#;
const TRUE: &str = r#"{"ok":true,"result":true}"#;
const UNAUTHORIZED: &str = r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#;

/// One simulated member: a user whose check (its question message) is in a chat. In a private
/// chat `chat == user`; groups have negative ids and several members.
#[derive(Clone, Debug)]
pub struct Member {
    pub user: i64,
    pub chat: i64,
    pub message_id: i32,
    pub check_id: u32,
}

/// What the members press.
#[derive(Clone, Debug)]
pub enum Script {
    /// gymtriage's check buttons: press k answers `path[k]` on version k of the check.
    Gymtriage { path: Vec<String> },
    /// The baseline's two buttons, `a` and `b`, alternately, as many presses as gymtriage's path.
    Baseline { presses: usize },
}

impl Script {
    pub fn presses(&self) -> usize {
        match self {
            Script::Gymtriage { path } => path.len(),
            Script::Baseline { presses } => *presses,
        }
    }

    fn data(&self, m: &Member, step: usize) -> String {
        match self {
            Script::Gymtriage { path } => {
                callback::check_button(m.user, m.check_id, step as u32, Action::Choose(&path[step]))
            }
            Script::Baseline { .. } => if step.is_multiple_of(2) { "a" } else { "b" }.to_string(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Replies put members back in the pool; nothing new is pressed.
    Idle,
    /// Presses come from the ticker at a fixed rate.
    Open,
    /// Every reply triggers the member's next press (or, for a private member whose check is
    /// over, the next private member's first).
    Closed,
}

/// What happened during a phase.
#[derive(Default, Clone, Debug)]
pub struct Counters {
    /// Updates queued (button presses).
    pub presses: u64,
    /// Presses answered by the edit of their message.
    pub replies: u64,
    pub edits: u64,
    pub sends: u64,
    pub answers: u64,
    /// answerCallbackQuery with a text: the bot refused or found the press stale.
    pub toasts: u64,
    /// A reply that lacks the button the member presses next.
    pub mismatches: u64,
    /// An edit for a message with no press pending.
    pub stray_edits: u64,
    pub polls: u64,
    /// getUpdates answers that carried updates, and the updates they carried the first time:
    /// a mean batch well above 1 means updates waited for the bot to ask (the bot, not the
    /// harness, is behind).
    pub batches: u64,
    pub fetched: u64,
    pub other_calls: u64,
    pub checks_finished: u64,
    /// Open loop: a press was due and no member was free to make it.
    pub missed: u64,
    /// Longest time without any reply while presses were pending, in µs (a stalled bot).
    pub longest_gap_us: u64,
}

impl Counters {
    pub fn errors(&self) -> u64 {
        self.toasts + self.mismatches + self.stray_edits + self.missed
    }
}

#[derive(Default, Clone, Copy)]
struct Run {
    step: u16,
    queued_at: Option<Instant>,
    delivered_at: Option<Instant>,
}

struct Pending {
    id: u32,
    member: u32,
    delivered: bool,
    json: String,
}

/// Index of a member's kind in the per-kind arrays: private chats, then groups.
pub const PRIVATE: usize = 0;
pub const GROUP: usize = 1;

fn kind(m: &Member) -> usize {
    if m.chat < 0 { GROUP } else { PRIVATE }
}

struct State {
    queue: VecDeque<Pending>,
    next_update_id: u32,
    poll_gen: u64,
    ready: bool,
    members: Arc<Vec<Member>>,
    by_msg: HashMap<(i64, i32), u32>,
    script: Script,
    runs: Vec<Run>,
    mode: Mode,
    /// Members with presses left, not in flight, in the order they last pressed.
    pool: VecDeque<u32>,
    /// Members never pressed, in order.
    fresh: VecDeque<u32>,
    /// Closed loop: private members waiting for a free slot.
    private_queue: VecDeque<u32>,
    /// Presses in flight, per kind.
    outstanding: [u32; 2],
    counters: Counters,
    replies: [u64; 2],
    latency_us: [Vec<u32>; 2],
    handling_us: [Vec<u32>; 2],
    last_reply: Option<Instant>,
    next_message_id: i32,
    date: i64,
    notify: Arc<Notify>,
}

/// The result of one phase.
pub struct Phase {
    /// Closed loop: from the first press to the last reply to a private member (the bot is
    /// saturated all along). Open loop: from the first press to the last reply.
    pub wall: Duration,
    /// Replies within `wall`.
    pub replies: u64,
    pub counters: Counters,
    /// Per kind (PRIVATE, GROUP): press queued → its edit arrived, in µs.
    pub latency_us: [Vec<u32>; 2],
    /// Per kind: press handed to the bot in a getUpdates answer → its edit arrived, in µs.
    pub handling_us: [Vec<u32>; 2],
    /// Per kind: presses still unanswered when the phase ended, with their age then, in µs.
    pub unanswered_us: [Vec<u32>; 2],
    pub stalled: bool,
}

fn micros(d: Duration) -> u32 {
    d.as_micros().min(u32::MAX as u128) as u32
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn chat_json(out: &mut String, chat: i64) {
    if chat < 0 {
        let _ = write!(
            out,
            r#"{{"id":{chat},"type":"group","title":"Gym {chat}"}}"#
        );
    } else {
        let _ = write!(
            out,
            r#"{{"id":{chat},"type":"private","first_name":"Member"}}"#
        );
    }
}

fn message_json(chat: i64, message_id: i32, date: i64, edited: bool) -> String {
    let mut out = String::with_capacity(256);
    let _ = write!(
        out,
        r#"{{"ok":true,"result":{{"message_id":{message_id},"date":{date},"#
    );
    if edited {
        let _ = write!(out, r#""edit_date":{date},"#);
    }
    out.push_str(r#""chat":"#);
    chat_json(&mut out, chat);
    let _ = write!(out, r#","from":{BOT_USER},"text":"ok"}}}}"#);
    out
}

impl State {
    fn new(notify: Arc<Notify>) -> State {
        State {
            queue: VecDeque::new(),
            next_update_id: 1,
            poll_gen: 0,
            ready: false,
            members: Arc::new(Vec::new()),
            by_msg: HashMap::new(),
            script: Script::Baseline { presses: 0 },
            runs: Vec::new(),
            mode: Mode::Idle,
            pool: VecDeque::new(),
            fresh: VecDeque::new(),
            private_queue: VecDeque::new(),
            outstanding: [0; 2],
            counters: Counters::default(),
            replies: [0; 2],
            latency_us: [Vec::new(), Vec::new()],
            handling_us: [Vec::new(), Vec::new()],
            last_reply: None,
            next_message_id: 1_000_000,
            date: unix_now(),
            notify,
        }
    }

    fn next_member(&mut self) -> Option<u32> {
        self.pool.pop_front().or_else(|| self.fresh.pop_front())
    }

    fn press(&mut self, m: u32, now: Instant) {
        let id = self.next_update_id;
        self.next_update_id += 1;
        let member = &self.members[m as usize];
        let run = &mut self.runs[m as usize];
        let data = self.script.data(member, run.step as usize);
        let mut json = String::with_capacity(512);
        let _ = write!(
            json,
            r#"{{"update_id":{id},"callback_query":{{"id":"{id}","from":{{"id":{user},"is_bot":false,"first_name":"Member","language_code":"en"}},"message":{{"message_id":{mid},"date":{date},"chat":"#,
            user = member.user,
            mid = member.message_id,
            date = self.date,
        );
        chat_json(&mut json, member.chat);
        let _ = write!(
            json,
            r#","from":{BOT_USER},"text":"Question"}},"chat_instance":"{chat}","data":"{data}"}}}}"#,
            chat = member.chat,
        );
        run.queued_at = Some(now);
        run.delivered_at = None;
        self.outstanding[kind(member)] += 1;
        self.queue.push_back(Pending {
            id,
            member: m,
            delivered: false,
            json,
        });
        self.counters.presses += 1;
        self.notify.notify_waiters();
    }

    fn on_edit(&mut self, chat: i64, message_id: i32, body: &[u8], now: Instant) {
        self.counters.edits += 1;
        let Some(&m) = self.by_msg.get(&(chat, message_id)) else {
            self.counters.stray_edits += 1;
            return;
        };
        let k = kind(&self.members[m as usize]);
        let run = &mut self.runs[m as usize];
        let Some(queued) = run.queued_at.take() else {
            self.counters.stray_edits += 1;
            return;
        };
        self.latency_us[k].push(micros(now - queued));
        if let Some(d) = run.delivered_at.take() {
            self.handling_us[k].push(micros(now - d));
        }
        run.step += 1;
        let step = run.step as usize;
        self.outstanding[k] -= 1;
        self.counters.replies += 1;
        self.replies[k] += 1;
        if let Some(last) = self.last_reply {
            let gap = now.saturating_duration_since(last).as_micros() as u64;
            self.counters.longest_gap_us = self.counters.longest_gap_us.max(gap);
        }
        self.last_reply = Some(now);
        let more = step < self.script.presses();
        if more {
            let next = self.script.data(&self.members[m as usize], step);
            let needle = format!("\"callback_data\":\"{next}\"");
            if !std::str::from_utf8(body).is_ok_and(|b| b.contains(&needle)) {
                self.counters.mismatches += 1;
            }
        } else {
            self.counters.checks_finished += 1;
        }
        match self.mode {
            Mode::Closed => {
                if more {
                    self.press(m, now);
                } else if k == PRIVATE
                    && let Some(n) = self.private_queue.pop_front()
                {
                    self.press(n, now);
                }
            }
            Mode::Open | Mode::Idle => {
                if more {
                    self.pool.push_back(m);
                }
            }
        }
    }

    /// The private members are all done (closed loop) or answered (open loop).
    fn private_done(&self) -> bool {
        self.outstanding[PRIVATE] == 0 && self.private_queue.is_empty()
    }

    fn take_phase(&mut self, start: Instant, end: Instant) -> Phase {
        let mut unanswered_us = [Vec::new(), Vec::new()];
        for (i, r) in self.runs.iter().enumerate() {
            if let Some(q) = r.queued_at {
                unanswered_us[kind(&self.members[i])].push(micros(end - q));
            }
        }
        // A bot that stopped answering: the gap runs to the end of the phase.
        if self.outstanding.iter().sum::<u32>() > 0
            && let Some(last) = self.last_reply
        {
            let gap = end.saturating_duration_since(last).as_micros() as u64;
            self.counters.longest_gap_us = self.counters.longest_gap_us.max(gap);
        }
        Phase {
            wall: self
                .last_reply
                .take()
                .map_or(Duration::ZERO, |l| l.saturating_duration_since(start)),
            replies: self.counters.replies,
            counters: std::mem::take(&mut self.counters),
            latency_us: std::mem::take(&mut self.latency_us),
            handling_us: std::mem::take(&mut self.handling_us),
            unanswered_us,
            stalled: false,
        }
    }
}

struct Inner {
    st: Mutex<State>,
    notify: Arc<Notify>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The server. Runs on the runtime that started it (the harness uses a current-thread runtime,
/// so the server and the load generator together use at most one core).
pub struct FakeBotApi {
    inner: Arc<Inner>,
    addr: SocketAddr,
}

#[derive(serde::Deserialize, Default)]
struct GetUpdates {
    #[serde(default)]
    offset: i64,
    limit: Option<usize>,
    timeout: Option<u64>,
}

#[derive(serde::Deserialize)]
struct ChatMessage {
    chat_id: i64,
    #[serde(default)]
    message_id: i32,
}

impl FakeBotApi {
    pub async fn start() -> std::io::Result<FakeBotApi> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let notify = Arc::new(Notify::new());
        let inner = Arc::new(Inner {
            st: Mutex::new(State::new(notify.clone())),
            notify,
        });
        let accept_inner = inner.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection(stream, accept_inner.clone()));
            }
        });
        Ok(FakeBotApi { inner, addr })
    }

    /// The Bot API address for `TELOXIDE_API_URL` (with the trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Forgets the previous run and sets up these members, all at their first press.
    pub fn reset(&self, members: Arc<Vec<Member>>, script: Script) {
        let mut st = self.inner.lock();
        st.queue.clear();
        st.ready = false;
        st.poll_gen += 1;
        st.by_msg = members
            .iter()
            .enumerate()
            .map(|(i, m)| ((m.chat, m.message_id), i as u32))
            .collect();
        st.runs = vec![Run::default(); members.len()];
        st.fresh = (0..members.len() as u32).collect();
        st.members = members;
        st.script = script;
        st.mode = Mode::Idle;
        st.pool.clear();
        st.private_queue.clear();
        st.outstanding = [0; 2];
        st.counters = Counters::default();
        st.replies = [0; 2];
        st.latency_us = [Vec::new(), Vec::new()];
        st.handling_us = [Vec::new(), Vec::new()];
        st.last_reply = None;
        st.date = unix_now();
        self.inner.notify.notify_waiters();
    }

    /// Waits for the bot's first getUpdates.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.inner.lock().ready {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        false
    }

    /// Open loop: presses at `rate` per second for `duration`, each by the member that has
    /// waited longest since its last reply (new members join when none is free), then waits
    /// for the replies due to private members. Presses of group members still unanswered then
    /// (stuck behind the group's rate-limited messages) are reported with their age.
    pub async fn run_open(&self, rate: f64, duration: Duration, stall: Duration) -> Phase {
        let start = Instant::now();
        {
            let mut st = self.inner.lock();
            st.take_phase(start, start);
            st.mode = Mode::Open;
        }
        let mut sent = 0u64;
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let elapsed = start.elapsed();
            if elapsed >= duration {
                break;
            }
            let due = (elapsed.as_secs_f64() * rate) as u64;
            if due > sent {
                let now = Instant::now();
                let mut st = self.inner.lock();
                for _ in sent..due {
                    match st.next_member() {
                        Some(m) => st.press(m, now),
                        None => st.counters.missed += 1,
                    }
                }
                sent = due;
            }
        }
        self.inner.lock().mode = Mode::Idle;
        let stalled = self.drain(stall).await;
        let mut st = self.inner.lock();
        let mut phase = st.take_phase(start, Instant::now());
        phase.stalled = stalled;
        phase
    }

    /// Closed loop. Every group member presses at once (a group's updates are handled one at
    /// a time, so its members queue behind each other anyway) and `concurrency` private
    /// members do; each presses its next button as soon as the previous press is answered,
    /// and a private member whose check is over is replaced by the next one. The phase ends
    /// when every private member has finished: throughput is counted until then, while the bot
    /// is saturated. Group presses still unanswered then are reported with their age.
    pub async fn run_closed(&self, concurrency: usize, stall: Duration) -> Phase {
        let start = Instant::now();
        {
            let mut guard = self.inner.lock();
            let st = &mut *guard;
            st.take_phase(start, start);
            st.mode = Mode::Closed;
            let waiting: Vec<u32> = st.pool.drain(..).chain(st.fresh.drain(..)).collect();
            for m in waiting {
                if kind(&st.members[m as usize]) == GROUP {
                    st.press(m, start);
                } else {
                    st.private_queue.push_back(m);
                }
            }
            for _ in 0..concurrency {
                match st.private_queue.pop_front() {
                    Some(m) => st.press(m, start),
                    None => break,
                }
            }
        }
        let stalled = self.drain(stall).await;
        let mut st = self.inner.lock();
        st.mode = Mode::Idle;
        let mut phase = st.take_phase(start, Instant::now());
        phase.stalled = stalled;
        phase
    }

    /// Waits until the private members' presses are all answered (or, with no private member,
    /// every press); true if replies stopped coming for `stall`.
    async fn drain(&self, stall: Duration) -> bool {
        let privates = {
            let st = self.inner.lock();
            st.members.iter().any(|m| kind(m) == PRIVATE)
        };
        let progress = std::env::var_os("LOADBENCH_PROGRESS").is_some();
        let mut report = (Instant::now(), 0u64);
        let mut last = (u64::MAX, Instant::now());
        loop {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let st = self.inner.lock();
            if progress && report.0.elapsed() >= Duration::from_secs(1) {
                eprintln!(
                    "    {} replies/s; in flight {:?} (private, group); {} updates not yet fetched; {} sends so far",
                    st.counters.replies - report.1,
                    st.outstanding,
                    st.queue.iter().filter(|u| !u.delivered).count(),
                    st.counters.sends
                );
                report = (Instant::now(), st.counters.replies);
            }
            if st.private_done() && (privates || st.outstanding[GROUP] == 0) {
                return false;
            }
            if st.counters.replies != last.0 {
                last = (st.counters.replies, Instant::now());
            } else if last.1.elapsed() > stall {
                return true;
            }
        }
    }

    /// Presses still pending and members not yet started, for diagnostics.
    pub fn describe(&self) -> String {
        let st = self.inner.lock();
        format!(
            "presses in flight {:?} (private, group), updates not yet confirmed {}, members waiting {}",
            st.outstanding,
            st.queue.len(),
            st.pool.len() + st.fresh.len() + st.private_queue.len(),
        )
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One keep-alive HTTP/1.1 connection: requests with Content-Length bodies, answered in order.
async fn connection(mut stream: TcpStream, inner: Arc<Inner>) {
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut out: Vec<u8> = Vec::with_capacity(4 * 1024);
    let mut scanned: usize = 0;
    loop {
        let head_end = loop {
            // Search only the new bytes (and 3 before them) for the end of the headers.
            let from = scanned.saturating_sub(3);
            if let Some(i) = find(&buf[from..], b"\r\n\r\n") {
                break from + i + 4;
            }
            scanned = buf.len();
            buf.reserve(8 * 1024);
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        let Ok(head) = std::str::from_utf8(&buf[..head_end]) else {
            return;
        };
        let mut lines = head.split("\r\n");
        let path = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or("")
            .to_string();
        let mut len = 0usize;
        let mut close = false;
        for line in lines {
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                } else if k.eq_ignore_ascii_case("connection") {
                    close = v.trim().eq_ignore_ascii_case("close");
                }
            }
        }
        while buf.len() < head_end + len {
            buf.reserve(head_end + len - buf.len());
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        let (token, method) = path
            .strip_prefix("/bot")
            .and_then(|p| p.rsplit_once('/'))
            .unwrap_or(("", ""));
        let body = &buf[head_end..head_end + len];
        let (status, payload) = if token != TOKEN {
            ("401 Unauthorized", UNAUTHORIZED.to_string())
        } else if method.eq_ignore_ascii_case("getUpdates") {
            let params: GetUpdates = serde_json::from_slice(body).unwrap_or_default();
            ("200 OK", get_updates(&inner, params).await)
        } else {
            ("200 OK", handle(&inner, method, body))
        };
        buf.drain(..head_end + len);
        scanned = 0;
        out.clear();
        let _ = std::io::Write::write_fmt(
            &mut out,
            format_args!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                payload.len()
            ),
        );
        out.extend_from_slice(payload.as_bytes());
        if stream.write_all(&out).await.is_err() || close {
            return;
        }
    }
}

fn handle(inner: &Inner, method: &str, body: &[u8]) -> String {
    let m = |name: &str| method.eq_ignore_ascii_case(name);
    if m("editMessageText") {
        let now = Instant::now();
        let Ok(p) = serde_json::from_slice::<ChatMessage>(body) else {
            return bad_request();
        };
        let mut st = inner.lock();
        st.on_edit(p.chat_id, p.message_id, body, now);
        message_json(p.chat_id, p.message_id, st.date, true)
    } else if m("answerCallbackQuery") {
        let mut st = inner.lock();
        st.counters.answers += 1;
        if find(body, b"\"text\"").is_some() {
            st.counters.toasts += 1;
        }
        TRUE.to_string()
    } else if m("sendMessage") {
        let Ok(p) = serde_json::from_slice::<ChatMessage>(body) else {
            return bad_request();
        };
        let mut st = inner.lock();
        st.counters.sends += 1;
        st.next_message_id += 1;
        message_json(p.chat_id, st.next_message_id, st.date, false)
    } else if m("editMessageReplyMarkup") {
        let Ok(p) = serde_json::from_slice::<ChatMessage>(body) else {
            return bad_request();
        };
        let mut st = inner.lock();
        st.counters.other_calls += 1;
        message_json(p.chat_id, p.message_id, st.date, true)
    } else if m("getMe") {
        GET_ME.to_string()
    } else if m("getWebhookInfo") {
        WEBHOOK_INFO.to_string()
    } else {
        // deleteWebhook, setMyCommands, close...
        inner.lock().counters.other_calls += 1;
        TRUE.to_string()
    }
}

fn bad_request() -> String {
    r#"{"ok":false,"error_code":400,"description":"Bad Request: unreadable parameters"}"#
        .to_string()
}

/// getUpdates: confirms ids below `offset`, answers at once with up to `limit` updates, or
/// holds the request until one is queued (at most `timeout`, capped at 5 s). A newer
/// getUpdates ends an older one that is still held (a killed bot's).
async fn get_updates(inner: &Inner, p: GetUpdates) -> String {
    let hold = Duration::from_secs(p.timeout.unwrap_or(0).min(5));
    let deadline = Instant::now() + hold;
    let limit = p.limit.unwrap_or(100).clamp(1, 100);
    let generation = {
        let mut st = inner.lock();
        st.poll_gen += 1;
        st.ready = true;
        st.poll_gen
    };
    loop {
        let notified = inner.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut st = inner.lock();
            if st.poll_gen != generation {
                return r#"{"ok":true,"result":[]}"#.to_string();
            }
            while st.queue.front().is_some_and(|u| i64::from(u.id) < p.offset) {
                st.queue.pop_front();
            }
            if !st.queue.is_empty() {
                let now = Instant::now();
                let st = &mut *st;
                st.counters.polls += 1;
                st.counters.batches += 1;
                let mut out = String::with_capacity(64 + 600 * st.queue.len().min(limit));
                out.push_str(r#"{"ok":true,"result":["#);
                for (i, u) in st.queue.iter_mut().take(limit).enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&u.json);
                    if !u.delivered {
                        u.delivered = true;
                        st.runs[u.member as usize].delivered_at = Some(now);
                        st.counters.fetched += 1;
                    }
                }
                out.push_str("]}");
                return out;
            }
        }
        let now = Instant::now();
        if now >= deadline
            || tokio::time::timeout(deadline - now, notified)
                .await
                .is_err()
        {
            inner.lock().counters.polls += 1;
            return r#"{"ok":true,"result":[]}"#.to_string();
        }
    }
}
