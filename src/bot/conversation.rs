//! The Telegram conversation, without I/O: given a member's stored state and what they did,
//! decide the new state and the replies. Knows chats, messages and buttons; the clinical
//! decisions are the engine's.

use super::render::{self, Asker};
use super::store::{Check, Effect, Member, MemberKey};
use crate::dialogue::model::{Dialogues, Lang};
use crate::engine::{Input, InputError, Step};

/// The person acting and where.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    pub chat: i64,
    pub user: i64,
    pub first_name: &'a str,
    pub group: bool,
    pub lang: Lang,
}

impl Who<'_> {
    pub fn key(&self) -> MemberKey {
        MemberKey {
            chat: self.chat,
            user: self.user,
        }
    }
}

/// How the input arrived: a button on a message (edit that message) or typed (reply below).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Button { message_id: i32 },
    Typed,
}

/// What to store and what to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The member's new state; `None` deletes it.
    pub member: Option<Member>,
    pub effects: Vec<Effect>,
    /// For a button press: the text of the callback answer, and whether it is an alert.
    pub toast: Option<(String, bool)>,
}

/// Everything the conversation needs to know besides the person.
pub struct Conversation<'a> {
    pub d: &'a Dialogues,
    pub bot_username: &'a str,
    pub now: i64,
}

impl Conversation<'_> {
    fn text(&self, chat: i64, text: String) -> Effect {
        Effect::Send {
            chat,
            text,
            keyboard: None,
            question_of: None,
        }
    }

    /// Starts a new check, replacing any other of this member in this chat (whose buttons are
    /// removed); a typed description, if any, answers the first question.
    pub fn start(
        &self,
        who: Who<'_>,
        base: Option<Member>,
        first_text: Option<&str>,
        check_id: u32,
    ) -> Plan {
        let old_message = base
            .as_ref()
            .and_then(|m| m.check.as_ref())
            .and_then(|c| c.message_id);
        let session = self.d.start_session(who.lang);
        let mut member = Member {
            check: Some(Check {
                id: check_id,
                version: 0,
                session: self.d.to_record(&session),
                message_id: None,
            }),
            updated_at: self.now,
            ..base.unwrap_or_default()
        };
        let mut plan = match first_text {
            Some(t) => {
                let mut plan = self.apply(who, member, Input::Text(t), Via::Typed);
                plan.toast = None;
                plan
            }
            None => {
                let effects = self.show(who, &mut member, Via::Typed, None);
                Plan {
                    member: Some(member),
                    effects,
                    toast: None,
                }
            }
        };
        if let Some(message_id) = old_message {
            plan.effects.insert(
                0,
                Effect::ClearButtons {
                    chat: who.chat,
                    message_id,
                },
            );
        }
        plan
    }

    /// Applies an input to the member's check.
    pub fn apply(&self, who: Who<'_>, mut member: Member, input: Input<'_>, via: Via) -> Plan {
        let Some(check) = member.check.as_mut() else {
            return self.no_check(who, via);
        };
        let mut session = self.d.from_record(&check.session);
        session.set_lang(who.lang);
        member.updated_at = self.now;
        match self.d.answer(&mut session, input) {
            Ok(Step::Done(outcome)) => {
                let mut effects = Vec::new();
                if let Some(message_id) = check.message_id {
                    effects.push(Effect::Edit {
                        chat: who.chat,
                        message_id,
                        text: format!(
                            "✅ {}",
                            render::plain(self.d.ui().bot.finished.get(who.lang))
                        ),
                        keyboard: None,
                    });
                }
                for text in render::outcome(
                    self.d,
                    &outcome,
                    who.lang,
                    who.group.then_some(who.first_name),
                ) {
                    effects.push(self.text(who.chat, text));
                }
                let check_id = check.id;
                member.check = None;
                // "See how it goes" outcomes get an offer to come back and ask.
                if self.d.followup_offered(outcome.flow, outcome.urgency) {
                    let offer = super::store::Offer {
                        id: check_id,
                        flow: outcome.flow.to_string(),
                        urgency: outcome.urgency,
                        checked_at: self.now,
                    };
                    effects.extend(self.offer_effects(who, &offer, false));
                    member.offer = Some(offer);
                }
                Plan {
                    member: Some(member),
                    effects,
                    toast: None,
                }
            }
            Ok(Step::Ask(_)) => {
                check.session = self.d.to_record(&session);
                check.version = check.version.wrapping_add(1);
                let effects = self.show(who, &mut member, via, None);
                Plan {
                    member: Some(member),
                    effects,
                    toast: None,
                }
            }
            Err(e) => {
                let message = e.message(self.d, who.lang).to_string();
                match via {
                    Via::Button { .. } => Plan {
                        toast: Some((message, e != InputError::NothingToUndo)),
                        member: Some(member),
                        effects: Vec::new(),
                    },
                    Via::Typed => {
                        let effects = self.show(who, &mut member, Via::Typed, Some(message));
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

    /// Shows the current question again (after a stale press, or on request).
    pub fn show_current(
        &self,
        who: Who<'_>,
        mut member: Member,
        via: Via,
        note: Option<String>,
    ) -> Plan {
        if member.check.is_none() {
            return self.no_check(who, via);
        }
        let toast = match via {
            Via::Button { .. } => note.clone().map(|n| (n, false)),
            Via::Typed => None,
        };
        let effects = self.show(
            who,
            &mut member,
            via,
            if toast.is_some() { None } else { note },
        );
        Plan {
            member: Some(member),
            effects,
            toast,
        }
    }

    pub fn cancel(&self, who: Who<'_>, member: Member, via: Via) -> Plan {
        let Some(check) = member.check else {
            return self.no_check(who, via);
        };
        let cancelled = render::plain(self.d.ui().bot.cancelled.get(who.lang));
        let effects = match (via, check.message_id) {
            (Via::Button { message_id }, _) => vec![Effect::Edit {
                chat: who.chat,
                message_id,
                text: cancelled,
                keyboard: None,
            }],
            (Via::Typed, Some(message_id)) => vec![
                Effect::ClearButtons {
                    chat: who.chat,
                    message_id,
                },
                self.text(who.chat, cancelled),
            ],
            (Via::Typed, None) => vec![self.text(who.chat, cancelled)],
        };
        Plan {
            member: None,
            effects,
            toast: None,
        }
    }

    fn no_check(&self, who: Who<'_>, via: Via) -> Plan {
        let text = self.d.ui().bot.no_check.get(who.lang).to_string();
        match via {
            Via::Button { .. } => Plan {
                member: None,
                effects: Vec::new(),
                toast: Some((self.d.ui().bot.ended.get(who.lang).to_string(), true)),
            },
            Via::Typed => Plan {
                member: None,
                effects: vec![self.text(who.chat, render::plain(&text))],
                toast: None,
            },
        }
    }

    /// The effects that show the member's current question: an edit of the pressed message,
    /// or a new message below (and the old one's buttons removed) when typed.
    fn show(
        &self,
        who: Who<'_>,
        member: &mut Member,
        via: Via,
        note: Option<String>,
    ) -> Vec<Effect> {
        let Some(check) = member.check.as_mut() else {
            return Vec::new();
        };
        let mut session = self.d.from_record(&check.session);
        session.set_lang(who.lang);
        let Step::Ask(ask) = self.d.current(&session) else {
            // A stored check that is already complete (dialogue files changed): nothing to ask.
            return Vec::new();
        };
        let asker = Asker {
            owner: who.user,
            first_name: who.first_name,
            group_chat: who.group.then_some(who.chat),
            bot_username: self.bot_username,
            check: check.id,
            version: check.version,
        };
        let (mut text, keyboard) = render::question(self.d, &ask, &asker);
        if let Some(n) = note {
            text = format!("<i>{}</i>\n\n{text}", render::plain(&n));
        }
        match (via, check.message_id) {
            (Via::Button { message_id }, old) => {
                let mut effects = Vec::new();
                if let Some(old) = old.filter(|&old| old != message_id) {
                    // Pressed on an older message, which now shows the question: the message
                    // that showed it until now loses its buttons (one live message per check).
                    effects.push(Effect::ClearButtons {
                        chat: who.chat,
                        message_id: old,
                    });
                }
                check.message_id = Some(message_id);
                effects.push(Effect::Edit {
                    chat: who.chat,
                    message_id,
                    text,
                    keyboard: Some(keyboard),
                });
                effects
            }
            (Via::Typed, old) => {
                let mut effects = Vec::new();
                if let Some(message_id) = old {
                    // The old message stays as a record of the question, without buttons.
                    effects.push(Effect::ClearButtons {
                        chat: who.chat,
                        message_id,
                    });
                }
                check.message_id = None;
                effects.push(Effect::Send {
                    chat: who.chat,
                    text,
                    keyboard: Some(keyboard),
                    question_of: Some((who.key(), check.id)),
                });
                effects
            }
        }
    }
}
