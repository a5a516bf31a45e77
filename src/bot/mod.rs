//! The Telegram front end (`gymtriage run`): a thin shell over the engine. `schema()` is the
//! routing table; `conversation` decides replies without I/O; `handlers` store and deliver
//! them; `store` keeps state across restarts; `telegram` talks to the Bot API.

pub mod callback;
pub mod checkin;
pub mod conversation;
pub mod handlers;
pub mod limiter;
pub mod logging;
pub mod outbox;
pub mod render;
pub mod store;
pub mod telegram;
pub mod wire;

use std::collections::HashSet;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use teloxide::dispatching::{DefaultKey, UpdateHandler};
use teloxide::prelude::*;
use teloxide::types::BotCommand;
use teloxide::{ApiError, RequestError};

use crate::dialogue::model::Dialogues;
use conversation::Conversation;
use store::Store;
use telegram::Telegram;

/// Shared by every handler.
pub struct App {
    pub d: Dialogues,
    pub store: Arc<dyn Store>,
    /// Delivers committed replies: inside the handler by default (handler tests); `run`
    /// replaces it with per-chat background delivery (see [`App::deliver_in_background`]).
    pub outbox: Arc<outbox::Outbox>,
    /// Idle checks older than this are purged.
    pub ttl: Duration,
    /// Unix seconds now; replaceable so that tests control time.
    pub clock: Box<dyn Fn() -> i64 + Send + Sync>,
    /// Per-member flood control.
    pub limiter: limiter::Limiter,
}

impl App {
    pub fn new(d: Dialogues, store: Arc<dyn Store>, ttl: Duration) -> App {
        App {
            d,
            outbox: outbox::Outbox::new(store.clone(), false),
            store,
            ttl,
            clock: Box::new(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64)
            }),
            limiter: limiter::Limiter::default(),
        }
    }

    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    pub fn conversation<'a>(&'a self, bot_username: &'a str) -> Conversation<'a> {
        Conversation {
            d: &self.d,
            bot_username,
            now: self.now(),
        }
    }

    pub fn new_check_id(&self) -> u32 {
        rand::random()
    }

    /// Deletes checks idle for longer than the time limit; returns how many.
    pub async fn purge(&self) -> store::Result<usize> {
        self.store
            .purge_idle(self.now() - self.ttl.as_secs() as i64)
            .await
    }

    /// Replies are delivered by per-chat tasks, so that handlers return as soon as the
    /// update is committed, and confirmed edits leave the outbox in batches (the caller
    /// runs [`outbox::Outbox::flush`] every [`outbox::FLUSH_EVERY`]).
    pub fn deliver_in_background(&mut self) {
        self.outbox = outbox::Outbox::new(self.store.clone(), true);
    }
}

/// The bot's routing table: messages, edited messages and button presses.
pub fn schema<T: Telegram>() -> UpdateHandler<handlers::HandlerError> {
    use teloxide::types::UpdateKind as K;
    dptree::entry()
        .branch(
            incoming(Update::filter_message(), |k| match k {
                K::Message(m) => Some(m),
                _ => None,
            })
            .endpoint(handlers::on_message::<T>),
        )
        .branch(
            incoming(Update::filter_edited_message(), |k| match k {
                K::EditedMessage(m) => Some(m),
                _ => None,
            })
            .endpoint(handlers::on_edited::<T>),
        )
        .branch(
            incoming(Update::filter_callback_query(), |k| match k {
                K::CallbackQuery(q) => Some(q),
                _ => None,
            })
            .endpoint(handlers::on_callback::<T>),
        )
}

/// Does what teloxide's `filter` does (same update kinds, so the same `allowed_updates` in
/// `getUpdates`), but moves the content out of the update together with the update's id,
/// into one shared [`handlers::Incoming`]: the update is cloned once per dispatch, not once
/// per handler argument.
fn incoming<I: Send + Sync + 'static>(
    filter: UpdateHandler<handlers::HandlerError>,
    pick: fn(teloxide::types::UpdateKind) -> Option<I>,
) -> UpdateHandler<handlers::HandlerError> {
    dptree::filter_map_with_description(filter.description().clone(), move |u: Update| {
        let update = u.id.0;
        pick(u.kind).map(|item| Arc::new(handlers::Incoming { update, item }))
    })
}

/// The commands in every language, for setMyCommands.
pub fn commands(d: &Dialogues, lang: crate::dialogue::Lang) -> Vec<BotCommand> {
    let b = &d.ui().bot;
    [
        ("start", &b.cmd_start),
        ("check", &b.cmd_check),
        ("back", &b.cmd_back),
        ("cancel", &b.cmd_cancel),
        ("help", &b.cmd_help),
        ("lang", &b.cmd_lang),
        ("privacy", &b.cmd_privacy),
        ("forget", &b.cmd_forget),
        ("checkins", &d.followups().cmd_checkins),
    ]
    .into_iter()
    .map(|(c, t)| BotCommand::new(c, t.get(lang)))
    .collect()
}

/// Sends the check-ins that are due, each exactly once (even with several instances): the
/// check-in leaves the schedule in the same atomic step that stores the member's new state
/// and queues the question. Returns how many were sent.
pub async fn fire_due<T: Telegram>(bot: &T, app: &Arc<App>, bot_username: &str) -> usize {
    let due = match app.store.due(app.now(), 100).await {
        Ok(d) => d,
        Err(_) => {
            log::error!("could not read the check-in schedule");
            return 0;
        }
    };
    let mut sent = 0;
    for c in due {
        let key = store::MemberKey {
            chat: c.user,
            user: c.user,
        };
        let who = conversation::Who {
            chat: c.user,
            user: c.user,
            first_name: "",
            group: false,
            lang: app.d.lang(&c.lang).unwrap_or_default(),
        };
        // Retried when the member changed meanwhile; gives up when it was fired elsewhere.
        for _ in 0..5 {
            let base = match app.store.load(key).await {
                Ok(b) => b,
                Err(_) => break,
            };
            let expected = base.as_ref().map_or(0, |m| m.rev);
            let plan = app.conversation(bot_username).start_followup(
                who,
                base.unwrap_or_default(),
                &c,
                app.new_check_id(),
            );
            let fired = app
                .store
                .fire(c.id, key, expected, plan.member.as_ref(), &plan.effects)
                .await;
            match fired {
                Ok(Some(ids)) => {
                    sent += 1;
                    for (id, effect) in ids.into_iter().zip(plan.effects) {
                        telegram::deliver(bot, &app.outbox, id, effect).await;
                    }
                    break;
                }
                Ok(None) => continue,
                _ => {
                    log::error!("could not send a due check-in");
                    break;
                }
            }
        }
    }
    if sent > 0 {
        log::info!("sent {sent} check-ins");
    }
    sent
}

/// Sends every reply decided but not yet confirmed: after a restart, every pending one;
/// in the background (with `previous`), only those already pending at the previous sweep,
/// so that replies another task or instance is still delivering are left to it.
pub async fn redeliver<T: Telegram>(
    bot: &T,
    app: &Arc<App>,
    previous: Option<&HashSet<i64>>,
) -> HashSet<i64> {
    let pending = match app.store.pending().await {
        Ok(p) => p,
        Err(_) => {
            log::error!("could not read the outbox");
            return HashSet::new();
        }
    };
    let now: HashSet<i64> = pending.iter().map(|(id, _)| *id).collect();
    let due: Vec<_> = pending
        .into_iter()
        .filter(|(id, _)| previous.is_none_or(|p| p.contains(id)))
        .collect();
    if !due.is_empty() {
        log::info!("delivering {} pending replies", due.len());
    }
    for (id, effect) in due {
        telegram::deliver(bot, &app.outbox, id, effect).await;
    }
    now
}

/// Options of `gymtriage run`.
pub struct RunOptions {
    /// How often due check-ins are looked for.
    pub checkin_poll: Duration,
    /// Testing: a file holding a number of seconds added to the clock (read at every use).
    pub clock_file: Option<std::path::PathBuf>,
    /// Webhook mode: the public HTTPS address Telegram posts to, the local address to listen
    /// on, and the secret Telegram must send in `X-Telegram-Bot-Api-Secret-Token`.
    pub webhook: Option<Webhook>,
    /// `sqlite:PATH` or `redis://HOST:PORT/DB`.
    pub storage: String,
    pub ttl: Duration,
    pub dialogues: Dialogues,
}

/// Webhook settings of `gymtriage run --webhook`.
pub struct Webhook {
    pub url: url::Url,
    pub listen: std::net::SocketAddr,
    pub secret: String,
}

/// A webhook secret is 1 to 256 characters of `A-Za-z0-9_-` (Bot API rule).
pub fn valid_secret(s: &str) -> bool {
    (1..=256).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Runs the bot with long polling (or a webhook) until Ctrl-C. Exit code 2 for a missing or rejected token.
pub async fn run(opts: RunOptions) -> anyhow::Result<ExitCode> {
    let token = std::env::var("TELOXIDE_TOKEN").unwrap_or_default();
    logging::init(vec![token.clone()]);
    if token.trim().is_empty() {
        eprintln!(
            "error: TELOXIDE_TOKEN is not set; create a bot with @BotFather and run TELOXIDE_TOKEN=<token> gymtriage run"
        );
        return Ok(ExitCode::from(2));
    }
    if let Ok(url) = std::env::var("TELOXIDE_API_URL")
        && reqwest_url_ok(&url).is_err()
    {
        eprintln!("error: TELOXIDE_API_URL is not a valid URL");
        return Ok(ExitCode::from(2));
    }
    let bot = Bot::from_env();
    let me = match bot.get_me().await {
        Ok(me) => me,
        Err(RequestError::Api(ApiError::InvalidToken)) => {
            eprintln!(
                "error: Telegram rejected the bot token (401 Unauthorized); check TELOXIDE_TOKEN"
            );
            return Ok(ExitCode::from(2));
        }
        Err(e) => {
            eprintln!(
                "error: cannot reach the Bot API: {}",
                telegram::describe(&e)
            );
            return Ok(ExitCode::from(1));
        }
    };
    log::info!("starting as @{}", me.username());
    let store = match store::open(&opts.storage).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot open the storage {}: {e}", opts.storage);
            return Ok(ExitCode::from(1));
        }
    };
    let mut app = App::new(opts.dialogues, store, opts.ttl);
    app.deliver_in_background();
    if let Some(file) = opts.clock_file {
        let base = std::mem::replace(&mut app.clock, Box::new(|| 0));
        app.clock = Box::new(move || {
            let offset = std::fs::read_to_string(&file)
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .unwrap_or(0);
            base() + offset
        });
    }
    let app = Arc::new(app);
    let bot = bot.throttle(teloxide::adaptors::throttle::Limits::default());

    for (i, code) in app.d.languages().iter().enumerate() {
        let lang = crate::dialogue::Lang::from_index(i);
        let cmds = commands(&app.d, lang);
        if i == 0
            && let Err(e) = bot.set_commands(cmds.clone(), None).await
        {
            log::warn!("setMyCommands failed: {}", telegram::describe(&e));
        }
        if let Err(e) = bot.set_commands(cmds, Some(code.clone())).await {
            log::warn!("setMyCommands ({code}) failed: {}", telegram::describe(&e));
        }
    }

    // Replies decided before a crash go out first; then a background loop retries any that
    // failed, and purges idle checks; another sends check-ins when they are due (also those
    // that fell due while the bot was down).
    redeliver(&bot, &app, None).await;
    {
        let outbox = app.outbox.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(outbox::FLUSH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                outbox.flush().await;
            }
        });
    }
    {
        let (bot, app, name) = (bot.clone(), app.clone(), me.username().to_string());
        let every = opts.checkin_poll;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                fire_due(&bot, &app, &name).await;
            }
        });
    }
    {
        let (bot, app) = (bot.clone(), app.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            let mut previous = HashSet::new();
            loop {
                tick.tick().await;
                match app.purge().await {
                    Ok(n) if n > 0 => log::info!("purged {n} idle checks"),
                    Ok(_) => {}
                    Err(_) => log::error!("purging idle checks failed"),
                }
                previous = redeliver(&bot, &app, Some(&previous)).await;
            }
        });
    }

    let mut dispatcher = Dispatcher::<_, _, DefaultKey>::builder(
        bot.clone(),
        schema::<teloxide::adaptors::Throttle<Bot>>(),
    )
    .dependencies(dptree::deps![app.clone()])
    .default_handler(|_| async {})
    .error_handler(Arc::new(LogErrors))
    .enable_ctrlc_handler()
    .build();
    match opts.webhook {
        None => dispatcher.dispatch().await,
        Some(w) => {
            use teloxide::update_listeners::webhooks;
            log::info!("webhook mode: listening on {}", w.listen);
            let options = webhooks::Options::new(w.listen, w.url).secret_token(w.secret);
            let listener = match webhooks::axum(bot, options).await {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("error: setWebhook failed: {}", telegram::describe(&e));
                    return Ok(ExitCode::from(1));
                }
            };
            dispatcher
                .dispatch_with_listener(
                    listener,
                    teloxide::error_handlers::LoggingErrorHandler::with_custom_text(
                        "webhook listener error",
                    ),
                )
                .await
        }
    }
    // Stopped (Ctrl-C): let replies under way finish for a few seconds; whatever does not
    // stays in the outbox and goes out at the next start.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while app.outbox.busy() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.outbox.flush().await;
    Ok(ExitCode::SUCCESS)
}

fn reqwest_url_ok(url: &str) -> Result<(), ()> {
    let ok = (url.starts_with("http://") || url.starts_with("https://")) && url.len() > 8;
    if ok { Ok(()) } else { Err(()) }
}

/// Logs handler errors without their payload.
struct LogErrors;

impl teloxide::error_handlers::ErrorHandler<handlers::HandlerError> for LogErrors {
    fn handle_error(
        self: Arc<Self>,
        error: handlers::HandlerError,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        let kind = if error.is::<store::StoreError>() {
            "storage"
        } else {
            "handler"
        };
        log::error!("{kind} error: {error}");
        Box::pin(async {})
    }
}
