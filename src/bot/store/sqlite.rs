//! The default backend: one SQLite file, WAL mode, one connection guarded by a mutex (SQLite
//! allows one writer at a time anyway), statements (`BEGIN` and `COMMIT` too) prepared once
//! and cached. Calls run inline on the caller's thread: each is a few tens of microseconds
//! of local work, since commits in WAL mode with `synchronous = NORMAL` never wait for the
//! disk; the one step that does (the checkpoint, with its `fsync`) runs on a thread of its
//! own every second instead of inside whichever commit crossed the WAL size limit.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::{CheckIn, Effect, Member, MemberKey, Pending, Result, Store, StoreError};

pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// Keeps the checkpoint thread going; it stops within a second of the store's drop.
    _alive: Arc<()>,
}

/// How often the background thread checkpoints the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

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
CREATE INDEX IF NOT EXISTS outbox_by_user ON outbox (user_id);
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
        let store = Self::setup(conn)?;
        // The commits' connection only checkpoints as a backstop (a WAL of ~40 MB, if this
        // thread ever stopped); this one does it every second, off the handlers' path.
        store
            .conn()?
            .pragma_update(None, "wal_autocheckpoint", 10_000)?;
        let checkpoints = Connection::open(path)?;
        checkpoints.busy_timeout(Duration::from_secs(5))?;
        let alive = Arc::downgrade(&store._alive);
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                while alive.strong_count() > 0 {
                    std::thread::sleep(CHECKPOINT_EVERY);
                    if let Err(e) =
                        checkpoints.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
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
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            _alive: Arc::new(()),
        })
    }

    fn conn(&self) -> Result<std::sync::MutexGuard<'_, Connection>> {
        self.conn.lock().map_err(|_| StoreError::Poisoned)
    }
}

/// Runs `f` in an `IMMEDIATE` transaction (the write lock is taken before anything is read,
/// so that another process's commit waits for the busy timeout instead of failing an upgrade),
/// committed when `f` returns `Some`, rolled back otherwise.
fn immediate<R>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<Option<R>>,
) -> Result<Option<R>> {
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let result = f(conn).and_then(|r| match r {
        Some(r) => {
            conn.prepare_cached("COMMIT")?.execute([])?;
            Ok(Some(r))
        }
        None => Ok(None),
    });
    if !matches!(result, Ok(Some(_))) && !conn.is_autocommit() {
        conn.prepare_cached("ROLLBACK")?.execute([])?;
    }
    result
}

/// The body of a compare-and-set commit, inside the caller's transaction; `None` (and nothing
/// written) when the stored revision is not `expected`.
fn write(
    tx: &Connection,
    key: MemberKey,
    expected: u64,
    member: Option<&Member>,
    outbox: &[Effect],
) -> Result<Option<Vec<i64>>> {
    let stored: Option<i64> = tx
        .prepare_cached("SELECT rev FROM members WHERE chat_id = ?1 AND user_id = ?2")?
        .query_row(params![key.chat, key.user], |r| r.get(0))
        .optional()?;
    if stored.unwrap_or(0) as u64 != expected {
        return Ok(None);
    }
    match member {
        Some(m) => {
            let rev = expected + 1;
            let saved = Member { rev, ..m.clone() };
            let state = serde_json::to_string(&saved)?;
            tx.prepare_cached(
                "INSERT INTO members (chat_id, user_id, state, updated_at, rev) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (chat_id, user_id) DO UPDATE SET state = ?3, updated_at = ?4, rev = ?5",
            )?
            .execute(params![key.chat, key.user, state, m.updated_at, rev as i64])?;
        }
        None => {
            tx.prepare_cached("DELETE FROM members WHERE chat_id = ?1 AND user_id = ?2")?
                .execute(params![key.chat, key.user])?;
        }
    }
    let mut ids = Vec::with_capacity(outbox.len());
    for e in outbox {
        let effect = serde_json::to_string(e)?;
        tx.prepare_cached("INSERT INTO outbox (chat_id, user_id, effect) VALUES (?1, ?2, ?3)")?
            .execute(params![e.chat(), key.user, effect])?;
        ids.push(tx.last_insert_rowid());
    }
    Ok(Some(ids))
}

fn read_member(conn: &Connection, key: MemberKey) -> Result<Option<Member>> {
    let mut stmt =
        conn.prepare_cached("SELECT state FROM members WHERE chat_id = ?1 AND user_id = ?2")?;
    let state = stmt
        .query_row(params![key.chat, key.user], |r| {
            // Parsed from the row's bytes, without copying them into a String first.
            Ok(serde_json::from_slice::<Member>(r.get_ref(0)?.as_bytes()?))
        })
        .optional()?;
    Ok(state.and_then(|parsed| match parsed {
        Ok(m) => Some(m),
        Err(e) => {
            // Unreadable (a newer or damaged format): the member starts over rather than
            // being stuck; the next commit overwrites it.
            log::error!("dropping an unreadable stored check: {e}");
            None
        }
    }))
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
        read_member(&*self.conn()?, key)
    }

    async fn commit_if(
        &self,
        key: MemberKey,
        expected: u64,
        member: Option<&Member>,
        outbox: &[Effect],
    ) -> Result<Option<Vec<i64>>> {
        let conn = self.conn()?;
        immediate(&conn, |tx| write(tx, key, expected, member, outbox))
    }

    async fn fire(
        &self,
        id: i64,
        key: MemberKey,
        expected: u64,
        member: Option<&Member>,
        outbox: &[Effect],
    ) -> Result<Option<Vec<i64>>> {
        let conn = self.conn()?;
        immediate(&conn, |tx| {
            let gone = tx
                .prepare_cached("DELETE FROM checkins WHERE id = ?1")?
                .execute(params![id])?;
            if gone == 0 {
                return Ok(None);
            }
            write(tx, key, expected, member, outbox)
        })
    }

    async fn schedule(&self, c: &CheckIn) -> Result<i64> {
        let conn = self.conn()?;
        conn.prepare_cached(
            "INSERT INTO checkins (user_id, offer, due_at, checkin) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (user_id, offer) DO NOTHING",
        )?
        .execute(params![
            c.user,
            c.offer,
            c.due_at,
            serde_json::to_string(c)?
        ])?;
        Ok(conn
            .prepare_cached("SELECT id FROM checkins WHERE user_id = ?1 AND offer = ?2")?
            .query_row(params![c.user, c.offer], |r| r.get(0))?)
    }

    async fn due(&self, now: i64, limit: usize) -> Result<Vec<CheckIn>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, checkin FROM checkins WHERE due_at <= ?1 ORDER BY due_at, id LIMIT ?2",
        )?;
        read_checkins(&mut stmt, params![now, limit as i64])
    }

    async fn checkins_of(&self, user: i64) -> Result<Vec<CheckIn>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, checkin FROM checkins WHERE user_id = ?1 ORDER BY due_at, id",
        )?;
        read_checkins(&mut stmt, params![user])
    }

    async fn cancel_checkin(&self, user: i64, id: i64) -> Result<bool> {
        let conn = self.conn()?;
        Ok(conn
            .prepare_cached("DELETE FROM checkins WHERE id = ?1 AND user_id = ?2")?
            .execute(params![id, user])?
            > 0)
    }

    async fn delivered(&self, ids: &[i64]) -> Result<()> {
        let conn = self.conn()?;
        if let [id] = ids {
            conn.prepare_cached("DELETE FROM outbox WHERE id = ?1")?
                .execute(params![id])?;
            return Ok(());
        }
        immediate(&conn, |tx| {
            let mut stmt = tx.prepare_cached("DELETE FROM outbox WHERE id = ?1")?;
            for id in ids {
                stmt.execute(params![id])?;
            }
            Ok(Some(()))
        })?;
        Ok(())
    }

    async fn load_with_lang(&self, key: MemberKey) -> Result<(Option<Member>, Option<String>)> {
        let conn = self.conn()?;
        Ok((read_member(&conn, key)?, read_lang(&conn, key.user)?))
    }

    async fn pending(&self) -> Result<Vec<Pending>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached("SELECT id, effect FROM outbox ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, effect) = row?;
            out.push((id, serde_json::from_str(&effect)?));
        }
        Ok(out)
    }

    async fn user_lang(&self, user: i64) -> Result<Option<String>> {
        read_lang(&*self.conn()?, user)
    }

    async fn set_user_lang(&self, user: i64, lang: &str) -> Result<()> {
        let conn = self.conn()?;
        conn.prepare_cached(
            "INSERT INTO users (user_id, lang) VALUES (?1, ?2)
             ON CONFLICT (user_id) DO UPDATE SET lang = ?2",
        )?
        .execute(params![user, lang])?;
        Ok(())
    }

    async fn forget_user(&self, user: i64) -> Result<usize> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let mut n = tx.execute("DELETE FROM members WHERE user_id = ?1", params![user])?;
        n += tx.execute("DELETE FROM users WHERE user_id = ?1", params![user])?;
        n += tx.execute("DELETE FROM outbox WHERE user_id = ?1", params![user])?;
        n += tx.execute("DELETE FROM checkins WHERE user_id = ?1", params![user])?;
        tx.commit()?;
        Ok(n)
    }

    async fn purge_idle(&self, cutoff: i64) -> Result<usize> {
        let conn = self.conn()?;
        Ok(conn.execute("DELETE FROM members WHERE updated_at < ?1", params![cutoff])?)
    }

    async fn count_members(&self) -> Result<usize> {
        let conn = self.conn()?;
        let n: i64 = conn.query_row("SELECT COUNT(*) FROM members", [], |r| r.get(0))?;
        Ok(n as usize)
    }
}
