//! The shared backend for several instances: Redis. Every change of a member is one Lua
//! script (compare-and-set on the revision, then the writes), so it is atomic across
//! instances. Keys, under a prefix (default `gymtriage:`):
//! `m:<chat>:<user>` hash {s: state JSON, r: revision}; `u:<user>` set of that user's chats;
//! `idle` zset of `<chat>:<user>` by last change; `ob` hash id → reply, `obq` zset of ids,
//! `ob:n` id counter, `ob:u:<user>` set of ids; `lang` hash user → language; check-ins in
//! `ci` hash id → JSON, `ciq` zset of ids by due time, `ci:u:<user>` set, `ci:n` counter.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisResult, Script};

use super::{CheckIn, Effect, Member, MemberKey, Pending, Result, Store};

pub struct RedisStore {
    /// One multiplexed connection: calls from concurrent handlers are pipelined on it, and it
    /// reconnects by itself after a drop. Cloning it is cheap.
    conn: ConnectionManager,
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
    /// A store on `url` (`redis://host:port/db`), keys under `prefix`. It connects at its
    /// first call (see [`RedisStore::ping`]); must be called inside a tokio runtime.
    pub fn open(url: &str, prefix: &str) -> Result<RedisStore> {
        let client = Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(10)))
            .set_number_of_retries(3);
        Ok(RedisStore {
            conn: ConnectionManager::new_lazy_with_config(client, config)?,
            prefix: prefix.to_string(),
            commit: Script::new(COMMIT),
            schedule: Script::new(SCHEDULE),
            cancel: Script::new(CANCEL),
            forget: Script::new(FORGET),
            purge: Script::new(PURGE),
        })
    }

    /// Checks that Redis answers (at start, rather than at the first message).
    pub async fn ping(&self) -> Result<()> {
        self.run(&redis::cmd("PING")).await.map(|_: String| ())
    }

    fn key(&self, parts: std::fmt::Arguments<'_>) -> String {
        format!("{}{}", self.prefix, parts)
    }

    /// Sends one command (a connection dropped on the way is retried once, reconnected).
    async fn run<R: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<R> {
        retry(|| {
            let mut c = self.conn.clone();
            async move { cmd.query_async(&mut c).await }
        })
        .await
    }

    async fn run_pipe<R: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> Result<R> {
        retry(|| {
            let mut c = self.conn.clone();
            async move { pipe.query_async(&mut c).await }
        })
        .await
    }

    async fn invoke<R: redis::FromRedisValue>(
        &self,
        inv: &redis::ScriptInvocation<'_>,
    ) -> Result<R> {
        retry(|| {
            let mut c = self.conn.clone();
            async move { inv.invoke_async(&mut c).await }
        })
        .await
    }
}

/// Runs `f`, once more if the connection was lost (the manager reconnects meanwhile).
async fn retry<R, F, Fut>(f: F) -> Result<R>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = RedisResult<R>>,
{
    match f().await {
        Err(e) if e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() => {
            Ok(f().await?)
        }
        other => Ok(other?),
    }
}

impl RedisStore {
    async fn write(
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
        let updated = member.map_or(0, |m| m.updated_at);
        let mut inv = self.commit.prepare_invoke();
        inv.key(self.key(format_args!("m:{}:{}", key.chat, key.user)))
            .key(self.key(format_args!("u:{}", key.user)))
            .key(self.key(format_args!("idle")))
            .key(self.key(format_args!("ob:n")))
            .key(self.key(format_args!("ob")))
            .key(self.key(format_args!("obq")))
            .key(self.key(format_args!("ob:u:{}", key.user)))
            .key(self.key(format_args!("ci")))
            .key(self.key(format_args!("ciq")))
            .key(self.key(format_args!("ci:u:{}", key.user)));
        inv.arg(expected)
            .arg(state)
            .arg(updated)
            .arg(key.chat)
            .arg(key.user)
            .arg(firing.map_or(String::new(), |id| id.to_string()));
        for e in outbox {
            inv.arg(serde_json::to_string(e)?);
        }
        let out: Vec<i64> = self.invoke(&inv).await?;
        Ok(match out.split_first() {
            Some((1, ids)) => Some(ids.to_vec()),
            _ => None,
        })
    }

    async fn read_checkins(&self, ids: Vec<i64>) -> Result<Vec<CheckIn>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let hash = self.key(format_args!("ci"));
        let rows: Vec<Option<String>> = self.run(redis::cmd("HMGET").arg(&hash).arg(&ids)).await?;
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

/// A stored member, or `None` (logged) when its record cannot be read.
fn parse_member(state: Option<String>) -> Option<Member> {
    state.and_then(|s| match serde_json::from_str(&s) {
        Ok(m) => Some(m),
        Err(e) => {
            log::error!("dropping an unreadable stored check: {e}");
            None
        }
    })
}

#[async_trait::async_trait]
impl Store for RedisStore {
    async fn load(&self, key: MemberKey) -> Result<Option<Member>> {
        let k = self.key(format_args!("m:{}:{}", key.chat, key.user));
        let state: Option<String> = self.run(redis::cmd("HGET").arg(&k).arg("s")).await?;
        Ok(parse_member(state))
    }

    async fn load_with_lang(&self, key: MemberKey) -> Result<(Option<Member>, Option<String>)> {
        let mut pipe = redis::pipe();
        pipe.cmd("HGET")
            .arg(self.key(format_args!("m:{}:{}", key.chat, key.user)))
            .arg("s")
            .cmd("HGET")
            .arg(self.key(format_args!("lang")))
            .arg(key.user);
        let (state, lang): (Option<String>, Option<String>) = self.run_pipe(&pipe).await?;
        Ok((parse_member(state), lang))
    }

    async fn commit_if(
        &self,
        key: MemberKey,
        expected: u64,
        member: Option<&Member>,
        outbox: &[Effect],
    ) -> Result<Option<Vec<i64>>> {
        self.write(None, key, expected, member, outbox).await
    }

    async fn fire(
        &self,
        id: i64,
        key: MemberKey,
        expected: u64,
        member: Option<&Member>,
        outbox: &[Effect],
    ) -> Result<Option<Vec<i64>>> {
        self.write(Some(id), key, expected, member, outbox).await
    }

    async fn schedule(&self, c: &CheckIn) -> Result<i64> {
        let mut inv = self.schedule.prepare_invoke();
        inv.key(self.key(format_args!("ci:n")))
            .key(self.key(format_args!("ci")))
            .key(self.key(format_args!("ciq")))
            .key(self.key(format_args!("ci:u:{}", c.user)))
            .key(self.key(format_args!("ci:k:{}:{}", c.user, c.offer)));
        inv.arg(serde_json::to_string(c)?).arg(c.due_at);
        self.invoke(&inv).await
    }

    async fn due(&self, now: i64, limit: usize) -> Result<Vec<CheckIn>> {
        let ciq = self.key(format_args!("ciq"));
        let ids: Vec<i64> = self
            .run(
                redis::cmd("ZRANGEBYSCORE")
                    .arg(&ciq)
                    .arg("-inf")
                    .arg(now)
                    .arg("LIMIT")
                    .arg(0)
                    .arg(limit),
            )
            .await?;
        self.read_checkins(ids).await
    }

    async fn checkins_of(&self, user: i64) -> Result<Vec<CheckIn>> {
        let set = self.key(format_args!("ci:u:{user}"));
        let ids: Vec<i64> = self.run(redis::cmd("SMEMBERS").arg(&set)).await?;
        let mut out = self.read_checkins(ids).await?;
        out.sort_by_key(|c| (c.due_at, c.id));
        Ok(out)
    }

    async fn cancel_checkin(&self, user: i64, id: i64) -> Result<bool> {
        let mut inv = self.cancel.prepare_invoke();
        inv.key(self.key(format_args!("ci")))
            .key(self.key(format_args!("ciq")))
            .key(self.key(format_args!("ci:u:{user}")));
        inv.arg(id);
        let n: i64 = self.invoke(&inv).await?;
        Ok(n > 0)
    }

    async fn delivered(&self, ids: &[i64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HDEL")
            .arg(self.key(format_args!("ob")))
            .arg(ids)
            .ignore()
            .cmd("ZREM")
            .arg(self.key(format_args!("obq")))
            .arg(ids)
            .ignore();
        self.run_pipe(&pipe).await
    }

    async fn pending(&self) -> Result<Vec<Pending>> {
        let (ob, obq) = (self.key(format_args!("ob")), self.key(format_args!("obq")));
        let ids: Vec<i64> = self
            .run(redis::cmd("ZRANGE").arg(&obq).arg(0).arg(-1))
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let effects: Vec<Option<String>> = self.run(redis::cmd("HMGET").arg(&ob).arg(&ids)).await?;
        let mut out = Vec::new();
        for (id, e) in ids.into_iter().zip(effects) {
            if let Some(e) = e {
                out.push((id, serde_json::from_str(&e)?));
            }
        }
        Ok(out)
    }

    async fn user_lang(&self, user: i64) -> Result<Option<String>> {
        let k = self.key(format_args!("lang"));
        self.run(redis::cmd("HGET").arg(&k).arg(user)).await
    }

    async fn set_user_lang(&self, user: i64, lang: &str) -> Result<()> {
        let k = self.key(format_args!("lang"));
        self.run(redis::cmd("HSET").arg(&k).arg(user).arg(lang))
            .await
    }

    async fn forget_user(&self, user: i64) -> Result<usize> {
        let mut inv = self.forget.prepare_invoke();
        inv.arg(&self.prefix).arg(user);
        self.invoke(&inv).await
    }

    async fn purge_idle(&self, cutoff: i64) -> Result<usize> {
        let mut inv = self.purge.prepare_invoke();
        inv.arg(&self.prefix).arg(cutoff);
        self.invoke(&inv).await
    }

    async fn count_members(&self) -> Result<usize> {
        let k = self.key(format_args!("idle"));
        self.run(redis::cmd("ZCARD").arg(&k)).await
    }
}
