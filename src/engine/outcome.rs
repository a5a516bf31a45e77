//! Building the outcome: the urgency, the reasons that led there, and the flow's advice.

use std::borrow::Cow;

use super::Fact;
use super::walk::{End, Walk};
use crate::dialogue::model::{Dialogues, Lang, OutcomeText};
use crate::urgency::Urgency;

/// One reason for the outcome, in plain words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason<'d> {
    /// Borrowed from the dialogues, or filled in (a follow-up's "after 8 days").
    pub text: std::borrow::Cow<'d, str>,
    /// The level this reason supports (`self_care` for reassuring findings).
    pub urgency: Urgency,
    /// Comes from a sensitive question: not to be repeated in a group chat.
    pub sensitive: bool,
}

/// The end of a check.
#[derive(Debug, Clone)]
pub struct Outcome<'d> {
    pub urgency: Urgency,
    /// The id of the flow that produced it (`back`, `bone`...).
    pub flow: &'d str,
    /// The level's label from ui.toml ("Emergency", ...).
    pub level: &'d str,
    pub headline: &'d str,
    /// Most urgent first.
    pub reasons: Vec<Reason<'d>>,
    pub advice: Vec<&'d str>,
    pub watch_for: Vec<&'d str>,
    pub prevention: Vec<&'d str>,
    /// Titles of the articles this outcome is based on.
    pub sources: Vec<&'d str>,
    pub disclaimer: &'d str,
}

impl Dialogues {
    pub(crate) fn outcome<'d>(&'d self, lang: Lang, facts: &[Fact], w: &Walk) -> Outcome<'d> {
        let mut reasons = Vec::new();
        let mut extra_advice = Vec::new();
        let mut tips = Vec::new();
        let (flow, urgency) = match w.end {
            End::Stop { flow } => {
                for f in facts.iter().filter(|f| self.choice_of(f).is_emergency()) {
                    let q = &self.questions[f.question as usize];
                    if let Some(r) = &self.choice_of(f).reason {
                        reasons.push(Reason {
                            text: Cow::Borrowed(r.get(lang)),
                            urgency: Urgency::Emergency,
                            sensitive: q.sensitive,
                        });
                    }
                }
                (flow, Urgency::Emergency)
            }
            End::Done { .. } | End::At(_) => {
                let mut urgency = w.urgency;
                for &(q, o) in &w.path {
                    let question = &self.questions[q];
                    let choice = &question.options[o];
                    if let Some(r) = &choice.reason {
                        reasons.push(Reason {
                            text: Cow::Borrowed(r.get(lang)),
                            urgency: choice.urgency.unwrap_or(Urgency::SelfCare),
                            sensitive: question.sensitive,
                        });
                    }
                    if let Some(t) = &choice.tip {
                        tips.push(t.get(lang));
                    }
                }
                // `At` does not reach here (a check in progress has no outcome); its flow is the
                // current question's.
                let flow = match w.end {
                    End::Done { flow } => flow,
                    End::At(q) => self.questions[q].flow,
                    End::Stop { flow } => flow,
                };
                for finding in &self.flows[flow].findings {
                    if finding.when.iter().all(|a| w.path.contains(a)) {
                        let level = finding.urgency.unwrap_or(Urgency::SelfCare);
                        urgency = urgency.max(level);
                        reasons.push(Reason {
                            text: Cow::Borrowed(finding.reason.get(lang)),
                            urgency: level,
                            sensitive: finding
                                .when
                                .iter()
                                .any(|&(q, _)| self.questions[q].sensitive),
                        });
                        if let Some(a) = &finding.advice {
                            extra_advice.push(a.get(lang));
                        }
                    }
                }
                (flow, urgency)
            }
        };
        self.assemble(lang, flow, urgency, reasons, extra_advice, tips)
    }

    /// An outcome of `flow` at `urgency` with these reasons (most urgent first), extra advice
    /// before the flow's own, and prevention tips before the flow's own.
    pub(crate) fn assemble<'d>(
        &'d self,
        lang: Lang,
        flow: usize,
        urgency: Urgency,
        mut reasons: Vec<Reason<'d>>,
        extra_advice: Vec<&'d str>,
        tips: Vec<&'d str>,
    ) -> Outcome<'d> {
        reasons.sort_by_key(|r| std::cmp::Reverse(r.urgency));
        let text = self.outcome_for(flow, urgency);
        let mut advice = extra_advice;
        advice.extend(text.advice.iter().map(|t| t.get(lang)));
        let mut prevention: Vec<&str> = text.prevention.iter().map(|t| t.get(lang)).collect();
        for tip in tips {
            if !prevention.contains(&tip) {
                prevention.insert(0, tip);
            }
        }
        Outcome {
            urgency,
            flow: &self.flows[flow].id,
            level: self.ui.levels[urgency.index()].get(lang),
            headline: text.headline.get(lang),
            reasons,
            advice,
            watch_for: text.watch_for.iter().map(|t| t.get(lang)).collect(),
            prevention,
            sources: text
                .sources
                .iter()
                .map(|&s| self.sources[s].title.as_str())
                .collect(),
            disclaimer: self.disclaimer.get(lang),
        }
    }

    /// The flow's text for `urgency`. Validation guarantees it exists; should it not, the
    /// nearest more urgent text is used, never a less urgent one.
    fn outcome_for(&self, flow: usize, urgency: Urgency) -> &OutcomeText {
        let outcomes = &self.flows[flow].outcomes;
        let index = outcomes[urgency.index()..]
            .iter()
            .chain(outcomes[..urgency.index()].iter().rev())
            .find_map(|o| *o)
            .unwrap_or(0);
        &self.outcomes[index]
    }
}
