//! The bodies of the fuzz targets, shared by `fuzz_targets/*.rs` (libFuzzer, nightly flags)
//! and by `tests/fuzz_corpus.rs` of the main crate (which `#[path]`-includes this file and
//! replays the committed corpus on stable `cargo test`). Each check panics on a bug and only
//! on a bug: garbage input must be refused, never crash the engine.
//!
//! Only `gymtriage` and `std` may be used here: the main crate's tests compile this file too.

use std::path::{Path, PathBuf};

use gymtriage::bot::callback::{self, Press};
use gymtriage::bot::render;
use gymtriage::dialogue::{self, Files};
use gymtriage::graph;
use gymtriage::text::{Pattern, Words};
use gymtriage::{Dialogues, Input, Lang, Session, Step};

// ---------------------------------------------------------------------------------------------
// load_dialogues

/// The shipped dialogue files, read once.
pub struct Shipped {
    pub dir: PathBuf,
    pub files: Files,
    /// The file names, in a fixed order (the first input byte picks one).
    pub names: Vec<PathBuf>,
}

impl Shipped {
    pub fn read(dir: &Path) -> Shipped {
        let files = dialogue::read_files(dir)
            .unwrap_or_else(|e| panic!("cannot read the shipped dialogues in {dir:?}: {e}"));
        let names = files.keys().cloned().collect();
        Shipped {
            dir: dir.to_path_buf(),
            files,
            names,
        }
    }
}

/// `load_dialogues` target. Input: a selector byte `mode << 6 | file`, then
/// - mode 0, replace: the rest is the new content of file `file % n`;
/// - mode 1, splice: `offset: u16 le`, `delete: u8`, then bytes inserted into the original
///   file at `offset % (len + 1)` in place of `delete` bytes;
/// - mode 2, remove: file `file % n` is left out;
/// - mode 3, add: the rest is a new `flows/fuzz.toml` (`file` even) or `outcomes/fuzz.toml`.
///
/// Loading must give `Ok` or a `LoadError` with at least one diagnostic, never panic; a set
/// that loads must be runnable: every check, picking options by the input bytes, ends within
/// `max_questions`, and the graph can be drawn.
pub fn load_dialogues(shipped: &Shipped, data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mut files = shipped.files.clone();
    let name = shipped.names[usize::from(sel & 0x3f) % shipped.names.len()].clone();
    match sel >> 6 {
        0 => {
            files.insert(name, rest.to_vec());
        }
        1 => {
            if rest.len() < 3 {
                return;
            }
            let content = files.get_mut(&name).expect("a shipped file");
            let offset = usize::from(u16::from_le_bytes([rest[0], rest[1]])) % (content.len() + 1);
            let end = (offset + usize::from(rest[2])).min(content.len());
            content.splice(offset..end, rest[3..].iter().copied());
        }
        2 => {
            files.remove(&name);
        }
        _ => {
            let folder = if sel & 1 == 0 { "flows" } else { "outcomes" };
            files.insert(Path::new(folder).join("fuzz.toml"), rest.to_vec());
        }
    }
    match dialogue::load_files(&shipped.dir, &files) {
        Err(e) => {
            assert!(!e.diagnostics.is_empty(), "a LoadError without diagnostics");
            for d in &e.diagnostics {
                if let Some((line, column)) = d.position {
                    assert!(line >= 1 && column >= 1, "0-based position in {d}");
                }
            }
            let _ = e.to_string();
        }
        Ok(d) => run_loaded(&d, data),
    }
}

/// Runs one check through a set that loaded, in every language, picking options by `picks`.
fn run_loaded(d: &Dialogues, picks: &[u8]) {
    assert!(!d.languages().is_empty(), "a loaded set without languages");
    for format in [graph::Format::Mermaid, graph::Format::Dot] {
        let _ = graph::render(d, format, Lang::default(), &[]);
    }
    let mut picks = picks.iter().copied().cycle();
    for lang in 0..d.languages().len() {
        let mut s = d.start_session(Lang::from_index(lang));
        let mut asked = 0;
        loop {
            let ask = match d.current(&s) {
                Step::Done(o) => {
                    assert!(o.urgency >= d.urgency_so_far(&s), "outcome below the path");
                    break;
                }
                Step::Ask(ask) => ask,
            };
            asked += 1;
            assert!(
                asked <= d.max_questions(),
                "question {asked} ({}) beyond max_questions {}",
                ask.id(),
                d.max_questions()
            );
            let ids: Vec<&str> = ask.options().map(|(id, _)| id).collect();
            assert!(!ids.is_empty(), "question {} has no options", ask.id());
            let id = ids[usize::from(picks.next().unwrap_or(0)) % ids.len()];
            if let Err(e) = d.answer(&mut s, Input::Choice(id)) {
                panic!("option {id} of {} refused: {e}", ask.id());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// free_text

/// Reads bytes up to a 0 byte (or the end), as lossy UTF-8.
fn take_text(data: &mut &[u8]) -> String {
    let all: &[u8] = data;
    let end = all.iter().position(|&b| b == 0).unwrap_or(all.len());
    *data = all.get(end + 1..).unwrap_or(&[]);
    String::from_utf8_lossy(&all[..end]).into_owned()
}

/// `free_text` target: the input is a small program run against the shipped dialogues. A
/// language byte, then steps; a step's byte `op << 5 | k` is
/// - op 0..=2: choose option `k` (modulo the count) of the current question;
/// - op 3: choose the option id that follows (bytes up to a 0 byte);
/// - op 4, 5: type the text that follows (bytes up to a 0 byte, lossy UTF-8);
/// - op 6: back; op 7: restart.
///
/// Checked: nothing panics; an input that is refused leaves the session exactly as it was;
/// a question is never past `max_questions`, and from a fresh session the n-th accepted
/// option leads to question n + 1 or an outcome; a session survives its stored form; an
/// outcome is at least as urgent as its path. Typed text also goes through `Words::new` and
/// `Pattern::parse` (and a pattern that parses is searched for in the text).
pub fn free_text(d: &Dialogues, data: &[u8]) {
    let Some((&lang, mut data)) = data.split_first() else {
        return;
    };
    let mut s = d.start_session(Lang::from_index(usize::from(lang) % d.languages().len()));
    // Options accepted since the session was last empty, while only options were given.
    let mut fresh: Option<usize> = Some(0);
    while let Some((&b, rest)) = data.split_first() {
        data = rest;
        let (op, k) = (b >> 5, usize::from(b & 0x1f));
        let typed;
        let input = match op {
            0..=2 => match d.current(&s) {
                Step::Ask(ask) => {
                    let ids: Vec<&str> = ask.options().map(|(id, _)| id).collect();
                    Input::Choice(ids[k % ids.len()])
                }
                Step::Done(_) => Input::Choice("yes"),
            },
            3 => {
                typed = take_text(&mut data);
                Input::Choice(&typed)
            }
            4 | 5 => {
                typed = take_text(&mut data);
                check_text(d, &typed);
                Input::Text(&typed)
            }
            6 => Input::Back,
            _ => Input::Restart,
        };
        let before = s.clone();
        match d.answer(&mut s, input) {
            Err(e) => {
                assert_eq!(
                    s, before,
                    "{input:?} was refused ({e}) but changed the session"
                );
                assert!(!e.message(d, s.lang()).is_empty());
            }
            Ok(step) => {
                fresh = match input {
                    Input::Restart => Some(0),
                    Input::Choice(_) => fresh.map(|n| n + 1),
                    _ => None,
                };
                check_step(d, &s, &step, fresh);
            }
        }
        let record = d.to_record(&s);
        assert_eq!(d.from_record(&record), s, "session lost in its stored form");
    }
}

fn check_step(d: &Dialogues, s: &Session, step: &Step<'_>, fresh: Option<usize>) {
    let max = d.max_questions();
    match step {
        Step::Ask(ask) => {
            assert!(
                (1..=max).contains(&ask.number),
                "question number {} of max {max} ({})",
                ask.number,
                ask.id()
            );
            if let Some(n) = fresh {
                assert_eq!(ask.number, n + 1, "{n} options answered, at {}", ask.id());
            }
            assert_eq!(ask.can_go_back, s.turns() > 0);
        }
        Step::Done(o) => {
            assert!(o.urgency >= d.urgency_so_far(s), "outcome below the path");
        }
    }
}

/// The text layer on its own: splitting, and the text read as a `match` pattern.
fn check_text(d: &Dialogues, text: &str) {
    let words = &d.ui().words;
    let split = Words::new(text, &words.clause_breaks);
    let _ = split.joined();
    let _ = gymtriage::text::normalize(text);
    if let Ok(p) = Pattern::parse(text)
        && let Some(span) = p.find(&split, &words.negations)
    {
        assert!(span.start < span.end && span.end <= split.as_slice().len());
    }
}

// ---------------------------------------------------------------------------------------------
// callback_data

/// The button data for a press, made by the bot's own encoders.
fn encode(press: Press<'_>) -> Option<String> {
    Some(match press {
        Press::Check {
            owner,
            check,
            version,
            action,
        } => callback::check_button(owner, check, version, action),
        Press::Lang(code) => callback::lang_button(code),
        Press::Offer { offer, days } => callback::offer_button(offer, days),
        Press::FollowUp {
            id,
            version,
            action,
        } => callback::followup_button(id, version, action),
        Press::CancelCheckIn(id) => callback::cancel_checkin_button(id),
        // A kind of press added later: decoding it must still not panic.
        #[allow(unreachable_patterns)]
        _ => return None,
    })
}

/// `callback_data` target: callback data and deep-link payloads are attacker-controlled.
/// Decoding must not panic; a press that decodes must re-encode (with the bot's own button
/// encoders) to data that decodes the same and fits Telegram's 64 bytes; a transfer payload
/// that parses must survive a round trip.
pub fn callback_data(data: &[u8]) {
    let lossy = String::from_utf8_lossy(data);
    check_callback(&lossy);
    if let Ok(exact) = std::str::from_utf8(data) {
        check_callback(exact);
    }
}

fn check_callback(data: &str) {
    if let Some(press) = callback::decode(data)
        && let Some(again) = encode(press)
    {
        assert!(again.len() <= callback::MAX_BYTES, "{again:?} too long");
        assert_eq!(
            callback::decode(&again),
            Some(press),
            "{data:?} re-encoded as {again:?}"
        );
    }
    for (parse, make) in [
        (
            render::parse_transfer_payload as fn(&str) -> Option<(i64, u32)>,
            render::transfer_payload as fn(i64, u32) -> String,
        ),
        (render::parse_offer_payload, render::offer_payload),
    ] {
        if let Some((chat, id)) = parse(data) {
            let again = make(chat, id);
            assert_eq!(
                parse(&again),
                Some((chat, id)),
                "{data:?} re-made as {again:?}"
            );
        }
    }
}
