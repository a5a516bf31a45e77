//! Replaying a session's answers through the dialogue graph.

use super::Fact;
use crate::dialogue::model::{Dialogues, Next};
use crate::urgency::Urgency;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// Waiting for an answer to this question.
    At(usize),
    /// The flow ended normally.
    Done { flow: usize },
    /// A red flag ended the check.
    Stop { flow: usize },
}

#[derive(Debug, Clone)]
pub(crate) struct Walk {
    /// The answered questions on the way, in order: (question, option).
    pub path: Vec<(usize, usize)>,
    pub end: End,
    /// The highest urgency floor among the answers on the path.
    pub urgency: Urgency,
}

impl Dialogues {
    pub(crate) fn choice_of(&self, f: &Fact) -> &crate::dialogue::model::Choice {
        &self.questions[f.question as usize].options[f.option as usize]
    }

    pub(crate) fn walk(&self, facts: &[Fact]) -> Walk {
        // A red flag ends the check wherever it was given, on the path or not.
        if let Some(f) = facts.iter().find(|f| self.choice_of(f).is_emergency()) {
            return Walk {
                path: Vec::new(),
                end: End::Stop {
                    flow: self.questions[f.question as usize].flow,
                },
                urgency: Urgency::Emergency,
            };
        }
        let mut path = Vec::with_capacity(16);
        let mut urgency = Urgency::SelfCare;
        let mut q = self.start;
        // The graph is validated acyclic; the bound only guards against a bug looping forever.
        for _ in 0..=self.questions.len() {
            let Some(f) = facts.iter().rev().find(|f| f.question as usize == q) else {
                return Walk {
                    path,
                    end: End::At(q),
                    urgency,
                };
            };
            let o = f.option as usize;
            let choice = &self.questions[q].options[o];
            path.push((q, o));
            if let Some(u) = choice.urgency {
                urgency = urgency.max(u);
            }
            match choice.next {
                Next::Question(n) => q = n,
                Next::End | Next::Stop => {
                    let flow = self.questions[q].flow;
                    let end = if choice.next == Next::End {
                        End::Done { flow }
                    } else {
                        End::Stop { flow }
                    };
                    return Walk { path, end, urgency };
                }
            }
        }
        Walk {
            path,
            end: End::At(q),
            urgency,
        }
    }
}
