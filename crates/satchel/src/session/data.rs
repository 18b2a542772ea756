//! The handler's API of [`Session`]: reading and changing keys, atomic updates, the
//! id's fate (`cycle_id`, `destroy`) and the permanent flag.

use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::plan::Fate;
use super::{Identity, Session, SessionStatus, State, Status, refusal, set_view, store_failed};
use crate::error::{Error, StoreError};
use crate::id::SessionId;
use crate::record::{Data, KeyUpdate, Updated};
use crate::store::SessionStore;

impl Session {
    /// The value stored under `key`, converted to `T`.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed; [`Error::Value`] when the stored
    /// value does not convert to `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use satchel::{MemoryStore, SessionConfig, SessionManager};
    /// # tokio_test::block_on(async {
    /// # let manager = SessionManager::new(MemoryStore::default(), SessionConfig::default())?;
    /// let session = manager.session(None::<&str>);
    /// session.insert("visits", 3u32).await?;
    /// assert_eq!(session.get::<u32>("visits").await?, Some(3));
    /// assert_eq!(session.get::<u32>("missing").await?, None);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        typed(key, self.get_value(key).await?)
    }

    /// The raw value stored under `key`.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed.
    pub async fn get_value(&self, key: &str) -> Result<Option<Value>, Error> {
        Ok(self.load().await?.data.get(key).cloned())
    }

    /// Stores `value` under `key`. Inserting a value equal to the current one changes
    /// nothing and saves nothing.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] when the session would then be over its size budget
    /// (SESSION_MAX_SIZE): the session is left as it was. [`Error::Disabled`] on the
    /// `null` store; [`Error::Value`] when `value` does not serialize;
    /// [`Error::Unavailable`] when the store failed.
    pub async fn insert<T: Serialize>(&self, key: &str, value: T) -> Result<(), Error> {
        let value = serde_json::to_value(value).map_err(|source| Error::Value {
            key: key.to_owned(),
            source,
        })?;
        self.insert_value(key, value).await
    }

    /// Stores a raw value under `key`; see [`Session::insert`].
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] when the session would then be over its size budget: the
    /// session is left as it was. [`Error::Disabled`] on the `null` store;
    /// [`Error::Unavailable`] when the store failed.
    pub async fn insert_value(&self, key: &str, value: Value) -> Result<(), Error> {
        if !self.inner.shared.writable {
            return Err(Error::Disabled);
        }
        let mut state = self.load().await?;
        if state.data.get(key) != Some(&value) {
            self.check_insert(&mut state.data, key, &value)?;
        }
        state.write(key, Some(value));
        Ok(())
    }

    /// Adds `by` to the integer under `key` (a missing key counts as `0`) and returns
    /// the sum: the counter for "no lost increments".
    ///
    /// The increment is committed when this returns, whatever the request's status or a
    /// later error. For a stored session, the store applies the increment at once, atomically onto
    /// the key's latest value (one round trip), so concurrent requests never lose each
    /// other's increments and each sees its own sum: 30 concurrent increments by 1 end at
    /// exactly 30, and answer 1 to 30 between them. The session's expiry is left as it
    /// is. A session this request creates is invisible to others until the request
    /// ends, so there the increment is simply recorded with the other changes; so it is
    /// when this request already set, removed or cleared `key` (the key is then this
    /// request's own, and the last writer wins as for [`insert`](Self::insert)).
    ///
    /// # Errors
    ///
    /// - [`Error::Superseded`] when the session was destroyed, rotated or expired by
    ///   another request meanwhile: nothing was written (an empty `409` if returned from
    ///   the handler).
    /// - [`Error::NotAnInteger`] when the value is not an integer or the sum would
    ///   overflow `i64`: nothing was written.
    /// - [`Error::Disabled`] on the `null` store; [`Error::Unavailable`] when the store
    ///   failed.
    ///
    /// # Examples
    ///
    /// ```
    /// # use satchel::{MemoryStore, SessionConfig, SessionManager};
    /// # tokio_test::block_on(async {
    /// # let manager = SessionManager::new(MemoryStore::default(), SessionConfig::default())?;
    /// let session = manager.session(None::<&str>);
    /// assert_eq!(session.increment("visits", 1).await?, 1);
    /// assert_eq!(session.increment("visits", 2).await?, 3);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn increment(&self, key: &str, by: i64) -> Result<i64, Error> {
        let update = KeyUpdate::Increment(by);
        match self.update_key(key, update).await? {
            Some(Value::Number(sum)) => sum.as_i64().ok_or_else(|| Error::NotAnInteger {
                key: key.to_owned(),
            }),
            _ => Err(Error::NotAnInteger {
                key: key.to_owned(),
            }),
        }
    }

    /// Stores `value` under `key` only if the key still holds, in the store, what this
    /// request read (or is still absent, if it was): a compare-and-set, applied at once
    /// and atomically, for a read-modify-write that must not overwrite a concurrent
    /// change.
    ///
    /// On a conflict nothing is written, and this request's view of the key becomes the
    /// stored value, so the handler can decide again from it or answer `409`. As for
    /// [`increment`](Self::increment), a session this request creates, or a key it
    /// already changed, is its own: the value is then set as by [`insert`](Self::insert).
    ///
    /// # Errors
    ///
    /// - [`Error::Conflict`] when another request changed the key since this one read
    ///   it.
    /// - [`Error::Superseded`] when the session was destroyed, rotated or expired
    ///   meanwhile.
    /// - [`Error::TooLarge`] when the session (this request's view of it, or the stored
    ///   one) would then be over its size budget: nothing was written.
    /// - [`Error::Value`] when `value` does not serialize; [`Error::Disabled`] on the
    ///   `null` store; [`Error::Unavailable`] when the store failed.
    ///
    /// # Examples
    ///
    /// ```
    /// # use satchel::{MemoryStore, SessionConfig, SessionManager};
    /// # tokio_test::block_on(async {
    /// # let manager = SessionManager::new(MemoryStore::default(), SessionConfig::default())?;
    /// let session = manager.session(None::<&str>);
    /// let seats: u32 = session.get("seats").await?.unwrap_or(10);
    /// session.insert_if_unchanged("seats", seats - 1).await?;
    /// assert_eq!(session.get::<u32>("seats").await?, Some(9));
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn insert_if_unchanged<T: Serialize>(
        &self,
        key: &str,
        value: T,
    ) -> Result<(), Error> {
        let new = serde_json::to_value(value).map_err(|source| Error::Value {
            key: key.to_owned(),
            source,
        })?;
        let expected = {
            let state = self.load().await?;
            state.data.get(key).cloned()
        };
        let update = KeyUpdate::Replace {
            expected,
            new: Some(new),
            max_size: self.budget(),
        };
        self.update_key(key, update).await.map(|_| ())
    }

    /// Applies `update` to `key`: in the store at once for a stored session whose key
    /// this request has not changed, else into this request's own change set. Returns
    /// the key's value afterwards.
    pub(super) async fn update_key(
        &self,
        key: &str,
        update: KeyUpdate,
    ) -> Result<Option<Value>, Error> {
        if !self.inner.shared.writable {
            return Err(Error::Disabled);
        }
        if let KeyUpdate::Increment(_) = update
            && let Some(outcome) = self.update_while_loading(key, &update).await
        {
            return self.updated(key, outcome);
        }
        let id = {
            let mut state = self.load().await?;
            let own = !state.existed() || state.detached || state.changes_key(key);
            let id = match state.key().filter(|_| !own) {
                Some(id) => id,
                None => {
                    let value = update
                        .apply(state.data.get(key))
                        .map_err(|refused| refusal(key, &refused))?;
                    if let (KeyUpdate::Replace { .. }, Some(new)) = (&update, &value)
                        && state.data.get(key) != Some(new)
                    {
                        self.check_insert(&mut state.data, key, new)?;
                    }
                    state.write(key, value.clone());
                    return Ok(value);
                }
            };
            // The request's own view too: its changes are saved onto the stored session
            // when it ends.
            if let KeyUpdate::Replace { new: Some(new), .. } = &update
                && state.data.get(key) != Some(new)
            {
                self.check_insert(&mut state.data, key, new)?;
            }
            id
        };
        let outcome = self.store().update(&id, key, &update).await;
        self.updated(key, outcome)
    }

    /// The request's view and the handler's answer after the store's `outcome` of an
    /// update of `key`.
    fn updated(
        &self,
        key: &str,
        outcome: Result<Updated, StoreError>,
    ) -> Result<Option<Value>, Error> {
        let mut state = self.state();
        let value = match outcome {
            Ok(Updated::Applied(value)) => value,
            Ok(Updated::Missing) => return Err(Error::Superseded),
            Ok(Updated::Mismatch(current)) => {
                // The view follows the store, so the handler can decide again.
                set_view(&mut state.data, key, current);
                return Err(Error::Conflict {
                    key: key.to_owned(),
                });
            }
            Ok(refused) => return Err(refusal(key, &refused)),
            // Refused for its size: the store and the session are as they were.
            Err(error @ StoreError::TooLarge { .. }) => {
                return Err(store_failed("update a key", &error));
            }
            Err(error) => {
                self.store_failure(&mut state);
                return Err(store_failed("update a key", &error));
            }
        };
        state.raise(Status::Updated);
        // The store holds it already: the view follows, and no change is recorded (a
        // later insert of the same value is no change either).
        if !state.changes_key(key) {
            set_view(&mut state.data, key, value.clone());
        }
        Ok(value)
    }

    /// Removes `key`, returning its value converted to `T` if it was there.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed; [`Error::Value`] when the removed
    /// value does not convert to `T` (it is removed all the same).
    pub async fn remove<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        typed(key, self.remove_value(key).await?)
    }

    /// Removes `key`, returning its raw value if it was there.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed.
    pub async fn remove_value(&self, key: &str) -> Result<Option<Value>, Error> {
        let mut state = self.load().await?;
        let removed = state.data.get(key).cloned();
        state.write(key, None);
        Ok(removed)
    }

    /// Removes every key. The session keeps its id; if nothing is added afterwards, its
    /// entry is deleted and its cookie removed.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed.
    pub async fn clear(&self) -> Result<(), Error> {
        let mut state = self.load().await?;
        if state.existed() || !state.data.is_empty() {
            state.data.clear();
            state.changes.clear();
        }
        Ok(())
    }

    /// Whether the session holds `key`.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed.
    pub async fn contains_key(&self, key: &str) -> Result<bool, Error> {
        Ok(self.load().await?.data.contains_key(key))
    }

    /// Where the session stands so far in this request (see [`SessionStatus`]). Never
    /// loads the session: before its first use it is [`SessionStatus::Unloaded`].
    #[must_use]
    pub fn status(&self) -> SessionStatus {
        let state = self.state();
        let changed = !state.changes.is_empty() || state.status == Status::Updated;
        match state.fate {
            Fate::Destroy { .. } if changed => SessionStatus::Changed,
            Fate::Destroy { .. } => SessionStatus::Destroyed,
            Fate::Cycle => SessionStatus::Changed,
            Fate::Keep if changed => SessionStatus::Changed,
            Fate::Keep if state.status == Status::Untouched => SessionStatus::Unloaded,
            Fate::Keep if state.existed() => SessionStatus::Loaded,
            Fate::Keep => SessionStatus::New,
        }
    }

    /// The session's keys, in order.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed.
    pub async fn keys(&self) -> Result<Vec<String>, Error> {
        Ok(self.load().await?.data.keys().cloned().collect())
    }

    /// The whole session data, as it stands in this request.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed.
    pub async fn data(&self) -> Result<Data, Error> {
        Ok(self.load().await?.data.clone())
    }

    /// The number of keys.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed.
    pub async fn len(&self) -> Result<usize, Error> {
        Ok(self.load().await?.data.len())
    }

    /// Whether the session holds no keys.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed.
    pub async fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.load().await?.data.is_empty())
    }

    /// Gives the session a new id at the end of the request, keeping its data. Call it
    /// when privileges change (log in, log out of an admin role) so that an id seen
    /// before, perhaps planted by an attacker, is worth nothing afterwards.
    ///
    /// # Errors
    ///
    /// [`Error::Disabled`] on the `null` store; [`Error::Unavailable`] when the store
    /// failed.
    pub async fn cycle_id(&self) -> Result<(), Error> {
        if !self.inner.shared.writable {
            return Err(Error::Disabled);
        }
        let mut state = self.load().await?;
        // After `destroy` there is no entry to move: data inserted since starts a new
        // session, under a new id anyway.
        if state.fate == Fate::Keep {
            state.fate = Fate::Cycle;
        }
        Ok(())
    }

    /// Deletes the session: its entry goes from the store and the browser is told to
    /// drop the cookie. The session is empty afterwards; anything inserted later in the
    /// same request starts a new session with a new id.
    ///
    /// Costs no load: only the delete, after the handler.
    pub fn destroy(&self) {
        let mut state = self.state();
        state.raise(Status::Used);
        let id = self.identify(&mut state);
        let purge = match state.fate {
            Fate::Destroy { purge } => purge.or(id),
            _ => id,
        };
        let status = match state.status {
            Status::Failed => Status::Failed,
            _ => Status::Used,
        };
        let unbind = match state.fate {
            // Destroyed twice: the first knew.
            Fate::Destroy { .. } => state.unbind.take(),
            _ => super::users::loaded_user(&state).map(str::to_owned),
        };
        *state = State {
            status,
            identity: Identity::Read(None),
            fate: Fate::Destroy { purge },
            unbind,
            // Cut off from a failing store, it stays cut off: nothing is deleted.
            detached: state.detached,
            ..State::default()
        };
    }

    /// Whether the session's cookie outlives the browser session: the per-session flag
    /// set by [`Session::set_permanent`], or SESSION_PERMANENT.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed.
    pub async fn is_permanent(&self) -> Result<bool, Error> {
        let state = self.load().await?;
        Ok(self.permanent(&state))
    }

    pub(super) fn permanent(&self, state: &State) -> bool {
        state
            .changes
            .permanent()
            .or(state.stored_permanent())
            .unwrap_or_else(|| self.config().permanent())
    }

    /// Makes this session's cookie permanent (it carries an expiry) or a browser-session
    /// cookie, overriding SESSION_PERMANENT for this session only. The flag is stored
    /// with the session.
    ///
    /// # Errors
    ///
    /// [`Error::Disabled`] on the `null` store; [`Error::Unavailable`] when the store
    /// failed.
    pub async fn set_permanent(&self, permanent: bool) -> Result<(), Error> {
        if !self.inner.shared.writable {
            return Err(Error::Disabled);
        }
        let mut state = self.load().await?;
        if self.permanent(&state) != permanent {
            state.changes.set_permanent(permanent);
        }
        Ok(())
    }

    /// The lifetime this session lives by: its own ([`set_lifetime`](Self::set_lifetime)),
    /// or PERMANENT_SESSION_LIFETIME. It is how long the session lives past its last
    /// refresh, and what its cookie's expiry counts, all within SESSION_ABSOLUTE_LIFETIME
    /// from its creation when that is set.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed.
    pub async fn lifetime(&self) -> Result<Duration, Error> {
        let state = self.load().await?;
        Ok(self.lifetime_of(&state))
    }

    pub(super) fn lifetime_of(&self, state: &State) -> Duration {
        state
            .changes
            .lifetime()
            .unwrap_or_else(|| state.loaded.and_then(|loaded| loaded.meta.lifetime))
            .unwrap_or_else(|| self.config().lifetime())
            // A stored lifetime is data: never beyond what the settings accept.
            .clamp(Duration::from_secs(1), crate::config::MAX_LIFETIME)
    }

    /// Gives this session its own lifetime, in the place of PERMANENT_SESSION_LIFETIME
    /// (`None`: back to it): "remember me" for a month on one device, an hour on a shared
    /// one. The lifetime is stored with the session and survives
    /// [`cycle_id`](Self::cycle_id); every save and refresh counts it from then on, the
    /// cookie of a [permanent](Self::set_permanent) session carries it, and it never
    /// takes the session past SESSION_ABSOLUTE_LIFETIME. Stores keep it in whole
    /// seconds; a lifetime under a second, or over 100 years (the bound of
    /// PERMANENT_SESSION_LIFETIME), is refused.
    ///
    /// The request ends by re-sending the cookie with the new expiry.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use satchel::{MemoryStore, SessionConfig, SessionManager};
    ///
    /// # tokio_test::block_on(async {
    /// let manager = SessionManager::new(MemoryStore::default(), SessionConfig::default())?;
    /// let session = manager.session(None::<&str>);
    /// session.insert("user", "ada").await?;
    /// let month = Duration::from_secs(30 * 24 * 3600);
    /// session.set_lifetime(Some(month)).await?;
    /// assert_eq!(session.lifetime().await?, month);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Disabled`] on the `null` store; [`Error::InvalidLifetime`] for a
    /// lifetime under one second or over 100 years; [`Error::Unavailable`] when the
    /// store failed.
    pub async fn set_lifetime(&self, lifetime: Option<Duration>) -> Result<(), Error> {
        if !self.inner.shared.writable {
            return Err(Error::Disabled);
        }
        if let Some(lifetime) = lifetime
            && (lifetime.as_secs() == 0 || lifetime > crate::config::MAX_LIFETIME)
        {
            return Err(Error::InvalidLifetime);
        }
        // Whole seconds, as stored.
        let lifetime = lifetime.map(|lifetime| Duration::from_secs(lifetime.as_secs()));
        let mut state = self.load().await?;
        state.changes.set_lifetime(lifetime);
        Ok(())
    }

    /// When the session was created, as stored (an id rotation keeps it); `None` for a
    /// session not stored yet, or stored while SESSION_ABSOLUTE_LIFETIME was unset
    /// (the time is kept only for that limit).
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed.
    pub async fn created_at(&self) -> Result<Option<SystemTime>, Error> {
        Ok(self
            .load()
            .await?
            .loaded
            .and_then(|loaded| loaded.meta.created))
    }

    /// When the stored entry expires, as loaded; `None` for a session not stored yet.
    ///
    /// A refresh that falls due moves it when the request ends, and the re-sent cookie
    /// carries the new expiry.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed.
    pub async fn expires_at(&self) -> Result<Option<SystemTime>, Error> {
        Ok(self.load().await?.loaded.map(|loaded| loaded.expires_at))
    }

    /// The key of the stored session this request loaded, if any: what the store and
    /// the user indexes know it by, and what [`SessionManager::revoke`],
    /// [`SessionManager::revoke_user`] and [`SessionInfo::id`](crate::SessionInfo::id)
    /// take and give. With SESSION_HASH_IDS (the default) it is the
    /// [hash](SessionId::hashed) of the cookie's id, which does not work as a cookie;
    /// otherwise the cookie's id itself, a secret. Show its
    /// [fingerprint](SessionId::fingerprint), never the key.
    ///
    /// [`SessionManager::revoke`]: crate::SessionManager::revoke
    /// [`SessionManager::revoke_user`]: crate::SessionManager::revoke_user
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed.
    pub async fn id(&self) -> Result<Option<SessionId>, Error> {
        let state = self.load().await?;
        Ok(state.loaded_key())
    }
}

/// `value` of `key` converted to `T`.
fn typed<T: DeserializeOwned>(key: &str, value: Option<Value>) -> Result<Option<T>, Error> {
    value
        .map(|value| {
            serde_json::from_value(value).map_err(|source| Error::Value {
                key: key.to_owned(),
                source,
            })
        })
        .transpose()
}
