//! Stores filled before the bot starts, through gymtriage's own store code: the benchmark's
//! members with a check at its first question (as if each had sent /check and received the
//! question message), and optionally filler members with a check half-way through, up to a
//! total number of stored sessions.

use std::path::Path;

use anyhow::{Context, bail};
use gymtriage::bot::store::{Check, Member as Stored, MemberKey, RedisStore, SqliteStore, Store};
use gymtriage::{Dialogues, Input};

use super::server::Member;

/// First user id of the filler members (the benchmark's members are below it).
const FILLER_BASE: i64 = 900_000_000;

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A stored member whose check has `answers` of `path` answered.
fn stored(
    d: &Dialogues,
    path: &[String],
    check_id: u32,
    message_id: i32,
    answers: usize,
) -> Stored {
    let lang = d.lang("en").unwrap_or_default();
    let mut session = d.start_session(lang);
    for id in &path[..answers] {
        let _ = d.answer(&mut session, Input::Choice(id));
    }
    Stored {
        check: Some(Check {
            id: check_id,
            version: answers as u32,
            session: d.to_record(&session),
            message_id: Some(message_id),
        }),
        updated_at: unix_now(),
        // Whatever else a member holds (revision, recent update ids...) starts empty.
        ..Stored::default()
    }
}

/// Saves `members` (at their first question) and `filler` other members (5 answers in).
pub async fn fill(
    store: &dyn Store,
    d: &Dialogues,
    path: &[String],
    members: &[Member],
    filler: usize,
) -> anyhow::Result<()> {
    for m in members {
        let key = MemberKey {
            chat: m.chat,
            user: m.user,
        };
        let s = stored(d, path, m.check_id, m.message_id, 0);
        if store.commit_if(key, 0, Some(&s), &[]).await?.is_none() {
            bail!("member {key:?} already stored");
        }
    }
    let template = stored(d, path, 0, 10, 5.min(path.len()));
    for j in 0..filler {
        let user = FILLER_BASE + j as i64;
        let mut s = template.clone();
        if let Some(c) = s.check.as_mut() {
            c.id = (j as u32).wrapping_mul(2_654_435_761) | 1;
        }
        store
            .commit_if(MemberKey { chat: user, user }, 0, Some(&s), &[])
            .await?;
    }
    Ok(())
}

/// A fresh SQLite file at `path`, filled.
pub async fn sqlite(
    path: &Path,
    d: &Dialogues,
    script_path: &[String],
    members: &[Member],
    filler: usize,
) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    let store = SqliteStore::open(path).context("open the SQLite store")?;
    fill(&store, d, script_path, members, filler).await
}

/// Empties the Redis database of `url` (FLUSHDB) and fills it.
pub async fn redis(
    url: &str,
    d: &Dialogues,
    script_path: &[String],
    members: &[Member],
    filler: usize,
) -> anyhow::Result<()> {
    flush_redis(url)?;
    let store = RedisStore::open(url, "gymtriage:").context("open the Redis store")?;
    fill(&store, d, script_path, members, filler).await
}

pub fn flush_redis(url: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(url)?;
    let mut c = client.get_connection().context("connect to Redis")?;
    redis::cmd("FLUSHDB").query::<()>(&mut c)?;
    Ok(())
}

/// The pid of the Redis server behind `url` (from INFO), to measure its CPU time.
pub fn redis_pid(url: &str) -> Option<String> {
    let client = redis::Client::open(url).ok()?;
    let mut c = client.get_connection().ok()?;
    let info: String = redis::cmd("INFO").arg("server").query(&mut c).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .map(|p| p.trim().to_string())
}
