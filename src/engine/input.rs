//! Turning what a person sent into answers: option ids, numbers, labels, yes/no words and
//! free-text descriptions, with the red-flag scan that runs on every message.

use super::{Fact, Session};
use crate::dialogue::model::{Dialogues, Lang};
use crate::engine::walk::End;
use crate::text::{Span, Words};

/// Longest free-text message the engine reads, in characters.
pub const MAX_TEXT_CHARS: usize = 1000;

/// What a person sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input<'a> {
    /// An option id, as sent by a button or a JSON client.
    Choice(&'a str),
    /// Anything typed: a number, an option's label, yes/no, or a description.
    Text(&'a str),
    /// Undo the last turn.
    Back,
    /// Forget every answer and start again.
    Restart,
}

/// Why an input could not be used. The session is left as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("empty message")]
    Empty,
    #[error("message too long")]
    TooLong,
    #[error("message not understood")]
    NotUnderstood,
    #[error("no such option")]
    UnknownOption,
    #[error("nothing to undo")]
    NothingToUndo,
    #[error("the check is finished")]
    Finished,
}

impl InputError {
    /// The message to show, in the person's language.
    pub fn message(self, d: &Dialogues, lang: Lang) -> &str {
        let m = &d.ui().messages;
        match self {
            InputError::Empty => m.empty.get(lang),
            InputError::TooLong => m.too_long.get(lang),
            InputError::NotUnderstood => m.not_understood.get(lang),
            InputError::UnknownOption => m.unknown_option.get(lang),
            InputError::NothingToUndo => m.nothing_to_undo.get(lang),
            InputError::Finished => m.finished.get(lang),
        }
    }
}

impl Dialogues {
    pub(crate) fn apply(&self, s: &mut Session, input: Input<'_>) -> Result<(), InputError> {
        match input {
            Input::Restart => {
                s.facts.clear();
                Ok(())
            }
            Input::Back => {
                let turn = s.turns();
                if turn == 0 {
                    return Err(InputError::NothingToUndo);
                }
                s.facts.retain(|f| f.turn != turn);
                Ok(())
            }
            Input::Choice(id) => {
                let End::At(q) = self.walk(&s.facts).end else {
                    return Err(InputError::Finished);
                };
                let o = self.questions[q]
                    .option_index(id)
                    .ok_or(InputError::UnknownOption)?;
                record(s, &[(q, o)]);
                Ok(())
            }
            Input::Text(text) => self.apply_text(s, text),
        }
    }

    fn apply_text(&self, s: &mut Session, text: &str) -> Result<(), InputError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(InputError::Empty);
        }
        if text.chars().nth(MAX_TEXT_CHARS).is_some() {
            return Err(InputError::TooLong);
        }
        let words = Words::new(text, &self.ui.words.clause_breaks);
        let negations = &self.ui.words.negations;

        // Red flags first, in every language, whatever the question: they end the check.
        let flags = self.red_flags_in(&words);
        if !flags.is_empty() {
            record(s, &flags);
            return Ok(());
        }

        let End::At(current) = self.walk(&s.facts).end else {
            return Err(InputError::Finished);
        };
        if words.is_empty() {
            return Err(InputError::NotUnderstood);
        }
        let direct = self.resolve_direct(current, text, &words);

        // What the description says about this and other questions, longest matches first.
        let mut found: Vec<(usize, usize, Span)> = Vec::new();
        for &(q, o) in &self.volunteered {
            let answered = s.facts.iter().any(|f| f.question as usize == q);
            if answered && q != current {
                continue;
            }
            if let Some(span) = self.questions[q].options[o]
                .patterns
                .iter()
                .find_map(|p| p.find(&words, negations))
            {
                found.push((q, o, span));
            }
        }
        let spans: Vec<Span> = found.iter().map(|f| f.2).collect();
        found.retain(|(_, _, span)| !spans.iter().any(|other| other.strictly_contains(span)));
        let mut facts: Vec<(usize, usize)> = Vec::new();
        for &(q, o, _) in &found {
            let unique = found.iter().all(|&(q2, o2, _)| q2 != q || o2 == o);
            if unique && !facts.iter().any(|&(fq, _)| fq == q) {
                facts.push((q, o));
            }
        }
        // When a description fits several options of the current question, the most urgent
        // wins, then the first listed (so "lower back ... legs" is treated as back pain).
        let options = &self.questions[current].options;
        let described = found
            .iter()
            .filter(|&&(q, _, _)| q == current)
            .map(|&(_, o, _)| o)
            .min_by_key(|&o| (std::cmp::Reverse(options[o].urgency), o));
        let answer = match direct.or(described) {
            Some(o) => o,
            None => return Err(InputError::NotUnderstood),
        };
        facts.retain(|&(q, _)| q != current);
        facts.insert(0, (current, answer));
        record(s, &facts);
        Ok(())
    }

    /// The red-flag answers a message names (not negated), in every language.
    pub(crate) fn red_flags_in(&self, words: &Words) -> Vec<(usize, usize)> {
        let negations = &self.ui.words.negations;
        self.red_flags
            .iter()
            .copied()
            .filter(|&(q, o)| {
                self.questions[q].options[o]
                    .patterns
                    .iter()
                    .any(|p| p.find(words, negations).is_some())
            })
            .collect()
    }

    /// An option id, its number, its label, or a yes/no word.
    pub(crate) fn resolve_direct(&self, q: usize, raw: &str, words: &Words) -> Option<usize> {
        let question = &self.questions[q];
        if let Some(o) = question.option_index(raw) {
            return Some(o);
        }
        if let Ok(n) = raw.parse::<usize>() {
            return (1..=question.options.len()).contains(&n).then(|| n - 1);
        }
        let joined = words.joined();
        if let Some(o) = question
            .options
            .iter()
            .position(|o| o.label_words.contains(&joined))
        {
            return Some(o);
        }
        let starts = |list: &[String]| {
            list.iter().any(|p| {
                joined == *p
                    || (joined.starts_with(p.as_str()) && joined[p.len()..].starts_with(' '))
            })
        };
        let w = &self.ui.words;
        if starts(&w.yes)
            && let Some(o) = question.option_index("yes")
        {
            return Some(o);
        }
        if starts(&w.no) {
            return question.option_index("no");
        }
        None
    }
}

/// Records answers as one new turn, replacing earlier answers to the same questions.
fn record(s: &mut Session, answers: &[(usize, usize)]) {
    let turn = s.turns().saturating_add(1);
    for &(q, o) in answers {
        s.facts.retain(|f| f.question as usize != q);
        s.facts.push(Fact {
            question: q as u16,
            option: o as u8,
            turn,
        });
    }
}
