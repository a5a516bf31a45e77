//! The loaded, validated dialogues: everything resolved to indices and every text
//! normalised once at start, so that a step of the engine does no parsing or lookups by name.

use std::collections::HashMap;

use crate::dialogue::diagnostic::{Loc, SourceMap};
use crate::dialogue::schema::{Body, Topic};
use crate::text::Pattern;
use crate::urgency::Urgency;

/// A language of the dialogue set, as an index into its `languages` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Lang(pub(crate) u8);

impl Lang {
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The language at `index` in the set's list (0 is the default).
    pub fn from_index(index: usize) -> Lang {
        Lang(index.min(u8::MAX as usize) as u8)
    }
}

/// A user-facing text in every language of the set.
#[derive(Debug, Clone)]
pub struct Text(pub(crate) Box<[Box<str>]>);

impl Text {
    pub fn get(&self, lang: Lang) -> &str {
        &self.0[lang.index()]
    }
}

/// Where an option leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Question(usize),
    /// The end of the flow: the check ends with the flow's outcome.
    End,
    /// An emergency answer: the check ends at once.
    Stop,
}

#[derive(Debug, Clone)]
pub struct Question {
    pub id: String,
    pub flow: usize,
    pub text: Text,
    pub options: Vec<Choice>,
    pub free_text: bool,
    pub sensitive: bool,
    pub topic: Option<Topic>,
    pub(crate) loc: Loc,
}

impl Question {
    pub fn option_index(&self, id: &str) -> Option<usize> {
        self.options.iter().position(|o| o.id == id)
    }
}

/// An answer option of a question.
#[derive(Debug, Clone)]
pub struct Choice {
    pub id: String,
    pub label: Text,
    pub urgency: Option<Urgency>,
    pub reason: Option<Text>,
    pub tip: Option<Text>,
    pub next: Next,
    pub(crate) patterns: Vec<Pattern>,
    /// The label in every language, normalised, for matching typed answers.
    pub(crate) label_words: Vec<String>,
    pub(crate) next_loc: Loc,
}

impl Choice {
    /// A positive answer reports a symptom: it carries an urgency floor.
    pub fn is_positive(&self) -> bool {
        self.urgency.is_some()
    }

    pub fn is_emergency(&self) -> bool {
        self.urgency == Some(Urgency::Emergency)
    }
}

#[derive(Debug, Clone)]
pub struct Finding {
    pub id: String,
    pub when: Vec<(usize, usize)>,
    pub urgency: Option<Urgency>,
    pub reason: Text,
    pub advice: Option<Text>,
}

#[derive(Debug, Clone)]
pub struct Flow {
    pub id: String,
    pub body: Body,
    pub findings: Vec<Finding>,
    /// The outcome for each urgency level, the flow's own or the shared one.
    pub outcomes: [Option<usize>; 4],
    pub(crate) loc: Loc,
}

/// What an outcome says, before the answers' reasons are added.
#[derive(Debug, Clone)]
pub struct OutcomeText {
    pub headline: Text,
    pub advice: Vec<Text>,
    pub watch_for: Vec<Text>,
    pub prevention: Vec<Text>,
    pub sources: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct Headings {
    pub reasons: Text,
    pub advice: Text,
    pub watch_for: Text,
    pub prevention: Text,
    pub sources: Text,
}

#[derive(Debug, Clone)]
pub struct Messages {
    pub welcome: Text,
    pub chat_hint: Text,
    pub empty: Text,
    pub too_long: Text,
    pub invalid_utf8: Text,
    pub not_understood: Text,
    pub unknown_option: Text,
    pub nothing_to_undo: Text,
    pub finished: Text,
    pub restarted: Text,
    pub undone: Text,
    pub goodbye: Text,
    pub question_number: Text,
}

/// Word lists, normalised, in all languages at once (people mix languages).
#[derive(Debug, Clone, Default)]
pub struct WordLists {
    pub yes: Vec<String>,
    pub no: Vec<String>,
    pub back: Vec<String>,
    pub restart: Vec<String>,
    pub quit: Vec<String>,
    pub negations: Vec<String>,
    pub clause_breaks: Vec<String>,
}

/// The Telegram bot's wording, compiled.
pub type BotTexts = crate::dialogue::schema::BotTexts<Text>;

#[derive(Debug, Clone)]
pub struct Ui {
    pub levels: [Text; 4],
    pub headings: Headings,
    pub messages: Messages,
    pub words: WordLists,
    pub bot: BotTexts,
}

/// A follow-up rule: the level it raises to and why (`{days}` stands for the days elapsed).
#[derive(Debug, Clone)]
pub struct Rule {
    pub urgency: Urgency,
    pub reason: Text,
}

/// The follow-up rules of one flow.
#[derive(Debug, Clone)]
pub struct Area {
    pub default_days: u32,
    pub limit_days: u32,
    /// Warning-sign questions of the flow asked again when it is the same or worse.
    pub recheck: Vec<usize>,
    pub late: Rule,
    pub worse: Rule,
}

/// Everything about check-ins: wording, and the rules per flow (indexed like `flows`).
#[derive(Debug, Clone)]
pub struct FollowUps {
    pub offer: Text,
    pub suggested: Text,
    pub declined: Text,
    pub scheduled: Text,
    pub when: crate::dialogue::schema::When<Text>,
    pub status: Text,
    pub gone: Text,
    pub better: Text,
    pub same: Text,
    pub worse: Text,
    pub gone_reply: Text,
    pub better_reply: Text,
    pub same_early_reply: Text,
    pub again: Text,
    pub private_button: Text,
    pub done: Text,
    pub list_title: Text,
    pub list_empty: Text,
    pub cancelled: Text,
    pub cmd_checkins: Text,
    pub areas: Vec<Option<Area>>,
}

/// A source article.
#[derive(Debug, Clone)]
pub struct Source {
    pub id: String,
    pub title: String,
}

/// A complete, validated dialogue set. Build it with [`crate::dialogue::load`].
#[derive(Debug, Clone)]
pub struct Dialogues {
    pub(crate) languages: Vec<String>,
    pub(crate) start: usize,
    pub(crate) max_questions: usize,
    pub(crate) disclaimer: Text,
    pub(crate) sources: Vec<Source>,
    pub(crate) questions: Vec<Question>,
    pub(crate) flows: Vec<Flow>,
    pub(crate) outcomes: Vec<OutcomeText>,
    pub(crate) ui: Ui,
    pub(crate) followups: FollowUps,
    pub(crate) question_index: HashMap<String, usize>,
    /// Emergency options that have free-text patterns: scanned in every message.
    pub(crate) red_flags: Vec<(usize, usize)>,
    /// Other options with patterns: taken from a description when they fit.
    pub(crate) volunteered: Vec<(usize, usize)>,
    pub(crate) source_map: SourceMap,
}

impl Dialogues {
    pub fn languages(&self) -> &[String] {
        &self.languages
    }

    /// The language with this code ("en", "es"), if the set has it.
    pub fn lang(&self, code: &str) -> Option<Lang> {
        self.languages
            .iter()
            .position(|l| l == code)
            .map(|i| Lang(i as u8))
    }

    /// The language for a Telegram-style code such as "es-AR", falling back to the first.
    pub fn lang_or_default(&self, code: Option<&str>) -> Lang {
        code.and_then(|c| {
            let primary = c.split(['-', '_']).next().unwrap_or(c).to_ascii_lowercase();
            self.lang(&primary)
        })
        .unwrap_or_default()
    }

    pub fn lang_code(&self, lang: Lang) -> &str {
        &self.languages[lang.index()]
    }

    pub fn questions(&self) -> &[Question] {
        &self.questions
    }

    pub fn question(&self, id: &str) -> Option<&Question> {
        self.question_index.get(id).map(|&i| &self.questions[i])
    }

    pub fn start(&self) -> &Question {
        &self.questions[self.start]
    }

    pub fn max_questions(&self) -> usize {
        self.max_questions
    }

    pub fn flows(&self) -> &[Flow] {
        &self.flows
    }

    pub fn outcome_text(&self, index: usize) -> &OutcomeText {
        &self.outcomes[index]
    }

    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    pub fn ui(&self) -> &Ui {
        &self.ui
    }

    pub fn followups(&self) -> &FollowUps {
        &self.followups
    }

    pub fn disclaimer(&self) -> &Text {
        &self.disclaimer
    }

    /// Every user-facing text of the set, for coverage and copy checks.
    pub fn all_texts(&self) -> Vec<&Text> {
        let mut all = vec![&self.disclaimer];
        for q in &self.questions {
            all.push(&q.text);
            for o in &q.options {
                all.push(&o.label);
                all.extend(o.reason.iter().chain(o.tip.iter()));
            }
        }
        for f in &self.flows {
            for fi in &f.findings {
                all.push(&fi.reason);
                all.extend(fi.advice.iter());
            }
        }
        for a in self.followups.areas.iter().flatten() {
            all.push(&a.late.reason);
            all.push(&a.worse.reason);
        }
        for o in &self.outcomes {
            all.push(&o.headline);
            all.extend(o.advice.iter().chain(&o.watch_for).chain(&o.prevention));
        }
        all
    }
}
