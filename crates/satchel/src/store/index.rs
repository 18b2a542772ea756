//! The per-user index: which sessions each user is bound to, kept in the store itself.
//!
//! A session is bound to a user by the session key [`USER_KEY`] (`_user_id`, the key
//! Flask-Login uses, so an application sharing sessions with Flask sees the same user).
//! The index of a user is one more entry of the store, under an id derived from the user
//! ([`index_id`]), whose keys name the user's sessions and whose values say when each
//! was bound. It is written with the store's own [`save`](SessionStore::save), so every
//! store keeps it with the guarantee it gives session data: concurrent saves lose no key
//! (50 logins of one user at once leave 50 members), on every backend, memcached
//! included (its saves compare and swap).
//!
//! The index is a superset of the user's live sessions, never a subset:
//! - a session is added to the index *before* the save that binds it (or the move that
//!   gives it a new id), so a session bound to a user is always found;
//! - a session leaves the index *after* its entry is deleted (log-out, revocation);
//! - a member whose session no longer loads (it expired, or its save failed after the
//!   index was written) is dropped when the user's sessions are listed, unless it was
//!   bound within [`PRUNE_GRACE`] (its save may still be on its way).
//!
//! Listing therefore loads each member and returns only the sessions that load and are
//! still bound to the user: the index never returns a session that no longer loads.

use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::SessionStore;
use crate::error::StoreError;
use crate::id::SessionId;
use crate::record::Changes;
use crate::support::{from_unix_millis, unix_millis};

/// The session key that binds a session to a user: Flask-Login's `_user_id`.
pub const USER_KEY: &str = "_user_id";

/// How each key of an index entry begins; the rest is the member's session id. A store
/// listing its entries tells an index from a session by its keys.
pub const MEMBER_PREFIX: &str = "satchel.member:";

/// How long a user's index lives after the last binding: 400 days, the longest a
/// browser keeps a cookie. A session refreshed for longer without a new log-in drops out
/// of the listing (it still loads, and still holds its user).
pub const INDEX_LIFETIME: Duration = Duration::from_secs(400 * 24 * 60 * 60);

/// A member bound this recently is kept in the index even when its session does not
/// load yet: the save that binds it follows the index's own save.
pub const PRUNE_GRACE: Duration = Duration::from_secs(60);

/// The id of the entry indexing `user`'s sessions: the same in every process.
#[must_use]
pub fn index_id(user: &str) -> SessionId {
    SessionId::derive("satchel user index", user.as_bytes())
}

/// A session in a user's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Member {
    /// The session's id.
    pub id: SessionId,
    /// When the session was bound to the user (its log-in).
    pub bound_at: SystemTime,
}

fn member_key(id: &SessionId) -> String {
    let mut key = String::with_capacity(MEMBER_PREFIX.len() + crate::id::ID_LEN);
    key.push_str(MEMBER_PREFIX);
    id.encode_into(&mut key);
    key
}

/// Adds `id`, bound at `bound_at`, to `user`'s index.
///
/// # Errors
///
/// [`StoreError`] when the store fails.
pub async fn add<S: SessionStore + ?Sized>(
    store: &S,
    user: &str,
    id: &SessionId,
    bound_at: SystemTime,
) -> Result<(), StoreError> {
    let mut changes = Changes::default();
    changes.set(member_key(id), Value::from(unix_millis(bound_at)));
    save(store, &index_id(user), &changes).await
}

/// Applies `changes` to the index entry `entry`, which then lives [`INDEX_LIFETIME`].
async fn save<S: SessionStore + ?Sized>(
    store: &S,
    entry: &SessionId,
    changes: &Changes,
) -> Result<(), StoreError> {
    let expires_at = SystemTime::now() + INDEX_LIFETIME;
    store.save(entry, changes, expires_at).await.map(drop)
}

/// Removes `ids` from `user`'s index; an index left without members is deleted.
///
/// # Errors
///
/// [`StoreError`] when the store fails.
pub async fn remove<S: SessionStore + ?Sized>(
    store: &S,
    user: &str,
    ids: &[SessionId],
) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut changes = Changes::default();
    for id in ids {
        changes.remove(member_key(id));
    }
    // Only onto an index that exists: a removal never creates one.
    changes.require_existing();
    save(store, &index_id(user), &changes).await
}

/// The members of `user`'s index, oldest binding first: a superset of the user's live
/// sessions (see the [module documentation](self)).
///
/// # Errors
///
/// [`StoreError`] when the store fails.
pub async fn members<S: SessionStore + ?Sized>(
    store: &S,
    user: &str,
) -> Result<Vec<Member>, StoreError> {
    let Some(record) = store.load(&index_id(user), None).await? else {
        return Ok(Vec::new());
    };
    let mut members: Vec<Member> = record
        .data
        .iter()
        .filter_map(|(key, value)| {
            let id = key.strip_prefix(MEMBER_PREFIX)?.parse().ok()?;
            let bound_at = from_unix_millis(value.as_u64()?);
            Some(Member { id, bound_at })
        })
        .collect();
    members.sort_by_key(|member| (member.bound_at, member.id));
    Ok(members)
}

/// Whether a member bound at `bound_at` whose session does not load may be dropped at
/// `now`: it was bound longer than [`PRUNE_GRACE`] ago, so the save that bound it is not
/// still on its way.
#[must_use]
pub fn is_settled(bound_at: SystemTime, now: SystemTime) -> bool {
    now.duration_since(bound_at)
        .is_ok_and(|age| age >= PRUNE_GRACE)
}

/// Whether every key of `data` is an index member's: the entry is an index, not a
/// session.
#[must_use]
pub fn is_index(data: &crate::record::Data) -> bool {
    !data.is_empty() && data.keys().all(|key| key.starts_with(MEMBER_PREFIX))
}

/// Drops from the index entry `entry` (whose data `data` a listing gave) every member
/// whose session no longer loads, or is bound to another user, once bound for longer than
/// [`PRUNE_GRACE`]; says how many went. What a cleanup does for the indexes: a user whose
/// sessions all expired without a log-out is never listed again, and their index would
/// otherwise keep its dead members until it expires.
///
/// # Errors
///
/// [`StoreError`] when the store fails.
pub async fn prune<S: SessionStore + ?Sized>(
    store: &S,
    entry: &SessionId,
    data: &crate::record::Data,
) -> Result<usize, StoreError> {
    let now = SystemTime::now();
    let mut dead = Changes::default();
    let mut pruned = 0;
    for (key, value) in data {
        let Some(id) = key
            .strip_prefix(MEMBER_PREFIX)
            .and_then(|rest| rest.parse::<SessionId>().ok())
        else {
            continue;
        };
        let bound_at = value.as_u64().map(from_unix_millis);
        if !bound_at.is_none_or(|at| is_settled(at, now)) {
            continue;
        }
        let alive = match store.load(&id, None).await {
            Ok(Some(record)) => record
                .data
                .get(USER_KEY)
                .and_then(Value::as_str)
                .is_some_and(|user| index_id(user) == *entry),
            Ok(None) | Err(StoreError::Decode(_)) => false,
            Err(error) => return Err(error),
        };
        if !alive {
            dead.remove(key.clone());
            pruned += 1;
        }
    }
    if pruned > 0 {
        dead.require_existing();
        save(store, entry, &dead).await?;
    }
    Ok(pruned)
}
