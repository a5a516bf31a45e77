//! Replays the committed fuzz corpus on stable `cargo test`, so CI runs every input the fuzzers
//! found interesting without nightly or libFuzzer. Each file of `fuzz/corpus/<target>/` (and of
//! `fuzz/artifacts/<target>/`, where regression inputs for fixed crashes may be committed)
//! goes through the very checks of the fuzz target, shared from `fuzz/src/lib.rs`.
//! See RELIABILITY.md, "Fuzzing".

#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The committed inputs of one target, in name order.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut inputs = Vec::new();
    for folder in ["corpus", "artifacts"] {
        let dir = root().join("fuzz").join(folder).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a readable folder").path();
            if path.is_file() {
                let data = std::fs::read(&path).expect("a readable input");
                inputs.push((path, data));
            }
        }
    }
    inputs.sort();
    inputs
}

/// Runs `check` on every input of `target`, then fails naming every input that panicked.
fn replay(target: &str, check: impl Fn(&[u8])) {
    let inputs = inputs(target);
    assert!(
        !inputs.is_empty(),
        "no corpus in fuzz/corpus/{target}: it is committed with the fuzz targets"
    );
    let failed: Vec<String> = inputs
        .iter()
        .filter(|(_, data)| catch_unwind(AssertUnwindSafe(|| check(data))).is_err())
        .map(|(path, _)| path.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} {target} inputs panicked (reproduce with `cargo fuzz run {target} <file>`):\n{}",
        failed.len(),
        inputs.len(),
        failed.join("\n")
    );
}

#[test]
fn load_dialogues_corpus() {
    let shipped = checks::Shipped::read(&root().join("dialogues"));
    replay("load_dialogues", |data| {
        checks::load_dialogues(&shipped, data)
    });
}

#[test]
fn free_text_corpus() {
    let d = gymtriage::load(&root().join("dialogues")).expect("the shipped dialogues load");
    replay("free_text", |data| checks::free_text(&d, data));
}

#[test]
fn callback_data_corpus() {
    replay("callback_data", checks::callback_data);
}

/// The fuzzer found `/start gm-9223372036854775808_0` overflowing the payload parser (it took
/// a sign of its own after the `m`); payloads with a second sign are now refused.
#[test]
fn payload_with_a_second_sign_is_refused() {
    use gymtriage::bot::render;
    for payload in [
        "gm-9223372036854775808_0",
        "gm-5_0",
        "om-9223372036854775808_0",
    ] {
        assert_eq!(render::parse_transfer_payload(payload), None, "{payload}");
        assert_eq!(render::parse_offer_payload(payload), None, "{payload}");
    }
}
