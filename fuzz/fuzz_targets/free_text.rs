//! Free-text answers and the rest of a session's inputs, as a small program run against the
//! shipped dialogues (see `gymtriage_fuzz::free_text` for the input format).
#![no_main]

use std::path::Path;
use std::sync::LazyLock;

use gymtriage::Dialogues;
use libfuzzer_sys::fuzz_target;

static DIALOGUES: LazyLock<Dialogues> = LazyLock::new(|| {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dialogues");
    gymtriage::load(&dir).unwrap_or_else(|e| panic!("the shipped dialogues do not load:\n{e}"))
});

fuzz_target!(|data: &[u8]| {
    gymtriage_fuzz::free_text(&DIALOGUES, data);
});
