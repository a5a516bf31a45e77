//! Follow-up check-ins: days after a check, "how is the pain now?". The answer re-runs the
//! articles' time rules (data in `followup.toml`): better gets encouragement and prevention,
//! the same past the flow's day limit or worse raises the urgency with a new outcome, and the
//! flow's warning signs are asked again (a red flag still ends everything at once).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::{Ask, InputError, Outcome, Reason};
use crate::dialogue::model::{Area, Dialogues, Lang};
use crate::text::Words;
use crate::urgency::Urgency;

/// How the pain is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Gone,
    Better,
    Same,
    Worse,
}

impl Status {
    pub const ALL: [Status; 4] = [Status::Gone, Status::Better, Status::Same, Status::Worse];

    pub fn id(self) -> &'static str {
        match self {
            Status::Gone => "gone",
            Status::Better => "better",
            Status::Same => "same",
            Status::Worse => "worse",
        }
    }

    pub fn from_id(id: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.id() == id)
    }
}

/// A check-in being answered: what the check concluded, how long ago, and the answers so
/// far (ids only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUp {
    pub flow: String,
    /// The level the check ended at.
    pub urgency: Urgency,
    /// Days since the check.
    pub days: u32,
    pub lang: String,
    #[serde(default)]
    pub status: Option<Status>,
    /// Answers to the warning-sign questions asked again: (question id, option id).
    #[serde(default)]
    pub answers: Vec<(String, String)>,
}

/// What a person sent during a check-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowUpInput<'a> {
    /// A button: a status id (`gone`...) or an option id of the question asked.
    Choice(&'a str),
    Text(&'a str),
}

/// The next thing to show in a check-in.
#[derive(Debug, Clone)]
pub enum FollowUpStep<'d> {
    /// "How is the pain now?", with the days filled in, and the four answers.
    Status {
        text: String,
        options: Vec<(&'static str, &'d str)>,
    },
    /// A warning-sign question, asked as in a check.
    Ask(Ask<'d>),
    Done(FollowUpEnd<'d>),
}

/// How a check-in ends.
#[derive(Debug, Clone)]
pub enum FollowUpEnd<'d> {
    /// The pain is gone: the episode is closed.
    Gone { reply: &'d str },
    /// Getting better: encouragement, prevention tips, and an offer to ask once more.
    Better {
        reply: &'d str,
        prevention: Vec<&'d str>,
        again: &'d str,
    },
    /// No change yet, still within the usual time, nothing new: keep going, ask again.
    SameEarly { reply: &'d str, again: &'d str },
    /// A new outcome: the urgency raised by the time rules, a worse course or a warning sign.
    Outcome(Outcome<'d>),
}

impl Dialogues {
    /// The follow-up rules of a flow, if it has any.
    pub fn followup_area(&self, flow: &str) -> Option<&Area> {
        let i = self.flows.iter().position(|f| f.id == flow)?;
        self.followups.areas.get(i)?.as_ref()
    }

    /// Whether an outcome gets a check-in offer: only levels that say "see how it goes".
    pub fn followup_offered(&self, flow: &str, urgency: Urgency) -> bool {
        matches!(urgency, Urgency::SelfCare | Urgency::SeeProfessional)
            && self.followup_area(flow).is_some()
    }

    fn fu_lang(&self, f: &FollowUp) -> Lang {
        self.lang(&f.lang).unwrap_or_default()
    }

    /// Where a check-in stands.
    pub fn followup_step<'d>(&'d self, f: &FollowUp) -> FollowUpStep<'d> {
        let lang = self.fu_lang(f);
        let fu = &self.followups;
        let Some(flow) = self.flows.iter().position(|x| x.id == f.flow) else {
            return FollowUpStep::Done(FollowUpEnd::Gone {
                reply: fu.gone_reply.get(lang),
            });
        };
        let Some(status) = f.status else {
            let text = fu.status.get(lang).replace("{days}", &f.days.to_string());
            let options = vec![
                ("gone", fu.gone.get(lang)),
                ("better", fu.better.get(lang)),
                ("same", fu.same.get(lang)),
                ("worse", fu.worse.get(lang)),
            ];
            return FollowUpStep::Status { text, options };
        };
        match status {
            Status::Gone => FollowUpStep::Done(FollowUpEnd::Gone {
                reply: fu.gone_reply.get(lang),
            }),
            Status::Better => {
                let prevention = self.flows[flow].outcomes[0]
                    .map(|o| {
                        self.outcomes[o]
                            .prevention
                            .iter()
                            .map(|t| t.get(lang))
                            .collect()
                    })
                    .unwrap_or_default();
                FollowUpStep::Done(FollowUpEnd::Better {
                    reply: fu.better_reply.get(lang),
                    prevention,
                    again: fu.again.get(lang),
                })
            }
            Status::Same | Status::Worse => self.recheck_step(f, flow, status, lang),
        }
    }

    fn recheck_answers(&self, f: &FollowUp) -> Vec<(usize, usize)> {
        f.answers
            .iter()
            .filter_map(|(q, o)| {
                let qi = *self.question_index.get(q)?;
                Some((qi, self.questions[qi].option_index(o)?))
            })
            .collect()
    }

    fn recheck_step<'d>(
        &'d self,
        f: &FollowUp,
        flow: usize,
        status: Status,
        lang: Lang,
    ) -> FollowUpStep<'d> {
        let Some(area) = self.followups.areas.get(flow).and_then(Option::as_ref) else {
            return FollowUpStep::Done(FollowUpEnd::SameEarly {
                reply: self.followups.same_early_reply.get(lang),
                again: self.followups.again.get(lang),
            });
        };
        let answers = self.recheck_answers(f);
        let reason = |q: usize, o: usize| {
            let question = &self.questions[q];
            let choice = &question.options[o];
            choice.reason.as_ref().map(|r| Reason {
                text: Cow::Borrowed(r.get(lang)),
                urgency: choice.urgency.unwrap_or(Urgency::SelfCare),
                sensitive: question.sensitive,
            })
        };
        // A red flag ends the check-in at once, like in a check.
        let flags: Vec<Reason<'d>> = answers
            .iter()
            .filter(|&&(q, o)| self.questions[q].options[o].is_emergency())
            .filter_map(|&(q, o)| reason(q, o))
            .collect();
        if !flags.is_empty() {
            let o = self.assemble(lang, flow, Urgency::Emergency, flags, vec![], vec![]);
            return FollowUpStep::Done(FollowUpEnd::Outcome(o));
        }
        if let Some((i, &q)) = area
            .recheck
            .iter()
            .enumerate()
            .find(|(_, q)| !answers.iter().any(|(aq, _)| aq == *q))
        {
            return FollowUpStep::Ask(Ask {
                question: &self.questions[q],
                lang,
                number: i + 2,
                can_go_back: false,
            });
        }
        let mut urgency = f.urgency;
        let mut reasons: Vec<Reason<'d>> = Vec::new();
        let days = f.days.to_string();
        let rule = |r: &'d crate::dialogue::model::Rule| Reason {
            text: Cow::Owned(r.reason.get(lang).replace("{days}", &days)),
            urgency: r.urgency,
            sensitive: false,
        };
        if status == Status::Worse {
            urgency = urgency.max(area.worse.urgency);
            reasons.push(rule(&area.worse));
        }
        if status == Status::Same && f.days >= area.limit_days {
            urgency = urgency.max(area.late.urgency);
            reasons.push(rule(&area.late));
        }
        for &(q, o) in &answers {
            if let Some(u) = self.questions[q].options[o].urgency {
                urgency = urgency.max(u);
                reasons.extend(reason(q, o));
            }
        }
        if status == Status::Same && reasons.is_empty() {
            return FollowUpStep::Done(FollowUpEnd::SameEarly {
                reply: self.followups.same_early_reply.get(lang),
                again: self.followups.again.get(lang),
            });
        }
        FollowUpStep::Done(FollowUpEnd::Outcome(self.assemble(
            lang,
            flow,
            urgency,
            reasons,
            vec![],
            vec![],
        )))
    }

    /// Applies an answer to a check-in; on an input it cannot use, nothing changes.
    pub fn followup_answer<'d>(
        &'d self,
        f: &mut FollowUp,
        input: FollowUpInput<'_>,
    ) -> Result<FollowUpStep<'d>, InputError> {
        let lang = self.fu_lang(f);
        // Typed red flags count whatever is being asked.
        if let FollowUpInput::Text(t) = input {
            let text = t.trim();
            if text.is_empty() {
                return Err(InputError::Empty);
            }
            if text.chars().nth(super::MAX_TEXT_CHARS).is_some() {
                return Err(InputError::TooLong);
            }
            let words = Words::new(text, &self.ui.words.clause_breaks);
            let flags = self.red_flags_in(&words);
            if !flags.is_empty() {
                f.status.get_or_insert(Status::Worse);
                for (q, o) in flags {
                    let id = self.questions[q].id.clone();
                    f.answers.retain(|(aq, _)| *aq != id);
                    f.answers
                        .push((id, self.questions[q].options[o].id.clone()));
                }
                return Ok(self.followup_step(f));
            }
        }
        match self.followup_step(f) {
            FollowUpStep::Status { options, .. } => {
                let status = match input {
                    FollowUpInput::Choice(id) => {
                        Status::from_id(id).ok_or(InputError::UnknownOption)?
                    }
                    FollowUpInput::Text(t) => {
                        let t = t.trim();
                        let n = crate::text::normalize(t);
                        let by_number = t
                            .parse::<usize>()
                            .ok()
                            .filter(|n| (1..=4).contains(n))
                            .map(|n| Status::ALL[n - 1]);
                        let by_label = options.iter().enumerate().find_map(|(i, (id, label))| {
                            let words = [*id, label];
                            words
                                .iter()
                                .any(|w| crate::text::normalize(w) == n)
                                .then_some(Status::ALL[i])
                        });
                        // The labels in the other languages count too.
                        let other = Status::ALL.into_iter().find(|s| {
                            let fu = &self.followups;
                            let text = match s {
                                Status::Gone => &fu.gone,
                                Status::Better => &fu.better,
                                Status::Same => &fu.same,
                                Status::Worse => &fu.worse,
                            };
                            (0..self.languages.len())
                                .any(|l| crate::text::normalize(text.get(Lang::from_index(l))) == n)
                        });
                        by_number
                            .or(by_label)
                            .or(other)
                            .ok_or(InputError::NotUnderstood)?
                    }
                };
                f.status = Some(status);
                let _ = lang;
                Ok(self.followup_step(f))
            }
            FollowUpStep::Ask(ask) => {
                let q = ask.question;
                let qi = self.question_index[&q.id];
                let o = match input {
                    FollowUpInput::Choice(id) => {
                        q.option_index(id).ok_or(InputError::UnknownOption)?
                    }
                    FollowUpInput::Text(t) => {
                        let words = Words::new(t.trim(), &self.ui.words.clause_breaks);
                        self.resolve_direct(qi, t.trim(), &words)
                            .ok_or(InputError::NotUnderstood)?
                    }
                };
                f.answers.push((q.id.clone(), q.options[o].id.clone()));
                Ok(self.followup_step(f))
            }
            FollowUpStep::Done(_) => Err(InputError::Finished),
        }
    }
}
