//! The end of a request: gathers the facts, runs the [plan](super::plan) and turns the
//! store's answers into the [`Outcome`].

use std::time::SystemTime;

use super::plan::{self, Answer, Cookie, Ending, Fate, Plan, Policy, Superseded, Write};
use super::users::{bound_user, loaded_user};
use super::{Disposition, Finished, Outcome, Replacement, Session, State, Status, store_failed};
use crate::config::FailurePolicy;
use crate::error::{Error, StoreError};
use crate::id::SessionId;
use crate::observability::Event;
use crate::store::{Saved, Seen, SessionStore};
use crate::support::Chain;

impl Session {
    /// Ends the request as [`finish`](Self::finish) does, and says how to answer: the
    /// one call an integration makes once the handler has run.
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::{Finished, MemoryStore, SessionConfig, SessionManager};
    ///
    /// # tokio_test::block_on(async {
    /// let manager = SessionManager::new(MemoryStore::default(), SessionConfig::default())?;
    /// let session = manager.session(None::<&str>);
    /// session.insert("user", "ada").await?;
    /// match session.conclude(200).await {
    ///     Finished::Respond(outcome) => assert!(outcome.set_cookie().is_some()),
    ///     Finished::Replace(replacement) => panic!("answered {}", replacement.status()),
    /// }
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn conclude(&self, status: u16) -> Finished {
        self.answer(self.finish(status).await)
    }

    /// How to answer once [`finish`](Self::finish) has given `ended`: its outcome, or the
    /// empty answer SESSION_STORE_FAILURE chooses for a failed store (an empty `503` with
    /// `Retry-After` under `unavailable`), or the error's status.
    /// [`conclude`](Self::conclude) is `finish` then `answer`; an integration that wants
    /// no extra future around `finish` calls the two itself.
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::{Error, FailurePolicy, Finished, MemoryStore, SessionConfig, SessionManager};
    ///
    /// let config = SessionConfig::default().with_store_failure(FailurePolicy::Unavailable);
    /// let manager = SessionManager::new(MemoryStore::default(), config)?;
    /// let session = manager.session(None::<&str>);
    /// match session.answer(Err(Error::Unavailable)) {
    ///     Finished::Replace(replacement) => {
    ///         assert_eq!(replacement.status(), 503);
    ///         assert!(replacement.retry_after().is_some());
    ///     }
    ///     Finished::Respond(_) => unreachable!(),
    /// }
    /// # Ok::<_, satchel::ConfigError>(())
    /// ```
    pub fn answer(&self, ended: Result<Outcome, Error>) -> Finished {
        match ended {
            Ok(outcome) => Finished::Respond(outcome),
            Err(Error::Unavailable)
                if self.config().store_failure() == FailurePolicy::Unavailable =>
            {
                let wait = self.inner.shared.store.retry_after();
                // Whole seconds, rounded up: a client must not come back before the
                // store is tried again.
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                Finished::Replace(Replacement::new(503).with_retry_after(seconds.max(1)))
            }
            Err(error) => Finished::Replace(Replacement::new(error.status_code())),
        }
    }

    /// Ends the request: saves what changed and says what to put on the response.
    ///
    /// - A session the handler never used: nothing, not even `Vary`.
    /// - A `5xx` status: nothing is saved; `Vary: Cookie` only.
    /// - Changes are applied as one change set onto the latest stored entry; an entry
    ///   left empty is deleted and its cookie removed; a new session that ends empty is
    ///   never stored.
    /// - Without changes, when SESSION_REFRESH_EACH_REQUEST is on, a stored permanent
    ///   session's expiry is moved to a full lifetime from now once it lags by more than
    ///   [`refresh_granularity`](crate::SessionConfig::refresh_granularity): a touch, which is
    ///   then the request's one write, and the cookie is re-sent with the new expiry.
    ///   Between touches the browser's cookie already expires with the stored entry, so
    ///   it is not re-sent. Non-permanent sessions are neither re-sent nor extended. A
    ///   cookie verified by a fallback key is re-signed.
    /// - A cookie that names no live session is left alone (a concurrent request may be
    ///   replacing it); it is removed only when this request destroyed or emptied the
    ///   session.
    /// - A session that another request destroyed (or that expired) while this one ran
    ///   stays destroyed: this request's changes are dropped, not written into a new
    ///   entry under the old id (see [`Changes::require_existing`](crate::record::Changes::require_existing)).
    ///
    /// When the store fails, SESSION_STORE_FAILURE decides (see
    /// [`FailurePolicy`]): under `anonymous` the outcome is the handler's response with
    /// `Vary: Cookie` only, nothing is written and the dropped changes are counted;
    /// otherwise the error below.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the store failed during the request or now; the
    /// integration answers with an empty `500` (`503` under
    /// SESSION_STORE_FAILURE=unavailable). [`Error::Superseded`] when keys this
    /// request set could not be kept because its session was destroyed, rotated or
    /// expired meanwhile (or, lately in this process, before it loaded); the integration
    /// answers with an empty `409`. [`Error::TooLarge`] when the store refused the save
    /// because the request's changes, merged onto the latest stored session (which a
    /// concurrent request may have grown), would take it over SESSION_MAX_SIZE: nothing
    /// was written, and the integration answers with an empty `500` (whatever
    /// SESSION_STORE_FAILURE says: the store is healthy). Keys updated at once
    /// ([`increment`](Self::increment),
    /// [`insert_if_unchanged`](Self::insert_if_unchanged)) were committed when those
    /// returned, whatever the request's end.
    pub async fn finish(&self, status: u16) -> Result<Outcome, Error> {
        let mut state = {
            let mut guard = self.state();
            if guard.status == Status::Untouched {
                // A session the handler never used holds nothing to take.
                return Ok(Outcome::default());
            }
            std::mem::take(&mut *guard)
        };
        state.settle(self.config().permanent());
        if state.detached {
            // A 5xx answer saves nothing anyway: nothing was dropped.
            let wrote = status < 500
                && (!state.changes.is_empty()
                    || state.fate != Fate::Keep
                    || state.unbind.is_some());
            return Ok(if wrote {
                self.dropped()
            } else {
                Outcome::degraded()
            });
        }
        let config = self.config();
        let lifetime = self.lifetime_of(&state);
        // Under an absolute limit, a new session, and one stored without its creation
        // time (while the limit was unset), are stamped now, and counted from now: such a
        // session is saved even by a read, or its reads would keep it alive for ever.
        let stamp = config
            .absolute_lifetime()
            .filter(|_| {
                state
                    .loaded
                    .is_none_or(|loaded| loaded.meta.created.is_none())
            })
            // In whole milliseconds, as stores keep it: the deadline counted from it now
            // is the one counted from the stored time later.
            .map(|_| {
                crate::support::from_unix_millis(crate::support::unix_millis(SystemTime::now()))
            });
        if let Some(at) = stamp {
            state.changes.set_created(at);
        }
        let created = state
            .loaded
            .and_then(|loaded| loaded.meta.created)
            .or(stamp);
        // Read only for a request that has store work to do: an untouched session costs
        // no clock reading (but for the stamp above, under an absolute limit).
        let policy = || Policy {
            now: SystemTime::now(),
            lifetime,
            deadline: config
                .absolute_lifetime()
                .and_then(|limit| created?.checked_add(limit)),
            granularity: lifetime / 100,
            refresh_each_request: config.refresh_each_request(),
        };
        let mut ending = self.ending(&state, status);
        if stamp.is_some() && ending.existed {
            ending.changed = true;
        }
        let (delete, write) = match plan::plan(&ending, policy) {
            Plan::Untouched => return Ok(Outcome::default()),
            Plan::Failed => return Err(Error::Unavailable),
            Plan::VaryOnly => return Ok(Outcome::vary_only()),
            Plan::Act { delete, write } => (delete, write),
        };
        let store = self.store();
        if let (true, Fate::Destroy { purge: Some(old) }) = (delete, state.fate) {
            // Retired before the delete: a request that finds the entry gone must already
            // see that it was destroyed, not that it never was.
            let key = self.key(&old);
            self.retire(key);
            if let Err(error) = store.delete(&key).await {
                return self.failed_at_end(store_failed("delete", &error));
            }
            // While raw entries move, one that has not moved yet goes too: else the next
            // request with the cookie would move it back to life.
            if key != old
                && self.config().hash_ids_migrate()
                && let Err(error) = store.delete(&old).await
            {
                return self.failed_at_end(store_failed("delete", &error));
            }
            Event::Destroyed.record();
            if let Some(user) = &state.unbind {
                self.unbind(user, key).await;
            }
        }
        if ending.existed {
            // Never bring back an entry that a concurrent request destroyed meanwhile.
            state.changes.require_existing();
        }
        if let Some(budget) = self.budget() {
            // The store checks it again on what it merges: a concurrent request's keys
            // may take the session over it.
            state.changes.limit_size(budget);
        }
        let destroyed = delete && matches!(state.fate, Fate::Destroy { .. });
        let (id, answer) = match write {
            Write::Nothing => (state.loaded_id(), Answer::Nothing),
            // Boxed: a write's future is large, and inline it would be part of the future
            // of every request, which the integrations box (copying it all).
            _ => match Box::pin(self.write(&state, &write)).await {
                Ok(written) => written,
                Err(error) => return self.failed_at_end(error),
            },
        };
        let cookie = plan::cookie(&ending, &write, answer).map_err(|Superseded| {
            tracing::debug!("session ended by a concurrent request; changes dropped");
            Error::Superseded
        })?;
        let shared = &self.inner.shared;
        let set_cookie = match (cookie, id) {
            (Cookie::Leave, _) => None,
            (Cookie::Remove, _) => Some(shared.cookie.removal()),
            (Cookie::Same(expires), Some(id)) => Some(self.same_id_cookie(&state, &id, expires)),
            (Cookie::New(expires), Some(id)) => {
                Some(shared.cookie.set(&self.cookie_value(&id), expires))
            }
            // A cookie for an id is planned only for a write that names one.
            (Cookie::Same(_) | Cookie::New(_), None) => None,
        };
        // In its cookie, the session goes out whenever the request changed it: the
        // cookie is all there is of it.
        #[cfg(feature = "cookie")]
        let set_cookie = match &self.inner.jar {
            Some(in_cookie) if in_cookie.jar.changed() || set_cookie.is_some() => {
                // A request that began before this process logged the session out or
                // moved it to a new id must not send the old session back: its answer
                // could land after the log-out's and undo it. (Another process does not
                // know; the cookie store cannot recall a cookie.)
                let stays = id.is_some() && id == state.loaded_id();
                if let Some(key) = state.loaded_key().filter(|_| stays)
                    && self.retired().contains(&key)
                {
                    tracing::debug!("session ended by a concurrent request; changes dropped");
                    return Err(Error::Superseded);
                }
                self.carry(in_cookie, id, ending.presented).await?
            }
            _ => set_cookie,
        };
        let disposition = match (write, answer) {
            (Write::Cycle { .. }, _) => Disposition::Cycled,
            (Write::Create { .. }, Answer::Saved(Saved::Stored)) => Disposition::Created,
            (Write::Save { .. }, Answer::Saved(Saved::Stored)) => Disposition::Changed,
            (Write::Touch { .. }, Answer::Touched(_)) => Disposition::Refreshed,
            _ if destroyed => Disposition::Destroyed,
            // Saved with no data left: the entry went.
            (Write::Save { .. }, Answer::Saved(Saved::Empty)) => Disposition::Destroyed,
            _ => Disposition::Read,
        };
        Ok(Outcome {
            set_cookie,
            vary_cookie: true,
            disposition,
        })
    }

    /// The `Set-Cookie` value carrying the session `id` as the request leaves it in its
    /// own store (SESSION_TYPE=cookie); the cookie's removal when there is none left and
    /// the browser `presented` one.
    #[cfg(feature = "cookie")]
    async fn carry(
        &self,
        in_cookie: &super::InCookie,
        id: Option<SessionId>,
        presented: bool,
    ) -> Result<Option<String>, Error> {
        use crate::store::cookie::COOKIE_LIMIT;
        let shared = &self.inner.shared;
        let record = match id {
            Some(id) => {
                let key = self.key(&id);
                let record = in_cookie.jar.load(&key, None).await;
                record.map_err(|e| store_failed("load", &e))?
            }
            None => None,
        };
        let (Some(id), Some(record), Some(sealer)) = (id, record, &shared.sealer) else {
            return Ok(presented.then(|| shared.cookie.removal()));
        };
        let name = shared.cookie.name();
        let value = sealer
            .seal(name, &id, &record)
            .map_err(|e| store_failed("seal the session into its cookie", &e))?;
        let size = name.len() + 1 + value.len();
        if size > COOKIE_LIMIT {
            let refused = StoreError::TooLarge {
                budget: COOKIE_LIMIT,
                size,
            };
            return Err(store_failed("send the session in its cookie", &refused));
        }
        let permanent = record.permanent.unwrap_or(self.config().permanent());
        let expires = permanent.then_some(record.expires_at);
        Ok(Some(shared.cookie.set(&value, expires)))
    }

    /// The outcome of a request whose session changes the failing store did not get
    /// (SESSION_STORE_FAILURE=anonymous): said and counted.
    fn dropped(&self) -> Outcome {
        tracing::warn!(
            "session store failed: this request's session changes were dropped \
             (SESSION_STORE_FAILURE=anonymous)"
        );
        crate::observability::write_dropped();
        Outcome::degraded()
    }

    /// The end of a request whose store failed at its end: the failure policy's error,
    /// or under SESSION_STORE_FAILURE=anonymous the handler's answer, its changes dropped.
    fn failed_at_end(&self, error: Error) -> Result<Outcome, Error> {
        match error {
            Error::Unavailable if self.goes_on_without_store() => Ok(self.dropped()),
            error => Err(error),
        }
    }

    /// The facts of `state` the end of the request decides on.
    fn ending(&self, state: &State, status: u16) -> Ending {
        Ending {
            status,
            touched: state.status != Status::Untouched,
            failed: state.status == Status::Failed,
            fate: state.fate,
            existed: state.loaded_id().is_some(),
            changed: !state.changes.is_empty(),
            sets_keys: !state.changes.sets().is_empty(),
            has_data: !state.data.is_empty(),
            updated: state.status == Status::Updated,
            permanent: self.permanent(state),
            flag_changed: state.changes.permanent().is_some() || state.changes.lifetime().is_some(),
            resign: state.presented().is_some_and(|presented| presented.resign),
            stored_expires: state.loaded.map(|loaded| loaded.expires_at),
            has_version: state.loaded.and_then(|loaded| loaded.version).is_some(),
            presented: !self.inner.candidates.is_empty(),
        }
    }

    /// Runs the plan's one write: the id it concerns (the new one for a cycle or a new
    /// session) and what the store answered.
    async fn write(
        &self,
        state: &State,
        write: &Write,
    ) -> Result<(Option<SessionId>, Answer), Error> {
        let store = self.store();
        let saved = |result: Result<Saved, StoreError>| {
            result
                .map(Answer::Saved)
                .map_err(|e| store_failed("save", &e))
        };
        let id = state.loaded_id();
        let loaded_key = state.loaded_key();
        match (*write, id) {
            (Write::Nothing, _) => Ok((id, Answer::Nothing)),
            (Write::Cycle { expires_at }, Some(old)) => {
                let new = SessionId::generate();
                let (old_key, new_key) = (loaded_key.unwrap_or(old), self.key(&new));
                let (user, previous) = (bound_user(state), loaded_user(state));
                // Indexed before the move, so that a bound session is always found.
                if let Some(user) = user {
                    self.index(user, &new_key).await?;
                }
                // Retired before the move, as for a delete. While the move runs, the id
                // still names its entry, which any request for it loads as usual.
                self.retire(old_key);
                let moved = store
                    .cycle(&old_key, &new_key, &state.changes, expires_at)
                    .await;
                if let Err(StoreError::TooLarge { .. }) = moved {
                    // Refused for its size: the session stays under its old id, which is
                    // not retired after all, and the new key, never written, leaves the
                    // index it joined above.
                    self.unretire(&old_key);
                    if let Some(user) = user {
                        self.manager().unindex(user, &[new_key]).await;
                    }
                }
                let answer = saved(moved)?;
                Event::Cycled.record();
                let newly = user.filter(|_| user != previous);
                self.after_binding(newly, previous.map(|user| (user, old_key)))
                    .await;
                Ok((Some(new), answer))
            }
            (
                Write::Save {
                    expires_at, seen, ..
                },
                Some(id),
            ) => {
                let key = loaded_key.unwrap_or(id);
                let (user, previous) = (bound_user(state), loaded_user(state));
                let rebound = user != previous;
                if let (true, Some(user)) = (rebound, user) {
                    self.index(user, &key).await?;
                }
                let result = match state
                    .loaded
                    .and_then(|loaded| loaded.version)
                    .filter(|_| seen)
                {
                    Some(version) => {
                        let loaded = state.loaded.map(|loaded| loaded.meta);
                        let meta = state.changes.meta_onto(loaded.unwrap_or_default());
                        let seen = Seen {
                            version,
                            data: &state.data,
                            permanent: meta.permanent,
                            created: meta.created,
                            lifetime: meta.lifetime,
                        };
                        store
                            .save_seen(&key, seen, &state.changes, expires_at)
                            .await
                    }
                    None => store.save(&key, &state.changes, expires_at).await,
                };
                let answer = saved(result)?;
                if rebound {
                    self.after_binding(user, previous.map(|user| (user, key)))
                        .await;
                }
                Ok((Some(id), answer))
            }
            (Write::Touch { expires_at }, Some(id)) => {
                // The refresh is this request's one write: a touch that moves the expiry
                // and leaves the data alone.
                let key = loaded_key.unwrap_or(id);
                let answer = match store.load(&key, Some(expires_at)).await {
                    Ok(Some(record)) => {
                        Event::Refreshed.record();
                        Answer::Touched(record.expires_at)
                    }
                    Ok(None) => Answer::Gone,
                    Err(error) => {
                        // Nothing the request did is lost: the entry keeps its expiry,
                        // and so does the browser's cookie.
                        tracing::warn!(
                            error = %Chain(&error),
                            "session store failed to refresh an expiry; left as it was"
                        );
                        Answer::TouchFailed
                    }
                };
                Ok((Some(id), answer))
            }
            (
                Write::Create {
                    expires_at,
                    check_retired,
                },
                _,
            ) => {
                if check_retired && self.presents_retired_id() {
                    tracing::debug!("a rotated or destroyed session id came back; not replaced");
                    return Err(Error::Superseded);
                }
                let new = SessionId::generate();
                let key = self.key(&new);
                let user = bound_user(state);
                if let Some(user) = user {
                    self.index(user, &key).await?;
                }
                let answer = saved(store.save(&key, &state.changes, expires_at).await)?;
                if answer == Answer::Saved(Saved::Stored) {
                    Event::Created.record();
                }
                if user.is_some() {
                    self.after_binding(user, None).await;
                }
                Ok((Some(new), answer))
            }
            // The plan writes under the loaded id only when one was loaded.
            (Write::Cycle { .. } | Write::Save { .. } | Write::Touch { .. }, None) => {
                Ok((None, Answer::Nothing))
            }
        }
    }
}
