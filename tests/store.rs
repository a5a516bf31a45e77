//! The storage contract, run against every backend (SQLite here; later ones reuse `contract`).

use gymtriage::bot::store::{Check, CheckIn, Effect, Member, MemberKey, SqliteStore, Store};
use gymtriage::engine::{AnswerRecord, SessionRecord};

fn member(check: u32, at: i64) -> Member {
    Member {
        check: Some(Check {
            id: check,
            version: 3,
            session: SessionRecord {
                lang: "es".into(),
                answers: vec![AnswerRecord {
                    question: "area".into(),
                    option: "bone".into(),
                    turn: 1,
                }],
            },
            message_id: None,
        }),
        updated_at: at,
        rev: 0,
        seen: vec![41, 42],
        ..Default::default()
    }
}

/// The stored member without its revision, to compare with what was saved.
fn loaded(s: &dyn Store, key: MemberKey) -> Option<Member> {
    s.load(key).unwrap().map(|m| Member { rev: 0, ..m })
}

fn send(chat: i64, text: &str) -> Effect {
    Effect::Send {
        chat,
        text: text.into(),
        keyboard: None,
        question_of: None,
    }
}

/// What every backend must do.
pub fn contract(s: &dyn Store) {
    let a = MemberKey { chat: 10, user: 10 };
    let g = MemberKey { chat: -5, user: 10 };
    let other = MemberKey { chat: -5, user: 11 };
    assert_eq!(s.load(a).unwrap(), None);

    // A commit stores the member and queues its replies, in order.
    let ids = s
        .commit(
            a,
            Some(&member(7, 100)),
            &[send(10, "one"), send(10, "two")],
        )
        .unwrap();
    assert_eq!(ids.len(), 2);
    assert!(ids[0] < ids[1]);
    assert_eq!(loaded(s, a), Some(member(7, 100)));
    let pending = s.pending().unwrap();
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[0].1, send(10, "one"));

    // Delivered entries leave the outbox.
    s.delivered(ids[0]).unwrap();
    assert_eq!(s.pending().unwrap().len(), 1);
    s.delivered(ids[1]).unwrap();
    assert!(s.pending().unwrap().is_empty());

    // The question message id is recorded only for the member's current check.
    s.set_message_id(a, 999, 55).unwrap();
    assert_eq!(s.load(a).unwrap().unwrap().check.unwrap().message_id, None);
    s.set_message_id(a, 7, 55).unwrap();
    assert_eq!(
        s.load(a).unwrap().unwrap().check.unwrap().message_id,
        Some(55)
    );

    // Members are separate per chat and per user.
    s.commit(g, Some(&member(8, 100)), &[send(-5, "group")])
        .unwrap();
    s.commit(other, Some(&member(9, 300)), &[]).unwrap();
    assert_eq!(s.count_members().unwrap(), 3);

    // Languages.
    assert_eq!(s.user_lang(10).unwrap(), None);
    s.set_user_lang(10, "es").unwrap();
    s.set_user_lang(10, "en").unwrap();
    assert_eq!(s.user_lang(10).unwrap().as_deref(), Some("en"));

    // Forgetting a user removes them everywhere, including queued replies, and no one else.
    assert!(s.forget_user(10).unwrap() >= 3);
    assert_eq!(s.load(a).unwrap(), None);
    assert_eq!(s.load(g).unwrap(), None);
    assert_eq!(s.user_lang(10).unwrap(), None);
    assert!(s.pending().unwrap().is_empty());
    assert_eq!(loaded(s, other), Some(member(9, 300)));

    // Idle members are purged.
    s.commit(a, Some(&member(1, 100)), &[]).unwrap();
    assert_eq!(s.purge_idle(200).unwrap(), 1);
    assert_eq!(s.load(a).unwrap(), None);
    assert!(s.load(other).unwrap().is_some());

    // Commits are compare-and-set on the revision: a writer that read an older revision is
    // refused and must decide again.
    let k = MemberKey { chat: 77, user: 77 };
    assert!(
        s.commit_if(k, 0, Some(&member(1, 1)), &[])
            .unwrap()
            .is_some()
    );
    let rev = s.load(k).unwrap().unwrap().rev;
    assert_eq!(rev, 1);
    assert!(
        s.commit_if(k, rev, Some(&member(2, 2)), &[send(77, "x")])
            .unwrap()
            .is_some()
    );
    assert_eq!(
        s.commit_if(k, rev, Some(&member(3, 3)), &[send(77, "lost")])
            .unwrap(),
        None,
        "a stale writer is refused"
    );
    assert_eq!(loaded(s, k), Some(member(2, 2)));
    assert!(
        !s.pending()
            .unwrap()
            .iter()
            .any(|(_, e)| *e == send(77, "lost"))
    );
    s.set_message_id(k, 2, 9).unwrap();
    assert!(
        s.load(k).unwrap().unwrap().rev > rev + 1,
        "recording a message id is a change too"
    );
    s.forget_user(77).unwrap();

    checkins(s);

    // A commit with no member deletes it.
    s.commit(other, None, &[]).unwrap();
    assert_eq!(s.count_members().unwrap(), 0);
}

fn checkin(user: i64, due_at: i64) -> CheckIn {
    CheckIn {
        id: 0,
        user,
        offer: due_at as u32,
        flow: "back".into(),
        urgency: gymtriage::Urgency::SelfCare,
        lang: "en".into(),
        checked_at: 0,
        due_at,
    }
}

/// Scheduled check-ins: listed, due in order, cancelled by their owner only, fired once.
fn checkins(s: &dyn Store) {
    let (u, v) = (501, 502);
    let later = s.schedule(&checkin(u, 300)).unwrap();
    let sooner = s.schedule(&checkin(u, 200)).unwrap();
    let other = s.schedule(&checkin(v, 100)).unwrap();
    assert_eq!(
        s.schedule(&checkin(u, 300)).unwrap(),
        later,
        "the same offer schedules once"
    );
    let mine: Vec<i64> = s.checkins_of(u).unwrap().iter().map(|c| c.id).collect();
    assert_eq!(mine, [sooner, later]);
    let due: Vec<i64> = s.due(250, 10).unwrap().iter().map(|c| c.id).collect();
    assert_eq!(due, [other, sooner]);
    assert!(
        !s.cancel_checkin(v, later).unwrap(),
        "only the owner cancels"
    );
    assert!(s.cancel_checkin(u, later).unwrap());
    assert!(!s.cancel_checkin(u, later).unwrap());
    // Firing is exactly once, and atomic with the member's commit and its reply.
    let key = MemberKey { chat: u, user: u };
    let fired = s
        .fire(
            sooner,
            key,
            0,
            Some(&member(5, 5)),
            &[send(u, "how is it now?")],
        )
        .unwrap();
    assert!(fired.is_some());
    assert_eq!(
        s.fire(sooner, key, 1, Some(&member(6, 6)), &[send(u, "again")])
            .unwrap(),
        None
    );
    assert!(
        !s.pending()
            .unwrap()
            .iter()
            .any(|(_, e)| *e == send(u, "again"))
    );
    // A stale revision fires nothing and keeps the check-in for a later try.
    assert_eq!(
        s.fire(other, MemberKey { chat: v, user: v }, 9, None, &[])
            .unwrap(),
        None
    );
    assert_eq!(s.due(250, 10).unwrap().len(), 1);
    // /forget takes check-ins too.
    s.forget_user(v).unwrap();
    assert!(s.checkins_of(v).unwrap().is_empty());
    assert!(s.due(i64::MAX, 10).unwrap().is_empty());
    for (id, _) in s.pending().unwrap() {
        s.delivered(id).unwrap();
    }
    s.forget_user(u).unwrap();
}

#[test]
fn sqlite_in_memory_keeps_the_contract() {
    contract(&SqliteStore::in_memory().unwrap());
}

#[test]
fn sqlite_file_keeps_the_contract_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    contract(&SqliteStore::open(&path).unwrap());
    let key = MemberKey { chat: 1, user: 1 };
    {
        let s = SqliteStore::open(&path).unwrap();
        s.commit(key, Some(&member(4, 1)), &[send(1, "after restart")])
            .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(loaded(&s, key), Some(member(4, 1)));
    assert_eq!(s.pending().unwrap()[0].1, send(1, "after restart"));
}

#[test]
fn an_unreadable_record_is_dropped_so_the_member_can_start_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO members (chat_id, user_id, state, updated_at) VALUES (1, 1, 'not json', 0)",
        [],
    )
    .unwrap();
    drop(conn);
    let s = SqliteStore::open(&path).unwrap();
    let key = MemberKey { chat: 1, user: 1 };
    assert_eq!(s.load(key).unwrap(), None);
    s.commit(key, Some(&member(2, 5)), &[]).unwrap();
    assert_eq!(loaded(&s, key), Some(member(2, 5)));
}

/// Redis from `GYMTRIAGE_TEST_REDIS` (default redis://127.0.0.1:6379/15), under a fresh
/// prefix. When Redis is unreachable the test fails in CI (`CI=true`) and is skipped, with the
/// reason printed, elsewhere.
fn redis_store(test: &str) -> Option<gymtriage::bot::store::RedisStore> {
    let url = std::env::var("GYMTRIAGE_TEST_REDIS")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/15".to_string());
    let prefix = format!(
        "gymtriage-test:{test}:{}:{}:",
        std::process::id(),
        rand_suffix()
    );
    match gymtriage::bot::store::RedisStore::open(&url, &prefix) {
        Ok(s) => Some(s),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("Redis at {url} is required in CI: {e}")
        }
        Err(e) => {
            eprintln!("skipped: no Redis at {url} ({e})");
            None
        }
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[test]
fn redis_keeps_the_contract() {
    if let Some(s) = redis_store("contract") {
        contract(&s);
    }
}

/// Two writers (as two bot instances would) record answers for the same member at the same
/// moment, each reloading and retrying when the other committed first: no answer is lost.
fn race(make: impl Fn() -> Box<dyn Store>) {
    let key = MemberKey { chat: -9, user: 9 };
    let (a, b) = (make(), make());
    a.commit(
        key,
        Some(&Member {
            check: None,
            ..Default::default()
        }),
        &[],
    )
    .unwrap();
    const EACH: u32 = 200;
    std::thread::scope(|scope| {
        for (writer, store) in [(0u32, &a), (1u32, &b)] {
            scope.spawn(move || {
                for i in 0..EACH {
                    loop {
                        let m = store.load(key).unwrap().unwrap();
                        // Each writer appends one "answer": a turn tagged with its writer.
                        let mut next = m.clone();
                        let check = next.check.get_or_insert(Check {
                            id: 1,
                            version: 0,
                            session: SessionRecord {
                                lang: "en".into(),
                                answers: vec![],
                            },
                            message_id: None,
                        });
                        check.session.answers.push(AnswerRecord {
                            question: format!("w{writer}"),
                            option: format!("a{i}"),
                            turn: 1,
                        });
                        check.version += 1;
                        if store
                            .commit_if(key, m.rev, Some(&next), &[])
                            .unwrap()
                            .is_some()
                        {
                            break;
                        }
                    }
                }
            });
        }
    });
    let m = a.load(key).unwrap().unwrap();
    let answers = &m.check.unwrap().session.answers;
    assert_eq!(answers.len(), 2 * EACH as usize, "no answer lost");
    assert_eq!(m.rev, 2 * EACH as u64 + 1);
    println!("race: 2 writers x {EACH} answers, lost: 0");
}

#[test]
fn two_sqlite_connections_racing_on_one_member_lose_no_answer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("race.db");
    race(|| Box::new(SqliteStore::open(&path).unwrap()));
}

#[test]
fn two_instances_on_one_redis_racing_on_one_member_lose_no_answer() {
    let Some(first) = redis_store("race") else {
        return;
    };
    drop(first);
    let url = std::env::var("GYMTRIAGE_TEST_REDIS")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/15".to_string());
    let prefix = format!(
        "gymtriage-test:race2:{}:{}:",
        std::process::id(),
        rand_suffix()
    );
    race(|| Box::new(gymtriage::bot::store::RedisStore::open(&url, &prefix).unwrap()));
}
