//! Loading dialogue files: one shipped file replaced, spliced, removed or added (see
//! `gymtriage_fuzz::load_dialogues` for the input format).
#![no_main]

use std::path::Path;
use std::sync::LazyLock;

use gymtriage_fuzz::Shipped;
use libfuzzer_sys::fuzz_target;

static SHIPPED: LazyLock<Shipped> =
    LazyLock::new(|| Shipped::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../dialogues")));

fuzz_target!(|data: &[u8]| {
    gymtriage_fuzz::load_dialogues(&SHIPPED, data);
});
