//! The default backend: one SQLite file in WAL mode, owned by one thread (SQLite allows one
//! writer at a time anyway) that takes requests over a channel and runs everything queued
//! meanwhile in one transaction (group commit): under load, one commit (one WAL append)
//! serves many updates, and the work runs beside the async threads, never on them. Callers
//! hear back only once the transaction is committed. Should one request of a batch fail, the
//! batch is rolled back and each of its requests runs again in a transaction of its own, so
//! a failing request undoes only itself (savepoints around every request did the same at
//! the price of a copy of every page a request wrote, for a case that almost never
//! happens). Statements (`BEGIN` and `COMMIT` too) are prepared once and cached. Commits
//! never wait for the disk (`synchronous = NORMAL`); the checkpoint, which does, runs every
//! second on a thread of its own.

use std::path::Path;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::{CheckIn, Effect, Member, MemberKey, Pending, Result, Store, StoreError};

/// A request for the store thread: run inside a transaction (again, alone, if its batch
/// had to be rolled back), then told whether what it did was committed.
trait Work: Send {
    /// Runs the request; false if it failed (its transaction must be rolled back).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller: the result of the last run if `committed`, an error otherwise.
    fn finish(self: Box<Self>, committed: bool);
}

struct Request<F, R> {
    f: F,
    result: Option<Result<R>>,
    reply: tokio::sync::oneshot::Sender<Result<R>>,
}

impl<F, R> Request<F, R>
where
    F: FnMut(&Connection) -> Result<R> + Send + 'static,
    R: Send + 'static,
{
    /// A request for the store thread, and where its answer will arrive.
    fn queued(f: F) -> (Box<dyn Work>, tokio::sync::oneshot::Receiver<Result<R>>) {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let work = Box::new(Request {
            f,
            result: None,
            reply,
        });
        (work, answer)
    }
}

impl<F, R> Work for Request<F, R>
where
    F: FnMut(&Connection) -> Result<R> + Send,
    R: Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let result = (self.f)(conn);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, committed: bool) {
        let result = match self.result {
            Some(Ok(r)) if committed => Ok(r),
            Some(Err(e)) => Err(e),
            _ => Err(StoreError::Unavailable),
        };
        let _ = self.reply.send(result);
    }
}

pub struct SqliteStore {
    jobs: mpsc::Sender<Box<dyn Work>>,
    /// Keeps the checkpoint thread going; it stops within a second of the store's drop.
    _alive: Arc<()>,
}

/// How often the background thread checkpoints the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// How far (seconds) a member's `updated_at` column may lag behind its state.
const AGE_STEP: i64 = 60;
/// Most requests in one transaction.
const BATCH: usize = 64;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS members (
    chat_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    state TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    rev INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (chat_id, user_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS members_by_user ON members (user_id);
CREATE INDEX IF NOT EXISTS members_by_age ON members (updated_at);
CREATE TABLE IF NOT EXISTS users (
    user_id INTEGER PRIMARY KEY,
    lang TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    effect TEXT NOT NULL
);
-- The outbox holds only replies not yet confirmed (a few per member in flight), so /forget
-- scans it; an index on user_id cost two more B-tree writes for every reply.
DROP INDEX IF EXISTS outbox_by_user;
CREATE TABLE IF NOT EXISTS checkins (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL,
    offer INTEGER NOT NULL,
    due_at INTEGER NOT NULL,
    checkin TEXT NOT NULL,
    UNIQUE (user_id, offer)
);
CREATE INDEX IF NOT EXISTS checkins_by_due ON checkins (due_at);
CREATE INDEX IF NOT EXISTS checkins_by_user ON checkins (user_id);
";

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let conn = Connection::open(path)?;
        // The store thread only checkpoints as a backstop (a WAL of ~40 MB, if the checkpoint
        // thread ever stopped); that one does it every second, off the requests' path.
        conn.pragma_update(None, "wal_autocheckpoint", 10_000)?;
        let store = Self::setup(conn)?;
        let checkpoints = Connection::open(path)?;
        checkpoints.busy_timeout(Duration::from_secs(5))?;
        let alive = Arc::downgrade(&store._alive);
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                while alive.strong_count() > 0 {
                    std::thread::sleep(CHECKPOINT_EVERY);
                    let done =
                        checkpoints.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                    if let Err(e) = done {
                        log::warn!("WAL checkpoint failed: {e}");
                    }
                }
            })
            .map_err(|_| StoreError::Unavailable)?;
        Ok(store)
    }

    /// A private in-memory database, for tests.
    pub fn in_memory() -> Result<SqliteStore> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(conn: Connection) -> Result<SqliteStore> {
        // WAL: readers never block the writer; NORMAL sync is durable across process crashes
        // (a power cut may lose the last transactions, never corrupt the file).
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        conn.set_prepared_statement_cache_capacity(32);
        let (jobs, queue) = mpsc::channel::<Box<dyn Work>>();
        std::thread::Builder::new()
            .name("sqlite-store".into())
            .spawn(move || serve(conn, queue))
            .map_err(|_| StoreError::Unavailable)?;
        Ok(SqliteStore {
            jobs,
            _alive: Arc::new(()),
        })
    }

    /// Runs `f` on the store thread, in the current batch's transaction, and returns its
    /// result once that is committed. `f` may run twice (see the module's documentation).
    async fn call<R: Send + 'static>(
        &self,
        f: impl FnMut(&Connection) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let (work, answer) = Request::queued(f);
        self.jobs.send(work).map_err(|_| StoreError::Unavailable)?;
        answer.await.map_err(|_| StoreError::Unavailable)?
    }
}

/// The store thread: waits for a request, takes every other one queued by then, runs them
/// all in one `IMMEDIATE` transaction (the write lock is taken before anything is read, so
/// that another process's commit waits for the busy timeout instead of failing an upgrade),
/// commits, and only then answers them. If a request or the commit fails, the batch is rolled
/// back and its requests run again one transaction each. Ends when the store is dropped.
fn serve(conn: Connection, queue: mpsc::Receiver<Box<dyn Work>>) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Ok(first) = queue.recv() {
        batch.push(first);
        while batch.len() < BATCH {
            match queue.try_recv() {
                Ok(work) => batch.push(work),
                Err(_) => break,
            }
        }
        settle(&conn, &mut batch);
    }
}

/// Runs and answers a batch of requests: in one transaction, or, if that fails, one
/// transaction each.
fn settle(conn: &Connection, batch: &mut Vec<Box<dyn Work>>) {
    if batch.len() > 1 && transaction(conn, batch) {
        for work in batch.drain(..) {
            work.finish(true);
        }
        return;
    }
    for mut work in batch.drain(..) {
        let committed = transaction(conn, std::slice::from_mut(&mut work));
        work.finish(committed);
    }
}

/// Runs `works` in one transaction; true if every one succeeded and it committed (otherwise
/// nothing of theirs is kept).
fn transaction(conn: &Connection, works: &mut [Box<dyn Work>]) -> bool {
    if let Err(e) = run(conn, "BEGIN IMMEDIATE") {
        log::error!("SQLite could not start a transaction: {e}");
        return false;
    }
    let mut ok = true;
    for work in works.iter_mut() {
        ok &= work.run(conn);
    }
    if ok {
        match run(conn, "COMMIT") {
            Ok(()) => return true,
            Err(e) => log::error!("SQLite could not commit: {e}"),
        }
    }
    if let Err(e) = run(conn, "ROLLBACK") {
        log::error!("SQLite could not roll back: {e}");
    }
    false
}

fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// A member and its replies as stored: (state JSON, updated_at) and (chat, effect JSON).
type Encoded = (Option<(String, i64)>, Vec<(i64, String)>);

/// Serializes a commit on the caller's thread, so that the store thread only writes.
fn encode(expected: u64, member: Option<&Member>, outbox: &[Effect]) -> Result<Encoded> {
    let member = match member {
        Some(m) => Some((
            serde_json::to_string(&Member {
                rev: expected + 1,
                ..m.clone()
            })?,
            m.updated_at,
        )),
        None => None,
    };
    let outbox = outbox
        .iter()
        .map(|e| Ok((e.chat(), serde_json::to_string(e)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok((member, outbox))
}

/// The body of a compare-and-set commit, inside the caller's transaction; `None` (and nothing
/// written) when the stored revision is not `expected`.
fn write(
    tx: &Connection,
    key: MemberKey,
    expected: u64,
    member: Option<&(String, i64)>,
    outbox: &[(i64, String)],
) -> Result<Option<Vec<i64>>> {
    let stored: Option<(i64, i64)> = tx
        .prepare_cached("SELECT rev, updated_at FROM members WHERE chat_id = ?1 AND user_id = ?2")?
        .query_row(params![key.chat, key.user], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if stored.map_or(0, |s| s.0) as u64 != expected {
        return Ok(None);
    }
    let rev = expected as i64 + 1;
    match (member, stored) {
        // The idle-time column (and its index) moves only when it is a minute behind: purging
        // is by the hour, and an index entry moved at every press was one more page to write.
        (Some((state, updated_at)), Some((_, was)))
            if (was..was + AGE_STEP).contains(updated_at) =>
        {
            tx.prepare_cached(
                "UPDATE members SET state = ?3, rev = ?4 WHERE chat_id = ?1 AND user_id = ?2",
            )?
            .execute(params![key.chat, key.user, state, rev])?;
        }
        (Some((state, updated_at)), _) => {
            tx.prepare_cached(
                "INSERT INTO members (chat_id, user_id, state, updated_at, rev) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (chat_id, user_id) DO UPDATE SET state = ?3, updated_at = ?4, rev = ?5",
            )?
            .execute(params![key.chat, key.user, state, updated_at, rev])?;
        }
        (None, _) => {
            tx.prepare_cached("DELETE FROM members WHERE chat_id = ?1 AND user_id = ?2")?
                .execute(params![key.chat, key.user])?;
        }
    }
    let mut ids = Vec::with_capacity(outbox.len());
    let mut insert =
        tx.prepare_cached("INSERT INTO outbox (chat_id, user_id, effect) VALUES (?1, ?2, ?3)")?;
    for (chat, effect) in outbox {
        insert.execute(params![chat, key.user, effect])?;
        ids.push(tx.last_insert_rowid());
    }
    Ok(Some(ids))
}

/// A member's stored state, as bytes: the caller parses it ([`parse_member`]), so that the
/// store thread, which every update waits for in turn, does not.
fn read_member(conn: &Connection, key: MemberKey) -> Result<Option<Vec<u8>>> {
    let mut stmt =
        conn.prepare_cached("SELECT state FROM members WHERE chat_id = ?1 AND user_id = ?2")?;
    Ok(stmt
        .query_row(params![key.chat, key.user], |r| {
            Ok(r.get_ref(0)?.as_bytes()?.to_vec())
        })
        .optional()?)
}

fn parse_member(state: Option<Vec<u8>>) -> Option<Member> {
    match serde_json::from_slice(&state?) {
        Ok(m) => Some(m),
        Err(e) => {
            // Unreadable (a newer or damaged format): the member starts over rather than
            // being stuck; the next commit overwrites it.
            log::error!("dropping an unreadable stored check: {e}");
            None
        }
    }
}

fn read_lang(conn: &Connection, user: i64) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT lang FROM users WHERE user_id = ?1")?
        .query_row(params![user], |r| r.get(0))
        .optional()?)
}

fn read_checkins(
    stmt: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
) -> Result<Vec<CheckIn>> {
    let rows = stmt.query_map(params, |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, json) = row?;
        let mut c: CheckIn = serde_json::from_str(&json)?;
        c.id = id;
        out.push(c);
    }
    Ok(out)
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn load(&self, key: MemberKey) -> Result<Option<Member>> {
        Ok(parse_member(self.call(move |c| read_member(c, key)).await?))
    }

    async fn load_with_lang(&self, key: MemberKey) -> Result<(Option<Member>, Option<String>)> {
        let (state, lang) = self
            .call(move |c| Ok((read_member(c, key)?, read_lang(c, key.user)?)))
            .await?;
        Ok((parse_member(state), lang))
    }

    async fn commit_if(
        &self,
        key: MemberKey,
        expected: u64,
        member: Option<&Member>,
        outbox: &[Effect],
    ) -> Result<Option<Vec<i64>>> {
        let (member, outbox) = encode(expected, member, outbox)?;
        self.call(move |c| write(c, key, expected, member.as_ref(), &outbox))
            .await
    }

    async fn fire(
        &self,
        id: i64,
        key: MemberKey,
        expected: u64,
        member: Option<&Member>,
        outbox: &[Effect],
    ) -> Result<Option<Vec<i64>>> {
        let (member, outbox) = encode(expected, member, outbox)?;
        self.call(move |c| {
            let scheduled = c
                .prepare_cached("SELECT 1 FROM checkins WHERE id = ?1")?
                .query_row(params![id], |_| Ok(()))
                .optional()?
                .is_some();
            if !scheduled {
                return Ok(None);
            }
            let ids = write(c, key, expected, member.as_ref(), &outbox)?;
            if ids.is_some() {
                c.prepare_cached("DELETE FROM checkins WHERE id = ?1")?
                    .execute(params![id])?;
            }
            Ok(ids)
        })
        .await
    }

    async fn schedule(&self, c: &CheckIn) -> Result<i64> {
        let (user, offer, due_at, json) = (c.user, c.offer, c.due_at, serde_json::to_string(c)?);
        self.call(move |conn| {
            conn.prepare_cached(
                "INSERT INTO checkins (user_id, offer, due_at, checkin) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (user_id, offer) DO NOTHING",
            )?
            .execute(params![user, offer, due_at, json])?;
            Ok(conn
                .prepare_cached("SELECT id FROM checkins WHERE user_id = ?1 AND offer = ?2")?
                .query_row(params![user, offer], |r| r.get(0))?)
        })
        .await
    }

    async fn due(&self, now: i64, limit: usize) -> Result<Vec<CheckIn>> {
        self.call(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, checkin FROM checkins WHERE due_at <= ?1 ORDER BY due_at, id LIMIT ?2",
            )?;
            read_checkins(&mut stmt, params![now, limit as i64])
        })
        .await
    }

    async fn checkins_of(&self, user: i64) -> Result<Vec<CheckIn>> {
        self.call(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, checkin FROM checkins WHERE user_id = ?1 ORDER BY due_at, id",
            )?;
            read_checkins(&mut stmt, params![user])
        })
        .await
    }

    async fn cancel_checkin(&self, user: i64, id: i64) -> Result<bool> {
        self.call(move |conn| {
            Ok(conn
                .prepare_cached("DELETE FROM checkins WHERE id = ?1 AND user_id = ?2")?
                .execute(params![id, user])?
                > 0)
        })
        .await
    }

    async fn delivered(&self, ids: &[i64]) -> Result<()> {
        let ids = ids.to_vec();
        self.call(move |conn| {
            let mut stmt = conn.prepare_cached("DELETE FROM outbox WHERE id = ?1")?;
            for id in &ids {
                stmt.execute(params![id])?;
            }
            Ok(())
        })
        .await
    }

    async fn pending(&self) -> Result<Vec<Pending>> {
        self.call(|conn| {
            let mut stmt = conn.prepare_cached("SELECT id, effect FROM outbox ORDER BY id")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (id, effect) = row?;
                out.push((id, serde_json::from_str(&effect)?));
            }
            Ok(out)
        })
        .await
    }

    async fn user_lang(&self, user: i64) -> Result<Option<String>> {
        self.call(move |c| read_lang(c, user)).await
    }

    async fn set_user_lang(&self, user: i64, lang: &str) -> Result<()> {
        let lang = lang.to_string();
        self.call(move |conn| {
            conn.prepare_cached(
                "INSERT INTO users (user_id, lang) VALUES (?1, ?2)
                 ON CONFLICT (user_id) DO UPDATE SET lang = ?2",
            )?
            .execute(params![user, lang])?;
            Ok(())
        })
        .await
    }

    async fn forget_user(&self, user: i64) -> Result<usize> {
        self.call(move |tx| {
            let mut n = tx.execute("DELETE FROM members WHERE user_id = ?1", params![user])?;
            n += tx.execute("DELETE FROM users WHERE user_id = ?1", params![user])?;
            n += tx.execute("DELETE FROM outbox WHERE user_id = ?1", params![user])?;
            n += tx.execute("DELETE FROM checkins WHERE user_id = ?1", params![user])?;
            Ok(n)
        })
        .await
    }

    async fn purge_idle(&self, cutoff: i64) -> Result<usize> {
        self.call(move |conn| {
            Ok(conn.execute("DELETE FROM members WHERE updated_at < ?1", params![cutoff])?)
        })
        .await
    }

    async fn count_members(&self) -> Result<usize> {
        self.call(|conn| {
            let n: i64 = conn.query_row("SELECT COUNT(*) FROM members", [], |r| r.get(0))?;
            Ok(n as usize)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<R: Send + 'static>(
        f: impl FnMut(&Connection) -> Result<R> + Send + 'static,
    ) -> (Box<dyn Work>, tokio::sync::oneshot::Receiver<Result<R>>) {
        Request::queued(f)
    }

    #[test]
    fn a_failing_request_undoes_only_itself_and_the_rest_of_its_batch_is_kept() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER PRIMARY KEY)")
            .unwrap();
        let insert =
            |x: i64| request(move |c| Ok(c.execute("INSERT INTO t (x) VALUES (?1)", params![x])?));
        let (a, a_answer) = insert(1);
        // Writes, then fails: what it wrote must go, nothing else.
        let (bad, bad_answer) = request(|c| -> Result<()> {
            c.execute("INSERT INTO t (x) VALUES (2)", [])?;
            Err(StoreError::Unavailable)
        });
        let (b, b_answer) = insert(3);
        let mut batch = vec![a, bad, b];
        settle(&conn, &mut batch);
        assert!(batch.is_empty());
        assert_eq!(a_answer.blocking_recv().unwrap().unwrap(), 1);
        assert!(bad_answer.blocking_recv().unwrap().is_err());
        assert_eq!(b_answer.blocking_recv().unwrap().unwrap(), 1);
        let kept: Vec<i64> = conn
            .prepare("SELECT x FROM t ORDER BY x")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(kept, vec![1, 3]);

        // A batch where all succeed is one transaction: all kept.
        let (c, c_answer) = insert(4);
        let (d, d_answer) = insert(5);
        let mut batch = vec![c, d];
        settle(&conn, &mut batch);
        assert!(c_answer.blocking_recv().unwrap().is_ok());
        assert!(d_answer.blocking_recv().unwrap().is_ok());
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 4);
    }

    #[tokio::test]
    async fn the_idle_time_column_moves_a_minute_at_a_time() {
        let store = SqliteStore::in_memory().unwrap();
        let key = MemberKey { chat: 1, user: 1 };
        let at = |t: i64| Member {
            updated_at: t,
            ..Member::default()
        };
        store.commit_if(key, 0, Some(&at(1000)), &[]).await.unwrap();
        store.commit_if(key, 1, Some(&at(1030)), &[]).await.unwrap();
        // Purging everything idle since before 1001 finds it: its column still says 1000.
        assert_eq!(store.purge_idle(1001).await.unwrap(), 1);
        store.commit_if(key, 0, Some(&at(1000)), &[]).await.unwrap();
        store.commit_if(key, 1, Some(&at(1061)), &[]).await.unwrap();
        assert_eq!(store.purge_idle(1061).await.unwrap(), 0, "moved to 1061");
        assert_eq!(store.load(key).await.unwrap().unwrap().updated_at, 1061);
    }
}
