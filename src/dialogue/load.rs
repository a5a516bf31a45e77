//! Reading a dialogue directory and compiling it into [`Dialogues`]: ids resolved to indices,
//! translations checked, patterns compiled. Every problem is collected with its position, so
//! one run reports them all.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::Spanned;

use crate::dialogue::diagnostic::{Diagnostic, LoadError, Loc, SourceMap};
use crate::dialogue::model::*;
use crate::dialogue::schema::{self, Body, RawOutcome, RawText};
use crate::dialogue::validate;
use crate::text::{Pattern, normalize};
use crate::urgency::Urgency;

/// The flow id that outcome files use for the outcomes shared by every flow.
pub const SHARED_FLOW: &str = "any";

/// Dialogue files in memory: path relative to the dialogue folder (`flows/back.toml`) → bytes.
pub type Files = BTreeMap<PathBuf, Vec<u8>>;

/// Loads, compiles and validates the dialogue directory `dir`.
pub fn load(dir: &Path) -> Result<Dialogues, LoadError> {
    load_files(dir, &read_files(dir)?)
}

/// Reads the dialogue files of `dir`: `gymtriage.toml`, `ui.toml`, `flows/*.toml`,
/// `outcomes/*.toml`.
pub fn read_files(dir: &Path) -> Result<Files, LoadError> {
    let mut files = Files::new();
    let mut problems = Vec::new();
    let mut wanted = vec![
        PathBuf::from("gymtriage.toml"),
        PathBuf::from("ui.toml"),
        PathBuf::from("followup.toml"),
    ];
    for sub in ["flows", "outcomes"] {
        match std::fs::read_dir(dir.join(sub)) {
            Ok(entries) => {
                for e in entries.flatten() {
                    let path = e.path();
                    if path.extension().is_some_and(|x| x == "toml")
                        && let Some(name) = path.file_name()
                    {
                        wanted.push(Path::new(sub).join(name));
                    }
                }
            }
            Err(e) => problems.push(Diagnostic {
                file: dir.join(sub),
                position: None,
                message: format!("cannot read folder: {e}"),
            }),
        }
    }
    for rel in wanted {
        match std::fs::read(dir.join(&rel)) {
            Ok(bytes) => {
                files.insert(rel, bytes);
            }
            Err(e) => problems.push(Diagnostic {
                file: dir.join(&rel),
                position: None,
                message: format!("cannot read file: {e}"),
            }),
        }
    }
    if problems.is_empty() {
        Ok(files)
    } else {
        Err(LoadError {
            diagnostics: problems,
        })
    }
}

/// Loads dialogue files already in memory; `dir` only names them in messages.
pub fn load_files(dir: &Path, files: &Files) -> Result<Dialogues, LoadError> {
    let mut c = Compiler::default();
    let manifest = c.parse_file::<schema::Manifest>(dir, files, Path::new("gymtriage.toml"));
    let ui = c.parse_file::<schema::UiFile>(dir, files, Path::new("ui.toml"));
    let followup = c.parse_file::<schema::FollowUpFile>(dir, files, Path::new("followup.toml"));
    let in_folder = |sub: &'static str| {
        files
            .keys()
            .filter(move |p| p.parent() == Some(Path::new(sub)))
            .cloned()
            .collect::<Vec<_>>()
    };
    let flows: Vec<_> = in_folder("flows")
        .iter()
        .filter_map(|p| c.parse_file::<schema::FlowFile>(dir, files, p))
        .collect();
    let outcomes: Vec<_> = in_folder("outcomes")
        .iter()
        .filter_map(|p| c.parse_file::<schema::OutcomeFile>(dir, files, p))
        .collect();
    let (Some(manifest), Some(ui), Some(followup)) = (manifest, ui, followup) else {
        return Err(c.finish());
    };
    let mut dialogues = c.compile(manifest, ui, flows, outcomes);
    dialogues.followups = c.compile_followups(followup, &dialogues);
    dialogues.source_map = std::mem::take(&mut c.map);
    if !c.diagnostics.is_empty() {
        return Err(c.finish());
    }
    let problems = validate::validate(&dialogues);
    if problems.is_empty() {
        Ok(dialogues)
    } else {
        Err(LoadError {
            diagnostics: problems,
        })
    }
}

#[derive(Default)]
struct Compiler {
    map: SourceMap,
    diagnostics: Vec<Diagnostic>,
    languages: Vec<String>,
}

/// A parsed file and its index in the source map.
type Parsed<T> = (usize, T);

impl Compiler {
    fn finish(self) -> LoadError {
        LoadError {
            diagnostics: self.diagnostics,
        }
    }

    fn io_error(&mut self, path: &Path, message: String) {
        self.diagnostics.push(Diagnostic {
            file: path.to_path_buf(),
            position: None,
            message,
        });
    }

    fn error(&mut self, loc: Loc, message: impl Into<String>) {
        let d = self.map.diagnostic(loc, message);
        self.diagnostics.push(d);
    }

    fn at<T>(&self, file: usize, spanned: &Spanned<T>) -> Loc {
        self.map.loc(file, &spanned.span())
    }

    fn parse_file<T: DeserializeOwned>(
        &mut self,
        dir: &Path,
        files: &Files,
        rel: &Path,
    ) -> Option<Parsed<T>> {
        let path = dir.join(rel);
        let Some(bytes) = files.get(rel) else {
            self.io_error(&path, "missing file".to_string());
            return None;
        };
        let text = match String::from_utf8(bytes.clone()) {
            Ok(text) => text,
            Err(e) => {
                self.io_error(&path, format!("not valid UTF-8: {e}"));
                return None;
            }
        };
        let file = self.map.add(&path, text);
        match toml::from_str::<T>(self.map.text(file)) {
            Ok(value) => Some((file, value)),
            Err(e) => {
                let offset = e.span().map_or(0, |s| s.start);
                let message = e.message().trim().replace('\n', " ");
                self.error(Loc { file, offset }, message);
                None
            }
        }
    }

    /// Checks that `raw` has exactly one non-empty entry per language.
    fn text(&mut self, file: usize, raw: &RawText) -> Text {
        let loc = self.at(file, raw);
        let map = raw.get_ref();
        self.check_languages(loc, map.keys());
        let texts = self
            .languages
            .clone()
            .iter()
            .map(|lang| match map.get(lang) {
                Some(t) if !t.trim().is_empty() => t.trim().into(),
                Some(_) => {
                    self.error(loc, format!("empty `{lang}` text"));
                    "".into()
                }
                None => {
                    self.error(loc, format!("missing translation: no `{lang}` text"));
                    "".into()
                }
            })
            .collect();
        Text(texts)
    }

    fn check_languages<'a>(&mut self, loc: Loc, keys: impl Iterator<Item = &'a String>) {
        for key in keys {
            if !self.languages.contains(key) {
                let known = self.languages.join(", ");
                self.error(
                    loc,
                    format!("unknown language `{key}` (the languages are {known})"),
                );
            }
        }
    }

    /// A per-language list that must name every language; returns all entries.
    fn per_language_lists<'a>(
        &mut self,
        file: usize,
        raw: &'a Spanned<BTreeMap<String, Vec<String>>>,
    ) -> Vec<&'a String> {
        let loc = self.at(file, raw);
        let map = raw.get_ref();
        self.check_languages(loc, map.keys());
        for lang in self.languages.clone() {
            if map.get(&lang).is_none_or(|l| l.is_empty()) {
                self.error(loc, format!("missing translation: no `{lang}` entries"));
            }
        }
        map.values().flatten().collect()
    }

    fn words(&mut self, file: usize, raw: &schema::RawWords) -> Vec<String> {
        let mut words: Vec<String> = self
            .per_language_lists(file, raw)
            .into_iter()
            .map(|w| normalize(w))
            .filter(|w| !w.is_empty())
            .collect();
        words.sort();
        words.dedup();
        words
    }

    fn compile(
        &mut self,
        (mfile, manifest): Parsed<schema::Manifest>,
        (ufile, ui): Parsed<schema::UiFile>,
        flow_files: Vec<Parsed<schema::FlowFile>>,
        outcome_files: Vec<Parsed<schema::OutcomeFile>>,
    ) -> Dialogues {
        self.compile_languages(mfile, &manifest.languages);
        let disclaimer = self.text(mfile, &manifest.disclaimer);
        let sources: Vec<Source> = manifest
            .sources
            .iter()
            .map(|(id, s)| Source {
                id: id.clone(),
                title: s.title.trim().to_string(),
            })
            .collect();
        if *manifest.max_questions.get_ref() == 0 {
            let loc = self.at(mfile, &manifest.max_questions);
            self.error(loc, "max_questions must be at least 1");
        }
        let ui = self.compile_ui(ufile, &ui);

        // Flows and question ids first, so that references can point forward.
        let mut flows = Vec::new();
        let mut flow_index: HashMap<String, (usize, Loc)> = HashMap::new();
        let mut question_index: HashMap<String, usize> = HashMap::new();
        let mut question_locs: Vec<Loc> = Vec::new();
        for (file, f) in &flow_files {
            let loc = self.at(*file, &f.flow);
            let id = f.flow.get_ref().clone();
            if id == SHARED_FLOW {
                self.error(
                    loc,
                    format!("`{SHARED_FLOW}` is reserved for shared outcomes"),
                );
            }
            if let Some((_, first)) = flow_index.get(&id) {
                let first = self.map.diagnostic(*first, "");
                self.error(
                    loc,
                    format!(
                        "duplicate flow `{id}` (first defined at {})",
                        position(&first)
                    ),
                );
            }
            flow_index.insert(id.clone(), (flows.len(), loc));
            flows.push(Flow {
                id,
                body: f.body,
                findings: Vec::new(),
                outcomes: [None; 4],
                loc,
            });
            for q in &f.question {
                let loc = self.at(*file, &q.id);
                let id = q.id.get_ref();
                if let Some(&first) = question_index.get(id) {
                    let first = self.map.diagnostic(question_locs[first], "");
                    self.error(
                        loc,
                        format!(
                            "duplicate question id `{id}` (first defined at {})",
                            position(&first)
                        ),
                    );
                    continue;
                }
                question_index.insert(id.clone(), question_locs.len());
                question_locs.push(loc);
            }
        }

        let mut questions = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (flow, (file, f)) in flow_files.iter().enumerate() {
            for q in &f.question {
                if !seen.insert(q.id.get_ref().clone()) {
                    continue; // a duplicate, already reported
                }
                let question = self.compile_question(*file, flow, q, &question_index);
                questions.push(question);
            }
        }

        for (flow, (file, f)) in flow_files.iter().enumerate() {
            for raw in &f.finding {
                if let Some(finding) = self.compile_finding(*file, raw, &question_index, &questions)
                {
                    flows[flow].findings.push(finding);
                }
            }
        }

        let source_index: HashMap<&str, usize> = sources
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect();
        let mut outcomes = Vec::new();
        let mut shared = [None; 4];
        let mut outcome_flows: HashMap<String, Loc> = HashMap::new();
        for (file, o) in &outcome_files {
            let loc = self.at(*file, &o.flow);
            let id = o.flow.get_ref();
            let target = if id == SHARED_FLOW {
                None
            } else if let Some((i, _)) = flow_index.get(id) {
                Some(*i)
            } else {
                self.error(
                    loc,
                    format!("unknown flow `{id}` (no file in flows/ has it)"),
                );
                continue;
            };
            if let Some(first) = outcome_flows.insert(id.clone(), loc) {
                let first = self.map.diagnostic(first, "");
                self.error(
                    loc,
                    format!(
                        "duplicate outcomes for flow `{id}` (first at {})",
                        position(&first)
                    ),
                );
                continue;
            }
            let levels = [&o.self_care, &o.see_professional, &o.urgent, &o.emergency];
            for (level, raw) in levels.into_iter().enumerate() {
                let Some(raw) = raw else { continue };
                let compiled = self.compile_outcome(*file, raw, &source_index);
                outcomes.push(compiled);
                let slot = match target {
                    Some(flow) => &mut flows[flow].outcomes[level],
                    None => &mut shared[level],
                };
                *slot = Some(outcomes.len() - 1);
            }
        }
        for flow in &mut flows {
            for (own, shared) in flow.outcomes.iter_mut().zip(shared) {
                *own = own.or(shared);
            }
        }

        let start = match question_index.get(manifest.start.get_ref()) {
            Some(&i) => i,
            None => {
                let loc = self.at(mfile, &manifest.start);
                self.error(
                    loc,
                    format!("unknown question `{}` as start", manifest.start.get_ref()),
                );
                0
            }
        };
        if questions.is_empty() {
            let loc = self.at(mfile, &manifest.start);
            self.error(loc, "no questions: add files to flows/");
        }

        let mut red_flags = Vec::new();
        let mut volunteered = Vec::new();
        for (qi, q) in questions.iter().enumerate() {
            for (oi, o) in q.options.iter().enumerate() {
                if o.patterns.is_empty() {
                    continue;
                }
                if o.is_emergency() {
                    red_flags.push((qi, oi));
                } else {
                    volunteered.push((qi, oi));
                }
            }
        }

        Dialogues {
            languages: self.languages.clone(),
            start,
            max_questions: *manifest.max_questions.get_ref(),
            disclaimer,
            sources,
            questions,
            flows,
            outcomes,
            ui,
            followups: FollowUps::empty(&Text(Box::new([]))),
            question_index: question_index.into_iter().collect(),
            red_flags,
            volunteered,
            source_map: SourceMap::default(),
        }
    }

    fn compile_languages(&mut self, file: usize, raw: &Spanned<Vec<String>>) {
        let loc = self.at(file, raw);
        let mut languages: Vec<String> = Vec::new();
        for l in raw.get_ref() {
            if l.is_empty() || !l.chars().all(|c| c.is_ascii_lowercase()) {
                self.error(
                    loc,
                    format!("language code `{l}` must be lower-case letters"),
                );
            } else if languages.contains(l) {
                self.error(loc, format!("language `{l}` is listed twice"));
            } else {
                languages.push(l.clone());
            }
        }
        if languages.is_empty() {
            self.error(loc, "at least one language is needed");
            languages.push("en".into());
        }
        if languages.len() > u8::MAX as usize {
            self.error(loc, "too many languages");
        }
        self.languages = languages;
    }

    fn compile_ui(&mut self, file: usize, ui: &schema::UiFile) -> Ui {
        let l = &ui.levels;
        let levels = [
            self.text(file, &l.self_care),
            self.text(file, &l.see_professional),
            self.text(file, &l.urgent),
            self.text(file, &l.emergency),
        ];
        let h = &ui.headings;
        let headings = Headings {
            reasons: self.text(file, &h.reasons),
            advice: self.text(file, &h.advice),
            watch_for: self.text(file, &h.watch_for),
            prevention: self.text(file, &h.prevention),
            sources: self.text(file, &h.sources),
        };
        let m = &ui.messages;
        let messages = Messages {
            welcome: self.text(file, &m.welcome),
            chat_hint: self.text(file, &m.chat_hint),
            empty: self.text(file, &m.empty),
            too_long: self.text(file, &m.too_long),
            invalid_utf8: self.text(file, &m.invalid_utf8),
            not_understood: self.text(file, &m.not_understood),
            unknown_option: self.text(file, &m.unknown_option),
            nothing_to_undo: self.text(file, &m.nothing_to_undo),
            finished: self.text(file, &m.finished),
            restarted: self.text(file, &m.restarted),
            undone: self.text(file, &m.undone),
            goodbye: self.text(file, &m.goodbye),
            question_number: self.text(file, &m.question_number),
        };
        let w = &ui.words;
        let words = WordLists {
            yes: self.words(file, &w.yes),
            no: self.words(file, &w.no),
            back: self.words(file, &w.back),
            restart: self.words(file, &w.restart),
            quit: self.words(file, &w.quit),
            negations: self.words(file, &w.negations),
            clause_breaks: self.words(file, &w.clause_breaks),
        };
        let b = &ui.bot;
        let bot = schema::BotTexts {
            welcome: self.text(file, &b.welcome),
            help: self.text(file, &b.help),
            privacy: self.text(file, &b.privacy),
            forgotten: self.text(file, &b.forgotten),
            lang_prompt: self.text(file, &b.lang_prompt),
            lang_set: self.text(file, &b.lang_set),
            cancelled: self.text(file, &b.cancelled),
            no_check: self.text(file, &b.no_check),
            not_yours: self.text(file, &b.not_yours),
            ended: self.text(file, &b.ended),
            stale: self.text(file, &b.stale),
            bad_button: self.text(file, &b.bad_button),
            unsupported: self.text(file, &b.unsupported),
            edited: self.text(file, &b.edited),
            unknown_command: self.text(file, &b.unknown_command),
            slow_down: self.text(file, &b.slow_down),
            button_back: self.text(file, &b.button_back),
            button_cancel: self.text(file, &b.button_cancel),
            button_private: self.text(file, &b.button_private),
            private_note: self.text(file, &b.private_note),
            moved_private: self.text(file, &b.moved_private),
            continued_here: self.text(file, &b.continued_here),
            group_outcome_note: self.text(file, &b.group_outcome_note),
            finished: self.text(file, &b.finished),
            check_for: self.text(file, &b.check_for),
            cmd_start: self.text(file, &b.cmd_start),
            cmd_check: self.text(file, &b.cmd_check),
            cmd_back: self.text(file, &b.cmd_back),
            cmd_cancel: self.text(file, &b.cmd_cancel),
            cmd_help: self.text(file, &b.cmd_help),
            cmd_lang: self.text(file, &b.cmd_lang),
            cmd_privacy: self.text(file, &b.cmd_privacy),
            cmd_forget: self.text(file, &b.cmd_forget),
        };
        Ui {
            levels,
            headings,
            messages,
            words,
            bot,
        }
    }

    fn compile_question(
        &mut self,
        file: usize,
        flow: usize,
        q: &schema::RawQuestion,
        index: &HashMap<String, usize>,
    ) -> Question {
        let loc = self.at(file, &q.id);
        let text = self.text(file, &q.text);
        if q.option.is_empty() {
            self.error(
                loc,
                format!("dead end: question `{}` has no options", q.id.get_ref()),
            );
        }
        let mut options: Vec<Choice> = Vec::new();
        for o in &q.option {
            let oloc = self.at(file, &o.id);
            let id = o.id.get_ref().clone();
            if options.iter().any(|x| x.id == id) {
                self.error(
                    oloc,
                    format!("duplicate option `{id}` in question `{}`", q.id.get_ref()),
                );
                continue;
            }
            if id.is_empty()
                || id.len() > 24
                || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                self.error(
                    oloc,
                    format!("option id `{id}` must be 1 to 24 letters, digits or `_`"),
                );
            }
            let label = self.text(file, &o.label);
            let label_words = self
                .languages
                .clone()
                .iter()
                .enumerate()
                .map(|(i, _)| normalize(label.get(Lang(i as u8))))
                .collect();
            let reason = o.reason.as_ref().map(|r| self.text(file, r));
            let tip = o.tip.as_ref().map(|t| self.text(file, t));
            let emergency = o.urgency == Some(Urgency::Emergency);
            let (next, next_loc) = match (&o.next, &q.next, emergency) {
                (Some(n), _, true) => {
                    let nloc = self.at(file, n);
                    self.error(
                        nloc,
                        "an emergency answer ends the check at once: remove this `next`",
                    );
                    (Next::Stop, nloc)
                }
                (_, _, true) => (Next::Stop, oloc),
                (Some(n), _, false) | (None, Some(n), false) => {
                    let nloc = self.at(file, n);
                    (self.target(nloc, n.get_ref(), index), nloc)
                }
                (None, None, false) => {
                    self.error(
                        oloc,
                        format!(
                            "dead end: option `{id}` of question `{}` leads nowhere (give it or its question a `next`)",
                            q.id.get_ref()
                        ),
                    );
                    (Next::End, oloc)
                }
            };
            let patterns = match &o.patterns {
                Some(raw) => {
                    let ploc = self.at(file, raw);
                    let mut patterns = Vec::new();
                    for p in self.per_language_lists(file, raw) {
                        match Pattern::parse(p) {
                            Ok(p) => patterns.push(p),
                            Err(e) => self.error(ploc, e),
                        }
                    }
                    patterns
                }
                None => Vec::new(),
            };
            options.push(Choice {
                id,
                label,
                urgency: o.urgency,
                reason,
                tip,
                next,
                patterns,
                label_words,
                next_loc,
            });
        }
        if options.len() > 9 {
            self.error(loc, "a question may have at most 9 options");
        }
        Question {
            id: q.id.get_ref().clone(),
            flow,
            text,
            options,
            free_text: q.free_text,
            sensitive: q.sensitive,
            topic: q.topic,
            loc,
        }
    }

    fn target(&mut self, loc: Loc, name: &str, index: &HashMap<String, usize>) -> Next {
        if name == "end" {
            return Next::End;
        }
        match index.get(name) {
            Some(&i) => Next::Question(i),
            None => {
                self.error(
                    loc,
                    format!("unknown question `{name}` in `next` (dangling reference)"),
                );
                Next::End
            }
        }
    }

    fn compile_finding(
        &mut self,
        file: usize,
        raw: &schema::RawFinding,
        index: &HashMap<String, usize>,
        questions: &[Question],
    ) -> Option<Finding> {
        let loc = self.at(file, &raw.id);
        let reason = self.text(file, &raw.reason);
        let advice = raw.advice.as_ref().map(|a| self.text(file, a));
        if raw.when.is_empty() {
            self.error(loc, "a finding needs at least one answer in `when`");
        }
        let mut when = Vec::new();
        for r in &raw.when {
            let rloc = self.at(file, r);
            let resolved = r.get_ref().split_once('.').and_then(|(q, o)| {
                let qi = *index.get(q)?;
                let oi = questions.get(qi)?.option_index(o)?;
                Some((qi, oi))
            });
            match resolved {
                Some((qi, oi)) => {
                    let q = &questions[qi];
                    let raises = raw.urgency.is_some_and(|u| u > Urgency::SelfCare);
                    if raises
                        && !q.options[oi].is_positive()
                        && q.options.iter().any(|o| o.is_positive())
                    {
                        self.error(
                            rloc,
                            format!(
                                "finding `{}` raises the urgency on `{}`, which is not a symptom: adding a symptom to `{}` would lower the urgency",
                                raw.id.get_ref(),
                                r.get_ref(),
                                q.id
                            ),
                        );
                    }
                    when.push((qi, oi));
                }
                None => self.error(
                    rloc,
                    format!(
                        "unknown answer `{}` (write question_id.option_id; dangling reference)",
                        r.get_ref()
                    ),
                ),
            }
        }
        Some(Finding {
            id: raw.id.get_ref().clone(),
            when,
            urgency: raw.urgency,
            reason,
            advice,
        })
    }

    fn compile_outcome(
        &mut self,
        file: usize,
        raw: &Spanned<RawOutcome>,
        sources: &HashMap<&str, usize>,
    ) -> OutcomeText {
        let loc = self.at(file, raw);
        let o = raw.get_ref();
        let headline = self.text(file, &o.headline);
        let advice = o.advice.iter().map(|t| self.text(file, t)).collect();
        let watch_for = o.watch_for.iter().map(|t| self.text(file, t)).collect();
        let prevention = o.prevention.iter().map(|t| self.text(file, t)).collect();
        if o.advice.is_empty() {
            self.error(loc, "an outcome needs at least one `advice` item");
        }
        if o.sources.is_empty() {
            self.error(loc, "an outcome must cite at least one source");
        }
        let mut ids = Vec::new();
        for s in &o.sources {
            match sources.get(s.get_ref().as_str()) {
                Some(&i) => ids.push(i),
                None => {
                    let sloc = self.at(file, s);
                    self.error(
                        sloc,
                        format!(
                            "unknown source `{}` (see [sources] in gymtriage.toml; dangling reference)",
                            s.get_ref()
                        ),
                    );
                }
            }
        }
        OutcomeText {
            headline,
            advice,
            watch_for,
            prevention,
            sources: ids,
        }
    }
}

impl FollowUps {
    /// A placeholder until `followup.toml` is compiled.
    fn empty(t: &Text) -> FollowUps {
        let when = schema::When {
            tomorrow: t.clone(),
            two_days: t.clone(),
            three_days: t.clone(),
            week: t.clone(),
            never: t.clone(),
        };
        FollowUps {
            offer: t.clone(),
            suggested: t.clone(),
            declined: t.clone(),
            scheduled: t.clone(),
            when,
            status: t.clone(),
            gone: t.clone(),
            better: t.clone(),
            same: t.clone(),
            worse: t.clone(),
            gone_reply: t.clone(),
            better_reply: t.clone(),
            same_early_reply: t.clone(),
            again: t.clone(),
            private_button: t.clone(),
            done: t.clone(),
            list_title: t.clone(),
            list_empty: t.clone(),
            cancelled: t.clone(),
            cmd_checkins: t.clone(),
            areas: Vec::new(),
        }
    }
}

impl Compiler {
    fn compile_followups(
        &mut self,
        (file, f): Parsed<schema::FollowUpFile>,
        d: &Dialogues,
    ) -> FollowUps {
        let w = &f.when;
        let when = schema::When {
            tomorrow: self.text(file, &w.tomorrow),
            two_days: self.text(file, &w.two_days),
            three_days: self.text(file, &w.three_days),
            week: self.text(file, &w.week),
            never: self.text(file, &w.never),
        };
        let mut areas: Vec<Option<Area>> = vec![None; d.flows.len()];
        for a in &f.area {
            let loc = self.at(file, &a.flow);
            let Some(flow) = d.flows.iter().position(|x| x.id == *a.flow.get_ref()) else {
                self.error(
                    loc,
                    format!("unknown flow `{}` (dangling reference)", a.flow.get_ref()),
                );
                continue;
            };
            if areas[flow].is_some() {
                self.error(
                    loc,
                    format!("flow `{}` has two [[area]] entries", a.flow.get_ref()),
                );
            }
            let days = *a.default_days.get_ref();
            if !matches!(days, 1 | 2 | 3 | 7) {
                let dloc = self.at(file, &a.default_days);
                self.error(
                    dloc,
                    "default_days must be one of the offered delays: 1, 2, 3 or 7",
                );
            }
            if *a.limit_days.get_ref() == 0 {
                let lloc = self.at(file, &a.limit_days);
                self.error(lloc, "limit_days must be at least 1");
            }
            let mut recheck = Vec::new();
            for r in &a.recheck {
                let rloc = self.at(file, r);
                match d.question_index.get(r.get_ref()) {
                    Some(&q) if d.questions[q].flow == flow => recheck.push(q),
                    Some(_) => self.error(
                        rloc,
                        format!(
                            "question `{}` is not part of flow `{}`",
                            r.get_ref(),
                            a.flow.get_ref()
                        ),
                    ),
                    None => self.error(
                        rloc,
                        format!("unknown question `{}` (dangling reference)", r.get_ref()),
                    ),
                }
            }
            let late = Rule {
                urgency: a.late.urgency,
                reason: self.text(file, &a.late.reason),
            };
            let worse = Rule {
                urgency: a.worse.urgency,
                reason: self.text(file, &a.worse.reason),
            };
            for (name, rule) in [("late", &late), ("worse", &worse)] {
                if rule.urgency == Urgency::SelfCare || rule.urgency == Urgency::Emergency {
                    self.error(
                        loc,
                        format!(
                            "`{name}` must raise to see_professional or urgent (it is {})",
                            rule.urgency
                        ),
                    );
                }
            }
            areas[flow] = Some(Area {
                default_days: days,
                limit_days: *a.limit_days.get_ref(),
                recheck,
                late,
                worse,
            });
        }
        // Every flow that can end in self-care or see-a-professional needs its rules.
        for (i, flow) in d.flows.iter().enumerate() {
            if flow.body != Body::None && areas[i].is_none() {
                self.error(
                    Loc { file, offset: 0 },
                    format!("flow `{}` has no [[area]] with follow-up rules", flow.id),
                );
            }
        }
        FollowUps {
            offer: self.text(file, &f.offer),
            suggested: self.text(file, &f.suggested),
            declined: self.text(file, &f.declined),
            scheduled: self.text(file, &f.scheduled),
            when,
            status: self.text(file, &f.status),
            gone: self.text(file, &f.gone),
            better: self.text(file, &f.better),
            same: self.text(file, &f.same),
            worse: self.text(file, &f.worse),
            gone_reply: self.text(file, &f.gone_reply),
            better_reply: self.text(file, &f.better_reply),
            same_early_reply: self.text(file, &f.same_early_reply),
            again: self.text(file, &f.again),
            private_button: self.text(file, &f.private_button),
            done: self.text(file, &f.done),
            list_title: self.text(file, &f.list_title),
            list_empty: self.text(file, &f.list_empty),
            cancelled: self.text(file, &f.cancelled),
            cmd_checkins: self.text(file, &f.cmd_checkins),
            areas,
        }
    }
}

fn position(d: &Diagnostic) -> String {
    match d.position {
        Some((l, c)) => format!("{}:{l}:{c}", d.file.display()),
        None => d.file.display().to_string(),
    }
}

impl Body {
    pub fn id(self) -> &'static str {
        match self {
            Body::Back => "back",
            Body::Bone => "bone",
            Body::Joint => "joint",
            Body::Muscle => "muscle",
            Body::None => "none",
        }
    }
}
