//! The Lua scripts the store runs in Redis: a load that refreshes the expiry, a save that
//! applies a change set, an update of one key, and the take of an entry for an id rotation.
//!
//! Each script starts with the same functions ([`PRELUDE`]), which read and edit a value of
//! the layout described in [`codec`](super::codec) without decoding its data: a key's
//! entry is found by searching for its line, and only that entry is cut or replaced.

use std::sync::LazyLock;

use redis::Script;

/// The functions the load, save and take scripts share (the update script, which every
/// write of a counter runs, has its own code, written to make as few strings as it can:
/// Lua makes every piece of a string a new one).
///
/// - `header(v)`: the expiry and the size a value's header holds, or nothing when `v` is
///   not a value of this layout.
/// - `find(body, k)`: where the entry of the key whose JSON text is `k` starts, where its
///   value starts and ends, and where the next entry starts.
/// - `cut(body, s, nx)` and `append(body, k, value)`: the data without an entry, and with
///   one more.
///
/// Each script reads the key with `GET` ([`READ`]). When the key holds a session hash of the layout
/// before this one (a field per key, the store's own fields starting with a NUL byte), a
/// script writes nothing and answers `legacy`; Satchel then has [`CONVERT`] turn the hash
/// into a value of this layout, in place, and sends the script again. The conversion is
/// a script of its own so that the scripts of every request stay small: Redis runs a
/// script's whole text at each call.
const PRELUDE: &str = r"
local function header(v)
  if type(v) ~= 'string' or string.sub(v, 1, 2) ~= 's1' then return nil end
  return tonumber(string.sub(v, 3, 18)), tonumber(string.sub(v, 19, 28))
end
local function find(body, k)
  local s = string.find(body, '\n' .. k .. ':', 1, true)
  if not s then return nil end
  local vs = s + #k + 2
  local nx = string.find(body, '\n', vs, true)
  if nx then return s, vs, nx - 2, nx end
  return s, vs, #body - 1, nil
end
local function cut(body, s, nx)
  if nx then return string.sub(body, 1, s - 1) .. string.sub(body, nx) end
  if s > 2 then return string.sub(body, 1, s - 2) .. '}' end
  return '{}'
end
local function append(body, k, value)
  if body == '{}' then return '{\n' .. k .. ':' .. value .. '}' end
  return string.sub(body, 1, -2) .. ',\n' .. k .. ':' .. value .. '}'
end
";

/// What every script starts with: the key (`key`) and the value there (`v`: a string,
/// `false` when there is none, `nil` when the key holds another type), and whether that
/// other type is a session hash of the earlier layout (`legacy`).
const READ: &str = r"
local key = KEYS[1]
local v = redis.pcall('GET', key)
local legacy = false
if type(v) == 'table' then
  legacy = redis.call('TYPE', key)['ok'] == 'hash'
  v = nil
end
";

/// Converts a session hash of the earlier layout into a value of this one, in place and
/// keeping its TTL. KEYS[1]: the session key. Returns the value (a value of this layout
/// already there is returned as it is), false when there is none, or `foreign` when the
/// key holds something else (a hash without a valid expiry included), which stays.
const CONVERT_SCRIPT: &str = r#"
local key = KEYS[1]
local kind = redis.call('TYPE', key)['ok']
if kind == 'string' then return redis.call('GET', key) end
if kind == 'none' then return false end
if kind ~= 'hash' then return 'foreign' end
local function pad(text, width)
  if #text > width or not string.find(text, '^[0-9]+$') then return nil end
  return string.rep('0', width - #text) .. text
end
local escapes = {['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\t'] = '\\t',
  ['\n'] = '\\n', ['\f'] = '\\f', ['\r'] = '\\r'}
local function quote(s)
  local quoted = string.gsub(s, '[%z\1-\31"\\]', function(c)
    return escapes[c] or string.format('\\u%04x', string.byte(c))
  end)
  return '"' .. quoted .. '"'
end
local fields = redis.call('HGETALL', key)
local entries, size = {}, 0
local expires, permanent = nil, '-'
local created, lifetime = string.rep('-', 16), string.rep('-', 20)
for i = 1, #fields, 2 do
  local name, value = fields[i], fields[i + 1]
  local a, b = string.byte(name, 1, 2)
  if a ~= 0 or b == 0 then
    if a == 0 then name = string.sub(name, 2) end
    entries[#entries + 1] = '\n' .. quote(name) .. ':' .. value
    size = size + #name + #value
  elseif name == '\0expires' then expires = pad(value, 16)
  elseif name == '\0permanent' then permanent = value
  elseif name == '\0created' then created = pad(value, 16)
  elseif name == '\0lifetime' then lifetime = pad(value, 20)
  end
end
if not (expires and created and lifetime) or not string.find(permanent, '^[01-]$') then
  return 'foreign'
end
local v = 's1' .. expires .. string.format('%010d', size) .. permanent .. created .. lifetime
  .. '{' .. table.concat(entries, ',') .. '}'
redis.call('SET', key, v, 'KEEPTTL')
return v
"#;

/// Loads a session and refreshes its expiry (a plain load is a plain `GET`). KEYS[1]: the
/// session key. ARGV[1]: now; ARGV[2]: the new expiry (Unix milliseconds); ARGV[3]: the
/// same in the header's 16 digits. Returns false when the entry is missing or expired,
/// `foreign` when the key holds another type, `legacy` for a hash of the earlier layout,
/// otherwise the value, with the expiry moved forward. The data is never rewritten by a
/// refresh.
const LOAD_SCRIPT: &str = r"
if legacy then return 'legacy' end
if v == nil then return 'foreign' end
if not v then return false end
local expires = header(v)
if not expires then return v end
if expires <= tonumber(ARGV[1]) then return false end
if tonumber(ARGV[2]) > expires then
  v = 's1' .. ARGV[3] .. string.sub(v, 19)
  redis.call('SET', key, v, 'PXAT', ARGV[2])
end
return v
";

/// Applies a change set. KEYS[1]: the session key. ARGV: now, the new expiry (Unix
/// milliseconds) and the same in the header's 16 digits, flags (``, `c` to clear, `e` to
/// apply only onto a live entry, or `ce`), the size budget (`0`: none), the new permanent
/// flag, creation time and lifetime in the header's texts (each empty to keep the stored
/// one), the number of removed keys, the number of keys set, then the removed keys as
/// pairs (JSON text, length of the key as [`stored_size`] counts it), then the keys set as
/// triples (JSON text, length, the value's JSON text). Returns `stored`, or `empty` when
/// no data is left and the key was deleted (or, with `e`, when there was no live entry and
/// nothing was written), `too_large <size>` when the merged data would measure more than
/// the budget, and nothing was written, or `legacy` (nothing written).
///
/// Two calls into Redis, a `GET` and a `SET` with the expiry, whatever the change: the
/// merge edits the entries of the keys changed, and the size in the header is kept up to
/// date with each edit, so the budget is checked without measuring the rest.
///
/// [`stored_size`]: crate::record::stored_size
const SAVE_SCRIPT: &str = r"
if legacy then return 'legacy' end
local flags = ARGV[4]
local budget = tonumber(ARGV[5])
local removals, sets = tonumber(ARGV[9]), tonumber(ARGV[10])
local expires, size = header(v)
local live = expires ~= nil and expires > tonumber(ARGV[1])
if not live then
  -- Expired, or anything but a session value: replaced.
  if v ~= false then redis.call('DEL', key) end
  if flags == 'e' or flags == 'ce' then return 'empty' end
end
local body, permanent = '{}', '-'
local created, lifetime = string.rep('-', 16), string.rep('-', 20)
if live then
  permanent = string.sub(v, 29, 29)
  created, lifetime = string.sub(v, 30, 45), string.sub(v, 46, 65)
end
if live and flags ~= 'c' and flags ~= 'ce' then body = string.sub(v, 66) else size = 0 end
local at = 11
for _ = 1, removals do
  if body ~= '{}' then
    local s, vs, ve, nx = find(body, ARGV[at])
    if s then
      size = size - tonumber(ARGV[at + 1]) - (ve - vs + 1)
      body = cut(body, s, nx)
    end
  end
  at = at + 2
end
if body == '{}' and sets > 0 then
  local entries = {}
  for i = 1, sets do
    entries[i] = '\n' .. ARGV[at] .. ':' .. ARGV[at + 2]
    size = size + tonumber(ARGV[at + 1]) + #ARGV[at + 2]
    at = at + 3
  end
  body = '{' .. table.concat(entries, ',') .. '}'
else
  for _ = 1, sets do
    local k, value = ARGV[at], ARGV[at + 2]
    local s, vs, ve = find(body, k)
    if s then
      size = size - (ve - vs + 1) + #value
      body = string.sub(body, 1, vs - 1) .. value .. string.sub(body, ve + 1)
    else
      size = size + tonumber(ARGV[at + 1]) + #value
      body = append(body, k, value)
    end
    at = at + 3
  end
end
if sets > 0 and budget > 0 and size > budget then return 'too_large ' .. size end
if body == '{}' then
  if live then redis.call('DEL', key) end
  return 'empty'
end
if ARGV[6] ~= '' then permanent = ARGV[6] end
if ARGV[7] ~= '' then created = ARGV[7] end
if ARGV[8] ~= '' then lifetime = ARGV[8] end
redis.call('SET', key, 's1' .. ARGV[3] .. string.format('%010d', size) .. permanent .. created
  .. lifetime .. body, 'PXAT', ARGV[2])
return 'stored'
";

/// Applies one [`KeyUpdate`] to one key. KEYS[1]: the session key. ARGV: now (Unix
/// milliseconds), the key's JSON text, its length as [`stored_size`] counts it, the
/// operation (`i` to increment, `r` to replace), then for `i` the amount (a decimal 64-bit
/// integer) and an unused empty argument, for `r` the expected and the new JSON text
/// (empty: the key is absent; JSON text is never empty), then the size budget of a replace
/// (`0`: none), then `1` to have the stored value answered too (else empty). Returns
/// `{status}` when the key was absent, `{status, value}` with the value's JSON text as
/// found otherwise, and with `1` always `{status, value or false, entry or false}`, the
/// entry being the stored value as the script left it; the status is `applied`, `mismatch` (`r`: the key
/// does not hold the expected text), `invalid` (`i`: the value is not the JSON text of an
/// integer), `exact` (`i`: the value or the amount has more than 15 digits, which Lua's
/// doubles may not add exactly; nothing written, Satchel adds them and replaces the text it
/// found), `missing` (no live entry: nothing written), `foreign` (the key holds something
/// else), `legacy` (a hash of the earlier layout: nothing written) or `too_large` (`r`: the
/// data with the new value would measure more than the budget; nothing written), which
/// comes as `{'too_large', size}`.
///
/// Two calls into Redis, a `GET` and a `SET` that keeps the key's TTL. The entry's expiry
/// and the other keys stay as they are.
///
/// [`KeyUpdate`]: crate::record::KeyUpdate
/// [`stored_size`]: crate::record::stored_size
const UPDATE_SCRIPT: &str = r"
local function answer(status, raw, entry)
  if ARGV[8] == '1' then return {status, raw or false, entry or false} end
  if raw then return {status, raw} end
  return {status}
end
if legacy then return {'legacy'} end
if v == nil then return {'foreign'} end
if not v then return {'missing'} end
if string.sub(v, 1, 2) ~= 's1' then return {'foreign'} end
if tonumber(string.sub(v, 3, 18)) <= tonumber(ARGV[1]) then return {'missing'} end
local size = tonumber(string.sub(v, 19, 28))
local k, n = ARGV[2], tonumber(ARGV[3])
local s = string.find(v, '\n' .. k .. ':', 66, true)
local vs, ve, nx, raw
if s then
  vs = s + #k + 2
  nx = string.find(v, '\n', vs, true)
  if nx then ve = nx - 2 else ve = #v - 1 end
  raw = string.sub(v, vs, ve)
end
local new
if ARGV[4] == 'i' then
  if raw and raw ~= '0' and not string.find(raw, '^%-?[1-9][0-9]*$') then
    return answer('invalid', raw, v)
  end
  if (raw and #raw > 15) or #ARGV[5] > 15 then
    return answer('exact', raw, v)
  end
  new = string.format('%d', tonumber(raw or '0') + tonumber(ARGV[5]))
else
  if ARGV[5] == '' then
    if raw then return answer('mismatch', raw, v) end
  elseif raw ~= ARGV[5] then
    return answer('mismatch', raw, v)
  end
  new = ARGV[6]
end
local written
if new ~= '' then
  if raw then
    size = size - #raw + #new
  else
    size = size + n + #new
  end
  local budget = tonumber(ARGV[7])
  if budget > 0 and size > budget then return {'too_large', tostring(size)} end
  if raw then
    written = string.sub(v, 1, 18) .. string.format('%010d', size) .. string.sub(v, 29, vs - 1)
      .. new .. string.sub(v, ve + 1)
  elseif #v == 67 then
    written = string.sub(v, 1, 18) .. string.format('%010d', size) .. string.sub(v, 29, 66)
      .. '\n' .. k .. ':' .. new .. '}'
  else
    written = string.sub(v, 1, 18) .. string.format('%010d', size) .. string.sub(v, 29, -2)
      .. ',\n' .. k .. ':' .. new .. '}'
  end
elseif raw then
  size = size - n - #raw
  local head = string.sub(v, 1, 18) .. string.format('%010d', size)
  if nx then
    written = head .. string.sub(v, 29, s - 1) .. string.sub(v, nx)
  elseif s > 67 then
    written = head .. string.sub(v, 29, s - 2) .. '}'
  else
    redis.call('DEL', key)
    return answer('applied', raw, nil)
  end
else
  return answer('applied', nil, v)
end
redis.call('SET', key, written, 'KEEPTTL')
return answer('applied', raw, written)
";

/// Takes an entry: reads the value and deletes it, atomically. KEYS[1]: the session key.
/// Returns false when there is none, or when the key holds anything but a session value
/// (which stays), `legacy` for a hash of the earlier layout (which stays as it is),
/// otherwise the value (expired or not: Satchel checks the expiry).
const TAKE_SCRIPT: &str = r"
if legacy then return 'legacy' end
if not header(v) then return false end
redis.call('DEL', key)
return v
";

/// A script that reads the key and has the shared functions.
fn with_prelude(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{READ}{body}"))
}

pub(super) static TAKE: LazyLock<Script> = LazyLock::new(|| with_prelude(TAKE_SCRIPT));
pub(super) static LOAD: LazyLock<Script> = LazyLock::new(|| with_prelude(LOAD_SCRIPT));
pub(super) static SAVE: LazyLock<Script> = LazyLock::new(|| with_prelude(SAVE_SCRIPT));
pub(super) static UPDATE: LazyLock<Script> =
    LazyLock::new(|| Script::new(&format!("{READ}{UPDATE_SCRIPT}")));
pub(super) static CONVERT: LazyLock<Script> = LazyLock::new(|| Script::new(CONVERT_SCRIPT));
