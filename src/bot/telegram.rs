//! The few Bot API calls the bot makes, behind one trait implemented for teloxide's `Bot`
//! (handler tests) and `Throttle<Bot>` (production: paced to Telegram's limits), and the
//! delivery of outbox entries with retries.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use teloxide::adaptors::Throttle;
use teloxide::prelude::*;
use teloxide::types::{BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Me, ParseMode};
use teloxide::{ApiError, RequestError};

use super::outbox::Outbox;
use super::store::{Effect, Keyboard, Store};
use super::wire;

/// The Bot API calls gymtriage needs.
pub trait Telegram: Clone + Send + Sync + 'static {
    fn send_html(
        &self,
        chat: i64,
        text: &str,
        keyboard: Option<&Keyboard>,
    ) -> impl Future<Output = Result<i32, RequestError>> + Send;
    fn edit_html(
        &self,
        chat: i64,
        message_id: i32,
        text: &str,
        keyboard: Option<&Keyboard>,
    ) -> impl Future<Output = Result<(), RequestError>> + Send;
    fn clear_buttons(
        &self,
        chat: i64,
        message_id: i32,
    ) -> impl Future<Output = Result<(), RequestError>> + Send;
    fn answer_query(
        &self,
        id: &str,
        text: Option<&str>,
        alert: bool,
    ) -> impl Future<Output = Result<(), RequestError>> + Send;
    fn set_commands(
        &self,
        commands: Vec<BotCommand>,
        lang: Option<String>,
    ) -> impl Future<Output = Result<(), RequestError>> + Send;
    fn me(&self) -> impl Future<Output = Result<Me, RequestError>> + Send;
}

/// `sendMessage` goes through teloxide (and, in production, its `Throttle`, which paces
/// it); the calls every press makes go through [`wire`], on the plain `Bot` underneath
/// (`$plain` gets it from `$s`, the adaptor).
macro_rules! impl_telegram {
    ($t:ty, |$s:ident| $plain:expr) => {
        impl Telegram for $t {
            async fn send_html(
                &self,
                chat: i64,
                text: &str,
                keyboard: Option<&Keyboard>,
            ) -> Result<i32, RequestError> {
                let mut req = self
                    .send_message(ChatId(chat), text)
                    .parse_mode(ParseMode::Html);
                if let Some(k) = keyboard {
                    req = req.reply_markup(markup(k));
                }
                Ok(req.await?.id.0)
            }

            async fn edit_html(
                &self,
                chat: i64,
                message_id: i32,
                text: &str,
                keyboard: Option<&Keyboard>,
            ) -> Result<(), RequestError> {
                {
                    let $s = self;
                    wire::edit_text($plain, chat, message_id, text, keyboard).await
                }
            }

            async fn clear_buttons(&self, chat: i64, message_id: i32) -> Result<(), RequestError> {
                {
                    let $s = self;
                    wire::clear_buttons($plain, chat, message_id).await
                }
            }

            async fn answer_query(
                &self,
                id: &str,
                text: Option<&str>,
                alert: bool,
            ) -> Result<(), RequestError> {
                {
                    let $s = self;
                    wire::answer_query($plain, id, text, alert).await
                }
            }

            async fn set_commands(
                &self,
                commands: Vec<BotCommand>,
                lang: Option<String>,
            ) -> Result<(), RequestError> {
                let mut req = self.set_my_commands(commands);
                if let Some(l) = lang {
                    req = req.language_code(l);
                }
                req.await.map(drop)
            }

            async fn me(&self) -> Result<Me, RequestError> {
                self.get_me().await
            }
        }
    };
}

impl_telegram!(Bot, |b| b);
impl_telegram!(Throttle<Bot>, |b| b.inner());

pub fn markup(keyboard: &Keyboard) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(keyboard.iter().map(|row| {
        row.iter()
            .filter_map(|b| match (&b.data, &b.url) {
                (Some(data), _) => {
                    Some(InlineKeyboardButton::callback(b.text.clone(), data.clone()))
                }
                (None, Some(url)) => url
                    .parse()
                    .ok()
                    .map(|u| InlineKeyboardButton::url(b.text.clone(), u)),
                (None, None) => None,
            })
            .collect::<Vec<_>>()
    }))
}

/// What to do after a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// Telegram asks to wait this long.
    Wait(Duration),
    /// Worth trying again after a pause (5xx, dropped connection, garbled answer).
    Transient,
    /// The edit is a no-op: the message already shows this.
    AlreadyDone,
    /// The message to edit is gone: send a new one instead.
    EditTargetGone,
    /// Will never work (blocked, chat not found, bad request): drop it and log.
    Permanent,
}

fn classify(e: &RequestError) -> Failure {
    match e {
        RequestError::RetryAfter(s) => Failure::Wait(s.duration()),
        RequestError::Network(_) | RequestError::Io(_) | RequestError::InvalidJson { .. } => {
            Failure::Transient
        }
        RequestError::Api(ApiError::MessageNotModified) => Failure::AlreadyDone,
        RequestError::Api(ApiError::MessageToEditNotFound | ApiError::MessageCantBeEdited) => {
            Failure::EditTargetGone
        }
        RequestError::Api(ApiError::Unknown(text)) => {
            let t = text.to_ascii_lowercase();
            if t.contains("internal server error")
                || t.contains("bad gateway")
                || t.contains("gateway")
                || t.contains("service unavailable")
                || t.contains("too many requests")
            {
                Failure::Transient
            } else {
                Failure::Permanent
            }
        }
        RequestError::Api(_) | RequestError::MigrateToChatId(_) => Failure::Permanent,
    }
}

/// Attempts per delivery before the entry is left for the background redelivery.
const ATTEMPTS: u32 = 6;
/// Longest wait honoured for a 429 inside one delivery.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// The outbox entries this process is delivering, and the last ones it delivered, for one
/// store. The background redelivery reads every pending entry, including those a handler is
/// still sending (waiting out a 429, retrying a 5xx, queued behind a group's rate limit):
/// without this it sent them a second time.
struct Claims {
    store: Weak<dyn Store>,
    busy: HashSet<i64>,
    done: HashSet<i64>,
    done_order: VecDeque<i64>,
}

static CLAIMS: Mutex<Vec<Claims>> = Mutex::new(Vec::new());

/// Delivered entries remembered per store (more than one redelivery pass can hold).
const REMEMBERED: usize = 4096;

/// This process's claim on an outbox entry while it delivers it; released when dropped.
struct Claim<'a> {
    store: &'a Arc<dyn Store>,
    id: i64,
    delivered: bool,
}

impl<'a> Claim<'a> {
    /// None if this process is already delivering the entry, or has delivered it.
    fn take(store: &'a Arc<dyn Store>, id: i64) -> Option<Claim<'a>> {
        let mut all = CLAIMS.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|c| c.store.strong_count() > 0);
        let same = |c: &Claims| {
            c.store
                .upgrade()
                .is_some_and(|s| std::ptr::addr_eq(Arc::as_ptr(&s), Arc::as_ptr(store)))
        };
        let i = match all.iter().position(same) {
            Some(i) => i,
            None => {
                all.push(Claims {
                    store: Arc::downgrade(store),
                    busy: HashSet::new(),
                    done: HashSet::new(),
                    done_order: VecDeque::new(),
                });
                all.len() - 1
            }
        };
        let c = &mut all[i];
        if c.done.contains(&id) || !c.busy.insert(id) {
            return None;
        }
        Some(Claim {
            store,
            id,
            delivered: false,
        })
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut all = CLAIMS.lock().unwrap_or_else(|e| e.into_inner());
        let Some(c) = all.iter_mut().find(|c| {
            c.store
                .upgrade()
                .is_some_and(|s| std::ptr::addr_eq(Arc::as_ptr(&s), Arc::as_ptr(self.store)))
        }) else {
            return;
        };
        c.busy.remove(&self.id);
        if self.delivered && c.done.insert(self.id) {
            c.done_order.push_back(self.id);
            if c.done_order.len() > REMEMBERED
                && let Some(old) = c.done_order.pop_front()
            {
                c.done.remove(&old);
            }
        }
    }
}

/// Delivers one outbox entry, with retries; removes it from the outbox once Telegram has it
/// (or it can never be delivered). Returns false if it is still pending. An entry this
/// process is already delivering, or has delivered, is left alone (true).
pub async fn deliver<T: Telegram>(bot: &T, outbox: &Outbox, id: i64, effect: Effect) -> bool {
    let Some(mut claim) = Claim::take(&outbox.store, id) else {
        log::debug!("outbox entry already being delivered by this process");
        return true;
    };
    claim.delivered = deliver_claimed(bot, outbox, id, effect).await;
    claim.delivered
}

async fn deliver_claimed<T: Telegram>(bot: &T, outbox: &Outbox, id: i64, effect: Effect) -> bool {
    let mut effect = effect;
    let mut backoff = Duration::from_millis(300);
    for attempt in 1..=ATTEMPTS {
        let result = match &effect {
            Effect::Send {
                chat,
                text,
                keyboard,
                question_of,
            } => match bot.send_html(*chat, text, keyboard.as_ref()).await {
                Ok(message_id) => {
                    // Telegram has it: clear the outbox entry first, so that a crash from
                    // here on cannot send it again (a missing message id only means the next
                    // answer arrives as a new message).
                    outbox.confirmed(id, true).await;
                    if let Some((key, check)) = question_of
                        && outbox
                            .store
                            .set_message_id(*key, *check, message_id)
                            .await
                            .is_err()
                    {
                        log::error!("could not record a question message id");
                    }
                    return true;
                }
                Err(e) => Err(e),
            },
            Effect::Edit {
                chat,
                message_id,
                text,
                keyboard,
            } => {
                bot.edit_html(*chat, *message_id, text, keyboard.as_ref())
                    .await
            }
            Effect::ClearButtons { chat, message_id } => {
                bot.clear_buttons(*chat, *message_id).await
            }
        };
        match result.as_ref().map_err(classify) {
            Ok(()) | Err(Failure::AlreadyDone) => return done(outbox, id, &effect).await,
            Err(Failure::EditTargetGone) => {
                if let Effect::Edit {
                    chat,
                    text,
                    keyboard,
                    ..
                } = effect
                {
                    log::info!("message to edit is gone; sending a new one");
                    effect = Effect::Send {
                        chat,
                        text,
                        keyboard,
                        question_of: None,
                    };
                } else {
                    // Nothing to clear on a message that is gone.
                    return done(outbox, id, &effect).await;
                }
            }
            Err(Failure::Permanent) => {
                if let Err(e) = &result {
                    log::warn!("dropping a reply Telegram will not take: {}", describe(e));
                }
                return done(outbox, id, &effect).await;
            }
            Err(Failure::Wait(d)) => {
                log::warn!(
                    "Telegram asked to wait {} s (attempt {attempt})",
                    d.as_secs()
                );
                tokio::time::sleep(d.min(MAX_WAIT)).await;
            }
            Err(Failure::Transient) => {
                if let Err(e) = &result {
                    log::warn!("Bot API call failed (attempt {attempt}): {}", describe(e));
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
    log::warn!("reply still pending after {ATTEMPTS} attempts; will retry in the background");
    false
}

/// The entry is done with: a sent message leaves the outbox at once, an edit with the next
/// batch (doing an edit again after a crash changes nothing).
async fn done(outbox: &Outbox, id: i64, effect: &Effect) -> bool {
    outbox
        .confirmed(id, matches!(effect, Effect::Send { .. }))
        .await;
    true
}

/// Describes an error without its payload (which may contain health answers).
pub fn describe(e: &RequestError) -> String {
    match e {
        RequestError::Api(api) => format!("Telegram error: {api}"),
        RequestError::MigrateToChatId(_) => "group migrated to a supergroup".into(),
        RequestError::RetryAfter(s) => format!("retry after {} s", s.seconds()),
        RequestError::Network(n) => format!(
            "network error{}",
            if n.is_timeout() { " (timeout)" } else { "" }
        ),
        RequestError::InvalidJson { .. } => "unreadable answer from the Bot API".into(),
        RequestError::Io(_) => "I/O error".into(),
    }
}

/// Answers a callback query (best effort: it expires after about 15 s anyway).
pub async fn answer<T: Telegram>(bot: &T, id: &str, text: Option<&str>, alert: bool) {
    for _ in 0..3 {
        match bot.answer_query(id, text, alert).await {
            Ok(()) => return,
            Err(e) => match classify(&e) {
                Failure::Wait(d) => tokio::time::sleep(d.min(Duration::from_secs(5))).await,
                Failure::Transient => tokio::time::sleep(Duration::from_millis(300)).await,
                _ => {
                    log::debug!("callback answer refused: {}", describe(&e));
                    return;
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_delivered_by_one_task_at_a_time_and_once() {
        let a: Arc<dyn Store> = Arc::new(crate::bot::store::SqliteStore::in_memory().unwrap());
        let b: Arc<dyn Store> = Arc::new(crate::bot::store::SqliteStore::in_memory().unwrap());
        let first = Claim::take(&a, 1).expect("free");
        assert!(Claim::take(&a, 1).is_none(), "being delivered");
        assert!(Claim::take(&b, 1).is_some(), "another store's entry 1");
        drop(first);
        let mut again = Claim::take(&a, 1).expect("still pending: may be retried");
        again.delivered = true;
        drop(again);
        assert!(Claim::take(&a, 1).is_none(), "delivered already");
        drop(a);
        let c: Arc<dyn Store> = Arc::new(crate::bot::store::SqliteStore::in_memory().unwrap());
        assert!(Claim::take(&c, 1).is_some(), "a new store starts afresh");
    }

    #[test]
    fn telegram_failures_are_sorted_into_what_to_do() {
        use teloxide::types::Seconds;
        assert_eq!(
            classify(&RequestError::RetryAfter(Seconds::from_seconds(3))),
            Failure::Wait(Duration::from_secs(3))
        );
        assert_eq!(
            classify(&RequestError::Api(ApiError::MessageNotModified)),
            Failure::AlreadyDone
        );
        assert_eq!(
            classify(&RequestError::Api(ApiError::BotBlocked)),
            Failure::Permanent
        );
        assert_eq!(
            classify(&RequestError::Api(ApiError::ChatNotFound)),
            Failure::Permanent
        );
        assert_eq!(
            classify(&RequestError::Api(ApiError::MessageToEditNotFound)),
            Failure::EditTargetGone
        );
        assert_eq!(
            classify(&RequestError::Api(ApiError::Unknown(
                "Internal Server Error".into()
            ))),
            Failure::Transient
        );
        assert_eq!(
            classify(&RequestError::Api(ApiError::Unknown("Bad Gateway".into()))),
            Failure::Transient
        );
    }
}
