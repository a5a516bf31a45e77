//! The human terminal conversation: numbered options, free text, plain text output.

use std::io::Write;

use super::Shell;
use crate::dialogue::model::Dialogues;
use crate::engine::{Ask, FollowUpEnd, Outcome, Session};

pub struct Terminal;

impl Shell for Terminal {
    fn welcome(&mut self, d: &Dialogues, s: &Session, out: &mut dyn Write) -> std::io::Result<()> {
        let m = &d.ui().messages;
        writeln!(out, "{}", m.welcome.get(s.lang()))?;
        writeln!(out, "{}", m.chat_hint.get(s.lang()))
    }

    fn ask(&mut self, d: &Dialogues, ask: &Ask<'_>, out: &mut dyn Write) -> std::io::Result<()> {
        let number = d.ui().messages.question_number.get(ask.lang);
        writeln!(out)?;
        writeln!(out, "{} {}: {}", number, ask.number, ask.text())?;
        for (i, (_, label)) in ask.options().enumerate() {
            writeln!(out, "  {}. {}", i + 1, label)?;
        }
        write!(out, "> ")
    }

    fn error(&mut self, message: &str, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(out, "! {message}")
    }

    fn outcome(
        &mut self,
        d: &Dialogues,
        s: &Session,
        o: &Outcome<'_>,
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        write!(out, "{}", render_outcome(d, s, o))
    }

    fn goodbye(&mut self, d: &Dialogues, s: &Session, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(out)?;
        writeln!(out, "{}", d.ui().messages.goodbye.get(s.lang()))
    }

    fn choices(
        &mut self,
        _id: &str,
        text: &str,
        options: &[(&str, &str)],
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        writeln!(out)?;
        writeln!(out, "{text}")?;
        for (i, (_, label)) in options.iter().enumerate() {
            writeln!(out, "  {}. {}", i + 1, label)?;
        }
        write!(out, "> ")
    }

    fn followup_end(
        &mut self,
        d: &Dialogues,
        s: &Session,
        end: &FollowUpEnd<'_>,
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        writeln!(out)?;
        match end {
            FollowUpEnd::Gone { reply } => writeln!(out, "{reply}"),
            FollowUpEnd::Better {
                reply, prevention, ..
            } => {
                writeln!(out, "{reply}")?;
                writeln!(out, "\n{}", d.ui().headings.prevention.get(s.lang()))?;
                for p in prevention {
                    writeln!(out, "  - {p}")?;
                }
                Ok(())
            }
            FollowUpEnd::SameEarly { reply, .. } => writeln!(out, "{reply}"),
            FollowUpEnd::Outcome(o) => write!(out, "{}", render_outcome(d, s, o)),
        }
    }
}

/// The outcome as plain text, as the terminal shows it.
pub fn render_outcome(d: &Dialogues, s: &Session, o: &Outcome<'_>) -> String {
    let h = &d.ui().headings;
    let lang = s.lang();
    let mut text = format!("\n=== {} ===\n{}\n", o.level, o.headline);
    let reasons: Vec<&str> = o.reasons.iter().map(|r| r.text.as_ref()).collect();
    let sections: [(&str, &[&str]); 5] = [
        (h.reasons.get(lang), &reasons),
        (h.advice.get(lang), &o.advice),
        (h.watch_for.get(lang), &o.watch_for),
        (h.prevention.get(lang), &o.prevention),
        (h.sources.get(lang), &o.sources),
    ];
    for (heading, items) in sections {
        if items.is_empty() {
            continue;
        }
        text.push_str(&format!("\n{heading}\n"));
        for item in items {
            text.push_str(&format!("  - {item}\n"));
        }
    }
    text.push_str(&format!("\n{}\n", o.disclaimer));
    text
}
