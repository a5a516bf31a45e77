//! The storage contract, run against every backend (SQLite here; later ones reuse `contract`).

use std::sync::Arc;

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
async fn loaded(s: &dyn Store, key: MemberKey) -> Option<Member> {
    s.load(key).await.unwrap().map(|m| Member { rev: 0, ..m })
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
pub async fn contract(s: &dyn Store) {
    let a = MemberKey { chat: 10, user: 10 };
    let g = MemberKey { chat: -5, user: 10 };
    let other = MemberKey { chat: -5, user: 11 };
    assert_eq!(s.load(a).await.unwrap(), None);

    // A commit stores the member and queues its replies, in order.
    let ids = s
        .commit(
            a,
            Some(&member(7, 100)),
            &[send(10, "one"), send(10, "two")],
        )
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);
    assert!(ids[0] < ids[1]);
    assert_eq!(loaded(s, a).await, Some(member(7, 100)));
    let pending = s.pending().await.unwrap();
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[0].1, send(10, "one"));

    // Delivered entries leave the outbox.
    s.delivered(&[ids[0]]).await.unwrap();
    assert_eq!(s.pending().await.unwrap().len(), 1);
    s.delivered(&[ids[1]]).await.unwrap();
    assert!(s.pending().await.unwrap().is_empty());

    // The question message id is recorded only for the member's current check.
    s.set_message_id(a, 999, 55).await.unwrap();
    assert_eq!(
        s.load(a).await.unwrap().unwrap().check.unwrap().message_id,
        None
    );
    s.set_message_id(a, 7, 55).await.unwrap();
    assert_eq!(
        s.load(a).await.unwrap().unwrap().check.unwrap().message_id,
        Some(55)
    );

    // Members are separate per chat and per user.
    s.commit(g, Some(&member(8, 100)), &[send(-5, "group")])
        .await
        .unwrap();
    s.commit(other, Some(&member(9, 300)), &[]).await.unwrap();
    assert_eq!(s.count_members().await.unwrap(), 3);

    // Languages.
    assert_eq!(s.user_lang(10).await.unwrap(), None);
    s.set_user_lang(10, "es").await.unwrap();
    s.set_user_lang(10, "en").await.unwrap();
    assert_eq!(s.user_lang(10).await.unwrap().as_deref(), Some("en"));

    // Forgetting a user removes them everywhere, including queued replies, and no one else.
    assert!(s.forget_user(10).await.unwrap() >= 3);
    assert_eq!(s.load(a).await.unwrap(), None);
    assert_eq!(s.load(g).await.unwrap(), None);
    assert_eq!(s.user_lang(10).await.unwrap(), None);
    assert!(s.pending().await.unwrap().is_empty());
    assert_eq!(loaded(s, other).await, Some(member(9, 300)));

    // Idle members are purged.
    s.commit(a, Some(&member(1, 100)), &[]).await.unwrap();
    assert_eq!(s.purge_idle(200).await.unwrap(), 1);
    assert_eq!(s.load(a).await.unwrap(), None);
    assert!(s.load(other).await.unwrap().is_some());

    // Commits are compare-and-set on the revision: a writer that read an older revision is
    // refused and must decide again.
    let k = MemberKey { chat: 77, user: 77 };
    assert!(
        s.commit_if(k, 0, Some(&member(1, 1)), &[])
            .await
            .unwrap()
            .is_some()
    );
    let rev = s.load(k).await.unwrap().unwrap().rev;
    assert_eq!(rev, 1);
    assert!(
        s.commit_if(k, rev, Some(&member(2, 2)), &[send(77, "x")])
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        s.commit_if(k, rev, Some(&member(3, 3)), &[send(77, "lost")])
            .await
            .unwrap(),
        None,
        "a stale writer is refused"
    );
    assert_eq!(loaded(s, k).await, Some(member(2, 2)));
    assert!(
        !s.pending()
            .await
            .unwrap()
            .iter()
            .any(|(_, e)| *e == send(77, "lost"))
    );
    s.set_message_id(k, 2, 9).await.unwrap();
    assert!(
        s.load(k).await.unwrap().unwrap().rev > rev + 1,
        "recording a message id is a change too"
    );
    s.forget_user(77).await.unwrap();

    checkins(s).await;

    // A commit with no member deletes it.
    s.commit(other, None, &[]).await.unwrap();
    assert_eq!(s.count_members().await.unwrap(), 0);
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
async fn checkins(s: &dyn Store) {
    let (u, v) = (501, 502);
    let later = s.schedule(&checkin(u, 300)).await.unwrap();
    let sooner = s.schedule(&checkin(u, 200)).await.unwrap();
    let other = s.schedule(&checkin(v, 100)).await.unwrap();
    assert_eq!(
        s.schedule(&checkin(u, 300)).await.unwrap(),
        later,
        "the same offer schedules once"
    );
    let mine: Vec<i64> = s
        .checkins_of(u)
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(mine, [sooner, later]);
    let due: Vec<i64> = s.due(250, 10).await.unwrap().iter().map(|c| c.id).collect();
    assert_eq!(due, [other, sooner]);
    assert!(
        !s.cancel_checkin(v, later).await.unwrap(),
        "only the owner cancels"
    );
    assert!(s.cancel_checkin(u, later).await.unwrap());
    assert!(!s.cancel_checkin(u, later).await.unwrap());
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
        .await
        .unwrap();
    assert!(fired.is_some());
    assert_eq!(
        s.fire(sooner, key, 1, Some(&member(6, 6)), &[send(u, "again")])
            .await
            .unwrap(),
        None
    );
    assert!(
        !s.pending()
            .await
            .unwrap()
            .iter()
            .any(|(_, e)| *e == send(u, "again"))
    );
    // A stale revision fires nothing and keeps the check-in for a later try.
    assert_eq!(
        s.fire(other, MemberKey { chat: v, user: v }, 9, None, &[])
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.due(250, 10).await.unwrap().len(), 1);
    // /forget takes check-ins too.
    s.forget_user(v).await.unwrap();
    assert!(s.checkins_of(v).await.unwrap().is_empty());
    assert!(s.due(i64::MAX, 10).await.unwrap().is_empty());
    for (id, _) in s.pending().await.unwrap() {
        s.delivered(&[id]).await.unwrap();
    }
    s.forget_user(u).await.unwrap();
}

#[tokio::test]
async fn sqlite_in_memory_keeps_the_contract() {
    contract(&SqliteStore::in_memory().unwrap()).await;
}

#[tokio::test]
async fn sqlite_file_keeps_the_contract_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    contract(&SqliteStore::open(&path).unwrap()).await;
    let key = MemberKey { chat: 1, user: 1 };
    {
        let s = SqliteStore::open(&path).unwrap();
        s.commit(key, Some(&member(4, 1)), &[send(1, "after restart")])
            .await
            .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(loaded(&s, key).await, Some(member(4, 1)));
    assert_eq!(s.pending().await.unwrap()[0].1, send(1, "after restart"));
}

#[tokio::test]
async fn an_unreadable_record_is_dropped_so_the_member_can_start_over() {
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
    assert_eq!(s.load(key).await.unwrap(), None);
    s.commit(key, Some(&member(2, 5)), &[]).await.unwrap();
    assert_eq!(loaded(&s, key).await, Some(member(2, 5)));
}

/// Redis from `GYMTRIAGE_TEST_REDIS` (default redis://127.0.0.1:6379/15), under a fresh
/// prefix. When Redis is unreachable the test fails in CI (`CI=true`) and is skipped, with the
/// reason printed, elsewhere.
async fn redis_store(test: &str) -> Option<gymtriage::bot::store::RedisStore> {
    let url = std::env::var("GYMTRIAGE_TEST_REDIS")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/15".to_string());
    let prefix = format!(
        "gymtriage-test:{test}:{}:{}:",
        std::process::id(),
        rand_suffix()
    );
    let opened = match gymtriage::bot::store::RedisStore::open(&url, &prefix) {
        Ok(s) => s.ping().await.map(|()| s),
        Err(e) => Err(e),
    };
    match opened {
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

#[tokio::test]
async fn redis_keeps_the_contract() {
    if let Some(s) = redis_store("contract").await {
        contract(&s).await;
    }
}

/// Two writers (as two bot instances would) record answers for the same member at the same
/// moment, each reloading and retrying when the other committed first: no answer is lost.
async fn race(make: impl Fn() -> Arc<dyn Store>) {
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
    .await
    .unwrap();
    const EACH: u32 = 200;
    let writers: Vec<_> = [(0u32, a.clone()), (1u32, b)]
        .into_iter()
        .map(|(writer, store)| {
            tokio::spawn(async move {
                for i in 0..EACH {
                    loop {
                        let m = store.load(key).await.unwrap().unwrap();
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
                            .await
                            .unwrap()
                            .is_some()
                        {
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let m = a.load(key).await.unwrap().unwrap();
    let answers = &m.check.unwrap().session.answers;
    assert_eq!(answers.len(), 2 * EACH as usize, "no answer lost");
    assert_eq!(m.rev, 2 * EACH as u64 + 1);
    println!("race: 2 writers x {EACH} answers, lost: 0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sqlite_connections_racing_on_one_member_lose_no_answer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("race.db");
    race(|| Arc::new(SqliteStore::open(&path).unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_redis_racing_on_one_member_lose_no_answer() {
    let Some(first) = redis_store("race").await else {
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
    race(|| Arc::new(gymtriage::bot::store::RedisStore::open(&url, &prefix).unwrap())).await;
}
