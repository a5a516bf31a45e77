//! Cost of what one button press asks of the SQLite store: read the member and its user's
//! language, commit the new state with the press's reply (an edit carrying the question and
//! its keyboard), and later remove the confirmed reply from the outbox (in batches, as the
//! bot does). Alone, and 16 presses at once (group commit).
//!
//! Measured in CPU time of the whole process (all threads: the caller's, the async workers
//! and the store thread), not wall time: on a busy bot, CPU is what limits throughput, and
//! the wait for a thread to wake up is not.
//!
//! Run with `cargo bench --bench store`. The whole bot under load is `examples/loadbench.rs`.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use gymtriage::bot::render::{self, Asker};
use gymtriage::bot::store::{Check, Effect, Member, MemberKey, SqliteStore, Store};
use gymtriage::{Dialogues, Input, Step};

const MEMBERS: i64 = 1000;

/// A member five answers into a back check, and the edit that shows its next question.
fn member_and_edit(d: &Dialogues, user: i64) -> (Member, Effect) {
    let mut s = d.start_session(d.lang("en").expect("en"));
    for o in ["lower_back", "no", "no", "no", "no"] {
        d.answer(&mut s, Input::Choice(o)).expect("answer");
    }
    let Step::Ask(ask) = d.current(&s) else {
        panic!("the check goes on");
    };
    let (text, keyboard) = render::question(
        d,
        &ask,
        &Asker {
            owner: user,
            first_name: "Alex",
            group_chat: None,
            bot_username: "gymtriage_bot",
            check: 7,
            version: 5,
        },
    );
    let member = Member {
        check: Some(Check {
            id: 7,
            version: 5,
            session: d.to_record(&s),
            message_id: Some(10),
        }),
        updated_at: 1_700_000_000,
        seen: (1..=16).collect(),
        ..Member::default()
    };
    let edit = Effect::Edit {
        chat: user,
        message_id: 10,
        text,
        keyboard: Some(keyboard),
    };
    (member, edit)
}

/// One press of `user`: read, commit; the reply's id goes to `acks`, removed 50 at a time.
async fn press(store: &dyn Store, user: i64, edit: &Effect, acks: &std::sync::Mutex<Vec<i64>>) {
    let key = MemberKey { chat: user, user };
    let (member, lang) = store.load_with_lang(key).await.expect("load");
    let mut member = member.expect("a stored member");
    black_box(lang);
    member.updated_at += 1;
    let ids = store
        .commit_if(key, member.rev, Some(&member), std::slice::from_ref(edit))
        .await
        .expect("commit")
        .expect("nobody else changed the member");
    let batch = {
        let mut acks = acks.lock().expect("acks");
        acks.extend(ids);
        (acks.len() >= 50).then(|| std::mem::take(&mut *acks))
    };
    if let Some(batch) = batch {
        store.delivered(&batch).await.expect("delivered");
    }
}

/// CPU time used so far by this process, all threads.
fn cpu_now() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for the call to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime");
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Runs `f` `iters` times; returns the CPU time it took.
fn cpu_time(iters: u64, mut f: impl FnMut()) -> Duration {
    let start = cpu_now();
    for _ in 0..iters {
        f();
    }
    cpu_now().saturating_sub(start)
}

fn store(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogues");
    let d = gymtriage::load(&dir).expect("dialogues load");
    let tmp = tempfile::tempdir().expect("temp dir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&tmp.path().join("bench.db")).expect("open"));
    let (member, _) = member_and_edit(&d, 1);
    runtime.block_on(async {
        for user in 1..=MEMBERS {
            let key = MemberKey { chat: user, user };
            store
                .commit_if(key, 0, Some(&member), &[])
                .await
                .expect("seed");
        }
    });
    let edits: Arc<Vec<Effect>> = Arc::new(
        (1..=MEMBERS)
            .map(|user| member_and_edit(&d, user).1)
            .collect(),
    );
    let acks = Arc::new(std::sync::Mutex::new(Vec::new()));
    let next = AtomicUsize::new(0);
    c.bench_function("store/sqlite/press (CPU)", |b| {
        b.iter_custom(|iters| {
            cpu_time(iters, || {
                let i = next.fetch_add(1, Ordering::Relaxed) % MEMBERS as usize;
                runtime.block_on(press(store.as_ref(), i as i64 + 1, &edits[i], &acks));
            })
        })
    });
    c.bench_function("store/sqlite/16_presses_at_once (CPU)", |b| {
        b.iter_custom(|iters| {
            cpu_time(iters, || {
                let first = next.fetch_add(16, Ordering::Relaxed);
                runtime.block_on(async {
                    let mut set = tokio::task::JoinSet::new();
                    for k in 0..16 {
                        let i = (first + k) % MEMBERS as usize;
                        let (store, edits, acks) = (store.clone(), edits.clone(), acks.clone());
                        set.spawn(async move {
                            press(store.as_ref(), i as i64 + 1, &edits[i], &acks).await
                        });
                    }
                    while set.join_next().await.is_some() {}
                })
            })
        })
    });
}

criterion_group!(benches, store);
criterion_main!(benches);
