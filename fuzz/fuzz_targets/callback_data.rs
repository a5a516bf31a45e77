//! Callback data of inline buttons and deep-link payloads (see
//! `gymtriage_fuzz::callback_data`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gymtriage_fuzz::callback_data(data);
});
