//! Where the bot keeps its state: each member's check, languages chosen with /lang, and the
//! outbox of replies decided but not yet confirmed by Telegram. One trait, several backends.

mod redis;
mod sqlite;

pub use self::redis::RedisStore;
pub use sqlite::SqliteStore;

use serde::{Deserialize, Serialize};

use crate::engine::SessionRecord;

/// A member of a chat: in a private chat `chat == user`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemberKey {
    pub chat: i64,
    pub user: i64,
}

/// What the bot remembers about one member in one chat.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Member {
    pub check: Option<Check>,
    /// Unix seconds of the last change; members idle past the time limit are purged.
    pub updated_at: i64,
    /// Bumped by the store at every commit: a commit based on an older revision is refused,
    /// so two instances handling the same member at once cannot overwrite each other.
    #[serde(default)]
    pub rev: u64,
    /// Ids of the member's last updates, so that a redelivered update is not applied twice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<u32>,
    /// A check-in offer waiting for an answer (after a self-care or see-a-professional outcome).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<Offer>,
    /// A check-in being answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followup: Option<Active>,
}

/// What a check concluded, kept to offer a check-in about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// Random id carried by the offer's buttons.
    pub id: u32,
    pub flow: String,
    pub urgency: crate::urgency::Urgency,
    /// Unix seconds of the check's outcome.
    pub checked_at: i64,
}

/// A check-in in progress in a private chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Active {
    pub id: u32,
    pub version: u32,
    pub followup: crate::engine::FollowUp,
    pub checked_at: i64,
    pub message_id: Option<i32>,
}

/// A scheduled check-in: in a private chat with `user`, at `due_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckIn {
    /// Given by the store.
    #[serde(default)]
    pub id: i64,
    pub user: i64,
    /// The offer it answers: scheduling the same offer twice keeps one check-in.
    pub offer: u32,
    pub flow: String,
    pub urgency: crate::urgency::Urgency,
    pub lang: String,
    pub checked_at: i64,
    pub due_at: i64,
}

/// A check in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Random id, carried by the check's buttons: a press on another check's button is stale.
    pub id: u32,
    /// Bumped at every change; a button of an older version shows the current question again.
    pub version: u32,
    /// The answers so far (ids only).
    pub session: SessionRecord,
    /// The question message edited in place, once Telegram has confirmed it.
    pub message_id: Option<i32>,
}

/// One inline button: a callback or a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

pub type Keyboard = Vec<Vec<Button>>;

/// A reply to deliver. Stored in the outbox before it is sent, so that a crash or a Telegram
/// error between deciding and sending loses nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Effect {
    /// Send an HTML message. With `question_of`, the sent message becomes that check's
    /// question message (edited in place from then on).
    Send {
        chat: i64,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keyboard: Option<Keyboard>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        question_of: Option<(MemberKey, u32)>,
    },
    /// Replace the text and buttons of a message the bot sent.
    Edit {
        chat: i64,
        message_id: i32,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keyboard: Option<Keyboard>,
    },
    /// Remove the buttons of a message the bot sent, leaving its text.
    ClearButtons { chat: i64, message_id: i32 },
}

impl Effect {
    pub fn chat(&self) -> i64 {
        match self {
            Effect::Send { chat, .. }
            | Effect::Edit { chat, .. }
            | Effect::ClearButtons { chat, .. } => *chat,
        }
    }
}

/// Opens the store a `--storage` setting names: `sqlite:PATH` (or a bare path) or
/// `redis://HOST:PORT/DB` (checked to answer now, not at the first message).
pub async fn open(spec: &str) -> Result<std::sync::Arc<dyn Store>> {
    if spec.starts_with("redis://") || spec.starts_with("rediss://") {
        let store = RedisStore::open(spec, "gymtriage:")?;
        store.ping().await?;
        Ok(std::sync::Arc::new(store))
    } else {
        let path = spec.strip_prefix("sqlite:").unwrap_or(spec);
        Ok(std::sync::Arc::new(SqliteStore::open(
            std::path::Path::new(path),
        )?))
    }
}

/// An outbox entry: its id and what to deliver.
pub type Pending = (i64, Effect);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored data could not be read: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("the store's lock was poisoned by a crash in another thread")]
    Poisoned,
    #[error("Redis error: {0}")]
    Redis(#[from] ::redis::RedisError),
    #[error("the store is unreachable")]
    Unavailable,
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A backend. Every method is one atomic operation. Methods are async because Redis is
/// network I/O (its calls from many handlers pipeline on one connection); the SQLite backend
/// does its work inline, which is short: a local file in WAL mode, commits never wait for a
/// disk sync (checkpoints run on a background thread).
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    async fn load(&self, key: MemberKey) -> Result<Option<Member>>;
    /// The member and the language its user chose with /lang, in one round trip: what every
    /// update needs first.
    async fn load_with_lang(&self, key: MemberKey) -> Result<(Option<Member>, Option<String>)> {
        Ok((self.load(key).await?, self.user_lang(key.user).await?))
    }
    /// Saves the member (or deletes it when `None`) and queues `outbox`, atomically, if the
    /// stored revision is still `expected` (0 for a member not stored); returns the ids of the
    /// queued entries in order, or `Ok(None)` when someone else committed first (reload and
    /// decide again). The saved member gets revision `expected + 1`.
    async fn commit_if(
        &self,
        key: MemberKey,
        expected: u64,
        member: Option<&Member>,
        outbox: &[Effect],
    ) -> Result<Option<Vec<i64>>>;
    /// Like [`Store::commit_if`] against whatever is stored now (last writer wins).
    async fn commit(
        &self,
        key: MemberKey,
        member: Option<&Member>,
        outbox: &[Effect],
    ) -> Result<Vec<i64>> {
        loop {
            let current = self.load(key).await?.map_or(0, |m| m.rev);
            if let Some(ids) = self.commit_if(key, current, member, outbox).await? {
                return Ok(ids);
            }
        }
    }
    /// Records the message id Telegram gave a check's (or a check-in's) question message, if
    /// it is still the member's current one.
    async fn set_message_id(&self, key: MemberKey, check: u32, message_id: i32) -> Result<()> {
        loop {
            let Some(mut m) = self.load(key).await? else {
                return Ok(());
            };
            let rev = m.rev;
            if let Some(c) = m.check.as_mut().filter(|c| c.id == check) {
                c.message_id = Some(message_id);
            } else if let Some(f) = m.followup.as_mut().filter(|f| f.id == check) {
                f.message_id = Some(message_id);
            } else {
                return Ok(());
            }
            if self.commit_if(key, rev, Some(&m), &[]).await?.is_some() {
                return Ok(());
            }
        }
    }
    /// Removes delivered (or undeliverable) outbox entries.
    async fn delivered(&self, ids: &[i64]) -> Result<()>;
    /// Every outbox entry not yet delivered, oldest first.
    async fn pending(&self) -> Result<Vec<Pending>>;
    async fn user_lang(&self, user: i64) -> Result<Option<String>>;
    async fn set_user_lang(&self, user: i64, lang: &str) -> Result<()>;
    /// Deletes everything about `user` in every chat; returns how many records went.
    async fn forget_user(&self, user: i64) -> Result<usize>;
    /// Deletes members idle since before `cutoff` (unix seconds); returns how many.
    async fn purge_idle(&self, cutoff: i64) -> Result<usize>;
    /// How many members are stored (for tests and benchmarks).
    async fn count_members(&self) -> Result<usize>;
    /// Schedules a check-in, once per (user, offer): scheduling it again returns the same id.
    async fn schedule(&self, c: &CheckIn) -> Result<i64>;
    /// Check-ins due at `now`, oldest first, at most `limit`.
    async fn due(&self, now: i64, limit: usize) -> Result<Vec<CheckIn>>;
    /// A user's scheduled check-ins, soonest first.
    async fn checkins_of(&self, user: i64) -> Result<Vec<CheckIn>>;
    /// Cancels one of a user's check-ins; false if there was none with that id.
    async fn cancel_checkin(&self, user: i64, id: i64) -> Result<bool>;
    /// Fires a due check-in exactly once: if check-in `id` is still scheduled, removes it and
    /// commits like [`Store::commit_if`], all atomically; `Ok(None)` if it was already fired
    /// (by this or another instance) or the member changed.
    async fn fire(
        &self,
        id: i64,
        key: MemberKey,
        expected: u64,
        member: Option<&Member>,
        outbox: &[Effect],
    ) -> Result<Option<Vec<i64>>>;
}
