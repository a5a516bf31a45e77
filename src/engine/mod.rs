//! The triage engine: pure functions from (dialogues, session, input) to the next step.
//! No I/O, no async, no front-end types: the terminal, the JSON protocol and Telegram are
//! shells around [`Dialogues::answer`] and [`Dialogues::current`].

mod followup;
mod input;
mod outcome;
mod record;
mod walk;

pub use followup::{FollowUp, FollowUpEnd, FollowUpInput, FollowUpStep, Status};
pub use input::{Input, InputError, MAX_TEXT_CHARS};
pub use outcome::{Outcome, Reason};
pub use record::{AnswerRecord, SessionRecord};

use crate::dialogue::model::{Choice, Dialogues, Lang, Question};

/// One answer: option `option` of question `question`, given in turn `turn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fact {
    pub question: u16,
    pub option: u8,
    pub turn: u16,
}

/// A person's check in progress: the language and the answers so far. Everything else (the
/// current question, the urgency) is derived from these by replaying the dialogue graph.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Session {
    lang: Lang,
    facts: Vec<Fact>,
}

impl Session {
    pub fn new(lang: Lang) -> Session {
        Session {
            lang,
            facts: Vec::with_capacity(16),
        }
    }

    pub fn lang(&self) -> Lang {
        self.lang
    }

    pub fn set_lang(&mut self, lang: Lang) {
        self.lang = lang;
    }

    /// Number of turns the person has taken (each may have answered several questions).
    pub fn turns(&self) -> u16 {
        self.facts.last().map_or(0, |f| f.turn)
    }
}

/// A question to put to the person.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'d> {
    pub question: &'d Question,
    pub lang: Lang,
    /// 1-based position of this question in the check.
    pub number: usize,
    /// Whether `back` has something to undo.
    pub can_go_back: bool,
}

impl<'d> Ask<'d> {
    pub fn id(&self) -> &'d str {
        &self.question.id
    }

    pub fn text(&self) -> &'d str {
        self.question.text.get(self.lang)
    }

    pub fn options(&self) -> impl Iterator<Item = (&'d str, &'d str)> + '_ {
        let lang = self.lang;
        self.question
            .options
            .iter()
            .map(move |o: &'d Choice| (o.id.as_str(), o.label.get(lang)))
    }
}

/// What the front end shows next.
#[derive(Debug, Clone)]
pub enum Step<'d> {
    Ask(Ask<'d>),
    Done(Outcome<'d>),
}

impl Step<'_> {
    pub fn is_done(&self) -> bool {
        matches!(self, Step::Done(_))
    }
}

impl Dialogues {
    /// A new session in `lang`.
    pub fn start_session(&self, lang: Lang) -> Session {
        Session::new(lang)
    }

    /// Where the session stands now.
    pub fn current<'d>(&'d self, session: &Session) -> Step<'d> {
        let w = self.walk(&session.facts);
        match w.end {
            walk::End::At(q) => Step::Ask(Ask {
                question: &self.questions[q],
                lang: session.lang,
                number: w.path.len() + 1,
                can_go_back: !session.facts.is_empty(),
            }),
            _ => Step::Done(self.outcome(session.lang, &session.facts, &w)),
        }
    }

    /// Applies one input. On an input it cannot use, the session is unchanged and the error
    /// says why; the front end shows the message and then [`Dialogues::current`] again.
    pub fn answer<'d>(
        &'d self,
        session: &mut Session,
        input: Input<'_>,
    ) -> Result<Step<'d>, InputError> {
        self.apply(session, input)?;
        Ok(self.current(session))
    }

    /// The urgency the session has reached so far (the outcome's level once it is done).
    pub fn urgency_so_far(&self, session: &Session) -> crate::urgency::Urgency {
        self.walk(&session.facts).urgency
    }
}
