//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::OnceLock;

use gymtriage::{Dialogues, Input, Session, Step, Urgency};

/// The shipped dialogues, loaded once per test binary.
pub fn dialogues() -> &'static Dialogues {
    static D: OnceLock<Dialogues> = OnceLock::new();
    D.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogues");
        match gymtriage::load(&dir) {
            Ok(d) => d,
            Err(e) => panic!("shipped dialogues must load:\n{e}"),
        }
    })
}

pub fn session(lang: &str) -> Session {
    let d = dialogues();
    d.start_session(d.lang(lang).expect("language"))
}

/// The id of the question being asked, or None when the check is over.
pub fn asking(s: &Session) -> Option<String> {
    match dialogues().current(s) {
        Step::Ask(a) => Some(a.id().to_string()),
        Step::Done(_) => None,
    }
}

pub fn urgency(s: &Session) -> Option<Urgency> {
    match dialogues().current(s) {
        Step::Ask(_) => None,
        Step::Done(o) => Some(o.urgency),
    }
}

/// Answers by option id; panics (failing the test) if the engine refuses.
pub fn choose(s: &mut Session, option: &str) {
    let d = dialogues();
    let at = asking(s);
    if let Err(e) = d.answer(s, Input::Choice(option)) {
        panic!("option {option:?} refused at {at:?}: {e}");
    }
}

pub fn say(s: &mut Session, text: &str) {
    let d = dialogues();
    let at = asking(s);
    if let Err(e) = d.answer(s, Input::Text(text)) {
        panic!("text {text:?} refused at {at:?}: {e}");
    }
}

/// Answers each question from `answers` (question id → option id) until the end;
/// returns the questions asked.
pub fn run_profile(s: &mut Session, answers: &[(&str, &str)]) -> Vec<String> {
    let mut asked = Vec::new();
    while let Some(q) = asking(s) {
        let Some((_, o)) = answers.iter().find(|(qq, _)| *qq == q) else {
            panic!("no answer for {q} (asked so far: {asked:?})");
        };
        asked.push(q);
        choose(s, o);
    }
    asked
}
