//! The shared backend for several instances: Redis. Every change of a member is one Lua
//! script (compare-and-set on the revision, then the writes), so it is atomic across
//! instances. Keys, under a prefix (default `gymtriage:`):
//! `m:<chat>:<user>` hash {s: state JSON, r: revision}; `u:<user>` set of that user's chats;
//! `idle` zset of `<chat>:<user>` by last change; `ob` hash id → reply, `obq` zset of ids,
//! `ob:n` id counter, `ob:u:<user>` set of ids; `lang` hash user → language; check-ins in
//! `ci` hash id → JSON, `ciq` zset of ids by due time, `ci:u:<user>` set, `ci:n` counter.

use std::sync::Mutex;
use std::time::Duration;

use redis::{Client, Connection, Script};

use super::{CheckIn, Effect, Member, MemberKey, Pending, Result, Store, StoreError};

pub struct RedisStore {
    client: Client,
    conn: Mutex<Option<Connection>>,
    prefix: String,
    commit: Script,
    schedule: Script,
    cancel: Script,
    forget: Script,
    purge: Script,
}

const COMMIT: &str = r"
local rev = tonumber(redis.call('HGET', KEYS[1], 'r') or '0')
if rev ~= tonumber(ARGV[1]) then return {0} end
if ARGV[6] ~= '' then
  if redis.call('HDEL', KEYS[8], ARGV[6]) == 0 then return {0} end
  redis.call('ZREM', KEYS[9], ARGV[6])
  redis.call('SREM', KEYS[10], ARGV[6])
end
local who = ARGV[4] .. ':' .. ARGV[5]
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[4])
  redis.call('ZREM', KEYS[3], who)
else
  redis.call('HSET', KEYS[1], 's', ARGV[2], 'r', rev + 1)
  redis.call('SADD', KEYS[2], ARGV[4])
  redis.call('ZADD', KEYS[3], ARGV[3], who)
end
local out = {1}
for i = 7, #ARGV do
  local id = redis.call('INCR', KEYS[4])
  redis.call('HSET', KEYS[5], id, ARGV[i])
  redis.call('ZADD', KEYS[6], id, id)
  redis.call('SADD', KEYS[7], id)
  table.insert(out, id)
end
return out
";

const SCHEDULE: &str = r"
local existing = redis.call('GET', KEYS[5])
if existing then return tonumber(existing) end
local id = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[2], id, ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], id)
redis.call('SADD', KEYS[4], id)
redis.call('SET', KEYS[5], id, 'EX', 2592000)
return id
";

const CANCEL: &str = r"
if redis.call('SREM', KEYS[3], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
";

const FORGET: &str = r"
local p = ARGV[1]
local user = ARGV[2]
local n = 0
for _, chat in ipairs(redis.call('SMEMBERS', p .. 'u:' .. user)) do
  n = n + redis.call('DEL', p .. 'm:' .. chat .. ':' .. user)
  redis.call('ZREM', p .. 'idle', chat .. ':' .. user)
end
redis.call('DEL', p .. 'u:' .. user)
n = n + redis.call('HDEL', p .. 'lang', user)
for _, id in ipairs(redis.call('SMEMBERS', p .. 'ob:u:' .. user)) do
  n = n + redis.call('HDEL', p .. 'ob', id)
  redis.call('ZREM', p .. 'obq', id)
end
redis.call('DEL', p .. 'ob:u:' .. user)
for _, id in ipairs(redis.call('SMEMBERS', p .. 'ci:u:' .. user)) do
  n = n + redis.call('HDEL', p .. 'ci', id)
  redis.call('ZREM', p .. 'ciq', id)
end
redis.call('DEL', p .. 'ci:u:' .. user)
return n
";

const PURGE: &str = r"
local p = ARGV[1]
local old = redis.call('ZRANGEBYSCORE', p .. 'idle', '-inf', '(' .. ARGV[2])
for _, who in ipairs(old) do
  local sep = string.find(who, ':', 2, true)
  local chat = string.sub(who, 1, sep - 1)
  local user = string.sub(who, sep + 1)
  redis.call('DEL', p .. 'm:' .. who)
  redis.call('SREM', p .. 'u:' .. user, chat)
  redis.call('ZREM', p .. 'idle', who)
end
return #old
";

impl RedisStore {
    /// Connects to `url` (`redis://host:port/db`); keys go under `prefix`.
    pub fn open(url: &str, prefix: &str) -> Result<RedisStore> {
        let client = Client::open(url)?;
        let store = RedisStore {
            client,
            conn: Mutex::new(None),
            prefix: prefix.to_string(),
            commit: Script::new(COMMIT),
            schedule: Script::new(SCHEDULE),
            cancel: Script::new(CANCEL),
            forget: Script::new(FORGET),
            purge: Script::new(PURGE),
        };
        // Fail at start, not at the first message, when Redis is unreachable.
        store.with(|c| redis::cmd("PING").query::<String>(c))?;
        Ok(store)
    }

    fn key(&self, parts: std::fmt::Arguments<'_>) -> String {
        format!("{}{}", self.prefix, parts)
    }

    /// Runs `f` on the connection, reconnecting once if it was lost.
    fn with<R>(&self, f: impl Fn(&mut Connection) -> redis::RedisResult<R>) -> Result<R> {
        let mut guard = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        for attempt in 0..2 {
            if guard.is_none() {
                let c = self
                    .client
                    .get_connection_with_timeout(Duration::from_secs(5))?;
                c.set_read_timeout(Some(Duration::from_secs(10)))?;
                c.set_write_timeout(Some(Duration::from_secs(10)))?;
                *guard = Some(c);
            }
            let Some(conn) = guard.as_mut() else { continue };
            match f(conn) {
                Ok(r) => return Ok(r),
                Err(e) if attempt == 0 && (e.is_io_error() || e.is_connection_dropped()) => {
                    *guard = None;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Unavailable)
    }
}

impl RedisStore {
    fn write(
        &self,
        firing: Option<i64>,
        key: MemberKey,
        expected: u64,
        member: Option<&Member>,
        outbox: &[Effect],
    ) -> Result<Option<Vec<i64>>> {
        let state = match member {
            Some(m) => serde_json::to_string(&Member {
                rev: expected + 1,
                ..m.clone()
            })?,
            None => String::new(),
        };
        let effects = outbox
            .iter()
            .map(serde_json::to_string)
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let updated = member.map_or(0, |m| m.updated_at);
        let keys = [
            self.key(format_args!("m:{}:{}", key.chat, key.user)),
            self.key(format_args!("u:{}", key.user)),
            self.key(format_args!("idle")),
            self.key(format_args!("ob:n")),
            self.key(format_args!("ob")),
            self.key(format_args!("obq")),
            self.key(format_args!("ob:u:{}", key.user)),
            self.key(format_args!("ci")),
            self.key(format_args!("ciq")),
            self.key(format_args!("ci:u:{}", key.user)),
        ];
        let firing = firing.map_or(String::new(), |id| id.to_string());
        let out: Vec<i64> = self.with(|c| {
            let mut inv = self.commit.prepare_invoke();
            for k in &keys {
                inv.key(k);
            }
            inv.arg(expected)
                .arg(&state)
                .arg(updated)
                .arg(key.chat)
                .arg(key.user)
                .arg(&firing);
            for e in &effects {
                inv.arg(e);
            }
            inv.invoke(c)
        })?;
        Ok(match out.split_first() {
            Some((1, ids)) => Some(ids.to_vec()),
            _ => None,
        })
    }

    fn read_checkins(&self, ids: Vec<i64>) -> Result<Vec<CheckIn>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let hash = self.key(format_args!("ci"));
        let rows: Vec<Option<String>> =
            self.with(|c| redis::cmd("HMGET").arg(&hash).arg(&ids).query(c))?;
        let mut out = Vec::new();
        for (id, row) in ids.into_iter().zip(rows) {
            if let Some(json) = row {
                let mut c: CheckIn = serde_json::from_str(&json)?;
                c.id = id;
                out.push(c);
            }
        }
        Ok(out)
    }
}

impl Store for RedisStore {
    fn load(&self, key: MemberKey) -> Result<Option<Member>> {
        let k = self.key(format_args!("m:{}:{}", key.chat, key.user));
        let state: Option<String> = self.with(|c| redis::cmd("HGET").arg(&k).arg("s").query(c))?;
        Ok(state.and_then(|s| match serde_json::from_str(&s) {
            Ok(m) => Some(m),
            Err(e) => {
                log::error!("dropping an unreadable stored check: {e}");
                None
            }
        }))
    }

    fn commit_if(
        &self,
        key: MemberKey,
        expected: u64,
        member: Option<&Member>,
        outbox: &[Effect],
    ) -> Result<Option<Vec<i64>>> {
        self.write(None, key, expected, member, outbox)
    }

    fn fire(
        &self,
        id: i64,
        key: MemberKey,
        expected: u64,
        member: Option<&Member>,
        outbox: &[Effect],
    ) -> Result<Option<Vec<i64>>> {
        self.write(Some(id), key, expected, member, outbox)
    }

    fn schedule(&self, c: &CheckIn) -> Result<i64> {
        let keys = [
            self.key(format_args!("ci:n")),
            self.key(format_args!("ci")),
            self.key(format_args!("ciq")),
            self.key(format_args!("ci:u:{}", c.user)),
            self.key(format_args!("ci:k:{}:{}", c.user, c.offer)),
        ];
        let json = serde_json::to_string(c)?;
        self.with(|conn| {
            let mut inv = self.schedule.prepare_invoke();
            for k in &keys {
                inv.key(k);
            }
            inv.arg(&json).arg(c.due_at).invoke::<i64>(conn)
        })
    }

    fn due(&self, now: i64, limit: usize) -> Result<Vec<CheckIn>> {
        let ciq = self.key(format_args!("ciq"));
        let ids: Vec<i64> = self.with(|c| {
            redis::cmd("ZRANGEBYSCORE")
                .arg(&ciq)
                .arg("-inf")
                .arg(now)
                .arg("LIMIT")
                .arg(0)
                .arg(limit)
                .query(c)
        })?;
        self.read_checkins(ids)
    }

    fn checkins_of(&self, user: i64) -> Result<Vec<CheckIn>> {
        let set = self.key(format_args!("ci:u:{user}"));
        let ids: Vec<i64> = self.with(|c| redis::cmd("SMEMBERS").arg(&set).query(c))?;
        let mut out = self.read_checkins(ids)?;
        out.sort_by_key(|c| (c.due_at, c.id));
        Ok(out)
    }

    fn cancel_checkin(&self, user: i64, id: i64) -> Result<bool> {
        let keys = [
            self.key(format_args!("ci")),
            self.key(format_args!("ciq")),
            self.key(format_args!("ci:u:{user}")),
        ];
        let n: i64 = self.with(|conn| {
            let mut inv = self.cancel.prepare_invoke();
            for k in &keys {
                inv.key(k);
            }
            inv.arg(id).invoke(conn)
        })?;
        Ok(n > 0)
    }

    fn delivered(&self, id: i64) -> Result<()> {
        let (ob, obq) = (self.key(format_args!("ob")), self.key(format_args!("obq")));
        self.with(|c| {
            redis::pipe()
                .atomic()
                .cmd("HDEL")
                .arg(&ob)
                .arg(id)
                .cmd("ZREM")
                .arg(&obq)
                .arg(id)
                .query::<()>(c)
        })
    }

    fn pending(&self) -> Result<Vec<Pending>> {
        let (ob, obq) = (self.key(format_args!("ob")), self.key(format_args!("obq")));
        let ids: Vec<i64> =
            self.with(|c| redis::cmd("ZRANGE").arg(&obq).arg(0).arg(-1).query(c))?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let effects: Vec<Option<String>> =
            self.with(|c| redis::cmd("HMGET").arg(&ob).arg(&ids).query(c))?;
        let mut out = Vec::new();
        for (id, e) in ids.into_iter().zip(effects) {
            if let Some(e) = e {
                out.push((id, serde_json::from_str(&e)?));
            }
        }
        Ok(out)
    }

    fn user_lang(&self, user: i64) -> Result<Option<String>> {
        let k = self.key(format_args!("lang"));
        self.with(|c| redis::cmd("HGET").arg(&k).arg(user).query(c))
    }

    fn set_user_lang(&self, user: i64, lang: &str) -> Result<()> {
        let k = self.key(format_args!("lang"));
        self.with(|c| {
            redis::cmd("HSET")
                .arg(&k)
                .arg(user)
                .arg(lang)
                .query::<()>(c)
        })
    }

    fn forget_user(&self, user: i64) -> Result<usize> {
        self.with(|c| self.forget.arg(&self.prefix).arg(user).invoke::<usize>(c))
    }

    fn purge_idle(&self, cutoff: i64) -> Result<usize> {
        self.with(|c| self.purge.arg(&self.prefix).arg(cutoff).invoke::<usize>(c))
    }

    fn count_members(&self) -> Result<usize> {
        let k = self.key(format_args!("idle"));
        self.with(|c| redis::cmd("ZCARD").arg(&k).query(c))
    }
}
