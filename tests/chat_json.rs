//! `gymtriage chat --json` driven from another process, as an embedding program would.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::Value;

struct Chat {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Chat {
    fn start(lang: &str) -> Chat {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gymtriage"))
            .args(["chat", "--json", "--lang", lang])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start gymtriage");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Chat {
            child,
            stdin,
            stdout,
        }
    }

    fn read(&mut self) -> Value {
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line).expect("read a line");
        assert!(n > 0, "gymtriage closed its output early");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"))
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stdin.write_all(bytes).unwrap();
        self.stdin.write_all(b"\n").unwrap();
        self.stdin.flush().unwrap();
    }

    fn finish(mut self) -> std::process::ExitStatus {
        drop(self.stdin);
        self.child.wait().unwrap()
    }
}

fn option_ids(q: &Value) -> Vec<String> {
    q["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_program_completes_a_check_over_json_lines() {
    let mut chat = Chat::start("en");
    let q = chat.read();
    assert_eq!(q["type"], "question");
    assert_eq!(q["id"], "area");
    assert_eq!(q["free_text"], true);
    assert!(option_ids(&q).contains(&"joint".to_string()));
    chat.send(b"my knee hurts after squats");
    // Answer every question with its last option until the outcome.
    let mut asked = 1;
    let outcome = loop {
        let m = chat.read();
        match m["type"].as_str() {
            Some("question") => {
                asked += 1;
                assert!(asked <= 15);
                let ids = option_ids(&m);
                assert!(!m["text"].as_str().unwrap().is_empty());
                chat.send(ids.last().unwrap().as_bytes());
            }
            Some("outcome") => break m,
            other => panic!("unexpected message {other:?}: {m}"),
        }
    };
    assert!(
        ["self_care", "see_professional", "urgent", "emergency"]
            .contains(&outcome["urgency"].as_str().unwrap())
    );
    for key in ["title", "reasons", "advice", "watch_for", "sources"] {
        assert!(!outcome[key].is_null(), "outcome has {key}");
    }
    assert!(
        outcome["sources"][0]
            .as_str()
            .unwrap()
            .contains("joint pain")
    );
    assert!(chat.finish().success(), "exit 0 after the outcome");
}

#[test]
fn bad_lines_get_an_error_and_the_question_again() {
    let mut chat = Chat::start("es");
    assert_eq!(chat.read()["id"], "area");
    let long = vec![b'a'; 10_000];
    let bad: [&[u8]; 5] = [b"", b"   ", b"\xff\xfe\xfd", &long, b"unicornio"];
    for line in bad {
        chat.send(line);
        let e = chat.read();
        assert_eq!(e["type"], "error", "{:?}", String::from_utf8_lossy(line));
        assert!(!e["message"].as_str().unwrap().is_empty());
        let q = chat.read();
        assert_eq!(q["type"], "question");
        assert_eq!(q["id"], "area", "the same question is asked again");
    }
    chat.send(b"lower_back");
    assert_eq!(chat.read()["id"], "back_bladder");
    chat.send(b"zzz_unknown_option");
    assert_eq!(chat.read()["type"], "error");
    assert_eq!(chat.read()["id"], "back_bladder");
    chat.send("sí".as_bytes());
    let outcome = chat.read();
    assert_eq!(outcome["type"], "outcome");
    assert_eq!(outcome["urgency"], "emergency");
    assert!(chat.finish().success());
}

#[test]
fn closing_input_mid_check_exits_cleanly() {
    let mut chat = Chat::start("en");
    assert_eq!(chat.read()["id"], "area");
    chat.send(b"bone");
    assert_eq!(chat.read()["id"], "bone_weight");
    assert!(chat.finish().success());
}
