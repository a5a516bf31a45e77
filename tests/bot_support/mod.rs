//! A harness for the Telegram handler tests: one `MockBot` (teloxide_tests' fake Bot API) and
//! one `App` with an in-memory store kept across dispatches, plus helpers to read what the bot
//! sent and to press its buttons the way a Telegram client would.
#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use gymtriage::bot::handlers::HandlerError;
use gymtriage::bot::store::{Check, Member, MemberKey, SqliteStore, Store};
use gymtriage::bot::{App, schema};
use gymtriage::{Dialogues, Lang};
use teloxide::dptree;
use teloxide::types::{
    CallbackQueryId, Chat, InlineKeyboardButton, InlineKeyboardButtonKind, Message, ReplyMarkup,
    User,
};
use teloxide_tests::mock_bot::DistributionKey;
use teloxide_tests::server::{EditedMessageText, SentMessageText};
use teloxide_tests::{
    IntoUpdate, MockBot, MockCallbackQuery, MockGroupChat, MockMe, MockMessageText,
    MockPrivateChat, MockUser, Responses,
};

pub const BOT_USERNAME: &str = "gymtriage_bot";
/// A supergroup-style id (the fake server builds a supergroup for any negative chat id).
pub const GROUP: i64 = -1001234567890;
/// Unix seconds at the start of every test.
pub const T0: i64 = 1_700_000_000;

/// The shipped dialogues, loaded once per test binary.
pub fn dialogues() -> &'static Dialogues {
    static D: OnceLock<Dialogues> = OnceLock::new();
    D.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogues");
        match gymtriage::load(&dir) {
            Ok(d) => d,
            Err(e) => panic!("shipped dialogues must load:\n{e}"),
        }
    })
}

pub fn lang(code: &str) -> Lang {
    dialogues().lang(code).expect("a shipped language")
}

/// The bot's wording for `lang`, as the handlers use it.
pub fn ui() -> &'static gymtriage::dialogue::model::Ui {
    dialogues().ui()
}

pub fn user(id: u64, first_name: &str, language: &str) -> User {
    MockUser::new()
        .id(id)
        .first_name(first_name)
        .language_code(language)
        .build()
}

/// The private chat of `user` (its id is the user's).
pub fn private(user: &User) -> Chat {
    MockPrivateChat::new()
        .id(user.id.0 as i64)
        .first_name(user.first_name.clone())
        .build()
}

pub fn group() -> Chat {
    MockGroupChat::new().id(GROUP).title("Leg day crew").build()
}

pub fn key(chat: i64, user: &User) -> MemberKey {
    MemberKey {
        chat,
        user: user.id.0 as i64,
    }
}

/// A bot message as the client shows it: the message (to press), its text and its buttons.
#[derive(Debug, Clone)]
pub struct Shown {
    pub message: Message,
    pub text: String,
    pub markup: Option<ReplyMarkup>,
}

impl From<&SentMessageText> for Shown {
    fn from(s: &SentMessageText) -> Shown {
        Shown {
            message: s.message.clone(),
            text: s.bot_request.text.clone(),
            markup: s.bot_request.reply_markup.clone(),
        }
    }
}

impl From<&EditedMessageText> for Shown {
    fn from(e: &EditedMessageText) -> Shown {
        Shown {
            message: e.message.clone(),
            text: e.bot_request.text.clone(),
            markup: e.bot_request.reply_markup.clone(),
        }
    }
}

impl Shown {
    pub fn id(&self) -> i32 {
        self.message.id.0
    }

    pub fn chat(&self) -> i64 {
        self.message.chat.id.0
    }

    pub fn buttons(&self) -> Vec<InlineKeyboardButton> {
        match &self.markup {
            Some(ReplyMarkup::InlineKeyboard(k)) => k.inline_keyboard.concat(),
            Some(other) => panic!("unexpected reply markup {other:?}"),
            None => Vec::new(),
        }
    }

    pub fn has_buttons(&self) -> bool {
        !self.buttons().is_empty()
    }

    pub fn labels(&self) -> Vec<String> {
        self.buttons().into_iter().map(|b| b.text).collect()
    }

    fn button(&self, label: &str) -> InlineKeyboardButton {
        self.buttons()
            .into_iter()
            .find(|b| b.text == label)
            .unwrap_or_else(|| {
                panic!(
                    "no button {label:?} on message {} {:?}; buttons: {:?}",
                    self.id(),
                    self.text,
                    self.labels()
                )
            })
    }

    /// The callback data of the button labelled `label`.
    pub fn data(&self, label: &str) -> String {
        match self.button(label).kind {
            InlineKeyboardButtonKind::CallbackData(d) => d,
            other => panic!("button {label:?} is not a callback button: {other:?}"),
        }
    }

    /// The link of the URL button labelled `label`.
    pub fn url(&self, label: &str) -> String {
        match self.button(label).kind {
            InlineKeyboardButtonKind::Url(u) => u.to_string(),
            other => panic!("button {label:?} is not a link: {other:?}"),
        }
    }

    pub fn url_buttons(&self) -> Vec<String> {
        self.buttons()
            .into_iter()
            .filter_map(|b| match b.kind {
                InlineKeyboardButtonKind::Url(u) => Some(u.to_string()),
                _ => None,
            })
            .collect()
    }
}

/// Text messages the bot sent to `chat` during the dispatch, in order.
pub fn sent_in(r: &Responses, chat: i64) -> Vec<Shown> {
    r.sent_messages_text
        .iter()
        .filter(|s| s.message.chat.id.0 == chat)
        .map(Shown::from)
        .collect()
}

/// Messages of `chat` whose text (and buttons) the bot replaced during the dispatch.
pub fn edited_in(r: &Responses, chat: i64) -> Vec<Shown> {
    r.edited_messages_text
        .iter()
        .filter(|e| e.message.chat.id.0 == chat)
        .map(Shown::from)
        .collect()
}

/// The only message sent to `chat`.
pub fn one_sent(r: &Responses, chat: i64) -> Shown {
    let sent = sent_in(r, chat);
    assert_eq!(
        sent.len(),
        1,
        "expected one message in chat {chat}, got {:?}",
        sent.iter().map(|s| &s.text).collect::<Vec<_>>()
    );
    sent.into_iter().next().unwrap()
}

/// The only edit in `chat`.
pub fn one_edit(r: &Responses, chat: i64) -> Shown {
    let edited = edited_in(r, chat);
    assert_eq!(
        edited.len(),
        1,
        "expected one edit in chat {chat}, got {:?}",
        edited.iter().map(|s| &s.text).collect::<Vec<_>>()
    );
    edited.into_iter().next().unwrap()
}

/// Nothing visible happened: no message sent, edited or stripped of its buttons.
pub fn assert_silent(r: &Responses) {
    assert!(
        r.sent_messages.is_empty(),
        "unexpected messages: {:?}",
        r.sent_messages_text
            .iter()
            .map(|s| &s.bot_request.text)
            .collect::<Vec<_>>()
    );
    assert!(
        r.edited_messages_text.is_empty(),
        "unexpected edits: {:?}",
        r.edited_messages_text
            .iter()
            .map(|s| &s.bot_request.text)
            .collect::<Vec<_>>()
    );
    assert!(r.edited_messages_reply_markup.is_empty());
}

/// The single callback answer of the dispatch: (text, show_alert).
pub fn answer(r: &Responses) -> (Option<String>, bool) {
    assert_eq!(
        r.answered_callback_queries.len(),
        1,
        "every press must be answered exactly once"
    );
    let a = &r.answered_callback_queries[0];
    (a.text.clone(), a.show_alert.unwrap_or(false))
}

/// Asserts the press got an alert (a dialog the user must dismiss) saying `text`.
pub fn assert_alert(r: &Responses, text: &str) {
    assert_eq!(answer(r), (Some(text.to_string()), true));
}

/// The answers of a stored check as `question=option`, in order.
pub fn answers(m: &Member) -> Vec<String> {
    m.check
        .as_ref()
        .expect("a check in progress")
        .session
        .answers
        .iter()
        .map(|a| format!("{}={}", a.question, a.option))
        .collect()
}

pub struct Harness {
    bot: MockBot<HandlerError, DistributionKey>,
    pub app: Arc<App>,
    /// The fake clock, in unix seconds.
    pub now: Arc<AtomicI64>,
    queries: AtomicU32,
}

/// The text of the update that runs one scheduler tick (see [`tree`]).
pub const TICK: &str = "/__scheduler_tick";

/// The bot's routing table, plus one test-only branch: the update [`TICK`] runs the
/// check-in scheduler once, so that it talks to the mock server of that dispatch.
fn tree() -> teloxide::dispatching::UpdateHandler<HandlerError> {
    use teloxide::prelude::*;
    dptree::entry()
        .branch(
            Update::filter_message()
                .filter(|m: Message| m.text() == Some(TICK))
                .endpoint(
                    |bot: teloxide::Bot, app: Arc<App>, me: teloxide::types::Me| async move {
                        gymtriage::bot::fire_due(&bot, &app, me.username()).await;
                        Ok(())
                    },
                ),
        )
        .branch(schema::<teloxide::Bot>())
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_limiter(gymtriage::bot::limiter::Limiter::default())
    }

    /// The store under test: SQLite in memory, or Redis when `GYMTRIAGE_TEST_STORAGE` names
    /// one (`.ci/run` runs the suite both ways), under a fresh key prefix.
    fn store() -> Arc<dyn Store> {
        match std::env::var("GYMTRIAGE_TEST_STORAGE") {
            Ok(url) if url.starts_with("redis://") => {
                static N: AtomicU32 = AtomicU32::new(0);
                let prefix = format!(
                    "gymtriage-test:handlers:{}:{}:{}:",
                    std::process::id(),
                    N.fetch_add(1, Ordering::SeqCst),
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos())
                );
                Arc::new(
                    gymtriage::bot::store::RedisStore::open(&url, &prefix)
                        .unwrap_or_else(|e| panic!("Redis at {url}: {e}")),
                )
            }
            _ => Arc::new(SqliteStore::in_memory().expect("an in-memory store")),
        }
    }

    pub fn with_limiter(limiter: gymtriage::bot::limiter::Limiter) -> Harness {
        // The mock bot takes teloxide_tests' global lock: create it before anything else.
        let mut bot = MockBot::new(MockMessageText::new().text("placeholder"), tree());
        bot.me(MockMe::new().username(BOT_USERNAME).first_name("gymtriage"));
        let mut app = App::new(
            dialogues().clone(),
            Self::store(),
            Duration::from_secs(24 * 3600),
        );
        app.limiter = limiter;
        let now = Arc::new(AtomicI64::new(T0));
        let clock = now.clone();
        app.clock = Box::new(move || clock.load(Ordering::SeqCst));
        let app = Arc::new(app);
        bot.dependencies(dptree::deps![app.clone()]);
        Harness {
            bot,
            app,
            now,
            queries: AtomicU32::new(0),
        }
    }

    /// Dispatches one update and returns what the bot did with the Bot API. Every reply must
    /// have left the outbox by then.
    pub async fn dispatch(&mut self, update: impl IntoUpdate) -> Responses {
        self.bot.update(update);
        self.bot.dispatch().await;
        let pending = self.app.store.pending().await.expect("outbox readable");
        assert!(pending.is_empty(), "undelivered replies: {pending:?}");
        self.bot.get_responses()
    }

    /// Delivers the last update again, with the same update id (as Telegram does after a
    /// crash before the offset was confirmed, or when a webhook call is retried).
    pub async fn redeliver_last(&mut self) -> Responses {
        let again = self.bot.updates.clone();
        self.bot.dispatch().await;
        self.bot.updates = again;
        self.bot.get_responses()
    }

    /// Runs the check-in scheduler once (as the bot does every few seconds).
    pub async fn tick(&mut self, anyone: &User) -> Responses {
        let chat = private(anyone);
        self.text(anyone, &chat, TICK).await
    }

    /// Moves the fake clock forward.
    pub fn advance_days(&self, days: i64) {
        self.now.fetch_add(days * 86_400, Ordering::SeqCst);
    }

    /// `from` types `text` in `chat`.
    pub async fn text(&mut self, from: &User, chat: &Chat, text: &str) -> Responses {
        self.dispatch(
            MockMessageText::new()
                .text(text)
                .from(from.clone())
                .chat(chat.clone()),
        )
        .await
    }

    /// `from` presses a button carrying `data` on the bot's `message`.
    pub async fn press(&mut self, from: &User, message: &Message, data: &str) -> Responses {
        let query = self.query(from).message(message.clone()).data(data);
        self.dispatch(query).await
    }

    /// `from` presses the button labelled `label` on `shown`.
    pub async fn press_label(&mut self, from: &User, shown: &Shown, label: &str) -> Responses {
        let data = shown.data(label);
        self.press(from, &shown.message, &data).await
    }

    /// A callback query from `from` with a fresh id.
    pub fn query(&self, from: &User) -> MockCallbackQuery {
        let n = self.queries.fetch_add(1, Ordering::SeqCst);
        MockCallbackQuery::new()
            .id(CallbackQueryId(format!("query-{n}")))
            .from(from.clone())
    }

    /// The member's stored state while they have a check; `None` once it is over (the bot
    /// keeps a record of recent update ids, without any check, to recognise redeliveries).
    pub async fn load(&self, chat: i64, user: &User) -> Option<Member> {
        self.app
            .store
            .load(key(chat, user))
            .await
            .expect("store readable")
            .filter(|m| m.check.is_some())
    }

    /// What a member's stored state means to them: the check and when it last changed
    /// (leaving out the store's own bookkeeping, such as revision counters).
    pub async fn state(&self, chat: i64, user: &User) -> Option<(Option<Check>, i64)> {
        self.load(chat, user).await.map(|m| (m.check, m.updated_at))
    }

    pub async fn user_lang(&self, user: &User) -> Option<String> {
        self.app
            .store
            .user_lang(user.id.0 as i64)
            .await
            .expect("store readable")
    }

    pub fn advance(&self, seconds: i64) {
        self.now.fetch_add(seconds, Ordering::SeqCst);
    }
}
