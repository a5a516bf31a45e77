//! Update handlers: turn a Telegram update into a conversation step, store the result with
//! its replies in one transaction, then deliver the replies.

use std::sync::Arc;

use teloxide::types::{CallbackQuery, Me, Message, User};

use super::App;
use super::callback::{self, Action, Press};
use super::conversation::{Plan, Via, Who};
use super::render;
use super::store::{Effect, Member, MemberKey, Store};
use super::telegram::{self, Telegram};
use crate::engine::Input;

pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;
pub type HandlerResult = Result<(), HandlerError>;

/// Runs a store operation off the async threads.
async fn blocking<R: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce(&dyn Store) -> super::store::Result<R> + Send + 'static,
) -> Result<R, HandlerError> {
    let store = app.store.clone();
    Ok(tokio::task::spawn_blocking(move || f(store.as_ref())).await??)
}

/// Stores the plan's new state and replies atomically, then sends the replies in order.
async fn carry_out<T: Telegram>(
    bot: &T,
    app: &Arc<App>,
    key: MemberKey,
    plan: Plan,
    query: Option<String>,
) -> HandlerResult {
    let Plan {
        member,
        effects,
        toast,
    } = plan;
    let queued = effects.clone();
    let ids = blocking(app, move |s| s.commit(key, member.as_ref(), &queued)).await?;
    if let Some(id) = query {
        let (text, alert) = match toast {
            Some((t, a)) => (Some(t), a),
            None => (None, false),
        };
        telegram::answer(bot, id, text, alert).await;
    }
    for (id, effect) in ids.into_iter().zip(&effects) {
        telegram::deliver(bot, &app.store, id, effect).await;
    }
    Ok(())
}

/// A plain text reply, through the outbox like every other reply.
async fn say<T: Telegram>(bot: &T, app: &Arc<App>, who: &Who<'_>, text: &str) -> HandlerResult {
    let effect = Effect::Send {
        chat: who.chat,
        text: render::plain(text),
        keyboard: None,
        question_of: None,
    };
    let key = who.key();
    let queued = vec![effect.clone()];
    let ids = blocking(app, move |s| {
        let member = s.load(key)?;
        s.commit(key, member.as_ref(), &queued)
    })
    .await?;
    for id in ids {
        telegram::deliver(bot, &app.store, id, &effect).await;
    }
    Ok(())
}

async fn who<'a>(
    app: &Arc<App>,
    chat: i64,
    group: bool,
    user: &'a User,
) -> Result<Who<'a>, HandlerError> {
    let uid = user.id.0 as i64;
    let stored = blocking(app, move |s| s.user_lang(uid)).await?;
    let lang = match stored.as_deref().and_then(|c| app.d.lang(c)) {
        Some(l) => l,
        None => app.d.lang_or_default(user.language_code.as_deref()),
    };
    Ok(Who {
        chat,
        user: uid,
        first_name: &user.first_name,
        group,
        lang,
    })
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

pub async fn on_message<T: Telegram>(bot: T, me: Me, msg: Message, app: Arc<App>) -> HandlerResult {
    let Some(user) = msg.from.as_ref().filter(|u| !u.is_bot) else {
        return Ok(());
    };
    let group = !msg.chat.is_private();
    let who = who(&app, msg.chat.id.0, group, user).await?;
    let bot_texts = &app.d.ui().bot;
    let Some(text) = msg.text() else {
        // Stickers, photos, voice...: a hint, and the check stays as it was.
        if !group || is_reply_to_me(&msg, &me) {
            say(&bot, &app, &who, bot_texts.unsupported.get(who.lang)).await?;
        }
        return Ok(());
    };
    if let Some((name, args)) = parse_command(text, &me) {
        return command(&bot, &me, &app, who, &name, args).await;
    }
    if group && !is_reply_to_me(&msg, &me) {
        return Ok(()); // group chatter that is not for the bot
    }
    let key = who.key();
    let member = blocking(&app, move |s| s.load(key)).await?;
    let conv = app.conversation(me.username());
    let plan = match member {
        Some(m) if m.check.is_some() => conv.apply(who, m, Input::Text(text), Via::Typed),
        _ if group => {
            say(&bot, &app, &who, bot_texts.no_check.get(who.lang)).await?;
            return Ok(());
        }
        _ => conv.start(who, Some(text), app.new_check_id()),
    };
    carry_out(&bot, &app, key, plan, None).await
}

pub async fn on_edited<T: Telegram>(bot: T, me: Me, msg: Message, app: Arc<App>) -> HandlerResult {
    let Some(user) = msg.from.as_ref().filter(|u| !u.is_bot) else {
        return Ok(());
    };
    let group = !msg.chat.is_private();
    if group && !is_reply_to_me(&msg, &me) {
        return Ok(());
    }
    let who = who(&app, msg.chat.id.0, group, user).await?;
    say(&bot, &app, &who, app.d.ui().bot.edited.get(who.lang)).await
}

async fn command<T: Telegram>(
    bot: &T,
    me: &Me,
    app: &Arc<App>,
    who: Who<'_>,
    name: &str,
    args: &str,
) -> HandlerResult {
    let texts = &app.d.ui().bot;
    let lang = who.lang;
    let key = who.key();
    let conv = app.conversation(me.username());
    let load = || blocking(app, move |s| s.load(key));
    match name {
        "start" if args == "check" => {
            let plan = conv.start(who, None, app.new_check_id());
            carry_out(bot, app, key, plan, None).await
        }
        "start" if !who.group && render::parse_transfer_payload(args).is_some() => {
            transfer(bot, me, app, who, args).await
        }
        "start" => say(bot, app, &who, texts.welcome.get(lang)).await,
        "check" => {
            let first = (!args.is_empty() && !who.group).then_some(args);
            let plan = conv.start(who, first, app.new_check_id());
            carry_out(bot, app, key, plan, None).await
        }
        "back" => {
            let plan = conv.apply(
                who,
                load().await?.unwrap_or_default(),
                Input::Back,
                Via::Typed,
            );
            carry_out(bot, app, key, plan, None).await
        }
        "cancel" => {
            let plan = conv.cancel(who, load().await?.unwrap_or_default(), Via::Typed);
            carry_out(bot, app, key, plan, None).await
        }
        "help" => say(bot, app, &who, texts.help.get(lang)).await,
        "privacy" => say(bot, app, &who, texts.privacy.get(lang)).await,
        "forget" => {
            let user = who.user;
            let n = blocking(app, move |s| s.forget_user(user)).await?;
            log::info!("forgot a user ({n} records)");
            say(bot, app, &who, texts.forgotten.get(lang)).await
        }
        "lang" => match app.d.lang(args.to_ascii_lowercase().as_str()) {
            Some(l) => {
                let (user, code) = (who.user, app.d.lang_code(l).to_string());
                blocking(app, move |s| s.set_user_lang(user, &code)).await?;
                say(bot, app, &who, texts.lang_set.get(l)).await
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
                let effect = Effect::Send {
                    chat: who.chat,
                    text: render::plain(texts.lang_prompt.get(lang)),
                    keyboard: Some(keyboard),
                    question_of: None,
                };
                let plan = Plan {
                    member: load().await?,
                    effects: vec![effect],
                    toast: None,
                };
                carry_out(bot, app, key, plan, None).await
            }
        },
        _ if who.group => Ok(()), // probably another bot's command
        _ => say(bot, app, &who, texts.unknown_command.get(lang)).await,
    }
}

fn language_name(code: &str) -> &str {
    match code {
        "en" => "English",
        "es" => "Español",
        other => other,
    }
}

/// `/start g<chat>_<check>` in a private chat: moves the member's group check here.
async fn transfer<T: Telegram>(
    bot: &T,
    me: &Me,
    app: &Arc<App>,
    who: Who<'_>,
    payload: &str,
) -> HandlerResult {
    let texts = &app.d.ui().bot;
    let Some((group_chat, check_id)) = render::parse_transfer_payload(payload) else {
        return say(bot, app, &who, texts.welcome.get(who.lang)).await;
    };
    let group_key = MemberKey {
        chat: group_chat,
        user: who.user,
    };
    let group_member = blocking(app, move |s| s.load(group_key)).await?;
    let Some(mut check) = group_member
        .and_then(|m| m.check)
        .filter(|c| c.id == check_id)
    else {
        return say(bot, app, &who, texts.ended.get(who.lang)).await;
    };
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
    let member = Member {
        check: Some(check),
        updated_at: app.now(),
        rev: 0,
    };
    let conv = app.conversation(me.username());
    let private = Who {
        group: false,
        ..who
    };
    let plan = conv.show_current(
        private,
        member,
        Via::Typed,
        Some(texts.continued_here.get(who.lang).to_string()),
    );
    carry_out(
        bot,
        app,
        group_key,
        Plan {
            member: None,
            effects: group_effects,
            toast: None,
        },
        None,
    )
    .await?;
    carry_out(bot, app, private.key(), plan, None).await
}

pub async fn on_callback<T: Telegram>(
    bot: T,
    me: Me,
    q: CallbackQuery,
    app: Arc<App>,
) -> HandlerResult {
    let texts = &app.d.ui().bot;
    let Some(message) = q.message.as_ref() else {
        telegram::answer(&bot, q.id.0.clone(), None, false).await;
        return Ok(());
    };
    let chat = message.chat();
    let who = who(&app, chat.id.0, !chat.is_private(), &q.from).await?;
    let message_id = message.id().0;
    let query = q.id.0.clone();
    let alert = |text: &str| (Some(text.to_string()), true);
    let press = q.data.as_deref().and_then(callback::decode);
    let (owner, check, version, action) = match press {
        None => {
            let (t, a) = alert(texts.bad_button.get(who.lang));
            telegram::answer(&bot, query, t, a).await;
            return Ok(());
        }
        Some(Press::Lang(code)) => {
            let Some(l) = app.d.lang(code) else {
                let (t, a) = alert(texts.bad_button.get(who.lang));
                telegram::answer(&bot, query, t, a).await;
                return Ok(());
            };
            let (user, code) = (who.user, code.to_string());
            blocking(&app, move |s| s.set_user_lang(user, &code)).await?;
            let effect = Effect::Edit {
                chat: who.chat,
                message_id,
                text: render::plain(texts.lang_set.get(l)),
                keyboard: None,
            };
            let key = who.key();
            let member = blocking(&app, move |s| s.load(key)).await?;
            let plan = Plan {
                member,
                effects: vec![effect],
                toast: None,
            };
            return carry_out(&bot, &app, key, plan, Some(query)).await;
        }
        Some(Press::Check {
            owner,
            check,
            version,
            action,
        }) => (owner, check, version, action),
    };
    if owner != who.user {
        let (t, a) = alert(texts.not_yours.get(who.lang));
        telegram::answer(&bot, query, t, a).await;
        return Ok(());
    }
    let key = who.key();
    let member = blocking(&app, move |s| s.load(key)).await?;
    let Some(member) = member.filter(|m| m.check.as_ref().is_some_and(|c| c.id == check)) else {
        let (t, a) = alert(texts.ended.get(who.lang));
        telegram::answer(&bot, query, t, a).await;
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
    carry_out(&bot, &app, key, plan, Some(query)).await
}
