//! What the bot's messages look like: HTML text (escaped) and inline keyboards, within
//! Telegram's limits. Knows the engine's steps, not the clinical rules behind them.

use teloxide::utils::html::escape;

use super::callback::{self, Action};
use super::store::{Button, Keyboard};
use crate::dialogue::model::{Dialogues, Lang};
use crate::engine::{Ask, Outcome};
use crate::urgency::Urgency;

/// Telegram's limit on a message's text, in characters.
pub const MAX_CHARS: usize = 4096;

/// Who a question message is for and where it is shown.
pub struct Asker<'a> {
    pub owner: i64,
    pub first_name: &'a str,
    pub group_chat: Option<i64>,
    pub bot_username: &'a str,
    pub check: u32,
    pub version: u32,
}

/// The question message: text and buttons (answers, then back/cancel; in a group, a private
/// link before a sensitive question).
pub fn question(d: &Dialogues, ask: &Ask<'_>, who: &Asker<'_>) -> (String, Keyboard) {
    let lang = ask.lang;
    let bot = &d.ui().bot;
    let number = d.ui().messages.question_number.get(lang);
    let mut text = String::new();
    if who.group_chat.is_some() {
        text.push_str(&format!(
            "🩺 <b>{} {}</b> · {} {}\n\n",
            escape(bot.check_for.get(lang)),
            escape(who.first_name),
            escape(number),
            ask.number
        ));
    } else {
        text.push_str(&format!("🩺 <b>{} {}</b>\n\n", escape(number), ask.number));
    }
    text.push_str(&escape(ask.text()));
    let mut rows: Keyboard = ask
        .options()
        .map(|(id, label)| {
            vec![Button {
                text: label.to_string(),
                data: Some(callback::check_button(
                    who.owner,
                    who.check,
                    who.version,
                    Action::Choose(id),
                )),
                url: None,
            }]
        })
        .collect();
    if let Some(chat) = who.group_chat
        && ask.question.sensitive
    {
        text.push_str(&format!(
            "\n\n<i>{}</i>",
            escape(bot.private_note.get(lang))
        ));
        rows.push(vec![Button {
            text: bot.button_private.get(lang).to_string(),
            data: None,
            url: Some(format!(
                "https://t.me/{}?start={}",
                who.bot_username,
                transfer_payload(chat, who.check)
            )),
        }]);
    }
    let mut controls = Vec::new();
    if ask.can_go_back {
        controls.push(Button {
            text: bot.button_back.get(lang).to_string(),
            data: Some(callback::check_button(
                who.owner,
                who.check,
                who.version,
                Action::Back,
            )),
            url: None,
        });
    }
    controls.push(Button {
        text: bot.button_cancel.get(lang).to_string(),
        data: Some(callback::check_button(
            who.owner,
            who.check,
            who.version,
            Action::Cancel,
        )),
        url: None,
    });
    rows.push(controls);
    (text, rows)
}

/// The deep-link payload that moves a group check to a private chat: `g<chat>_<check>`, with
/// `m` for the minus sign of group ids (payloads allow only `A-Za-z0-9_-`).
pub fn transfer_payload(chat: i64, check: u32) -> String {
    let sign = if chat < 0 { "m" } else { "" };
    format!("g{sign}{}_{check:x}", chat.unsigned_abs())
}

pub fn parse_transfer_payload(payload: &str) -> Option<(i64, u32)> {
    parse_payload('g', payload)
}

/// The deep link of a group check-in offer: `o<chat>_<offer>`, like [`transfer_payload`].
pub fn offer_payload(chat: i64, offer: u32) -> String {
    format!("o{}", &transfer_payload(chat, offer)[1..])
}

pub fn parse_offer_payload(payload: &str) -> Option<(i64, u32)> {
    parse_payload('o', payload)
}

fn parse_payload(prefix: char, payload: &str) -> Option<(i64, u32)> {
    let rest = payload.strip_prefix(prefix)?;
    let (negative, rest) = match rest.strip_prefix('m') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let (chat, check) = rest.split_once('_')?;
    // Digits only: `parse` would also take a sign of its own ("gm-5_0").
    if chat.is_empty() || !chat.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if check.is_empty() || check.len() > 8 || !check.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let magnitude: u64 = chat.parse().ok()?;
    let chat = if negative {
        0i64.checked_sub_unsigned(magnitude)?
    } else {
        i64::try_from(magnitude).ok()?
    };
    let check = u32::from_str_radix(check, 16).ok()?;
    Some((chat, check))
}

fn emoji(u: Urgency) -> &'static str {
    match u {
        Urgency::Emergency => "🚨",
        Urgency::Urgent => "🔴",
        Urgency::SeeProfessional => "🟠",
        Urgency::SelfCare => "🟢",
    }
}

/// The outcome as one or more messages of at most [`MAX_CHARS`]. In a group (`member` is the
/// first name of whose check it is), the outcome starts with that name, and reasons that come
/// from sensitive questions are left out and a note says so.
pub fn outcome(d: &Dialogues, o: &Outcome<'_>, lang: Lang, member: Option<&str>) -> Vec<String> {
    let h = &d.ui().headings;
    let in_group = member.is_some();
    let owner = member.map_or(String::new(), |name| {
        format!(
            "🩺 <b>{} {}</b>\n",
            escape(d.ui().bot.check_for.get(lang)),
            escape(name)
        )
    });
    let mut parts = vec![format!(
        "{owner}{} <b>{}</b>\n<b>{}</b>",
        emoji(o.urgency),
        escape(o.level),
        escape(o.headline)
    )];
    let reasons: Vec<&str> = o
        .reasons
        .iter()
        .filter(|r| !(in_group && r.sensitive))
        .map(|r| r.text.as_ref())
        .collect();
    let hidden = o.reasons.len() - reasons.len();
    let mut section = |heading: &str, items: &[&str]| {
        if !items.is_empty() {
            let mut s = format!("<b>{}</b>", escape(heading));
            for i in items {
                s.push_str(&format!("\n• {}", escape(i)));
            }
            parts.push(s);
        }
    };
    section(h.reasons.get(lang), &reasons);
    section(h.advice.get(lang), &o.advice);
    section(h.watch_for.get(lang), &o.watch_for);
    section(h.prevention.get(lang), &o.prevention);
    let mut tail = format!(
        "<i>{}: {}</i>",
        escape(h.sources.get(lang)),
        escape(&o.sources.join("; "))
    );
    if hidden > 0 {
        tail.push_str(&format!(
            "\n<i>{}</i>",
            escape(d.ui().bot.group_outcome_note.get(lang))
        ));
    }
    tail.push_str(&format!("\n\n<i>{}</i>", escape(o.disclaimer)));
    parts.push(tail);
    pack(parts)
}

/// Joins paragraphs into as few messages as fit; a paragraph longer than a message is cut at
/// a line break (its HTML tags never span lines, so each piece stays valid).
pub fn pack(parts: Vec<String>) -> Vec<String> {
    let mut messages: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut push = |piece: &str, current: &mut String| {
        let extra = if current.is_empty() { 0 } else { 2 };
        if current.chars().count() + extra + piece.chars().count() > MAX_CHARS
            && !current.is_empty()
        {
            messages.push(std::mem::take(current));
        }
        if !current.is_empty() {
            current.push_str("\n\n");
        }
        current.push_str(piece);
    };
    for part in parts {
        if part.chars().count() <= MAX_CHARS {
            push(&part, &mut current);
        } else {
            for line in part.lines() {
                let line: String = line.chars().take(MAX_CHARS).collect();
                push(&line, &mut current);
            }
        }
    }
    if !current.is_empty() {
        messages.push(current);
    }
    messages
}

/// A check-in question: the "how is it now?" question or a warning sign asked again, with
/// buttons that carry the check-in's id and version.
pub fn followup_step(
    d: &Dialogues,
    step: &crate::engine::FollowUpStep<'_>,
    id: u32,
    version: u32,
    lang: Lang,
) -> (String, Keyboard) {
    use crate::engine::FollowUpStep;
    let (text, options): (String, Vec<(&str, &str)>) = match step {
        FollowUpStep::Status { text, options } => (text.clone(), options.clone()),
        FollowUpStep::Ask(ask) => (ask.text().to_string(), ask.options().collect()),
        FollowUpStep::Done(_) => (String::new(), Vec::new()),
    };
    let _ = d;
    let keyboard = options
        .into_iter()
        .map(|(action, label)| {
            vec![Button {
                text: label.to_string(),
                data: Some(callback::followup_button(id, version, action)),
                url: None,
            }]
        })
        .collect();
    let _ = lang;
    (format!("⏰ {}", escape(&text)), keyboard)
}

/// How a check-in ends when it does not produce a new outcome.
pub fn followup_end(
    d: &Dialogues,
    end: &crate::engine::FollowUpEnd<'_>,
    lang: Lang,
) -> Vec<String> {
    use crate::engine::FollowUpEnd;
    let text = match end {
        FollowUpEnd::Gone { reply } | FollowUpEnd::SameEarly { reply, .. } => escape(reply),
        FollowUpEnd::Better {
            reply, prevention, ..
        } => {
            let mut t = escape(reply);
            if !prevention.is_empty() {
                t.push_str(&format!(
                    "\n\n<b>{}</b>",
                    escape(d.ui().headings.prevention.get(lang))
                ));
                for p in prevention {
                    t.push_str(&format!("\n• {}", escape(p)));
                }
            }
            t
        }
        FollowUpEnd::Outcome(o) => return outcome(d, o, lang, None),
    };
    pack(vec![text])
}

/// A unix time as a calendar date (UTC), `YYYY-MM-DD`.
pub fn date(unix: i64) -> String {
    // Howard Hinnant's days-to-civil algorithm.
    let z = unix.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if month <= 2 { y + 1 } else { y };
    format!("{year:04}-{month:02}-{day:02}")
}

/// Plain text as an HTML message (escaped).
pub fn plain(text: &str) -> String {
    escape(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_payloads_round_trip_and_fit_deep_links() {
        for (chat, check) in [(-1001234567890_i64, 0xdeadbeef_u32), (42, 1)] {
            let p = transfer_payload(chat, check);
            assert!(p.len() <= 64);
            assert!(
                p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            );
            assert_eq!(parse_transfer_payload(&p), Some((chat, check)));
        }
        assert_eq!(parse_transfer_payload("check"), None);
        for bad in [
            "gm-9223372036854775808_0",
            "g-5_0",
            "g+5_0",
            "gm-5_0",
            "g5_",
            "g5_+1",
            "g99999999999999999999_1",
        ] {
            assert_eq!(parse_transfer_payload(bad), None, "{bad}");
        }
        assert_eq!(
            parse_transfer_payload(&transfer_payload(i64::MIN, 1)),
            Some((i64::MIN, 1))
        );
        let o = offer_payload(-100123, 0xabc);
        assert_eq!(parse_offer_payload(&o), Some((-100123, 0xabc)));
        assert_eq!(parse_transfer_payload(&o), None);
    }

    #[test]
    fn dates_are_calendar_days() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_795_000_000), "2026-11-18");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(parse_transfer_payload("gm_1"), None);
    }

    #[test]
    fn long_outcomes_are_split_below_the_limit() {
        let parts: Vec<String> = (0..30)
            .map(|i| format!("<b>{i}</b>\n{}", "x".repeat(400)))
            .collect();
        let messages = pack(parts);
        assert!(messages.len() > 1);
        for m in &messages {
            assert!(m.chars().count() <= MAX_CHARS);
        }
        let huge = pack(vec![format!("{}\n{}", "y".repeat(5000), "z")]);
        assert!(huge.iter().all(|m| m.chars().count() <= MAX_CHARS));
    }
}
