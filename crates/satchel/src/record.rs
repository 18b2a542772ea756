//! What a store keeps for one session, and the changes a request makes to it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::error::StoreError;

/// The key/value data of one session.
pub type Data = BTreeMap<String, Value>;

/// The size of session data as the size budget (SESSION_MAX_SIZE) measures it: for every
/// key, its length plus the length of its value's JSON text, in bytes.
///
/// This is what the Redis store keeps (a hash field per key, holding the JSON text), and
/// close to what the other stores write (their envelopes add a few bytes per key, and a
/// little per session). MongoDB, which keeps values as BSON, measures its own way (see
/// [`MongoStore`](crate::store::mongodb)).
///
/// The JSON text is counted, not built.
///
/// # Examples
///
/// ```
/// use satchel::{Data, record::stored_size};
/// use serde_json::json;
///
/// let mut data = Data::new();
/// data.insert("user".into(), json!("ada")); // 4 + 5 bytes
/// data.insert("n".into(), json!(12)); // 1 + 2 bytes
/// assert_eq!(stored_size(&data), 12);
/// ```
#[must_use]
pub fn stored_size(data: &Data) -> usize {
    data.iter().map(|(key, value)| entry_size(key, value)).sum()
}

/// The measure of one key and its value (see [`stored_size`]).
fn entry_size(key: &str, value: &Value) -> usize {
    key.len().saturating_add(json_len(value))
}

/// The length of `value`'s JSON text, counted without building it.
pub(crate) fn json_len(value: &Value) -> usize {
    /// Counts the bytes written through it.
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.saturating_add(bytes.len());
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing a `Value` fails only when the writer does, and this one never does.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// The refusal of a write of `size` bytes over `budget`, when it is over.
fn within(budget: Option<usize>, size: impl FnOnce() -> usize) -> Result<(), StoreError> {
    let Some(budget) = budget else {
        return Ok(());
    };
    let size = size();
    if size > budget {
        return Err(StoreError::TooLarge { budget, size });
    }
    Ok(())
}

/// One stored session: its data, when it expires, and its own permanent flag.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use satchel::Record;
///
/// let record = Record::new(Default::default(), SystemTime::now() + Duration::from_secs(60));
/// assert!(!record.is_expired(SystemTime::now()));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The session's keys and values.
    pub data: Data,
    /// When the entry stops being valid. Every store checks it on load.
    pub expires_at: SystemTime,
    /// The per-session permanent flag, when the application set one
    /// ([`Session::set_permanent`](crate::Session::set_permanent)); `None` follows
    /// SESSION_PERMANENT.
    pub permanent: Option<bool>,
    /// The store's token for this exact state of the entry (a compare-and-swap value, a
    /// version column), when the store has one. The engine hands it back to
    /// [`SessionStore::save_seen`](crate::SessionStore::save_seen) so that the common,
    /// uncontended save is a single conditional write.
    pub version: Option<u64>,
    /// When the session was created: what SESSION_ABSOLUTE_LIFETIME counts from. An id
    /// rotation keeps it. The engine stamps it only under that limit (it costs a field
    /// per session): `None` for an entry written while the limit was unset, which the
    /// engine stamps (and counts from) at its next request under the limit. A store
    /// must keep it, and [`lifetime`](Self::lifetime), with the entry: a store that
    /// drops it leaves the absolute limit restarting at every request.
    pub created: Option<SystemTime>,
    /// The session's own lifetime ([`Session::set_lifetime`](crate::Session::set_lifetime)),
    /// when the application set one; `None` follows PERMANENT_SESSION_LIFETIME.
    pub lifetime: Option<Duration>,
}

impl Record {
    /// A record with the given data and expiry, following the configured permanent flag.
    #[must_use]
    pub fn new(data: Data, expires_at: SystemTime) -> Self {
        Self {
            data,
            expires_at,
            permanent: None,
            version: None,
            created: None,
            lifetime: None,
        }
    }

    /// A record of `data` with the session's own settings `meta`.
    #[cfg_attr(
        not(any(
            feature = "redis",
            feature = "mongodb",
            feature = "filesystem",
            feature = "memcached",
            feature = "_sql",
            feature = "cookie"
        )),
        allow(dead_code)
    )]
    pub(crate) fn from_parts(
        data: Data,
        expires_at: SystemTime,
        meta: Meta,
        version: Option<u64>,
    ) -> Self {
        Self {
            data,
            expires_at,
            permanent: meta.permanent,
            version,
            created: meta.created,
            lifetime: meta.lifetime,
        }
    }

    /// The session's own settings this record carries, as a store encodes them.
    pub(crate) fn meta(&self) -> Meta {
        Meta {
            permanent: self.permanent,
            created: self.created,
            lifetime: self.lifetime,
        }
    }

    /// Whether the record has expired at `now`.
    #[must_use]
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expires_at <= now
    }
}

/// The changes one request made to its session: what a store applies, atomically, onto
/// the latest stored entry.
///
/// Applying a change set instead of writing back the whole record is how Satchel keeps
/// concurrent requests from erasing each other's changes: two requests that set different
/// keys both land, whatever order they finish in. Keys set by the request win over keys
/// removed by it; `clear` drops everything stored before the request's own sets.
///
/// # Examples
///
/// ```
/// use satchel::{Changes, Data};
/// use serde_json::json;
///
/// let mut changes = Changes::default();
/// changes.set("a", json!(1));
/// changes.remove("b");
///
/// let mut stored = Data::new();
/// stored.insert("b".into(), json!(2));
/// stored.insert("c".into(), json!(3));
/// changes.apply(&mut stored);
/// assert_eq!(stored.len(), 2);
/// assert_eq!(stored["a"], json!(1));
/// assert!(!stored.contains_key("b"));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    clear: bool,
    set: BTreeMap<String, Value>,
    remove: BTreeSet<String>,
    permanent: Option<bool>,
    created: Option<SystemTime>,
    lifetime: Option<Option<Duration>>,
    existing_only: bool,
    max_size: Option<usize>,
}

impl Changes {
    /// Gives the change set a size budget: a store applies it only when the session's
    /// data afterwards measures at most `max` bytes ([`stored_size`]), and otherwise
    /// writes nothing and returns [`StoreError::TooLarge`]. The check is made inside the
    /// store's atomic merge, on the merged result, so two requests whose changes each
    /// fit but together do not cannot both land.
    ///
    /// A change set that sets no key (it only removes keys, clears, or changes the
    /// permanent flag) is never refused: it cannot make the session grow. The engine
    /// gives every change set it sends the configured budget
    /// ([`max_size`](crate::SessionConfig::max_size)), unless that is `0`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use satchel::{Changes, StoreError};
    /// use serde_json::json;
    ///
    /// let mut changes = Changes::default();
    /// changes.set("user", json!("ada"));
    /// changes.limit_size(8);
    /// assert_eq!(changes.max_size(), Some(8));
    /// let later = SystemTime::now() + Duration::from_secs(60);
    /// let refused = changes.apply_to(None, later).unwrap_err();
    /// assert!(matches!(refused, StoreError::TooLarge { budget: 8, size: 9 }));
    /// ```
    pub fn limit_size(&mut self, max: usize) {
        self.max_size = Some(max);
    }

    /// The size budget of the change set, if it has one (see
    /// [`limit_size`](Self::limit_size)).
    #[must_use]
    pub fn max_size(&self) -> Option<usize> {
        self.max_size
    }

    /// The size ([`stored_size`]) of the data that applying the change set onto `base`
    /// gives, computed without applying it.
    #[must_use]
    pub fn merged_size(&self, base: Option<&Data>) -> usize {
        let set: usize = self
            .set
            .iter()
            .map(|(key, value)| entry_size(key, value))
            .sum();
        let kept: usize = match base {
            Some(base) if !self.clear => base
                .iter()
                .filter(|(key, _)| {
                    !self.set.contains_key(key.as_str()) && !self.remove.contains(key.as_str())
                })
                .map(|(key, value)| entry_size(key, value))
                .sum(),
            _ => 0,
        };
        set.saturating_add(kept)
    }

    /// Whether the change set may be applied onto `base` within its size budget: the
    /// rule every store applies inside its atomic merge ([`apply_to`](Self::apply_to)
    /// applies it too).
    ///
    /// # Errors
    ///
    /// [`StoreError::TooLarge`] when the change set sets keys and the merged data would
    /// measure more than its [`max_size`](Self::max_size).
    pub fn check_size(&self, base: Option<&Data>) -> Result<(), StoreError> {
        if self.set.is_empty() {
            return Ok(());
        }
        within(self.max_size, || self.merged_size(base))
    }

    /// Whether `merged`, the data a store is about to write for this change set (the
    /// data a request saw after its changes, for
    /// [`save_seen`](crate::SessionStore::save_seen)), fits the change set's size
    /// budget. The same rule as [`check_size`](Self::check_size).
    ///
    /// # Errors
    ///
    /// [`StoreError::TooLarge`] when the change set sets keys and `merged` measures more
    /// than its [`max_size`](Self::max_size).
    pub fn check_merged(&self, merged: &Data) -> Result<(), StoreError> {
        if self.set.is_empty() {
            return Ok(());
        }
        within(self.max_size, || stored_size(merged))
    }

    /// Marks the change set as one for an entry that existed when the request loaded
    /// it: a store applies it only onto a live stored entry, and never creates one.
    ///
    /// This is what makes a logout final. When a request destroys a session (or it
    /// expires) while another request for it is still running, the other request's save
    /// finds no entry and writes nothing, instead of bringing the session back to life
    /// with that request's keys. The engine marks every save of a loaded session so.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use satchel::Changes;
    /// use serde_json::json;
    ///
    /// let mut changes = Changes::default();
    /// changes.set("a", json!(1));
    /// changes.require_existing();
    /// assert!(changes.requires_existing());
    /// let later = SystemTime::now() + Duration::from_secs(60);
    /// assert!(changes.apply_to(None, later)?.is_none(), "nothing to apply onto");
    /// # Ok::<_, satchel::StoreError>(())
    /// ```
    pub fn require_existing(&mut self) {
        self.existing_only = true;
    }

    /// Whether the change set applies only onto a live stored entry (see
    /// [`require_existing`](Self::require_existing)): a store that finds none writes
    /// nothing and reports [`Saved::Empty`](crate::store::Saved::Empty).
    #[must_use]
    pub fn requires_existing(&self) -> bool {
        self.existing_only
    }

    /// Records that `key` is set to `value`.
    pub fn set(&mut self, key: impl Into<String>, value: Value) {
        let key = key.into();
        self.remove.remove(&key);
        self.set.insert(key, value);
    }

    /// Records that `key` is removed.
    pub fn remove(&mut self, key: impl Into<String>) {
        let key = key.into();
        self.set.remove(&key);
        self.remove.insert(key);
    }

    /// Records that every key stored so far is removed.
    pub fn clear(&mut self) {
        self.clear = true;
        self.set.clear();
        self.remove.clear();
    }

    /// Records a new per-session permanent flag.
    pub fn set_permanent(&mut self, permanent: bool) {
        self.permanent = Some(permanent);
    }

    /// Records the session's creation time ([`Record::created`]), which the store writes
    /// with the entry. Under SESSION_ABSOLUTE_LIFETIME the engine sets it when it
    /// creates an entry, and when it saves one stored without it. It is not a change on
    /// its own: [`is_empty`](Self::is_empty) ignores it.
    pub fn set_created(&mut self, at: SystemTime) {
        self.created = Some(at);
    }

    /// The creation time to write, if the change set carries one.
    #[must_use]
    pub fn created(&self) -> Option<SystemTime> {
        self.created
    }

    /// Records a new per-session lifetime ([`Record::lifetime`]); `None` goes back to
    /// PERMANENT_SESSION_LIFETIME. Stores keep it in whole seconds.
    pub fn set_lifetime(&mut self, lifetime: Option<Duration>) {
        self.lifetime = Some(lifetime);
    }

    /// The new per-session lifetime, if the request set one: `Some(None)` goes back to
    /// the configured lifetime.
    #[must_use]
    pub fn lifetime(&self) -> Option<Option<Duration>> {
        self.lifetime
    }

    /// Drops the lifetime change.
    pub fn forget_lifetime(&mut self) {
        self.lifetime = None;
    }

    /// Whether the change set drops every previously stored key.
    #[must_use]
    pub fn is_clear(&self) -> bool {
        self.clear
    }

    /// The keys set, with their new values.
    #[must_use]
    pub fn sets(&self) -> &BTreeMap<String, Value> {
        &self.set
    }

    /// The keys removed.
    #[must_use]
    pub fn removals(&self) -> &BTreeSet<String> {
        &self.remove
    }

    /// The new per-session permanent flag, if the request set one.
    #[must_use]
    pub fn permanent(&self) -> Option<bool> {
        self.permanent
    }

    /// Keeps only the operations for which `keep(key, new value)` is true; a removal's new
    /// value is `None`.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, Option<&Value>) -> bool) {
        self.set.retain(|key, value| keep(key, Some(value)));
        self.remove.retain(|key| keep(key, None));
    }

    /// The same change set with every value it sets replaced by `map(key, value)`, or
    /// the first error `map` gives.
    ///
    /// # Errors
    ///
    /// The first error of `map`.
    #[cfg_attr(not(feature = "sealed"), allow(dead_code))]
    pub(crate) fn try_map_sets<E>(
        &self,
        mut map: impl FnMut(&str, &Value) -> Result<Value, E>,
    ) -> Result<Self, E> {
        let set = self
            .set
            .iter()
            .map(|(key, value)| Ok((key.clone(), map(key, value)?)))
            .collect::<Result<_, E>>()?;
        Ok(Self {
            set,
            remove: self.remove.clone(),
            ..*self
        })
    }

    /// Drops the permanent-flag change.
    pub fn forget_permanent(&mut self) {
        self.permanent = None;
    }

    /// Whether the change set changes nothing (a [creation time](Self::set_created) is
    /// not a change on its own).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        !self.clear
            && self.set.is_empty()
            && self.remove.is_empty()
            && self.permanent.is_none()
            && self.lifetime.is_none()
    }

    /// Applies the data changes onto `data`: clear, then removals, then sets.
    pub fn apply(&self, data: &mut Data) {
        if self.clear {
            data.clear();
        }
        for key in &self.remove {
            data.remove(key);
        }
        for (key, value) in &self.set {
            data.insert(key.clone(), value.clone());
        }
    }

    /// Applies the whole change set onto a stored record (or onto nothing), giving the
    /// record to store with the new expiry, or `None` when the result holds no data and
    /// the entry must be deleted, or when there is no base and the change set
    /// [requires an existing entry](Self::require_existing).
    ///
    /// # Errors
    ///
    /// [`StoreError::TooLarge`] when the result would be over the change set's
    /// [size budget](Self::limit_size) (see [`check_size`](Self::check_size)): nothing
    /// must be written then.
    pub fn apply_to(
        &self,
        base: Option<Record>,
        expires_at: SystemTime,
    ) -> Result<Option<Record>, StoreError> {
        if base.is_none() && self.existing_only {
            return Ok(None);
        }
        self.check_size(base.as_ref().map(|record| &record.data))?;
        Ok(self.merge(base, expires_at))
    }

    /// [`apply_to`](Self::apply_to) without the size check, for a store that made it
    /// already.
    pub(crate) fn merge(&self, base: Option<Record>, expires_at: SystemTime) -> Option<Record> {
        let (mut data, meta) = match base {
            Some(record) => {
                let meta = record.meta();
                (record.data, meta)
            }
            None if self.existing_only => return None,
            None => (Data::new(), Meta::default()),
        };
        self.apply(&mut data);
        if data.is_empty() {
            return None;
        }
        let meta = self.meta_onto(meta);
        Some(Record {
            data,
            expires_at,
            permanent: meta.permanent,
            version: None,
            created: meta.created,
            lifetime: meta.lifetime,
        })
    }

    /// The session's own settings once the change set's are applied onto `stored`.
    pub(crate) fn meta_onto(&self, stored: Meta) -> Meta {
        Meta {
            permanent: self.permanent.or(stored.permanent),
            created: self.created.or(stored.created),
            lifetime: self.lifetime.unwrap_or(stored.lifetime),
        }
    }

    /// A change set that replaces whatever is stored with `record`'s data, permanent
    /// flag and lifetime, without a size budget. Its creation time is written when
    /// `record` has one; a stored one is kept otherwise.
    #[must_use]
    pub fn replacing_with(record: &Record) -> Self {
        Self {
            clear: true,
            set: record.data.clone(),
            remove: BTreeSet::new(),
            permanent: record.permanent,
            created: record.created,
            lifetime: Some(record.lifetime),
            existing_only: false,
            max_size: None,
        }
    }
}

/// A session's own settings, beside its data: what the stores that serialise records
/// write next to the data (see [`Record`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) permanent: Option<bool>,
    pub(crate) created: Option<SystemTime>,
    pub(crate) lifetime: Option<Duration>,
}

/// One operation on one key that a store applies at once, atomically, onto the latest
/// stored value: what [`Session::increment`](crate::Session::increment) and
/// [`Session::insert_if_unchanged`](crate::Session::insert_if_unchanged) send through
/// [`SessionStore::update`](crate::SessionStore::update).
///
/// Unlike a [`Changes`] set, which is saved when the request ends and where the last
/// writer of a key wins, an update reads and writes the key in one step, so concurrent
/// updates of one key never lose each other.
///
/// # Examples
///
/// ```
/// use satchel::record::{KeyUpdate, Updated};
/// use serde_json::json;
///
/// let add = KeyUpdate::Increment(2);
/// assert_eq!(add.apply(Some(&json!(40))), Ok(Some(json!(42))));
/// assert_eq!(add.apply(None), Ok(Some(json!(2))));
/// assert_eq!(add.apply(Some(&json!("x"))), Err(Updated::Invalid(Some(json!("x")))));
///
/// let swap = KeyUpdate::Replace { expected: Some(json!(1)), new: Some(json!(2)), max_size: None };
/// assert_eq!(swap.apply(Some(&json!(1))), Ok(Some(json!(2))));
/// assert_eq!(swap.apply(Some(&json!(3))), Err(Updated::Mismatch(Some(json!(3)))));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum KeyUpdate {
    /// Adds the amount to the key's integer value; a missing key counts as `0`.
    ///
    /// An increment is not held to the size budget: it changes the session's size by a
    /// few bytes at most (an integer's text is at most 20 bytes), and the next insert
    /// or save that sets a key is checked on the whole session again.
    Increment(i64),
    /// Sets the key to `new` (`None`: removes it), only if it still holds `expected`
    /// (`None`: the key is absent).
    Replace {
        /// The value the key must hold for the update to apply.
        expected: Option<Value>,
        /// The value to store; `None` removes the key.
        new: Option<Value>,
        /// The session's size budget (see [`Changes::limit_size`]): when `new` is a
        /// value and the session's data with it would measure more ([`stored_size`]),
        /// nothing is written and the store returns [`StoreError::TooLarge`]. `None`:
        /// no budget.
        max_size: Option<usize>,
    },
}

/// What a store reports after a [`KeyUpdate`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Updated {
    /// The update applied; the key's value after it (`None`: the key is absent).
    Applied(Option<Value>),
    /// A [`KeyUpdate::Replace`] found another value: nothing was written. Carries the
    /// key's current value.
    Mismatch(Option<Value>),
    /// A [`KeyUpdate::Increment`] found a value that is not an integer, or the sum would
    /// leave the 64-bit range: nothing was written. Carries the key's current value.
    Invalid(Option<Value>),
    /// There is no live entry for the id (destroyed, rotated or expired): nothing was
    /// written, and no entry was created.
    Missing,
}

impl KeyUpdate {
    /// The key's new value (`None`: absent) when the update applies onto `current`, or
    /// why it does not. Stores that read and write under a lock, a transaction or a
    /// compare-and-swap use this, so every store decides alike.
    ///
    /// # Errors
    ///
    /// [`Updated::Mismatch`] or [`Updated::Invalid`], with the current value.
    pub fn apply(&self, current: Option<&Value>) -> Result<Option<Value>, Updated> {
        match self {
            Self::Increment(by) => {
                let base = match current {
                    None => Some(0),
                    Some(value) => value.as_i64(),
                };
                base.and_then(|base| base.checked_add(*by))
                    .map(|sum| Some(Value::from(sum)))
                    .ok_or_else(|| Updated::Invalid(current.cloned()))
            }
            Self::Replace { expected, new, .. } => {
                if current == expected.as_ref() {
                    Ok(new.clone())
                } else {
                    Err(Updated::Mismatch(current.cloned()))
                }
            }
        }
    }

    /// The session's size budget the update is held to: a [`Replace`](Self::Replace)'s
    /// `max_size`; an increment has none.
    #[must_use]
    pub fn max_size(&self) -> Option<usize> {
        match self {
            Self::Replace { max_size, .. } => *max_size,
            Self::Increment(_) => None,
        }
    }

    /// Whether setting `key` of `data` to `new` keeps the session within `budget`.
    fn check_size(
        budget: Option<usize>,
        data: &Data,
        key: &str,
        new: &Value,
    ) -> Result<(), StoreError> {
        within(budget, || {
            let old = data.get(key).map_or(0, |value| entry_size(key, value));
            stored_size(data)
                .saturating_sub(old)
                .saturating_add(entry_size(key, new))
        })
    }

    /// Applies the update onto `data`'s `key`, giving the outcome. `data` is changed only
    /// when the update applies.
    ///
    /// # Errors
    ///
    /// [`StoreError::TooLarge`] when a [`Replace`](Self::Replace) would set a value that
    /// takes the data over its `max_size`: `data` is left as it was.
    pub fn apply_to(&self, data: &mut Data, key: &str) -> Result<Updated, StoreError> {
        Ok(match self.apply(data.get(key)) {
            Ok(Some(value)) => {
                Self::check_size(self.max_size(), data, key, &value)?;
                data.insert(key.to_owned(), value.clone());
                Updated::Applied(Some(value))
            }
            Ok(None) => {
                data.remove(key);
                Updated::Applied(None)
            }
            Err(refused) => refused,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn later_operations_win_over_earlier_ones() {
        let mut changes = Changes::default();
        changes.set("k", json!(1));
        changes.remove("k");
        assert!(changes.sets().is_empty());
        assert!(changes.removals().contains("k"));
        changes.set("k", json!(2));
        assert!(changes.removals().is_empty());
        changes.clear();
        assert!(changes.is_clear() && changes.sets().is_empty());
        assert!(!changes.is_empty());
    }

    #[test]
    fn the_measure_is_keys_and_json_text_and_the_merge_is_measured_without_applying() {
        let values = [
            json!(null),
            json!(-12.5e-3),
            json!("quote \" and é"),
            json!([1, {"a": [true, "\u{1}"]}]),
            json!(u64::MAX),
        ];
        for value in &values {
            assert_eq!(json_len(value), serde_json::to_string(value).unwrap().len());
        }
        let base: Data = values
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("k{i}"), v.clone()))
            .collect();
        let mut changes = Changes::default();
        changes.set("k0", json!("longer than null"));
        changes.set("new", json!({"x": 1}));
        changes.remove("k1");
        let mut merged = base.clone();
        changes.apply(&mut merged);
        assert_eq!(changes.merged_size(Some(&base)), stored_size(&merged));
        changes.clear();
        changes.set("only", json!(1));
        assert_eq!(changes.merged_size(Some(&base)), 5);
    }

    #[test]
    fn only_a_change_set_that_sets_keys_can_be_refused() {
        let at = SystemTime::now() + Duration::from_secs(5);
        let base = Record::new(Data::from([("big".into(), json!("x".repeat(100)))]), at);
        let mut shrink = Changes::default();
        shrink.set_permanent(true);
        shrink.limit_size(10);
        assert!(shrink.apply_to(Some(base.clone()), at).unwrap().is_some());
        shrink.remove("big");
        assert!(shrink.apply_to(Some(base.clone()), at).unwrap().is_none());
        let mut grow = Changes::default();
        grow.set("a", json!(1));
        grow.limit_size(10);
        assert!(matches!(
            grow.apply_to(Some(base.clone()), at),
            Err(StoreError::TooLarge {
                budget: 10,
                size: 107
            })
        ));
        let mut data = base.data.clone();
        let replace = KeyUpdate::Replace {
            expected: None,
            new: Some(json!(1)),
            max_size: Some(106),
        };
        assert!(matches!(
            replace.apply_to(&mut data, "a"),
            Err(StoreError::TooLarge {
                budget: 106,
                size: 107
            })
        ));
        assert_eq!(data, base.data, "left as it was");
        assert!(KeyUpdate::Increment(1).apply_to(&mut data, "a").is_ok());
    }

    #[test]
    fn apply_to_nothing_with_only_removals_gives_no_record() {
        let mut changes = Changes::default();
        changes.remove("x");
        assert_eq!(changes.apply_to(None, SystemTime::now()).unwrap(), None);
    }

    #[test]
    fn apply_to_keeps_the_stored_flag_unless_changed() {
        let at = SystemTime::now() + Duration::from_secs(5);
        let mut base = Record::new(Data::from([("a".into(), json!(1))]), at);
        base.permanent = Some(false);
        let mut changes = Changes::default();
        changes.set("b", json!(2));
        let out = changes.apply_to(Some(base.clone()), at).unwrap().unwrap();
        assert_eq!(out.permanent, Some(false));
        assert_eq!(out.data.len(), 2);
        changes.set_permanent(true);
        assert_eq!(
            changes.apply_to(Some(base), at).unwrap().unwrap().permanent,
            Some(true)
        );
    }
}
