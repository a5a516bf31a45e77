//! Front ends over the engine: an interactive terminal conversation and a JSON-lines
//! protocol for other programs. Both read lines, turn them into [`Input`]s and render steps.

mod json;
mod lines;
mod terminal;

pub use lines::{Line, LineReader};
pub use terminal::render_outcome;

use std::io::{BufRead, Write};

use crate::dialogue::model::Dialogues;
use crate::engine::{
    FollowUp, FollowUpEnd, FollowUpInput, FollowUpStep, Input, InputError, Session, Step,
};
use crate::text::normalize;

/// How a chat ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatEnd {
    /// An outcome was shown.
    Outcome,
    /// The person typed `quit`.
    Quit,
    /// The input ended first.
    EndOfInput,
}

/// Longest input line read, in bytes; the rest of a longer line is skipped and reported.
pub const MAX_LINE_BYTES: usize = 4096;

/// Runs one check over `input`/`output`, speaking JSON lines when `json` is set. With
/// `followup_days`, an outcome that offers a check-in is followed by that check-in, as if
/// it came that many days later.
pub fn chat(
    d: &Dialogues,
    session: &mut Session,
    json: bool,
    followup_days: Option<u32>,
    input: impl BufRead,
    mut output: impl Write,
) -> std::io::Result<ChatEnd> {
    let mut lines = LineReader::new(input, MAX_LINE_BYTES);
    let mut shell: Box<dyn Shell> = if json {
        Box::new(json::Json)
    } else {
        Box::new(terminal::Terminal)
    };
    shell.welcome(d, session, &mut output)?;
    let mut step = d.current(session);
    loop {
        if let Step::Done(outcome) = &step {
            shell.outcome(d, session, outcome, &mut output)?;
            if let Some(days) = followup_days
                && d.followup_offered(outcome.flow, outcome.urgency)
            {
                let mut f = FollowUp {
                    flow: outcome.flow.to_string(),
                    urgency: outcome.urgency,
                    days,
                    lang: d.lang_code(session.lang()).to_string(),
                    status: None,
                    answers: Vec::new(),
                };
                return followup(d, session, &mut f, shell.as_mut(), &mut lines, &mut output);
            }
            return Ok(ChatEnd::Outcome);
        }
        if let Step::Ask(ask) = &step {
            shell.ask(d, ask, &mut output)?;
        }
        output.flush()?;
        let line = match lines.next_line()? {
            None => {
                shell.goodbye(d, session, &mut output)?;
                return Ok(ChatEnd::EndOfInput);
            }
            Some(Line::TooLong) => Err(InputError::TooLong),
            Some(Line::InvalidUtf8) => {
                let lang = session.lang();
                shell.error(d.ui().messages.invalid_utf8.get(lang), &mut output)?;
                continue;
            }
            Some(Line::Text(text)) => Ok(text),
        };
        let result = match line {
            Err(e) => Err(e),
            Ok(text) => match command(d, session, &step, &text) {
                Command::Quit => {
                    shell.goodbye(d, session, &mut output)?;
                    return Ok(ChatEnd::Quit);
                }
                Command::Input(input) => d.answer(session, input),
            },
        };
        match result {
            Ok(next) => step = next,
            Err(e) => {
                shell.error(e.message(d, session.lang()), &mut output)?;
                step = d.current(session);
            }
        }
    }
}

/// A check-in after the outcome (`chat --followup DAYS`).
fn followup<R: BufRead>(
    d: &Dialogues,
    session: &Session,
    f: &mut FollowUp,
    shell: &mut dyn Shell,
    lines: &mut LineReader<R>,
    output: &mut dyn Write,
) -> std::io::Result<ChatEnd> {
    let lang = session.lang();
    let mut step = d.followup_step(f);
    loop {
        match &step {
            FollowUpStep::Done(end) => {
                shell.followup_end(d, session, end, output)?;
                return Ok(ChatEnd::Outcome);
            }
            FollowUpStep::Status { text, options } => {
                shell.choices("followup_status", text, options, output)?
            }
            FollowUpStep::Ask(ask) => shell.ask(d, ask, output)?,
        }
        output.flush()?;
        let text = match lines.next_line()? {
            None => return Ok(ChatEnd::EndOfInput),
            Some(Line::TooLong) => {
                shell.error(d.ui().messages.too_long.get(lang), output)?;
                continue;
            }
            Some(Line::InvalidUtf8) => {
                shell.error(d.ui().messages.invalid_utf8.get(lang), output)?;
                continue;
            }
            Some(Line::Text(t)) => t,
        };
        let t = text.trim();
        if d.ui().words.quit.contains(&normalize(t)) {
            shell.goodbye(d, session, output)?;
            return Ok(ChatEnd::Quit);
        }
        let is_id = match &step {
            FollowUpStep::Status { options, .. } => options.iter().any(|(id, _)| *id == t),
            FollowUpStep::Ask(ask) => ask.question.option_index(t).is_some(),
            FollowUpStep::Done(_) => false,
        };
        let input = if is_id {
            FollowUpInput::Choice(t)
        } else {
            FollowUpInput::Text(t)
        };
        match d.followup_answer(f, input) {
            Ok(next) => step = next,
            Err(e) => {
                shell.error(e.message(d, lang), output)?;
                step = d.followup_step(f);
            }
        }
    }
}

enum Command<'a> {
    Quit,
    Input(Input<'a>),
}

/// An option id of the current question wins; then the command words; then free text.
fn command<'a>(d: &Dialogues, session: &Session, step: &Step<'_>, text: &'a str) -> Command<'a> {
    let trimmed = text.trim();
    if let Step::Ask(ask) = step
        && ask.question.option_index(trimmed).is_some()
    {
        return Command::Input(Input::Choice(trimmed));
    }
    let words = &d.ui().words;
    let n = normalize(trimmed);
    if words.quit.contains(&n) {
        Command::Quit
    } else if words.restart.contains(&n) {
        Command::Input(Input::Restart)
    } else if words.back.contains(&n) && session.turns() > 0 {
        // With nothing to undo, "back" is more likely an answer ("my back").
        Command::Input(Input::Back)
    } else {
        Command::Input(Input::Text(trimmed))
    }
}

/// How a front end renders the steps of a check.
trait Shell {
    fn welcome(&mut self, d: &Dialogues, s: &Session, out: &mut dyn Write) -> std::io::Result<()>;
    fn ask(
        &mut self,
        d: &Dialogues,
        ask: &crate::engine::Ask<'_>,
        out: &mut dyn Write,
    ) -> std::io::Result<()>;
    fn error(&mut self, message: &str, out: &mut dyn Write) -> std::io::Result<()>;
    fn outcome(
        &mut self,
        d: &Dialogues,
        s: &Session,
        outcome: &crate::engine::Outcome<'_>,
        out: &mut dyn Write,
    ) -> std::io::Result<()>;
    fn goodbye(&mut self, d: &Dialogues, s: &Session, out: &mut dyn Write) -> std::io::Result<()>;
    /// A question that is not a dialogue question (a check-in's "how is it now?").
    fn choices(
        &mut self,
        id: &str,
        text: &str,
        options: &[(&str, &str)],
        out: &mut dyn Write,
    ) -> std::io::Result<()>;
    fn followup_end(
        &mut self,
        d: &Dialogues,
        s: &Session,
        end: &FollowUpEnd<'_>,
        out: &mut dyn Write,
    ) -> std::io::Result<()>;
}
