//! Whole-graph checks on compiled dialogues: reachability, cycles, path length, outcome
//! coverage and the safety rules. Run by `gymtriage check` and at every start.

use std::collections::HashSet;

use crate::dialogue::diagnostic::Diagnostic;
use crate::dialogue::model::{Dialogues, Next};
use crate::dialogue::schema::{Body, Topic};
use crate::urgency::Urgency;

/// The questions a flow must have asked before it may end below `urgent`.
pub fn required_topics(body: Body) -> &'static [Topic] {
    match body {
        Body::Back => &[
            Topic::BladderBowel,
            Topic::SaddleNumbness,
            Topic::LegWeakness,
        ],
        Body::Bone => &[
            Topic::WeightBearing,
            Topic::RestNightPain,
            Topic::PinpointTenderness,
        ],
        Body::Joint | Body::Muscle | Body::None => &[],
    }
}

pub fn validate(d: &Dialogues) -> Vec<Diagnostic> {
    let mut v = Validator { d, out: Vec::new() };
    v.unreachable();
    if v.cycles() {
        v.path_length();
        v.paths();
    }
    v.emergency_outcomes();
    v.out
}

struct Validator<'a> {
    d: &'a Dialogues,
    out: Vec<Diagnostic>,
}

impl Validator<'_> {
    fn error(&mut self, loc: crate::dialogue::diagnostic::Loc, message: String) {
        self.out.push(self.d.source_map.diagnostic(loc, message));
    }

    fn successors(&self, q: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.d.questions[q]
            .options
            .iter()
            .enumerate()
            .filter_map(|(oi, o)| match o.next {
                Next::Question(n) => Some((oi, n)),
                _ => None,
            })
    }

    fn unreachable(&mut self) {
        let d = self.d;
        let mut seen = vec![false; d.questions.len()];
        let mut stack = vec![d.start];
        while let Some(q) = stack.pop() {
            if std::mem::replace(&mut seen[q], true) {
                continue;
            }
            stack.extend(self.successors(q).map(|(_, n)| n));
        }
        for (q, reached) in seen.iter().enumerate() {
            if !reached {
                let question = &d.questions[q];
                self.error(
                    question.loc,
                    format!(
                        "unreachable: no path from the start question `{}` leads to `{}`",
                        d.questions[d.start].id, question.id
                    ),
                );
            }
        }
    }

    /// Reports every cycle; returns true when there is none.
    fn cycles(&mut self) -> bool {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        let d = self.d;
        let mut mark = vec![Mark::New; d.questions.len()];
        let mut found = Vec::new();
        for root in 0..d.questions.len() {
            if mark[root] != Mark::New {
                continue;
            }
            // Iterative DFS: (question, next option to look at); `path` mirrors the stack.
            let mut stack = vec![(root, 0usize)];
            mark[root] = Mark::Open;
            while let Some(&mut (q, ref mut oi)) = stack.last_mut() {
                let options = &d.questions[q].options;
                if *oi >= options.len() {
                    mark[q] = Mark::Done;
                    stack.pop();
                    continue;
                }
                let o = *oi;
                *oi += 1;
                if let Next::Question(n) = options[o].next {
                    match mark[n] {
                        Mark::New => {
                            mark[n] = Mark::Open;
                            stack.push((n, 0));
                        }
                        Mark::Open => {
                            let from = stack.iter().position(|&(s, _)| s == n).unwrap_or(0);
                            let mut names: Vec<&str> = stack[from..]
                                .iter()
                                .map(|&(s, _)| d.questions[s].id.as_str())
                                .collect();
                            names.push(&d.questions[n].id);
                            // Options sharing their question's `next` close the same cycle.
                            let cycle =
                                (options[o].next_loc, format!("cycle: {}", names.join(" → ")));
                            if !found.contains(&cycle) {
                                found.push(cycle);
                            }
                        }
                        Mark::Done => {}
                    }
                }
            }
        }
        let none = found.is_empty();
        for (loc, message) in found {
            self.error(loc, message);
        }
        none
    }

    fn path_length(&mut self) {
        let d = self.d;
        // longest[q] = questions asked from q to the end, on the longest path; graph is acyclic.
        let mut longest: Vec<Option<(usize, Option<usize>)>> = vec![None; d.questions.len()];
        fn visit(d: &Dialogues, q: usize, memo: &mut Vec<Option<(usize, Option<usize>)>>) -> usize {
            if let Some((n, _)) = memo[q] {
                return n;
            }
            let mut best = (1, None);
            for o in &d.questions[q].options {
                if let Next::Question(n) = o.next {
                    let len = 1 + visit(d, n, memo);
                    if len > best.0 {
                        best = (len, Some(n));
                    }
                }
            }
            memo[q] = Some(best);
            best.0
        }
        let len = visit(d, d.start, &mut longest);
        if len > d.max_questions {
            let mut names = vec![d.questions[d.start].id.as_str()];
            let mut q = d.start;
            while let Some((_, Some(n))) = longest[q] {
                names.push(&d.questions[n].id);
                q = n;
            }
            self.error(
                d.questions[d.start].loc,
                format!(
                    "too many questions: a path asks {len} (max_questions is {}): {}",
                    d.max_questions,
                    names.join(" → ")
                ),
            );
        }
    }

    /// Walks every path (merging equal states) to check outcome coverage and the safety rules.
    fn paths(&mut self) {
        let d = self.d;
        let mut seen: HashSet<(usize, u8, Urgency)> = HashSet::new();
        let mut reported: HashSet<(usize, usize, &'static str)> = HashSet::new();
        let mut path = Vec::new();
        let mut problems = Vec::new();
        walk(
            d,
            d.start,
            0,
            Urgency::SelfCare,
            &mut path,
            &mut seen,
            &mut reported,
            &mut problems,
        );
        for (loc, message) in problems {
            self.error(loc, message);
        }
    }

    fn emergency_outcomes(&mut self) {
        let d = self.d;
        let any_emergency = d
            .questions
            .iter()
            .any(|q| q.options.iter().any(|o| o.is_emergency()));
        if !any_emergency {
            return;
        }
        for f in &d.flows {
            if f.outcomes[Urgency::Emergency.index()].is_none() {
                self.error(
                    f.loc,
                    format!(
                        "flow `{}` has no `emergency` outcome and there is no shared one (add [emergency] to outcomes/any.toml)",
                        f.id
                    ),
                );
            }
        }
    }
}

type Problems = Vec<(crate::dialogue::diagnostic::Loc, String)>;

#[allow(clippy::too_many_arguments)]
fn walk(
    d: &Dialogues,
    q: usize,
    topics: u8,
    floor: Urgency,
    path: &mut Vec<usize>,
    seen: &mut HashSet<(usize, u8, Urgency)>,
    reported: &mut HashSet<(usize, usize, &'static str)>,
    problems: &mut Problems,
) {
    if !seen.insert((q, topics, floor)) {
        return;
    }
    path.push(q);
    let question = &d.questions[q];
    let topics = topics | question.topic.map_or(0, Topic::bit);
    for o in &question.options {
        // Keyed by the `next` to fix: options sharing their question's `next` are reported once.
        let at = (o.next_loc.file, o.next_loc.offset);
        let floor = floor.max(o.urgency.unwrap_or(Urgency::SelfCare));
        match o.next {
            Next::Stop => {}
            Next::Question(n) => walk(d, n, topics, floor, path, seen, reported, problems),
            Next::End => {
                let flow = &d.flows[question.flow];
                let mut levels = vec![floor];
                levels.extend(
                    flow.findings
                        .iter()
                        .filter_map(|f| f.urgency.map(|u| u.max(floor))),
                );
                for level in levels {
                    if flow.outcomes[level.index()].is_none()
                        && reported.insert((at.0, at.1, level.id()))
                    {
                        problems.push((
                            o.next_loc,
                            format!(
                                "flow `{}` can end at `{level}` but has no `{level}` outcome (add [{level}] to its file in outcomes/)",
                                flow.id
                            ),
                        ));
                    }
                }
                let missing: Vec<&str> = crate::dialogue::validate::required_topics(flow.body)
                    .iter()
                    .filter(|t| topics & t.bit() == 0)
                    .map(|t| t.id())
                    .collect();
                if floor < Urgency::Urgent
                    && !missing.is_empty()
                    && reported.insert((at.0, at.1, "safety"))
                {
                    let names: Vec<&str> =
                        path.iter().map(|&p| d.questions[p].id.as_str()).collect();
                    problems.push((
                        o.next_loc,
                        format!(
                            "safety: a {} pain path can end at `{floor}` without asking about {}: {} → end",
                            flow.body.id(),
                            missing.join(", "),
                            names.join(" → ")
                        ),
                    ));
                }
            }
        }
    }
    path.pop();
}
