//! The JSON-lines protocol: one object per line on stdout, one answer per line on stdin.

use std::io::Write;

use serde::Serialize;

use super::Shell;
use crate::dialogue::model::Dialogues;
use crate::engine::{Ask, FollowUpEnd, Outcome, Session};

pub struct Json;

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Message<'a> {
    Question {
        id: &'a str,
        text: &'a str,
        options: Vec<OptionOut<'a>>,
        free_text: bool,
    },
    Error {
        message: &'a str,
    },
    /// The end of a check-in that does not produce a new outcome.
    Followup {
        result: &'a str,
        text: &'a str,
        prevention: &'a [&'a str],
    },
    Outcome {
        urgency: &'a str,
        level: &'a str,
        title: &'a str,
        reasons: Vec<&'a str>,
        advice: &'a [&'a str],
        watch_for: &'a [&'a str],
        prevention: &'a [&'a str],
        sources: &'a [&'a str],
        disclaimer: &'a str,
    },
}

#[derive(Serialize)]
struct OptionOut<'a> {
    id: &'a str,
    label: &'a str,
}

fn send(out: &mut dyn Write, m: &Message<'_>) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, m)?;
    writeln!(out)
}

impl Shell for Json {
    fn welcome(&mut self, _: &Dialogues, _: &Session, _: &mut dyn Write) -> std::io::Result<()> {
        Ok(())
    }

    fn ask(&mut self, _: &Dialogues, ask: &Ask<'_>, out: &mut dyn Write) -> std::io::Result<()> {
        send(
            out,
            &Message::Question {
                id: ask.id(),
                text: ask.text(),
                options: ask
                    .options()
                    .map(|(id, label)| OptionOut { id, label })
                    .collect(),
                free_text: ask.question.free_text,
            },
        )
    }

    fn error(&mut self, message: &str, out: &mut dyn Write) -> std::io::Result<()> {
        send(out, &Message::Error { message })
    }

    fn outcome(
        &mut self,
        _: &Dialogues,
        _: &Session,
        o: &Outcome<'_>,
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        send(
            out,
            &Message::Outcome {
                urgency: o.urgency.id(),
                level: o.level,
                title: o.headline,
                reasons: o.reasons.iter().map(|r| r.text.as_ref()).collect(),
                advice: &o.advice,
                watch_for: &o.watch_for,
                prevention: &o.prevention,
                sources: &o.sources,
                disclaimer: o.disclaimer,
            },
        )
    }

    fn goodbye(&mut self, _: &Dialogues, _: &Session, _: &mut dyn Write) -> std::io::Result<()> {
        Ok(())
    }

    fn choices(
        &mut self,
        id: &str,
        text: &str,
        options: &[(&str, &str)],
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        send(
            out,
            &Message::Question {
                id,
                text,
                options: options
                    .iter()
                    .map(|&(id, label)| OptionOut { id, label })
                    .collect(),
                free_text: true,
            },
        )
    }

    fn followup_end(
        &mut self,
        d: &Dialogues,
        s: &Session,
        end: &FollowUpEnd<'_>,
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        let (result, text, prevention): (&str, &str, &[&str]) = match end {
            FollowUpEnd::Gone { reply } => ("gone", reply, &[]),
            FollowUpEnd::Better {
                reply, prevention, ..
            } => ("better", reply, prevention),
            FollowUpEnd::SameEarly { reply, .. } => ("same_early", reply, &[]),
            FollowUpEnd::Outcome(o) => return self.outcome(d, s, o, out),
        };
        send(
            out,
            &Message::Followup {
                result,
                text,
                prevention,
            },
        )
    }
}
