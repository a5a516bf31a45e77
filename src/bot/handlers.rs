//! Update handlers: turn a Telegram update into a conversation step, store the result with
//! its replies in one transaction, then deliver the replies.

use std::sync::Arc;

use teloxide::types::{CallbackQuery, Me, Message, User};

use super::App;
use super::callback::{self, Action, Press};
use super::conversation::{Plan, Via, Who};
use super::limiter::Verdict;
use super::render;
use super::store::{Effect, Member, MemberKey};
use super::telegram::{self, Telegram};
use crate::engine::{FollowUpInput, Input};

pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;
pub type HandlerResult = Result<(), HandlerError>;

/// The update being handled, and the member state it was decided on.
#[derive(Clone, Copy)]
struct Turn<'a> {
    update: u32,
    base: &'a Option<Member>,
}

impl<'a> Turn<'a> {
    fn new(update: u32, base: &'a Option<Member>) -> Turn<'a> {
        Turn { update, base }
    }
}

/// Raised when another instance changed the member between our read and our write: the
/// whole update is handled again on fresh state.
#[derive(Debug, thiserror::Error)]
#[error("the member changed during the update")]
struct Conflict;

/// Raised for an update already applied (Telegram redelivers after a crash or a webhook
/// timeout): nothing is done twice.
#[derive(Debug, thiserror::Error)]
#[error("update already handled")]
struct Duplicate;

/// How many update ids a member remembers, for redeliveries.
const SEEN: usize = 16;

/// Loads a member for `update`; a `Duplicate` error if that update was already applied.
async fn load(app: &Arc<App>, key: MemberKey, update: u32) -> Result<Option<Member>, HandlerError> {
    fresh(app.store.load(key).await?, update)
}

/// `member`, unless it has already seen `update` (then a `Duplicate` error).
fn fresh(member: Option<Member>, update: u32) -> Result<Option<Member>, HandlerError> {
    if member.as_ref().is_some_and(|m| m.seen.contains(&update)) {
        return Err(Box::new(Duplicate));
    }
    Ok(member)
}

/// Stores the plan's new state and replies atomically (if the member is still as `turn.base`
/// was), then has the callback answered and the replies sent, in order, by the chat's
/// delivery queue. The member record is kept, with the update's id, even when its check is
/// over, so that a redelivered update is recognised.
async fn carry_out<T: Telegram>(
    bot: &T,
    app: &Arc<App>,
    key: MemberKey,
    turn: Turn<'_>,
    plan: Plan,
    query: Option<String>,
) -> HandlerResult {
    let Plan {
        member,
        effects,
        toast,
    } = plan;
    let expected = turn.base.as_ref().map_or(0, |m| m.rev);
    let mut seen = turn
        .base
        .as_ref()
        .map(|m| m.seen.clone())
        .unwrap_or_default();
    seen.push(turn.update);
    if seen.len() > SEEN {
        seen.drain(..seen.len() - SEEN);
    }
    let member = Member {
        seen,
        updated_at: app.now(),
        ..member.unwrap_or_default()
    };
    let ids = app
        .store
        .commit_if(key, expected, Some(&member), &effects)
        .await?;
    let Some(ids) = ids else {
        return Err(Box::new(Conflict));
    };
    let answer = query.map(|id| match toast {
        Some((t, a)) => (id, Some(t), a),
        None => (id, None, false),
    });
    send(bot, app, key, answer, ids, effects).await;
    Ok(())
}

/// Has the member's delivery queue answer the callback query, then deliver the committed
/// replies in order.
async fn send<T: Telegram>(
    bot: &T,
    app: &Arc<App>,
    member: MemberKey,
    answer: Option<(String, Option<String>, bool)>,
    ids: Vec<i64>,
    effects: Vec<Effect>,
) {
    if answer.is_none() && ids.is_empty() {
        return;
    }
    let (bot, outbox) = (bot.clone(), app.outbox.clone());
    let job = async move {
        if let Some((id, text, alert)) = answer {
            telegram::answer(&bot, &id, text.as_deref(), alert).await;
        }
        for (id, effect) in ids.into_iter().zip(effects) {
            telegram::deliver(&bot, &outbox, id, effect).await;
        }
    };
    app.outbox.submit(member, Box::pin(job)).await;
}

/// A plain text reply, through the outbox like every other reply; the member is unchanged.
async fn say<T: Telegram>(
    bot: &T,
    app: &Arc<App>,
    (who, base): (&Who<'_>, &Option<Member>),
    update: u32,
    text: &str,
) -> HandlerResult {
    let key = who.key();
    let effect = Effect::Send {
        chat: who.chat,
        text: render::plain(text),
        keyboard: None,
        question_of: None,
    };
    if base.is_none() {
        // Someone with nothing stored (a /help, a greeting) gets no record either.
        return queue(bot, app, key, effect).await;
    }
    let plan = Plan {
        member: base.clone(),
        effects: vec![effect],
        toast: None,
    };
    carry_out(bot, app, key, Turn::new(update, base), plan, None).await
}

fn plain_send(chat: i64, text: String) -> Effect {
    Effect::Send {
        chat,
        text,
        keyboard: None,
        question_of: None,
    }
}

/// Queues and sends a reply without storing anything about the member.
async fn queue<T: Telegram>(
    bot: &T,
    app: &Arc<App>,
    key: MemberKey,
    effect: Effect,
) -> HandlerResult {
    let effects = vec![effect];
    // Filed under user 0, who never has a member record: only the outbox entry is written,
    // and it does not depend on (or conflict with) the member's own state.
    let nobody = MemberKey {
        chat: key.chat,
        user: 0,
    };
    let ids = app
        .store
        .commit_if(nobody, 0, None, &effects)
        .await?
        .ok_or(Conflict)?;
    send(bot, app, key, None, ids, effects).await;
    Ok(())
}

/// Handles an update, again on fresh state when another instance got in first; a duplicate
/// update is dropped.
async fn retrying<F, Fut>(mut handle: F) -> HandlerResult
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = HandlerResult>,
{
    for _ in 0..8 {
        match handle().await {
            Err(e) if e.is::<Conflict>() => continue,
            Err(e) if e.is::<Duplicate>() => {
                log::debug!("dropped an update already handled");
                return Ok(());
            }
            other => return other,
        }
    }
    Err("the same member kept changing; update dropped".into())
}

/// Who sent the update, in their language, and their stored record in this chat (read in
/// the same round trip); a `Duplicate` error if that record has already seen `update`.
async fn who<'a>(
    app: &Arc<App>,
    chat: i64,
    group: bool,
    user: &'a User,
    update: u32,
) -> Result<(Who<'a>, Option<Member>), HandlerError> {
    let uid = user.id.0 as i64;
    let key = MemberKey { chat, user: uid };
    let (member, stored) = app.store.load_with_lang(key).await?;
    let lang = match stored.as_deref().and_then(|c| app.d.lang(c)) {
        Some(l) => l,
        None => app.d.lang_or_default(user.language_code.as_deref()),
    };
    let who = Who {
        chat,
        user: uid,
        first_name: &user.first_name,
        group,
        lang,
    };
    Ok((who, fresh(member, update)?))
}

/// `/name@bot args` → (name, args), or None when the command is for another bot.
fn parse_command<'a>(text: &'a str, me: &Me) -> Option<(String, &'a str)> {
    let rest = text.strip_prefix('/')?;
    let (head, args) = match rest.split_once(char::is_whitespace) {
        Some((h, a)) => (h, a.trim()),
        None => (rest, ""),
    };
    let (name, target) = match head.split_once('@') {
        Some((n, t)) => (n, Some(t)),
        None => (head, None),
    };
    if let Some(t) = target
        && !me.username().eq_ignore_ascii_case(t)
    {
        return None;
    }
    Some((name.to_ascii_lowercase(), args))
}

fn is_reply_to_me(msg: &Message, me: &Me) -> bool {
    msg.reply_to_message()
        .and_then(|m| m.from.as_ref())
        .is_some_and(|u| u.id == me.id)
}

/// An update's id and its content, taken out of the `Update` once by the routing table
/// ([`super::schema`]): dptree hands each handler argument over by cloning it, and a button
/// press carries the whole message it was made on.
pub struct Incoming<T> {
    pub update: u32,
    pub item: T,
}

pub async fn on_message<T: Telegram>(
    bot: T,
    me: Me,
    msg: Arc<Incoming<Message>>,
    app: Arc<App>,
) -> HandlerResult {
    retrying(|| message(&bot, &me, &msg.item, msg.update, &app)).await
}

async fn message<T: Telegram>(
    bot: &T,
    me: &Me,
    msg: &Message,
    update: u32,
    app: &Arc<App>,
) -> HandlerResult {
    let Some(user) = msg.from.as_ref().filter(|u| !u.is_bot) else {
        return Ok(());
    };
    let group = !msg.chat.is_private();
    let (who, base) = who(app, msg.chat.id.0, group, user, update).await?;
    let bot_texts = &app.d.ui().bot;
    // In a group only commands and replies to the bot are for it (with privacy mode on,
    // Telegram sends nothing else); other chatter is neither answered nor counted.
    let command = msg.text().and_then(|t| parse_command(t, me));
    if group && command.is_none() && !is_reply_to_me(msg, me) {
        return Ok(());
    }
    match app.limiter.check(who.key()) {
        Verdict::Allow => {}
        Verdict::Warn => {
            let text = render::plain(bot_texts.slow_down.get(who.lang));
            return queue(bot, app, who.key(), plain_send(who.chat, text)).await;
        }
        Verdict::Drop => return Ok(()),
    }
    let Some(text) = msg.text() else {
        // Stickers, photos, voice...: a hint, and the check stays as it was.
        if !group || is_reply_to_me(msg, me) {
            say(
                bot,
                app,
                (&who, &base),
                update,
                bot_texts.unsupported.get(who.lang),
            )
            .await?;
        }
        return Ok(());
    };
    if let Some((name, args)) = command {
        return self::command(bot, me, app, (who, base), update, &name, args).await;
    }
    let key = who.key();
    let conv = app.conversation(me.username());
    let plan = match base.clone() {
        Some(m) if m.check.is_some() => conv.apply(who, m, Input::Text(text), Via::Typed),
        Some(m) if m.followup.is_some() && !group => conv.apply_followup(
            who,
            m,
            FollowUpInput::Text(text),
            Via::Typed,
            app.new_check_id(),
        ),
        _ if group => {
            return say(
                bot,
                app,
                (&who, &base),
                update,
                bot_texts.no_check.get(who.lang),
            )
            .await;
        }
        other => conv.start(who, other, Some(text), app.new_check_id()),
    };
    carry_out(bot, app, key, Turn::new(update, &base), plan, None).await
}

pub async fn on_edited<T: Telegram>(
    bot: T,
    me: Me,
    edited: Arc<Incoming<Message>>,
    app: Arc<App>,
) -> HandlerResult {
    let (msg, update) = (&edited.item, edited.update);
    let Some(user) = msg.from.as_ref().filter(|u| !u.is_bot) else {
        return Ok(());
    };
    let group = !msg.chat.is_private();
    if group && !is_reply_to_me(msg, &me) {
        return Ok(());
    }
    retrying(|| async {
        let (who, base) = who(&app, msg.chat.id.0, group, user, update).await?;
        let text = app.d.ui().bot.edited.get(who.lang);
        say(&bot, &app, (&who, &base), update, text).await
    })
    .await
}

async fn command<T: Telegram>(
    bot: &T,
    me: &Me,
    app: &Arc<App>,
    (who, base): (Who<'_>, Option<Member>),
    update: u32,
    name: &str,
    args: &str,
) -> HandlerResult {
    let texts = &app.d.ui().bot;
    let lang = who.lang;
    let key = who.key();
    let conv = app.conversation(me.username());
    match name {
        "start" if !who.group && render::parse_transfer_payload(args).is_some() => {
            transfer(bot, me, app, (who, base), update, args).await
        }
        "start" if !who.group && render::parse_offer_payload(args).is_some() => {
            offer_here(bot, me, app, (who, base), update, args).await
        }
        "checkins" => {
            let user = who.user;
            let list = app.store.checkins_of(user).await?;
            // In a group, the list goes nowhere near the group: only a private chat has it.
            if who.group {
                return Ok(());
            }
            let effect = conv.checkins_list(who, &list);
            queue(bot, app, key, effect).await
        }
        "start" if args != "check" => {
            say(bot, app, (&who, &base), update, texts.welcome.get(lang)).await
        }
        "start" | "check" => {
            let first = (name == "check" && !args.is_empty() && !who.group).then_some(args);
            let plan = conv.start(who, base.clone(), first, app.new_check_id());
            carry_out(bot, app, key, Turn::new(update, &base), plan, None).await
        }
        "back" | "cancel" => {
            let member = base.clone().unwrap_or_default();
            let plan = if name == "back" {
                conv.apply(who, member, Input::Back, Via::Typed)
            } else {
                conv.cancel(who, member, Via::Typed)
            };
            carry_out(bot, app, key, Turn::new(update, &base), plan, None).await
        }
        "help" => say(bot, app, (&who, &base), update, texts.help.get(lang)).await,
        "privacy" => say(bot, app, (&who, &base), update, texts.privacy.get(lang)).await,
        "forget" => {
            let user = who.user;
            let n = app.store.forget_user(user).await?;
            log::info!("forgot a user ({n} records)");
            // Nothing is stored about them any more, and the confirmation stores nothing.
            let effect = Effect::Send {
                chat: who.chat,
                text: render::plain(texts.forgotten.get(lang)),
                keyboard: None,
                question_of: None,
            };
            queue(bot, app, key, effect).await
        }
        "lang" => match app.d.lang(args.to_ascii_lowercase().as_str()) {
            Some(l) => {
                app.store
                    .set_user_lang(who.user, app.d.lang_code(l))
                    .await?;
                say(bot, app, (&who, &base), update, texts.lang_set.get(l)).await
            }
            None => {
                let keyboard = vec![
                    app.d
                        .languages()
                        .iter()
                        .map(|code| super::store::Button {
                            text: language_name(code).to_string(),
                            data: Some(callback::lang_button(code)),
                            url: None,
                        })
                        .collect(),
                ];
                let plan = Plan {
                    member: base.clone(),
                    effects: vec![Effect::Send {
                        chat: who.chat,
                        text: render::plain(texts.lang_prompt.get(lang)),
                        keyboard: Some(keyboard),
                        question_of: None,
                    }],
                    toast: None,
                };
                carry_out(bot, app, key, Turn::new(update, &base), plan, None).await
            }
        },
        _ if who.group => Ok(()), // probably another bot's command
        _ => {
            say(
                bot,
                app,
                (&who, &base),
                update,
                texts.unknown_command.get(lang),
            )
            .await
        }
    }
}

fn language_name(code: &str) -> &str {
    match code {
        "en" => "English",
        "es" => "Español",
        other => other,
    }
}

/// The sender's record in the group a deep link (`/start g...` or `/start o...`) names, with
/// what `pick` finds there under the link's id; `None` (after saying so) when the link is
/// malformed or what it carried has ended.
async fn from_group<T: Telegram, R>(
    bot: &T,
    app: &Arc<App>,
    own: (&Who<'_>, &Option<Member>),
    update: u32,
    link: Option<(i64, u32)>,
    pick: impl FnOnce(Member, u32) -> Option<R>,
) -> Result<Option<(MemberKey, Option<Member>, R)>, HandlerError> {
    let texts = &app.d.ui().bot;
    let who = own.0;
    let Some((group_chat, id)) = link else {
        say(bot, app, own, update, texts.welcome.get(who.lang)).await?;
        return Ok(None);
    };
    let group_key = MemberKey {
        chat: group_chat,
        user: who.user,
    };
    let group_base = load(app, group_key, update).await?;
    match group_base.clone().and_then(|m| pick(m, id)) {
        Some(found) => Ok(Some((group_key, group_base, found))),
        None => {
            say(bot, app, own, update, texts.ended.get(who.lang)).await?;
            Ok(None)
        }
    }
}

/// `/start o<chat>_<offer>` in a private chat: the check-in offer of a group outcome, here.
async fn offer_here<T: Telegram>(
    bot: &T,
    me: &Me,
    app: &Arc<App>,
    (who, private_base): (Who<'_>, Option<Member>),
    update: u32,
    payload: &str,
) -> HandlerResult {
    let link = render::parse_offer_payload(payload);
    let pick = |m: Member, id: u32| m.offer.filter(|o| o.id == id);
    let Some((group_key, group_base, offer)) =
        from_group(bot, app, (&who, &private_base), update, link, pick).await?
    else {
        return Ok(());
    };
    let private_key = who.key();
    let conv = app.conversation(me.username());
    let effects = conv.offer_effects(who, &offer, false);
    let private_plan = Plan {
        member: Some(Member {
            offer: Some(offer),
            ..private_base.clone().unwrap_or_default()
        }),
        effects,
        toast: None,
    };
    let group_plan = Plan {
        member: group_base.clone().map(|m| Member { offer: None, ..m }),
        effects: Vec::new(),
        toast: None,
    };
    carry_out(
        bot,
        app,
        group_key,
        Turn::new(update, &group_base),
        group_plan,
        None,
    )
    .await?;
    carry_out(
        bot,
        app,
        private_key,
        Turn::new(update, &private_base),
        private_plan,
        None,
    )
    .await
}

/// `/start g<chat>_<check>` in a private chat: moves the member's group check here.
async fn transfer<T: Telegram>(
    bot: &T,
    me: &Me,
    app: &Arc<App>,
    (who, private_base): (Who<'_>, Option<Member>),
    update: u32,
    payload: &str,
) -> HandlerResult {
    let texts = &app.d.ui().bot;
    let link = render::parse_transfer_payload(payload);
    let pick = |m: Member, id: u32| m.check.filter(|c| c.id == id);
    let Some((group_key, group_base, mut check)) =
        from_group(bot, app, (&who, &private_base), update, link, pick).await?
    else {
        return Ok(());
    };
    let group_chat = group_key.chat;
    // The group message loses its buttons and says where the check went.
    let group_effects: Vec<Effect> = check
        .message_id
        .map(|message_id| Effect::Edit {
            chat: group_chat,
            message_id,
            text: render::plain(texts.moved_private.get(who.lang)),
            keyboard: None,
        })
        .into_iter()
        .collect();
    check.message_id = None;
    check.version = check.version.wrapping_add(1);
    let private = Who {
        group: false,
        ..who
    };
    let member = Member {
        check: Some(check),
        ..private_base.clone().unwrap_or_default()
    };
    let conv = app.conversation(me.username());
    let plan = conv.show_current(
        private,
        member,
        Via::Typed,
        Some(texts.continued_here.get(who.lang).to_string()),
    );
    let group_plan = Plan {
        member: group_base.clone().map(|m| Member { check: None, ..m }),
        effects: group_effects,
        toast: None,
    };
    carry_out(
        bot,
        app,
        group_key,
        Turn::new(update, &group_base),
        group_plan,
        None,
    )
    .await?;
    carry_out(
        bot,
        app,
        private.key(),
        Turn::new(update, &private_base),
        plan,
        None,
    )
    .await
}

pub async fn on_callback<T: Telegram>(
    bot: T,
    me: Me,
    press: Arc<Incoming<CallbackQuery>>,
    app: Arc<App>,
) -> HandlerResult {
    retrying(|| callback(&bot, &me, &press.item, press.update, &app)).await
}

async fn callback<T: Telegram>(
    bot: &T,
    me: &Me,
    q: &CallbackQuery,
    update: u32,
    app: &Arc<App>,
) -> HandlerResult {
    let texts = &app.d.ui().bot;
    let Some(message) = q.message.as_ref() else {
        telegram::answer(bot, &q.id.0, None, false).await;
        return Ok(());
    };
    let chat = message.chat();
    let (who, base) = who(app, chat.id.0, !chat.is_private(), &q.from, update).await?;
    let message_id = message.id().0;
    let query = q.id.0.clone();
    match app.limiter.check(who.key()) {
        Verdict::Allow => {}
        Verdict::Warn => {
            let text = texts.slow_down.get(who.lang);
            telegram::answer(bot, &query, Some(text), false).await;
            return Ok(());
        }
        Verdict::Drop => {
            telegram::answer(bot, &query, None, false).await;
            return Ok(());
        }
    }
    let refuse = |text| telegram::answer(bot, &query, Some(text), true);
    let press = q.data.as_deref().and_then(callback::decode);
    let key = who.key();
    let (owner, check, version, action) = match press {
        None => {
            refuse(texts.bad_button.get(who.lang)).await;
            return Ok(());
        }
        Some(Press::Lang(code)) => {
            let Some(l) = app.d.lang(code) else {
                refuse(texts.bad_button.get(who.lang)).await;
                return Ok(());
            };
            app.store.set_user_lang(who.user, code).await?;
            let plan = Plan {
                member: base.clone(),
                effects: vec![Effect::Edit {
                    chat: who.chat,
                    message_id,
                    text: render::plain(texts.lang_set.get(l)),
                    keyboard: None,
                }],
                toast: None,
            };
            return carry_out(bot, app, key, Turn::new(update, &base), plan, Some(query)).await;
        }
        Some(Press::Check {
            owner,
            check,
            version,
            action,
        }) => (owner, check, version, action),
        Some(Press::Offer { offer, days }) => {
            let conv = app.conversation(me.username());
            let (plan, checkin) = conv.answer_offer(
                who,
                base.clone().unwrap_or_default(),
                offer,
                days,
                message_id,
            );
            if let Some(c) = checkin {
                // Scheduling is idempotent per offer, so a retry after a crash here keeps one.
                app.store.schedule(&c).await?;
            }
            return carry_out(bot, app, key, Turn::new(update, &base), plan, Some(query)).await;
        }
        Some(Press::FollowUp {
            id,
            version,
            action,
        }) => {
            let Some(member) = base
                .clone()
                .filter(|m| m.followup.as_ref().is_some_and(|f| f.id == id))
            else {
                refuse(texts.ended.get(who.lang)).await;
                return Ok(());
            };
            let conv = app.conversation(me.username());
            let via = Via::Button { message_id };
            let current = member.followup.as_ref().map_or(0, |f| f.version);
            let plan = if version != current {
                let mut member = member;
                let effects = conv.show_followup(who, &mut member, via, None);
                Plan {
                    member: Some(member),
                    effects,
                    toast: Some((texts.stale.get(who.lang).to_string(), false)),
                }
            } else {
                conv.apply_followup(
                    who,
                    member,
                    FollowUpInput::Choice(action),
                    via,
                    app.new_check_id(),
                )
            };
            return carry_out(bot, app, key, Turn::new(update, &base), plan, Some(query)).await;
        }
        Some(Press::CancelCheckIn(id)) => {
            let user = who.user;
            let cancelled = app.store.cancel_checkin(user, id).await?;
            let list = app.store.checkins_of(user).await?;
            let conv = app.conversation(me.username());
            let refreshed = match conv.checkins_list(who, &list) {
                Effect::Send { text, keyboard, .. } => Effect::Edit {
                    chat: who.chat,
                    message_id,
                    text,
                    keyboard,
                },
                other => other,
            };
            let toast =
                cancelled.then(|| (app.d.followups().cancelled.get(who.lang).to_string(), false));
            let plan = Plan {
                member: base.clone(),
                effects: vec![refreshed],
                toast,
            };
            return carry_out(bot, app, key, Turn::new(update, &base), plan, Some(query)).await;
        }
    };
    if owner != who.user {
        refuse(texts.not_yours.get(who.lang)).await;
        return Ok(());
    }
    let Some(member) = base
        .clone()
        .filter(|m| m.check.as_ref().is_some_and(|c| c.id == check))
    else {
        refuse(texts.ended.get(who.lang)).await;
        return Ok(());
    };
    let conv = app.conversation(me.username());
    let via = Via::Button { message_id };
    let current = member.check.as_ref().map_or(0, |c| c.version);
    let plan = if version != current {
        // Pressed again after the bot moved on (people do when nothing seems to happen).
        conv.show_current(
            who,
            member,
            via,
            Some(texts.stale.get(who.lang).to_string()),
        )
    } else {
        match action {
            Action::Choose(id) => conv.apply(who, member, Input::Choice(id), via),
            Action::Back => conv.apply(who, member, Input::Back, via),
            Action::Cancel => conv.cancel(who, member, via),
        }
    };
    carry_out(bot, app, key, Turn::new(update, &base), plan, Some(query)).await
}
