//! The Redis store as a [`FlaskBackend`]: Flask-Session's layout, one string per session
//! (`SET key value`), its TTL at the session's expiry.
//!
//! Every operation is one Lua script: a read returns the value with its expiry to the
//! millisecond (and moves the TTL first when it refreshes), a conditional write compares the stored value
//! with the one read before it writes, so that no write is lost between two processes.

use std::sync::LazyLock;
use std::time::SystemTime;

use redis::Script;

use super::RedisStore;
use super::connection::Request;
use crate::error::StoreError;
use crate::flask::{Blob, FlaskBackend};
use crate::support::{from_unix_millis, unix_millis};

/// Reads a value. KEYS[1]: the key. ARGV[1]: the new expiry (Unix milliseconds) or ``.
/// Returns nil, or the value and its expiry in Unix milliseconds (`-1`: none):
/// `PEXPIRETIME` (Redis 7), or the server's time plus `PTTL` before it.
const GET_SCRIPT: &str = r"
local value = redis.call('GET', KEYS[1])
if not value then return false end
if ARGV[1] ~= '' then redis.call('PEXPIREAT', KEYS[1], ARGV[1]) end
local at = redis.pcall('PEXPIRETIME', KEYS[1])
if type(at) ~= 'number' then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then return {value, -1} end
  local now = redis.call('TIME')
  at = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + ttl
end
return {value, at}
";

/// Writes a value if the stored one is still the one read. KEYS[1]: the key. ARGV: `1`
/// when a value was read (`0`: none), the value read, the value to write, the expiry
/// (Unix milliseconds). Returns 1 when it wrote, 0 when the stored value had changed.
const PUT_SCRIPT: &str = r"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then return 0 end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return 1
";

/// Deletes a value if it is still the one read. KEYS[1]: the key; ARGV[1]: the value
/// read. Returns 1 when it deleted.
const REMOVE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
";

static GET: LazyLock<Script> = LazyLock::new(|| Script::new(GET_SCRIPT));
static PUT: LazyLock<Script> = LazyLock::new(|| Script::new(PUT_SCRIPT));
static REMOVE: LazyLock<Script> = LazyLock::new(|| Script::new(REMOVE_SCRIPT));

impl FlaskBackend for RedisStore {
    async fn blob(&self, key: &str, touch: Option<SystemTime>) -> Result<Option<Blob>, StoreError> {
        let mut invocation = GET.prepare_invoke();
        invocation.key(key).arg(
            touch
                .map(|at| unix_millis(at).to_string())
                .unwrap_or_default(),
        );
        let found: Option<(Vec<u8>, i64)> = self.execute(Request::Script(&invocation)).await?;
        Ok(found.map(|(value, at)| {
            let expires_at = u64::try_from(at).ok().map(from_unix_millis);
            Blob::new(value, expires_at)
        }))
    }

    async fn put_blob(
        &self,
        key: &str,
        current: Option<&Blob>,
        value: &[u8],
        expires_at: SystemTime,
    ) -> Result<bool, StoreError> {
        let mut invocation = PUT.prepare_invoke();
        invocation
            .key(key)
            .arg(if current.is_some() { "1" } else { "0" })
            .arg(current.map_or(&[][..], |blob| &blob.value[..]))
            .arg(value)
            .arg(unix_millis(expires_at));
        let wrote: i64 = self.execute(Request::Once(&invocation)).await?;
        Ok(wrote == 1)
    }

    async fn remove_blob(&self, key: &str, current: &Blob) -> Result<bool, StoreError> {
        let mut invocation = REMOVE.prepare_invoke();
        invocation.key(key).arg(&current.value[..]);
        let removed: i64 = self.execute(Request::Once(&invocation)).await?;
        Ok(removed == 1)
    }

    async fn delete_blob(&self, key: &str) -> Result<(), StoreError> {
        let mut command = redis::cmd("DEL");
        command.arg(key);
        self.execute::<()>(Request::Command(&command)).await
    }

    fn blob_prefix(&self) -> &str {
        self.key_prefix()
    }

    fn backend_name(&self) -> &'static str {
        "redis"
    }
}
