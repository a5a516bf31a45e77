//! Cost of one engine step and of loading plus validating all dialogues.
//! Run with `cargo bench --bench engine`; targets: a step under 2 µs, loading under 20 ms.

use std::hint::black_box;
use std::path::Path;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use gymtriage::{Dialogues, Input, Session};

fn dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogues")
}

/// A back check five answers in, waiting at the onset question.
fn mid_check(d: &Dialogues) -> Session {
    let mut s = d.start_session(d.lang("en").expect("en"));
    for o in ["lower_back", "no", "no", "no", "no"] {
        d.answer(&mut s, Input::Choice(o)).expect("answer");
    }
    s
}

fn engine(c: &mut Criterion) {
    let d = gymtriage::load(&dir()).expect("dialogues load");
    let s = mid_check(&d);
    c.bench_function("step/button", |b| {
        b.iter_batched_ref(
            || s.clone(),
            |s| {
                let step = d.answer(s, black_box(Input::Choice("delayed")));
                black_box(step.is_ok())
            },
            BatchSize::SmallInput,
        )
    });
    c.bench_function("step/typed_text", |b| {
        b.iter_batched_ref(
            || s.clone(),
            |s| {
                let step = d.answer(s, black_box(Input::Text("it came on the next day")));
                black_box(step.is_ok())
            },
            BatchSize::SmallInput,
        )
    });
    c.bench_function("load_and_validate_all_dialogues", |b| {
        b.iter(|| black_box(gymtriage::load(black_box(&dir())).is_ok()))
    });
}

criterion_group!(benches, engine);
criterion_main!(benches);
