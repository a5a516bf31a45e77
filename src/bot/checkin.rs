//! Check-ins in the bot, without I/O (like `conversation`): the offer after an outcome, the
//! "how is it now?" message when one is due, and the check-in conversation in a private chat.
//! The rules themselves are the engine's (`engine::followup`).

use super::callback;
use super::conversation::{Conversation, Plan, Via, Who};
use super::render;
use super::store::{Active, Button, CheckIn, Effect, Keyboard, Member, Offer};
use crate::dialogue::model::Lang;
use crate::engine::{FollowUp, FollowUpEnd, FollowUpInput, FollowUpStep, InputError};

/// The delays offered, in days (0: no thanks).
pub const DELAYS: [u32; 5] = [1, 2, 3, 7, 0];

const DAY: i64 = 86_400;

impl Conversation<'_> {
    fn delay_label(&self, days: u32, lang: Lang) -> &str {
        let w = &self.d.followups().when;
        match days {
            1 => w.tomorrow.get(lang),
            2 => w.two_days.get(lang),
            3 => w.three_days.get(lang),
            7 => w.week.get(lang),
            _ => w.never.get(lang),
        }
    }

    /// The check-in offer: buttons in a private chat, a link to one in a group (check-ins are
    /// only ever sent privately).
    pub fn offer_effects(&self, who: Who<'_>, offer: &Offer, again: bool) -> Vec<Effect> {
        let fu = self.d.followups();
        let lang = who.lang;
        let text = render::plain(if again {
            fu.again.get(lang)
        } else {
            fu.offer.get(lang)
        });
        let keyboard: Keyboard = if who.group {
            vec![vec![Button {
                text: fu.private_button.get(lang).to_string(),
                data: None,
                url: Some(format!(
                    "https://t.me/{}?start={}",
                    self.bot_username,
                    render::offer_payload(who.chat, offer.id)
                )),
            }]]
        } else {
            let suggested = self
                .d
                .followup_area(&offer.flow)
                .map_or(0, |a| a.default_days);
            DELAYS
                .iter()
                .map(|&days| {
                    let mut label = self.delay_label(days, lang).to_string();
                    if days == suggested {
                        label = format!("{label} {}", fu.suggested.get(lang));
                    }
                    vec![Button {
                        text: label,
                        data: Some(callback::offer_button(offer.id, days)),
                        url: None,
                    }]
                })
                .collect()
        };
        vec![Effect::Send {
            chat: who.chat,
            text,
            keyboard: Some(keyboard),
            question_of: None,
        }]
    }

    /// An answer to an offer on message `message_id`: the plan, and the check-in to schedule.
    pub fn answer_offer(
        &self,
        who: Who<'_>,
        mut member: Member,
        offer_id: u32,
        days: u32,
        message_id: i32,
    ) -> (Plan, Option<CheckIn>) {
        let fu = self.d.followups();
        let lang = who.lang;
        let Some(offer) = member.offer.take().filter(|o| o.id == offer_id) else {
            let plan = Plan {
                member: Some(member),
                effects: Vec::new(),
                toast: Some((self.d.ui().bot.ended.get(lang).to_string(), true)),
            };
            return (plan, None);
        };
        if !DELAYS.contains(&days) || days == 0 {
            let plan = Plan {
                member: Some(member),
                effects: vec![Effect::Edit {
                    chat: who.chat,
                    message_id,
                    text: render::plain(fu.declined.get(lang)),
                    keyboard: None,
                }],
                toast: None,
            };
            return (plan, None);
        }
        let checkin = CheckIn {
            id: 0,
            user: who.user,
            offer: offer.id,
            flow: offer.flow.clone(),
            urgency: offer.urgency,
            lang: self.d.lang_code(lang).to_string(),
            checked_at: offer.checked_at,
            due_at: self.now + days as i64 * DAY,
        };
        let text = format!(
            "⏰ {}: {}",
            render::plain(fu.scheduled.get(lang)),
            render::plain(&self.delay_label(days, lang).to_lowercase())
        );
        let plan = Plan {
            member: Some(member),
            effects: vec![Effect::Edit {
                chat: who.chat,
                message_id,
                text,
                keyboard: None,
            }],
            toast: None,
        };
        (plan, Some(checkin))
    }

    /// A due check-in: the member gets it as their active check-in and the first question.
    pub fn start_followup(&self, who: Who<'_>, member: Member, c: &CheckIn, id: u32) -> Plan {
        let days = ((self.now - c.checked_at) as f64 / DAY as f64)
            .round()
            .max(1.0) as u32;
        let mut member = Member {
            followup: Some(Active {
                id,
                version: 0,
                followup: FollowUp {
                    flow: c.flow.clone(),
                    urgency: c.urgency,
                    days,
                    lang: c.lang.clone(),
                    status: None,
                    answers: Vec::new(),
                },
                checked_at: c.checked_at,
                message_id: None,
            }),
            updated_at: self.now,
            ..member
        };
        let who = Who {
            lang: self.d.lang(&c.lang).unwrap_or(who.lang),
            ..who
        };
        let effects = self.show_followup(who, &mut member, Via::Typed, None);
        Plan {
            member: Some(member),
            effects,
            toast: None,
        }
    }

    /// An answer during a check-in. `next_offer` is the id of the repeat offer, if one is made.
    pub fn apply_followup(
        &self,
        who: Who<'_>,
        mut member: Member,
        input: FollowUpInput<'_>,
        via: Via,
        next_offer: u32,
    ) -> Plan {
        let lang = who.lang;
        let Some(active) = member.followup.as_mut() else {
            return Plan {
                member: Some(member),
                effects: Vec::new(),
                toast: Some((self.d.ui().bot.ended.get(lang).to_string(), true)),
            };
        };
        active.followup.lang = self.d.lang_code(lang).to_string();
        member.updated_at = self.now;
        match self.d.followup_answer(&mut active.followup, input) {
            Ok(FollowUpStep::Done(end)) => {
                let mut effects = Vec::new();
                let message = match via {
                    Via::Button { message_id } => Some(message_id),
                    Via::Typed => active.message_id,
                };
                if let Some(message_id) = message {
                    effects.push(Effect::Edit {
                        chat: who.chat,
                        message_id,
                        text: format!("✅ {}", render::plain(self.d.followups().done.get(lang))),
                        keyboard: None,
                    });
                }
                let flow = active.followup.flow.clone();
                let checked_at = active.checked_at;
                let (texts, urgency) = match &end {
                    FollowUpEnd::Outcome(o) => {
                        (render::outcome(self.d, o, lang, None), Some(o.urgency))
                    }
                    other => (
                        render::followup_end(self.d, other, lang),
                        Some(active.followup.urgency),
                    ),
                };
                for text in texts {
                    effects.push(Effect::Send {
                        chat: who.chat,
                        text,
                        keyboard: None,
                        question_of: None,
                    });
                }
                member.followup = None;
                let again = !matches!(end, FollowUpEnd::Gone { .. });
                if let Some(urgency) =
                    urgency.filter(|u| again && self.d.followup_offered(&flow, *u))
                {
                    let offer = Offer {
                        id: next_offer,
                        flow,
                        urgency,
                        checked_at,
                    };
                    effects.extend(self.offer_effects(who, &offer, true));
                    member.offer = Some(offer);
                }
                Plan {
                    member: Some(member),
                    effects,
                    toast: None,
                }
            }
            Ok(_) => {
                active.version = active.version.wrapping_add(1);
                let effects = self.show_followup(who, &mut member, via, None);
                Plan {
                    member: Some(member),
                    effects,
                    toast: None,
                }
            }
            Err(e) => {
                let message = e.message(self.d, lang).to_string();
                match via {
                    Via::Button { .. } => Plan {
                        member: Some(member),
                        effects: Vec::new(),
                        toast: Some((message, e != InputError::NothingToUndo)),
                    },
                    Via::Typed => {
                        let effects = self.show_followup(who, &mut member, via, Some(message));
                        Plan {
                            member: Some(member),
                            effects,
                            toast: None,
                        }
                    }
                }
            }
        }
    }

    /// The current check-in question: an edit of the pressed message, or a new message.
    pub fn show_followup(
        &self,
        who: Who<'_>,
        member: &mut Member,
        via: Via,
        note: Option<String>,
    ) -> Vec<Effect> {
        let Some(active) = member.followup.as_mut() else {
            return Vec::new();
        };
        let (mut text, keyboard) = render::followup_step(
            self.d,
            &self.d.followup_step(&active.followup),
            active.id,
            active.version,
            who.lang,
        );
        if let Some(n) = note {
            text = format!("<i>{}</i>\n\n{text}", render::plain(&n));
        }
        match (via, active.message_id) {
            (Via::Button { message_id }, _) => {
                active.message_id = Some(message_id);
                vec![Effect::Edit {
                    chat: who.chat,
                    message_id,
                    text,
                    keyboard: Some(keyboard),
                }]
            }
            (Via::Typed, old) => {
                let mut effects: Vec<Effect> = old
                    .map(|message_id| Effect::ClearButtons {
                        chat: who.chat,
                        message_id,
                    })
                    .into_iter()
                    .collect();
                active.message_id = None;
                effects.push(Effect::Send {
                    chat: who.chat,
                    text,
                    keyboard: Some(keyboard),
                    question_of: Some((who.key(), active.id)),
                });
                effects
            }
        }
    }

    /// `/checkins`: the scheduled check-ins, each a button that cancels it.
    pub fn checkins_list(&self, who: Who<'_>, list: &[CheckIn]) -> Effect {
        let fu = self.d.followups();
        if list.is_empty() {
            return Effect::Send {
                chat: who.chat,
                text: render::plain(fu.list_empty.get(who.lang)),
                keyboard: None,
                question_of: None,
            };
        }
        let keyboard = list
            .iter()
            .map(|c| {
                vec![Button {
                    text: format!("❌ {} · {}", render::date(c.due_at), c.flow),
                    data: Some(callback::cancel_checkin_button(c.id)),
                    url: None,
                }]
            })
            .collect();
        Effect::Send {
            chat: who.chat,
            text: render::plain(fu.list_title.get(who.lang)),
            keyboard: Some(keyboard),
            question_of: None,
        }
    }
}
