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
/// the number of removed fields, the number of data fields to set, the size budget (`0`:
/// none), the size of the data fields to set (as [`stored_size`] measures it; Satchel
/// refuses a change set whose sets alone are over the budget without sending it), the
/// removed fields, then field/value pairs to set: the data fields, then the store's own
/// (expiry and permanent flag). Returns `stored`, or `empty` when no data is left and the
/// key was deleted (or, with `e`, when there was no live entry and nothing was written),
/// or `too_large <size>` when the merged data would measure more than the budget, and
/// nothing was written.
///
/// Every call into Redis from a script costs about as much as the command itself, so the
/// common case is three: a live entry with changed fields costs an `HGET`, one `HSET`
/// (data, expiry and flag together) and a `PEXPIREAT`. With a budget, a save that sets
/// fields onto a live entry it does not clear costs one call more, `MEMORY USAGE`: twice
/// the hash's memory bounds the length of its fields and values (a listpack keeps an
/// integer in no less than half its text, everything else in no less than its text), so
/// when that bound and the fields set fit the budget, the merge does. Only a session near
/// its budget pays for the exact measure, an `HGETALL`. Long argument lists are sent in
/// slices the Lua stack can take (of an even size, so pairs stay together).
///
/// [`stored_size`]: crate::record::stored_size
const SAVE_SCRIPT: &str = r"
local key = KEYS[1]
local flags = ARGV[3]
local clear = flags == 'c' or flags == 'ce'
local removals = tonumber(ARGV[4])
local sets = tonumber(ARGV[5])
local budget = tonumber(ARGV[6])
local first = 8 + removals
-- Anything but a live session hash (expired, without an expiry, another type: an error
-- for HGET, caught here) is replaced.
local expires = redis.pcall('HGET', key, '\0expires')
local live = type(expires) == 'string' and (tonumber(expires) or 0) > tonumber(ARGV[1])
if not live then
  redis.call('DEL', key)
  if flags == 'e' or flags == 'ce' then return 'empty' end
end
if live and not clear and budget > 0 and sets > 0 then
  local size = tonumber(ARGV[7])
  local used = redis.pcall('MEMORY', 'USAGE', key, 'SAMPLES', '0')
  if type(used) ~= 'number' or 2 * used + size > budget then
    -- The exact measure: the fields set, and the stored data fields neither set nor
    -- removed (a field escaped with one more NUL counts as its key, one byte shorter).
    local gone = {}
    for i = 8, first - 1 do gone[ARGV[i]] = true end
    for i = first, first + 2 * sets - 1, 2 do gone[ARGV[i]] = true end
    local fields = redis.call('HGETALL', key)
    for i = 1, #fields, 2 do
      local field = fields[i]
      local a, b = string.byte(field, 1, 2)
      if (a ~= 0 or b == 0) and not gone[field] then
        size = size + #field + #fields[i + 1]
        if a == 0 then size = size - 1 end
      end
    end
    if size > budget then return 'too_large ' .. size end
  end
end
if live then
  if clear then
    local removed = {}
    for _, field in ipairs(redis.call('HKEYS', key)) do
      local a, b = string.byte(field, 1, 2)
      if a ~= 0 or b == 0 then removed[#removed + 1] = field end
    end
    for i = 1, #removed, 1000 do
      redis.call('HDEL', key, unpack(removed, i, math.min(i + 999, #removed)))
    end
  end
  for i = 8, first - 1, 1000 do
    redis.call('HDEL', key, unpack(ARGV, i, math.min(i + 999, first - 1)))
  end
end
if sets == 0 then
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
/// expected and the new JSON text (empty: the field is absent; JSON text is never empty),
/// then the size budget of a replace (`0`: none). Returns `{status}` when the field was
/// absent, `{status, field}` with the field's bytes as found otherwise; the status is
/// `applied`, `mismatch` (`r`: the field does not hold the expected text), `invalid`
/// (`i`: the field is not the JSON text of an integer, or the sum leaves the 64-bit
/// range), `missing` (no live entry: nothing written), `foreign` (the key is not a hash)
/// or `too_large` (`r`: the data with the new value would measure more than the budget;
/// nothing written), which comes as `{'too_large', size}`.
///
/// Lua numbers are doubles, so the script never does arithmetic on values: `HINCRBY` adds
/// in Redis, and the new value is computed again by Satchel from the field as found. The
/// usual increment costs two calls (`HMGET`, `HINCRBY`), a compare-and-set two (`HMGET`,
/// `HSET`), and with a budget one more (`MEMORY USAGE`, as for a save; an `HGETALL` for a
/// session near its budget).
///
/// [`KeyUpdate`]: crate::record::KeyUpdate
const UPDATE_SCRIPT: &str = r"
local key = KEYS[1]
local field = ARGV[2]
local budget = tonumber(ARGV[6])
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
  if budget > 0 then
    -- The field's new size, and a bound of the others (see the save script), else the
    -- exact measure.
    local size = #field + #ARGV[5]
    if string.byte(field, 1) == 0 then size = size - 1 end
    local used = redis.pcall('MEMORY', 'USAGE', key, 'SAMPLES', '0')
    if type(used) ~= 'number' or 2 * used + size > budget then
      local fields = redis.call('HGETALL', key)
      for i = 1, #fields, 2 do
        local name = fields[i]
        local a, b = string.byte(name, 1, 2)
        if name ~= field and (a ~= 0 or b == 0) then
          size = size + #name + #fields[i + 1]
          if a == 0 then size = size - 1 end
        end
      end
      if size > budget then return {'too_large', tostring(size)} end
    end
  end
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
