//! Sessions by user: binding a session to a user, listing a user's sessions, revoking
//! them ("log out everywhere"), and the per-user cap (SESSION_MAX_PER_USER). The index
//! itself is the store's ([`store::index`](crate::store::index)).

use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

use serde_json::Value;

use super::{Session, SessionManager, State, store_failed};
use crate::error::{Error, StoreError};
use crate::id::SessionId;
use crate::store::SessionStore;
use crate::store::index::{self, USER_KEY};
use crate::support::Chain;

/// One live session of a user, as listed by [`SessionManager::user_sessions`].
///
/// It is named by its key in the store: with SESSION_HASH_IDS (the default) a hash of the
/// cookie's id, which does not work as a cookie; otherwise the cookie's id itself, a
/// secret. Either way, show the [`fingerprint`](Self::fingerprint) instead.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    id: SessionId,
    /// The key's [fingerprint](SessionId::fingerprint): what listings show.
    pub fingerprint: String,
    /// When the session was bound to the user (its log-in).
    pub created: SystemTime,
    /// When the session was last written or refreshed: its expiry less the lifetime
    /// (SESSION_REFRESH_EACH_REQUEST moves it at most once per 1% of the lifetime), and
    /// never before [`created`](Self::created).
    pub last_seen: SystemTime,
    /// When the stored entry expires.
    pub expires_at: SystemTime,
    /// Whether the session's cookie outlives the browser session.
    pub permanent: bool,
    /// The size of the session's data, as JSON, in bytes.
    pub size: usize,
}

impl SessionInfo {
    /// The session's key in the store, as [`Session::id`] gives it and
    /// [`SessionManager::revoke`] takes it. Never show it: show the fingerprint.
    #[must_use]
    pub fn id(&self) -> &SessionId {
        &self.id
    }
}

impl SessionManager {
    /// The live sessions bound to `user`, most recently seen first (then most recently
    /// bound). Sessions that no
    /// longer load (expired, revoked) are dropped from the index on the way.
    ///
    /// Costs one load of the index and one load per session in it.
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::{MemoryStore, SessionConfig, SessionManager};
    ///
    /// # tokio_test::block_on(async {
    /// let manager = SessionManager::new(MemoryStore::default(), SessionConfig::default())?;
    /// for _ in 0..2 {
    ///     let session = manager.session(None::<&str>);
    ///     session.set_user("42").await?;
    ///     session.finish(200).await?;
    /// }
    /// let sessions = manager.user_sessions("42").await?;
    /// assert_eq!(sessions.len(), 2);
    /// assert_eq!(sessions[0].fingerprint.len(), 12);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed (logged).
    pub async fn user_sessions(&self, user: &str) -> Result<Vec<SessionInfo>, Error> {
        let store = &self.shared.store;
        let members = index::members(store, user)
            .await
            .map_err(|e| store_failed("list a user's sessions", &e))?;
        let loads = members.iter().map(|member| store.load(&member.id, None));
        let loaded = futures_util::future::join_all(loads).await;
        let now = SystemTime::now();
        let lifetime = self.shared.config.lifetime();
        let mut sessions = Vec::with_capacity(members.len());
        let mut stale = Vec::new();
        for (member, result) in members.iter().zip(loaded) {
            match result {
                Ok(Some(record))
                    if !record.is_expired(now)
                        && !outlived(&self.shared.config, &record, now)
                        && record.data.get(USER_KEY).and_then(Value::as_str) == Some(user) =>
                {
                    let last_seen = record
                        .expires_at
                        .checked_sub(record.lifetime.unwrap_or(lifetime))
                        .map_or(member.bound_at, |at| at.max(member.bound_at));
                    sessions.push(SessionInfo {
                        id: member.id,
                        fingerprint: member.id.fingerprint(),
                        created: member.bound_at,
                        last_seen,
                        expires_at: record.expires_at,
                        permanent: record.permanent.unwrap_or(self.shared.config.permanent()),
                        size: serde_json::to_vec(&record.data).map_or(0, |json| json.len()),
                    });
                }
                Err(StoreError::Decode(_)) | Ok(_) => {
                    if index::is_settled(member.bound_at, now) {
                        stale.push(member.id);
                    }
                }
                Err(error) => return Err(store_failed("list a user's sessions", &error)),
            }
        }
        if let Err(error) = index::remove(store, user, &stale).await {
            // The members stay until the next listing drops them.
            tracing::warn!(error = %Chain(&error), "dropping dead sessions from a user's index failed");
        }
        sessions.sort_by_key(|info| std::cmp::Reverse((info.last_seen, info.created, info.id)));
        Ok(sessions)
    }

    /// Revokes the session stored under `id` (its key, as [`Session::id`] and
    /// [`SessionInfo::id`] give it): deletes its entry, so that no request, in flight or
    /// later, can use or write it again (a request that loaded it before finds it gone
    /// when it saves, as after a log-out), and drops it from its user's index. Says
    /// whether there was a live session to revoke.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed (logged).
    pub async fn revoke(&self, id: &SessionId) -> Result<bool, Error> {
        let store = &self.shared.store;
        let record = match store.load(id, None).await {
            Ok(record) => record,
            Err(StoreError::Decode(_)) => None,
            Err(error) => return Err(store_failed("load a session to revoke", &error)),
        };
        self.shared.retired().add(*id);
        store
            .delete(id)
            .await
            .map_err(|e| store_failed("revoke a session", &e))?;
        let Some(record) = record.filter(|record| !record.is_expired(SystemTime::now())) else {
            return Ok(false);
        };
        if let Some(user) = record.data.get(USER_KEY).and_then(Value::as_str) {
            self.unindex(user, &[*id]).await;
        }
        Ok(true)
    }

    /// Revokes every session of `user` but `keep` (the current one's key, from
    /// [`Session::id`], for "log out everywhere else"), as [`revoke`](Self::revoke) does
    /// each; says how many went.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed (logged); the sessions revoked
    /// before the failure stay revoked.
    pub async fn revoke_user(&self, user: &str, keep: Option<&SessionId>) -> Result<usize, Error> {
        let store = &self.shared.store;
        let members = index::members(store, user)
            .await
            .map_err(|e| store_failed("list a user's sessions", &e))?;
        let doomed: Vec<SessionId> = members
            .iter()
            .map(|member| member.id)
            .filter(|id| Some(id) != keep)
            .collect();
        let mut revoked = 0;
        for id in &doomed {
            self.shared.retired().add(*id);
            let deleted = store.delete(id).await;
            deleted.map_err(|e| store_failed("revoke a session", &e))?;
            revoked += 1;
        }
        self.unindex(user, &doomed).await;
        Ok(revoked)
    }

    /// Revokes `user`'s least recently seen sessions beyond SESSION_MAX_PER_USER.
    ///
    /// Every process ranks the sessions by the same total order (last seen, then
    /// bound, then id), so log-ins racing each other agree on which survive: the last
    /// to list sees them all, and exactly the cap remains.
    async fn enforce_cap(&self, user: &str) -> Result<(), Error> {
        let Some(max) = self.shared.config.max_per_user() else {
            return Ok(());
        };
        let sessions = self.user_sessions(user).await?;
        for info in sessions.iter().skip(max) {
            self.revoke(&info.id).await?;
        }
        Ok(())
    }

    /// Drops `ids` from `user`'s index; a failure is logged (the dead members go at the
    /// next listing).
    pub(super) async fn unindex(&self, user: &str, ids: &[SessionId]) {
        if let Err(error) = index::remove(&self.shared.store, user, ids).await {
            tracing::warn!(error = %Chain(&error), "dropping sessions from a user's index failed");
        }
    }
}

impl Session {
    /// Binds the session to `user` (a user id, as text) for the rest of its life: it is
    /// kept under the session key `_user_id` (Flask-Login's, so a Flask application
    /// sharing the sessions sees the same user), the session joins the user's index
    /// when the request ends, and [`SessionManager::user_sessions`] and
    /// [`SessionManager::revoke_user`] find it. [`cycle_id`](Self::cycle_id) keeps the
    /// binding; [`destroy`](Self::destroy) drops the session from the index. With
    /// SESSION_MAX_PER_USER set, the user's least recently seen sessions beyond it are
    /// revoked once this one is saved.
    ///
    /// Costs one more write when the request ends (the index's), and only when the
    /// binding changes.
    ///
    /// # Errors
    ///
    /// As for [`insert`](Self::insert).
    pub async fn set_user(&self, user: impl Into<String>) -> Result<(), Error> {
        self.insert(USER_KEY, user.into()).await
    }

    /// The user the session is bound to ([`set_user`](Self::set_user)).
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed.
    pub async fn user(&self) -> Result<Option<String>, Error> {
        let state = self.load().await?;
        Ok(bound_user(&state).map(str::to_owned))
    }

    /// The manager this session came from: for what a handler does beyond its own
    /// session (listing the user's other sessions, logging them out).
    #[must_use]
    pub fn manager(&self) -> SessionManager {
        SessionManager {
            shared: std::sync::Arc::clone(&self.inner.shared),
        }
    }

    /// Adds `id` to `user`'s index, before the write that binds it.
    ///
    /// Boxed, as [`after_binding`](Self::after_binding) is: they run only when a
    /// binding changes, and inline they would more than double the future of every
    /// request, which the integrations box (a copy of it all, on every request).
    pub(super) fn index<'a>(
        &'a self,
        user: &'a str,
        id: &'a SessionId,
    ) -> Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>> {
        Box::pin(async move {
            if self.in_cookie() {
                // A cookie's session is on no server: there is no index to join.
                return Ok(());
            }
            index::add(self.store(), user, id, SystemTime::now())
                .await
                .map_err(|e| store_failed("index the session's user", &e))
        })
    }

    /// After the write that bound a session to `user`: the old id out of the index of
    /// the user it was bound to before (`old`), then the cap. Boxed, see
    /// [`index`](Self::index).
    pub(super) fn after_binding<'a>(
        &'a self,
        user: Option<&'a str>,
        old: Option<(&'a str, SessionId)>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            if self.in_cookie() {
                return;
            }
            let manager = self.manager();
            if let Some((old_user, old_id)) = old {
                manager.unindex(old_user, &[old_id]).await;
            }
            if let Some(user) = user
                && let Err(error) = manager.enforce_cap(user).await
            {
                tracing::warn!(%error, "enforcing SESSION_MAX_PER_USER failed; the log-in stands");
            }
        })
    }

    /// Drops the destroyed session `old` from `user`'s index. Boxed, see
    /// [`index`](Self::index).
    pub(super) fn unbind<'a>(
        &'a self,
        user: &'a str,
        old: SessionId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            if !self.in_cookie() {
                self.manager().unindex(user, &[old]).await;
            }
        })
    }
}

/// The user the session is bound to in the request's view.
pub(super) fn bound_user(state: &State) -> Option<&str> {
    state.data.get(USER_KEY).and_then(Value::as_str)
}

/// The user the stored entry was bound to when the request loaded it.
pub(super) fn loaded_user(state: &State) -> Option<&str> {
    match state.original.get(USER_KEY) {
        Some(original) => original.as_ref().and_then(Value::as_str),
        None if state.loaded.is_some() => bound_user(state),
        None => None,
    }
}

/// Whether `record` has passed SESSION_ABSOLUTE_LIFETIME from its creation at `now`: dead
/// whatever its expiry says.
pub(super) fn outlived(
    config: &crate::SessionConfig,
    record: &crate::Record,
    now: SystemTime,
) -> bool {
    match (config.absolute_lifetime(), record.created) {
        (Some(limit), Some(created)) => created.checked_add(limit).is_some_and(|end| end <= now),
        _ => false,
    }
}
