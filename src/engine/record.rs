//! The stored form of a session: language code and answer ids, nothing typed by the person.
//! Ids (not indices) are stored so that a session survives edits to the dialogue files.

use serde::{Deserialize, Serialize};

use super::{Fact, Session};
use crate::dialogue::model::Dialogues;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub lang: String,
    pub answers: Vec<AnswerRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerRecord {
    pub question: String,
    pub option: String,
    pub turn: u16,
}

impl Dialogues {
    pub fn to_record(&self, s: &Session) -> SessionRecord {
        SessionRecord {
            lang: self.lang_code(s.lang).to_string(),
            answers: s
                .facts
                .iter()
                .map(|f| {
                    let q = &self.questions[f.question as usize];
                    AnswerRecord {
                        question: q.id.clone(),
                        option: q.options[f.option as usize].id.clone(),
                        turn: f.turn,
                    }
                })
                .collect(),
        }
    }

    /// Rebuilds a session. Answers to questions or options that no longer exist are dropped
    /// (the check resumes at the first question they affected); an unknown language becomes the
    /// default one.
    pub fn from_record(&self, r: &SessionRecord) -> Session {
        let mut s = Session::new(self.lang(&r.lang).unwrap_or_default());
        let mut last_turn = 0;
        for a in &r.answers {
            let Some(&q) = self.question_index.get(&a.question) else {
                continue;
            };
            let Some(o) = self.questions[q].option_index(&a.option) else {
                continue;
            };
            // Turns only ever increase in a valid record; clamp anything else.
            let turn = a.turn.max(last_turn).max(1);
            last_turn = turn;
            s.facts.retain(|f| f.question as usize != q);
            s.facts.push(Fact {
                question: q as u16,
                option: o as u8,
                turn,
            });
        }
        s
    }
}
