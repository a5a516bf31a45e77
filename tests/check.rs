//! `gymtriage check`: every kind of broken dialogue is reported as `file:line:column: message`,
//! at the place in the files that a content author has to fix.
//!
//! Each test copies the shipped `dialogues/` folder, breaks one thing with a targeted text edit
//! (asserting that the edited snippet was there, so a content change cannot make a test pass
//! silently), loads the copy and looks for the diagnostic. Expected lines and columns are found
//! by searching the edited text for a marker, never hard-coded.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use gymtriage::dialogue::Diagnostic;
use tempfile::TempDir;

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogues")
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The 1-based line and column (in characters) of `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// A copy of the shipped dialogues in a temporary folder.
struct DialogueCopy {
    dir: TempDir,
}

impl DialogueCopy {
    fn copy() -> Self {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&shipped(), dir.path());
        DialogueCopy { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn read(&self, file: &str) -> String {
        fs::read_to_string(self.path().join(file)).unwrap()
    }

    /// Replaces `from`, which must occur exactly once in `file`, with `to`.
    fn replace(&self, file: &str, from: &str, to: &str) -> &Self {
        let text = self.read(file);
        let found = text.matches(from).count();
        assert_eq!(
            found, 1,
            "{file}: expected exactly one {from:?} to edit, found {found}"
        );
        fs::write(self.path().join(file), text.replacen(from, to, 1)).unwrap();
        self
    }

    /// Appends `more` to `file`.
    fn append(&self, file: &str, more: &str) -> &Self {
        let text = self.read(file);
        fs::write(self.path().join(file), format!("{text}\n{more}")).unwrap();
        self
    }

    /// Removes the table `[name]`, which must occur once in `file`, up to the next table.
    fn remove_section(&self, file: &str, name: &str) -> &Self {
        let text = self.read(file);
        let header = format!("\n[{name}]\n");
        let found = text.matches(&header).count();
        assert_eq!(found, 1, "{file}: expected one [{name}], found {found}");
        let from = text.find(&header).unwrap() + 1;
        let to = text[from..]
            .find("\n[")
            .map_or(text.len(), |i| from + i + 1);
        fs::write(
            self.path().join(file),
            format!("{}{}", &text[..from], &text[to..]),
        )
        .unwrap();
        self
    }

    /// Where `marker`, which must occur exactly once in the edited `file`, begins.
    fn at(&self, file: &str, marker: &str) -> (usize, usize) {
        let text = self.read(file);
        let found = text.matches(marker).count();
        assert_eq!(found, 1, "{file}: marker {marker:?} found {found} times");
        line_column(&text, text.find(marker).unwrap())
    }

    /// Where `inner` begins inside `marker`, which must occur exactly once in the edited `file`.
    fn at_within(&self, file: &str, marker: &str, inner: &str) -> (usize, usize) {
        let text = self.read(file);
        let found = text.matches(marker).count();
        assert_eq!(found, 1, "{file}: marker {marker:?} found {found} times");
        let within = marker.find(inner).expect("inner is part of marker");
        line_column(&text, text.find(marker).unwrap() + within)
    }

    /// The line on which `marker` begins.
    fn line(&self, file: &str, marker: &str) -> usize {
        self.at(file, marker).0
    }

    /// Loads the copy, which must fail, and returns its diagnostics.
    fn diagnostics(&self) -> Vec<Diagnostic> {
        match gymtriage::load(self.path()) {
            Ok(_) => panic!("the broken dialogues loaded without errors"),
            Err(e) => {
                let diags = e.diagnostics;
                assert!(!diags.is_empty(), "an error without diagnostics");
                for (i, d) in diags.iter().enumerate() {
                    assert!(
                        !diags[..i].contains(d),
                        "reported twice: {d}; got:\n{}",
                        listing(&diags)
                    );
                }
                diags
            }
        }
    }
}

fn listing(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| format!("  {d}\n"))
        .collect::<String>()
}

/// The diagnostic in `file` (a path ending, like `flows/back.toml`) on `line` whose message
/// contains every one of `words`.
fn find<'a>(
    diagnostics: &'a [Diagnostic],
    file: &str,
    line: usize,
    words: &[&str],
) -> &'a Diagnostic {
    diagnostics
        .iter()
        .find(|d| {
            d.file.ends_with(file)
                && d.position.is_some_and(|(l, _)| l == line)
                && words.iter().all(|w| d.message.contains(w))
        })
        .unwrap_or_else(|| {
            panic!(
                "no diagnostic at {file}:{line} containing {words:?}; got:\n{}",
                listing(diagnostics)
            )
        })
}

/// Like [`find`], at an exact line and column.
fn find_at<'a>(
    diagnostics: &'a [Diagnostic],
    file: &str,
    (line, column): (usize, usize),
    words: &[&str],
) -> &'a Diagnostic {
    let d = find(diagnostics, file, line, words);
    assert_eq!(
        d.position,
        Some((line, column)),
        "wrong column for {d}; got:\n{}",
        listing(diagnostics)
    );
    d
}

/// One question and option in TOML, for appending to a flow file.
fn question(id: &str, extra: &str) -> String {
    format!(
        "[[question]]\nid = \"{id}\"\n{extra}text = {{ en = \"Added?\", es = \"¿Añadida?\" }}\n\n\
         [[question.option]]\nid = \"fine\"\nlabel = {{ en = \"Fine\", es = \"Bien\" }}\n"
    )
}

// The shipped content.

#[test]
fn shipped_dialogues_load_without_diagnostics() {
    if let Err(e) = gymtriage::load(&shipped()) {
        panic!("the shipped dialogues have problems:\n{e}");
    }
}

#[test]
fn check_command_accepts_the_shipped_dialogues() {
    let out = Command::new(env!("CARGO_BIN_EXE_gymtriage"))
        .arg("check")
        .arg(shipped())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stdout.starts_with("ok: "), "stdout: {stdout}");
    assert!(stderr.is_empty(), "stderr: {stderr}");
}

#[test]
fn check_command_prints_file_line_column_and_fails_on_broken_dialogues() {
    let d = DialogueCopy::copy();
    let file = "flows/back.toml";
    d.replace(file, "next = \"back_saddle\"", "next = \"back_sadle\"");
    d.replace(file, ", es = \"Al moverme empeora\" }", " }");
    let dangling = d.at(file, "\"back_sadle\"");
    let missing = d.at(file, "{ en = \"Moving makes it worse\" }");

    let out = Command::new(env!("CARGO_BIN_EXE_gymtriage"))
        .arg("check")
        .arg(d.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(!stdout.contains("ok:"), "stdout: {stdout}");

    let path = d.path().join(file);
    let expected = [
        format!(
            "{}:{}:{}: unknown question `back_sadle` in `next`",
            path.display(),
            dangling.0,
            dangling.1
        ),
        format!(
            "{}:{}:{}: missing translation: no `es` text",
            path.display(),
            missing.0,
            missing.1
        ),
    ];
    let lines: Vec<&str> = stderr.lines().collect();
    for e in &expected {
        assert!(
            lines.iter().any(|l| l.starts_with(e.as_str())),
            "no line starting with {e:?} in stderr:\n{stderr}"
        );
    }
    // Every line but the closing summary is `file:line:column: message`.
    let (summary, diagnostics) = lines.split_last().unwrap();
    assert!(
        summary.starts_with(&format!("error: {} problem(s)", diagnostics.len())),
        "summary: {summary}"
    );
    let prefix = format!("{}:", path.display());
    for line in diagnostics {
        let rest = line.strip_prefix(prefix.as_str()).unwrap_or_else(|| {
            panic!("not in {file}: {line}");
        });
        let mut parts = rest.splitn(3, ':');
        let (l, c, m) = (parts.next(), parts.next(), parts.next());
        assert!(
            l.is_some_and(|l| l.parse::<usize>().is_ok())
                && c.is_some_and(|c| c.parse::<usize>().is_ok())
                && m.is_some_and(|m| m.starts_with(' ')),
            "not file:line:column: message: {line}"
        );
    }
}

// Syntax and schema.

#[test]
fn toml_syntax_error_is_reported_where_the_string_is_left_open() {
    let d = DialogueCopy::copy();
    let file = "flows/back.toml";
    d.replace(file, "id = \"back_saddle\"", "id = \"back_saddle");
    let line = d.line(file, "id = \"back_saddle\n");
    let diags = d.diagnostics();
    let found = find(&diags, file, line, &[]);
    assert!(
        found.message.contains("string") || found.message.contains("quote"),
        "{found}"
    );
}

#[test]
fn unknown_key_in_a_question_is_a_schema_error() {
    let d = DialogueCopy::copy();
    let file = "flows/back.toml";
    d.replace(
        file,
        "id = \"back_saddle\"\n",
        "id = \"back_saddle\"\ncolour = \"red\"\n",
    );
    let at = d.at(file, "colour");
    let diags = d.diagnostics();
    find_at(&diags, file, at, &["unknown field", "colour"]);
}

#[test]
fn value_of_the_wrong_type_is_a_schema_error() {
    let d = DialogueCopy::copy();
    let file = "flows/back.toml";
    d.replace(
        file,
        "id = \"back_bladder\"\ntopic = \"bladder_bowel\"\nsensitive = true",
        "id = \"back_bladder\"\ntopic = \"bladder_bowel\"\nsensitive = \"very\"",
    );
    let at = d.at(file, "\"very\"");
    let diags = d.diagnostics();
    find_at(
        &diags,
        file,
        at,
        &["invalid type: string \"very\", expected a boolean"],
    );
}

#[test]
fn unknown_urgency_level_is_a_schema_error() {
    let d = DialogueCopy::copy();
    let file = "flows/muscle.toml";
    let text = d.read(file);
    let first = text.find("urgency = \"see_professional\"").unwrap();
    let edited = format!(
        "{}urgency = \"soonish\"{}",
        &text[..first],
        &text[first + "urgency = \"see_professional\"".len()..]
    );
    fs::write(d.path().join(file), edited).unwrap();
    let at = d.at(file, "\"soonish\"");
    let diags = d.diagnostics();
    find_at(
        &diags,
        file,
        at,
        &["unknown variant `soonish`", "`see_professional`"],
    );
}

// Dangling references.

#[test]
fn next_to_an_unknown_question_is_a_dangling_reference() {
    let d = DialogueCopy::copy();
    let file = "flows/back.toml";
    d.replace(file, "next = \"back_saddle\"", "next = \"back_sadle\"");
    let at = d.at(file, "\"back_sadle\"");
    let diags = d.diagnostics();
    find_at(
        &diags,
        file,
        at,
        &["unknown question `back_sadle`", "dangling reference"],
    );
}

#[test]
fn finding_on_an_unknown_answer_is_a_dangling_reference() {
    let d = DialogueCopy::copy();
    let file = "flows/back.toml";
    d.replace(
        file,
        "\"back_onset.delayed\", \"back_feel.dull\"",
        "\"back_onset.delayed\", \"back_feel.dul\"",
    );
    let at = d.at(file, "\"back_feel.dul\"");
    let diags = d.diagnostics();
    find_at(
        &diags,
        file,
        at,
        &["unknown answer `back_feel.dul`", "dangling reference"],
    );
}

#[test]
fn outcome_citing_an_unknown_source_is_a_dangling_reference() {
    let d = DialogueCopy::copy();
    let file = "outcomes/any.toml";
    d.replace(
        file,
        "sources = [\"back_why\", \"back_concern\"]",
        "sources = [\"back_why\", \"back_worry\"]",
    );
    let at = d.at(file, "\"back_worry\"");
    let diags = d.diagnostics();
    find_at(
        &diags,
        file,
        at,
        &["unknown source `back_worry`", "dangling reference"],
    );
}

#[test]
fn unknown_start_question_is_reported_in_the_manifest() {
    let d = DialogueCopy::copy();
    let file = "gymtriage.toml";
    d.replace(file, "start = \"area\"", "start = \"where\"");
    let at = d.at(file, "\"where\"");
    let diags = d.diagnostics();
    find_at(&diags, file, at, &["unknown question `where` as start"]);
}

// The graph.

#[test]
fn question_nothing_points_to_is_unreachable() {
    let d = DialogueCopy::copy();
    let file = "flows/muscle.toml";
    d.append(file, &question("muscle_orphan", "next = \"muscle_days\"\n"));
    let at = d.at(file, "\"muscle_orphan\"");
    let diags = d.diagnostics();
    find_at(
        &diags,
        file,
        at,
        &["unreachable", "`area`", "`muscle_orphan`"],
    );
}

#[test]
fn next_pointing_back_to_an_earlier_question_is_a_cycle() {
    let d = DialogueCopy::copy();
    let file = "flows/back.toml";
    d.replace(file, "next = \"back_context\"", "next = \"back_nerve\"");
    let at = d.at_within(
        file,
        "id = \"back_days\"\nnext = \"back_nerve\"",
        "\"back_nerve\"",
    );
    let diags = d.diagnostics();
    let found = find_at(&diags, file, at, &["cycle: "]);
    assert!(
        found.message.contains("back_nerve → back_onset")
            && found.message.contains("back_days → back_nerve"),
        "{found}"
    );
}

#[test]
fn option_without_next_is_a_dead_end() {
    let d = DialogueCopy::copy();
    let file = "flows/back.toml";
    // back_days gives its options their next; without it, they lead nowhere.
    d.replace(
        file,
        "id = \"back_days\"\nnext = \"back_context\"\n",
        "id = \"back_days\"\n",
    );
    let at = d.at(file, "\"short\"");
    let diags = d.diagnostics();
    find_at(
        &diags,
        file,
        at,
        &["dead end", "option `short` of question `back_days`"],
    );
}

#[test]
fn question_without_options_is_a_dead_end() {
    let d = DialogueCopy::copy();
    let file = "flows/muscle.toml";
    d.append(
        file,
        "[[question]]\nid = \"muscle_empty\"\nnext = \"end\"\n\
         text = { en = \"Anything else?\", es = \"¿Algo más?\" }\n",
    );
    let at = d.at(file, "\"muscle_empty\"");
    let diags = d.diagnostics();
    find_at(
        &diags,
        file,
        at,
        &["dead end", "question `muscle_empty` has no options"],
    );
}

#[test]
fn path_longer_than_max_questions_is_reported_at_the_start_question() {
    let d = DialogueCopy::copy();
    d.replace("gymtriage.toml", "max_questions = 15", "max_questions = 5");
    let file = "flows/start.toml";
    let at = d.at(file, "\"area\"");
    let diags = d.diagnostics();
    let found = find_at(
        &diags,
        file,
        at,
        &["too many questions", "(max_questions is 5)"],
    );
    assert!(found.message.contains(": area → "), "{found}");
}

// Options and findings.

#[test]
fn emergency_answer_with_a_next_is_an_error() {
    let d = DialogueCopy::copy();
    let file = "flows/back.toml";
    d.replace(
        file,
        "urgency = \"emergency\"\nreason = { en = \"You noticed",
        "urgency = \"emergency\"\nnext = \"back_weakness\"\nreason = { en = \"You noticed",
    );
    let at = d.at(file, "\"back_weakness\"\nreason");
    let diags = d.diagnostics();
    find_at(
        &diags,
        file,
        at,
        &[
            "emergency answer ends the check at once",
            "remove this `next`",
        ],
    );
}

#[test]
fn duplicate_question_id_names_both_places() {
    let d = DialogueCopy::copy();
    let first = d.at_within("flows/back.toml", "id = \"back_days\"", "\"back_days\"");
    let file = "flows/joint.toml";
    d.append(file, &question("back_days", "next = \"end\"\n"));
    let at = d.at(file, "\"back_days\"");
    let diags = d.diagnostics();
    let found = find_at(&diags, file, at, &["duplicate question id `back_days`"]);
    let original = format!(
        "{}:{}:{}",
        d.path().join("flows/back.toml").display(),
        first.0,
        first.1
    );
    assert!(
        found
            .message
            .contains(&format!("(first defined at {original})")),
        "{found}"
    );
}

#[test]
fn finding_raising_urgency_on_a_non_symptom_answer_is_refused() {
    let d = DialogueCopy::copy();
    let file = "flows/joint.toml";
    d.replace(
        file,
        "when = [\"joint_feel.mild\"]\n",
        "when = [\"joint_feel.mild\"]\nurgency = \"see_professional\"\n",
    );
    let at = d.at(file, "\"joint_feel.mild\"");
    let diags = d.diagnostics();
    find_at(
        &diags,
        file,
        at,
        &[
            "finding `joint_not_normal` raises the urgency on `joint_feel.mild`",
            "not a symptom",
        ],
    );
}

#[test]
fn duplicate_option_id_in_a_question_is_an_error() {
    let d = DialogueCopy::copy();
    let file = "flows/back.toml";
    d.replace(
        file,
        "id = \"same\"\nlabel = { en = \"No real change\"",
        "id = \"eases\"\nlabel = { en = \"No real change\"",
    );
    let at = d.at(file, "\"eases\"\nlabel = { en = \"No real change\"");
    let diags = d.diagnostics();
    find_at(
        &diags,
        file,
        at,
        &["duplicate option `eases` in question `back_movement`"],
    );
}

// Translations.

#[test]
fn text_missing_a_language_is_a_missing_translation() {
    let d = DialogueCopy::copy();
    let file = "flows/back.toml";
    d.replace(file, ", es = \"Al moverme empeora\" }", " }");
    let at = d.at(file, "{ en = \"Moving makes it worse\" }");
    let diags = d.diagnostics();
    find_at(&diags, file, at, &["missing translation: no `es` text"]);
}

#[test]
fn text_in_an_unknown_language_is_reported() {
    let d = DialogueCopy::copy();
    let file = "flows/back.toml";
    d.replace(
        file,
        "es = \"Al moverme empeora\" }",
        "es = \"Al moverme empeora\", fr = \"Ça empire\" }",
    );
    let at = d.at(file, "{ en = \"Moving makes it worse\"");
    let diags = d.diagnostics();
    find_at(
        &diags,
        file,
        at,
        &["unknown language `fr` (the languages are en, es)"],
    );
}

#[test]
fn empty_text_is_reported() {
    let d = DialogueCopy::copy();
    let file = "flows/back.toml";
    d.replace(file, "es = \"Al moverme empeora\" }", "es = \"  \" }");
    let at = d.at(file, "{ en = \"Moving makes it worse\"");
    let diags = d.diagnostics();
    find_at(&diags, file, at, &["empty `es` text"]);
}

// Safety rules and outcome coverage.

#[test]
fn back_path_that_skips_the_bladder_question_breaks_the_safety_rule() {
    let d = DialogueCopy::copy();
    let start = "flows/start.toml";
    d.replace(
        start,
        "id = \"lower_back\"\nlabel = { en = \"Lower back or the base of the spine\", es = \"Zona lumbar o la base de la columna\" }\nnext = \"back_bladder\"",
        "id = \"lower_back\"\nlabel = { en = \"Lower back or the base of the spine\", es = \"Zona lumbar o la base de la columna\" }\nnext = \"back_saddle\"",
    );
    // The path ends where back_context sends it to the end, with the back flow's outcome.
    let file = "flows/back.toml";
    let at = d.at(file, "\"end\"");
    let diags = d.diagnostics();
    let safety: Vec<&Diagnostic> = diags
        .iter()
        .filter(|x| x.message.starts_with("safety:"))
        .collect();
    assert!(
        !safety.is_empty(),
        "no safety diagnostic:\n{}",
        listing(&diags)
    );
    let found = find_at(
        &diags,
        file,
        at,
        &[
            "safety: a back pain path can end at `",
            "` without asking about bladder_bowel:",
            "area → back_saddle → ",
            "back_context → end",
        ],
    );
    assert!(!found.message.contains("saddle_numbness"), "{found}");
    // Only bladder_bowel is skipped, on every reported path.
    for s in &safety {
        assert!(
            s.message.contains("bladder_bowel") && !s.message.contains("leg_weakness"),
            "{s}"
        );
    }
}

#[test]
fn bone_path_that_skips_the_tender_spot_question_breaks_the_safety_rule() {
    let d = DialogueCopy::copy();
    let file = "flows/bone.toml";
    d.replace(
        file,
        "label = { en = \"No, only during or right after activity\", es = \"No, solo durante la actividad o justo después\" }\n",
        "label = { en = \"No, only during or right after activity\", es = \"No, solo durante la actividad o justo después\" }\nnext = \"bone_swelling\"\n",
    );
    let at = d.at(file, "\"end\"");
    let diags = d.diagnostics();
    let found = find_at(
        &diags,
        file,
        at,
        &[
            "safety: a bone pain path can end at `self_care` without asking about pinpoint_tenderness:",
            "bone_rest → bone_swelling",
        ],
    );
    assert!(!found.message.contains("weight_bearing"), "{found}");
}

#[test]
fn flow_that_can_end_at_a_level_without_an_outcome_for_it_is_reported() {
    let d = DialogueCopy::copy();
    d.remove_section("outcomes/bone.toml", "urgent");
    // Reported where the bone flow ends: bone_context's `next = "end"`.
    let file = "flows/bone.toml";
    let at = d.at(file, "\"end\"");
    let diags = d.diagnostics();
    find_at(
        &diags,
        file,
        at,
        &["flow `bone` can end at `urgent` but has no `urgent` outcome"],
    );
}

#[test]
fn problem_at_a_next_shared_by_several_options_is_reported_once() {
    // Every option of back_context and back_days ends or loops through its question's `next`.
    let d = DialogueCopy::copy();
    d.remove_section("outcomes/back.toml", "see_professional");
    let file = "flows/back.toml";
    let at = d.at(file, "\"end\"");
    let diags = d.diagnostics();
    find_at(&diags, file, at, &["no `see_professional` outcome"]);
    let count = diags
        .iter()
        .filter(|x| x.message.contains("no `see_professional` outcome") && x.position == Some(at))
        .count();
    assert_eq!(count, 1, "got:\n{}", listing(&diags));

    let d = DialogueCopy::copy();
    d.replace(file, "next = \"back_context\"", "next = \"back_nerve\"");
    let at = d.at_within(
        file,
        "id = \"back_days\"\nnext = \"back_nerve\"",
        "\"back_nerve\"",
    );
    let diags = d.diagnostics();
    let cycles = diags
        .iter()
        .filter(|x| x.message.starts_with("cycle:") && x.position == Some(at))
        .count();
    assert_eq!(cycles, 1, "got:\n{}", listing(&diags));
}

// Several problems at once.

#[test]
fn several_problems_in_different_files_are_all_reported() {
    let d = DialogueCopy::copy();
    d.replace(
        "flows/back.toml",
        "next = \"back_saddle\"",
        "next = \"back_sadle\"",
    );
    d.replace(
        "flows/muscle.toml",
        "when = [\"muscle_onset.delayed\"",
        "when = [\"muscle_onset.later\"",
    );
    d.replace(
        "outcomes/any.toml",
        "sources = [\"back_why\", \"back_concern\"]",
        "sources = [\"back_why\", \"back_worry\"]",
    );
    d.replace(
        "flows/joint.toml",
        "when = [\"joint_feel.mild\"]\n",
        "when = [\"joint_feel.mild\"]\ncolour = \"red\"\n",
    );
    let diags = d.diagnostics();
    find(
        &diags,
        "flows/back.toml",
        d.line("flows/back.toml", "\"back_sadle\""),
        &["unknown question `back_sadle`"],
    );
    find(
        &diags,
        "flows/muscle.toml",
        d.line("flows/muscle.toml", "\"muscle_onset.later\""),
        &["unknown answer `muscle_onset.later`"],
    );
    find(
        &diags,
        "outcomes/any.toml",
        d.line("outcomes/any.toml", "\"back_worry\""),
        &["unknown source `back_worry`"],
    );
    find(
        &diags,
        "flows/joint.toml",
        d.line("flows/joint.toml", "colour"),
        &["unknown field", "colour"],
    );
}

#[test]
fn several_graph_problems_are_all_reported() {
    let d = DialogueCopy::copy();
    let muscle = "flows/muscle.toml";
    d.append(
        muscle,
        &question("muscle_orphan", "next = \"muscle_days\"\n"),
    );
    d.replace(
        "flows/start.toml",
        "id = \"lower_back\"\nlabel = { en = \"Lower back or the base of the spine\", es = \"Zona lumbar o la base de la columna\" }\nnext = \"back_bladder\"",
        "id = \"lower_back\"\nlabel = { en = \"Lower back or the base of the spine\", es = \"Zona lumbar o la base de la columna\" }\nnext = \"back_saddle\"",
    );
    d.remove_section("outcomes/bone.toml", "urgent");
    let diags = d.diagnostics();
    find(
        &diags,
        muscle,
        d.line(muscle, "\"muscle_orphan\""),
        &["unreachable"],
    );
    find(
        &diags,
        "flows/back.toml",
        d.line("flows/back.toml", "\"end\""),
        &["safety:", "bladder_bowel"],
    );
    find(
        &diags,
        "flows/bone.toml",
        d.line("flows/bone.toml", "\"end\""),
        &["no `urgent` outcome"],
    );
}
