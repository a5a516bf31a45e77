//! Drawing the dialogue graph as Mermaid (rendered by GitHub) or Graphviz dot.

use std::fmt::Write;

use crate::dialogue::model::{Dialogues, Lang, Next};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Mermaid,
    Dot,
}

/// An edge of the drawing: from a question to a question, a flow's end, or the emergency stop.
struct Edge {
    from: usize,
    to: Target,
    labels: Vec<String>,
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Target {
    Question(usize),
    End(usize),
    Emergency,
}

const MAX_LABEL: usize = 48;

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(max - 1).collect();
        c.push('…');
        c
    }
}

/// Draws the questions of the flows named in `flows` (all when empty) and the start flow.
pub fn render(d: &Dialogues, format: Format, lang: Lang, flows: &[String]) -> String {
    let start_flow = d.start().flow;
    let shown = |q: usize| {
        let f = d.questions()[q].flow;
        flows.is_empty() || f == start_flow || flows.contains(&d.flows()[f].id)
    };
    let mut edges: Vec<Edge> = Vec::new();
    for (qi, q) in d.questions().iter().enumerate().filter(|(i, _)| shown(*i)) {
        for o in &q.options {
            let to = match o.next {
                Next::Question(n) if shown(n) => Target::Question(n),
                Next::Question(_) => continue,
                Next::End => Target::End(q.flow),
                Next::Stop => Target::Emergency,
            };
            let label = clip(o.label.get(lang), 28);
            match edges.iter_mut().find(|e| e.from == qi && e.to == to) {
                Some(e) => e.labels.push(label),
                None => edges.push(Edge {
                    from: qi,
                    to,
                    labels: vec![label],
                }),
            }
        }
    }
    // An edge taken by every answer of its question needs no list of answers.
    for e in &mut edges {
        if e.labels.len() > 1 && e.labels.len() == d.questions()[e.from].options.len() {
            e.labels = vec!["any answer".to_string()];
        }
    }
    let node = |t: Target| match t {
        Target::Question(q) => d.questions()[q].id.clone(),
        Target::End(f) => format!("end_{}", d.flows()[f].id),
        Target::Emergency => "emergency".to_string(),
    };
    let mut out = String::new();
    match format {
        Format::Mermaid => {
            out.push_str("flowchart TD\n");
            for (_, q) in d.questions().iter().enumerate().filter(|(i, _)| shown(*i)) {
                let text = clip(q.text.get(lang), MAX_LABEL).replace('"', "#quot;");
                let _ = writeln!(out, "    {}[\"{}\"]", q.id, text);
            }
            for f in d.flows() {
                if edges
                    .iter()
                    .any(|e| e.to == Target::End(flow_index(d, &f.id)))
                {
                    let _ = writeln!(out, "    end_{0}([\"{0}: outcome\"])", f.id);
                }
            }
            if edges.iter().any(|e| e.to == Target::Emergency) {
                out.push_str("    emergency{{\"EMERGENCY: stop now\"}}\n");
            }
            for e in &edges {
                let label = e.labels.join(" / ").replace(['"', '|'], "'");
                let _ = writeln!(
                    out,
                    "    {} -->|\"{}\"| {}",
                    node(Target::Question(e.from)),
                    label,
                    node(e.to)
                );
            }
        }
        Format::Dot => {
            out.push_str("digraph dialogues {\n    rankdir=TB;\n    node [shape=box];\n");
            let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
            for q in d
                .questions()
                .iter()
                .enumerate()
                .filter(|(i, _)| shown(*i))
                .map(|(_, q)| q)
            {
                let _ = writeln!(
                    out,
                    "    \"{}\" [label=\"{}\"];",
                    q.id,
                    esc(&clip(q.text.get(lang), MAX_LABEL))
                );
            }
            out.push_str("    \"emergency\" [shape=octagon, label=\"EMERGENCY: stop now\"];\n");
            for f in d.flows() {
                let _ = writeln!(
                    out,
                    "    \"end_{0}\" [shape=ellipse, label=\"{0}: outcome\"];",
                    f.id
                );
            }
            for e in &edges {
                let _ = writeln!(
                    out,
                    "    \"{}\" -> \"{}\" [label=\"{}\"];",
                    node(Target::Question(e.from)),
                    node(e.to),
                    esc(&e.labels.join(" / "))
                );
            }
            out.push_str("}\n");
        }
    }
    out
}

fn flow_index(d: &Dialogues, id: &str) -> usize {
    d.flows()
        .iter()
        .position(|f| f.id == id)
        .unwrap_or(usize::MAX)
}
