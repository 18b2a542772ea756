//! The Lua scripts the store runs in Redis: a load that refreshes the expiry, a save that
//! applies a change set, an update of one key, and the take of an entry for an id rotation.

use std::sync::LazyLock;

use redis::Script;

/// Loads a session and refreshes its expiry (a plain load is a plain `HGETALL`). KEYS[1]:
/// the session key. ARGV[1]: now; ARGV[2]: the new expiry (Unix milliseconds). Returns nil
/// when the entry is missing or expired, otherwise the hash as field/value pairs, with the
/// expiry moved forward. Data fields are only read.
const LOAD_SCRIPT: &str = r"
local key = KEYS[1]
local kind = redis.call('TYPE', key)['ok']
if kind == 'none' then return false end
if kind ~= 'hash' then return {'\0foreign', kind} end
local fields = redis.call('HGETALL', key)
local at = nil
for i = 1, #fields, 2 do
  if fields[i] == '\0expires' then at = i + 1 break end
end
if at == nil then return fields end
local expires = tonumber(fields[at])
if expires == nil then return fields end
if expires <= tonumber(ARGV[1]) then return false end
if ARGV[2] ~= '' and tonumber(ARGV[2]) > expires then
  redis.call('HSET', key, '\0expires', ARGV[2])
  redis.call('PEXPIREAT', key, ARGV[2])
  fields[at] = ARGV[2]
end
return fields
";

/// Applies a change set. KEYS[1]: the session key. ARGV: now, the new expiry (Unix
/// milliseconds), flags (``, `c` to clear, `e` to apply only onto a live entry, or `ce`),
/// the number of removed fields, the number of data fields to set, the removed fields,
/// then field/value pairs to set: the data fields, then the store's own (expiry and
/// permanent flag). Returns `stored`, or `empty` when no data is left and the key was
/// deleted (or, with `e`, when there was no live entry and nothing was written).
///
/// Every call into Redis from a script costs about as much as the command itself, so the
/// common case is three: a live entry with changed fields costs an `HGET`, one `HSET`
/// (data, expiry and flag together) and a `PEXPIREAT`. Long argument lists are sent in
/// slices the Lua stack can take (of an even size, so pairs stay together).
const SAVE_SCRIPT: &str = r"
local key = KEYS[1]
local flags = ARGV[3]
-- Anything but a live session hash (expired, without an expiry, another type: an error
-- for HGET, caught here) is replaced.
local expires = redis.pcall('HGET', key, '\0expires')
local live = type(expires) == 'string' and (tonumber(expires) or 0) > tonumber(ARGV[1])
if not live then
  redis.call('DEL', key)
  if flags == 'e' or flags == 'ce' then return 'empty' end
end
local removals = tonumber(ARGV[4])
local first = 6 + removals
if live then
  if flags == 'c' or flags == 'ce' then
    local removed = {}
    for _, field in ipairs(redis.call('HKEYS', key)) do
      local a, b = string.byte(field, 1, 2)
      if a ~= 0 or b == 0 then removed[#removed + 1] = field end
    end
    for i = 1, #removed, 1000 do
      redis.call('HDEL', key, unpack(removed, i, math.min(i + 999, #removed)))
    end
  end
  for i = 6, first - 1, 1000 do
    redis.call('HDEL', key, unpack(ARGV, i, math.min(i + 999, first - 1)))
  end
end
if ARGV[5] == '0' then
  local has_data = false
  if live then
    for _, field in ipairs(redis.call('HKEYS', key)) do
      local a, b = string.byte(field, 1, 2)
      if a ~= 0 or b == 0 then has_data = true break end
    end
  end
  if not has_data then
    if live then redis.call('DEL', key) end
    return 'empty'
  end
end
for i = first, #ARGV, 1000 do
  redis.call('HSET', key, unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('PEXPIREAT', key, ARGV[2])
return 'stored'
";

/// Applies one [`KeyUpdate`] to one data field. KEYS[1]: the session key. ARGV: now (Unix
/// milliseconds), the field, the operation (`i` to increment, `r` to replace), then for
/// `i` the amount (a decimal 64-bit integer) and an unused empty argument, for `r` the
/// expected and the new JSON text (empty: the field is absent; JSON text is never empty).
/// Returns `{status}` when the field was absent, `{status, field}` with the field's bytes
/// as found otherwise; the status is `applied`, `mismatch` (`r`: the field does not hold
/// the expected text), `invalid` (`i`: the field is not the JSON text of an integer, or
/// the sum leaves the 64-bit range), `missing` (no live entry: nothing written) or
/// `foreign` (the key is not a hash).
///
/// Lua numbers are doubles, so the script never does arithmetic: `HINCRBY` adds in Redis,
/// and the new value is computed again by Satchel from the field as found. The usual
/// increment costs two calls (`HMGET`, `HINCRBY`), a compare-and-set two (`HMGET`, `HSET`).
///
/// [`KeyUpdate`]: crate::record::KeyUpdate
const UPDATE_SCRIPT: &str = r"
local key = KEYS[1]
local field = ARGV[2]
-- Another type than a hash is an error for HMGET, caught here.
local got = redis.pcall('HMGET', key, '\0expires', field)
if got['err'] then return {'foreign'} end
local expires, raw = got[1], got[2]
if type(expires) ~= 'string' or (tonumber(expires) or 0) <= tonumber(ARGV[1]) then
  return {'missing'}
end
local function reply(status)
  if raw then return {status, raw} end
  return {status}
end
if ARGV[3] == 'i' then
  -- JSON's integer text, which is also the integer text HINCRBY takes.
  if raw and raw ~= '0' and not string.find(raw, '^%-?[1-9][0-9]*$') then
    return reply('invalid')
  end
  local sum = redis.pcall('HINCRBY', key, field, ARGV[4])
  if type(sum) == 'table' then
    local err = sum['err'] or ''
    if string.find(err, 'overflow', 1, true) or string.find(err, 'not an integer', 1, true) then
      return reply('invalid')
    end
    return sum
  end
  return reply('applied')
end
if ARGV[4] == '' then
  if raw then return reply('mismatch') end
elseif raw ~= ARGV[4] then
  return reply('mismatch')
end
if ARGV[5] ~= '' then
  redis.call('HSET', key, field, ARGV[5])
elseif raw then
  redis.call('HDEL', key, field)
  for _, name in ipairs(redis.call('HKEYS', key)) do
    local a, b = string.byte(name, 1, 2)
    if a ~= 0 or b == 0 then return reply('applied') end
  end
  redis.call('DEL', key)
end
return reply('applied')
";

/// Takes an entry: reads the hash and deletes it, atomically. KEYS[1]: the session key.
/// Returns nil when there is none, the foreign marker (and deletes nothing) when the key
/// holds another type, otherwise the hash as field/value pairs (expired or not: Satchel
/// checks the expiry).
const TAKE_SCRIPT: &str = r"
local key = KEYS[1]
local kind = redis.call('TYPE', key)['ok']
if kind == 'none' then return false end
if kind ~= 'hash' then return {'\0foreign', kind} end
local fields = redis.call('HGETALL', key)
redis.call('DEL', key)
return fields
";

pub(super) static TAKE: LazyLock<Script> = LazyLock::new(|| Script::new(TAKE_SCRIPT));
pub(super) static LOAD: LazyLock<Script> = LazyLock::new(|| Script::new(LOAD_SCRIPT));
pub(super) static SAVE: LazyLock<Script> = LazyLock::new(|| Script::new(SAVE_SCRIPT));
pub(super) static UPDATE: LazyLock<Script> = LazyLock::new(|| Script::new(UPDATE_SCRIPT));
