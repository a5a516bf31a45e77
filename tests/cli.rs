//! The `gymtriage` command as a person runs it: plain chat over a pipe, graph drawing.

use std::io::Write;
use std::process::{Command, Stdio};

fn gymtriage(args: &[&str], stdin: &[u8]) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gymtriage"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gymtriage");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn plain_chat_reads_lines_from_a_pipe_and_prints_the_outcome() {
    let (ok, out, _) = gymtriage(
        &["chat"],
        b"my shins hurt\nyes\nno\nit's sore along the inner edge of the shin\nno\n1\n4\n",
    );
    assert!(ok);
    assert!(out.contains("Question 1: Where does it hurt?"));
    assert!(out.contains("=== Self-care ==="), "{out}");
    assert!(out.contains("shin splints"));
    assert!(out.contains("Sources"));
}

#[test]
fn plain_chat_in_spanish_supports_undo_restart_and_quit() {
    let (ok, out, _) = gymtriage(
        &["chat", "--lang", "es"],
        b"1\natr\xc3\xa1s\nreiniciar\nsalir\n",
    );
    assert!(ok);
    assert!(out.contains("Pregunta 2:"));
    assert_eq!(out.matches("Pregunta 1:").count(), 3, "{out}");
    assert!(out.contains("Cuídate"));
}

#[test]
fn an_unknown_language_is_a_clear_error() {
    let (ok, _, err) = gymtriage(&["chat", "--lang", "fr"], b"");
    assert!(!ok);
    assert!(err.contains("unknown language `fr`"), "{err}");
}

#[test]
fn graph_draws_every_question_in_mermaid_and_dot() {
    let (ok, mermaid, _) = gymtriage(&["graph"], b"");
    assert!(ok);
    assert!(mermaid.starts_with("flowchart TD"));
    let (ok, dot, _) = gymtriage(&["graph", "--format", "dot"], b"");
    assert!(ok);
    assert!(dot.starts_with("digraph") && dot.trim_end().ends_with('}'));
    for id in [
        "area",
        "tissue",
        "back_bladder",
        "bone_spot",
        "joint_use",
        "muscle_onset",
    ] {
        assert!(
            mermaid.contains(&format!("    {id}[")),
            "mermaid lacks {id}"
        );
        assert!(dot.contains(&format!("\"{id}\" [")), "dot lacks {id}");
    }
    assert!(mermaid.contains("back_bladder -->|\"Yes\"| emergency"));
}

#[test]
fn graph_can_show_one_flow() {
    let (ok, out, _) = gymtriage(&["graph", "--flow", "back"], b"");
    assert!(ok);
    assert!(out.contains("back_context") && !out.contains("bone_spot"));
    let (ok, _, err) = gymtriage(&["graph", "--flow", "nope"], b"");
    assert!(!ok && err.contains("unknown flow"));
}

#[test]
fn chat_followup_runs_the_check_in_after_the_outcome() {
    // Back soreness, then the check-in 8 days later: the same, no warning signs.
    let script =
        b"my lower back aches\nno\nno\nno\n4\n2\n1\n2\n1\n1\n4\nsame\nno\nno\nno\nnone of these\n";
    let (ok, out, _) = gymtriage(&["chat", "--followup", "8"], script);
    assert!(ok);
    assert!(out.contains("=== Self-care ==="), "{out}");
    assert!(out.contains("It's been 8 day(s) since your check"), "{out}");
    assert!(
        out.contains("Still hurting 8 days after your check"),
        "{out}"
    );
    assert!(
        out.contains("=== See a professional if it doesn't settle ==="),
        "{out}"
    );

    // Two days later and better: encouragement, no new outcome. Over JSON this time.
    let script = b"my lower back aches\nno\nno\nno\nno\ndelayed\ndull\ndiffuse\neases\nshort\nnone\nbetter\n";
    let (ok, out, _) = gymtriage(&["chat", "--json", "--followup", "2"], script);
    assert!(ok);
    let last: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "followup");
    assert_eq!(last["result"], "better");
    assert!(out.contains("\"id\":\"followup_status\""), "{out}");
}
