//! Error types.

use std::fmt;

/// A boxed error from a store's backend, kept as the source of a [`StoreError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A session store failed.
///
/// The source is kept, so the whole cause chain can be logged. Messages never contain a
/// session id or a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend (server, file system, connection) failed.
    #[error("session backend failed")]
    Backend(#[source] BoxError),
    /// A record could not be encoded for storage.
    #[error("session record could not be encoded")]
    Encode(#[source] BoxError),
    /// A stored record could not be decoded: it is corrupt or was written by something
    /// else. The engine treats it as "no session" and logs a warning.
    #[error("stored session record could not be decoded")]
    Decode(#[source] BoxError),
    /// The store does not keep sessions (the `null` store): writing is refused.
    #[error("sessions are disabled: set SESSION_TYPE to a store to enable them")]
    Disabled,
    /// The store cannot do this at all (memcached cannot list its keys); says what.
    #[error("this store cannot {0}")]
    Unsupported(&'static str),
    /// The store answered, but gave up on a write that too many concurrent writes to the
    /// same session kept getting in the way of (memcached's compare-and-swap loop). The
    /// store is healthy: the circuit breaker does not count it.
    #[error("session store gave up on a contended write")]
    Contended(#[source] BoxError),
    /// The write would make the session larger than its size budget (the change set's
    /// [`max_size`](crate::Changes::max_size), from SESSION_MAX_SIZE), or larger than
    /// the backend itself takes (memcached's item size, Redis' `proto-max-bulk-len`):
    /// nothing was written. The store is healthy: the circuit breaker does not count it.
    #[error("{}", too_large_message(*.budget, *.size))]
    TooLarge {
        /// The budget in bytes; `0` when the limit is the backend's and its value is
        /// unknown.
        budget: usize,
        /// The size the session would have had, in bytes, in the store's measure (see
        /// [`stored_size`](crate::record::stored_size)).
        size: usize,
    },
    /// The store was not asked: it failed SESSION_BREAKER_FAILURES times in a row, and the
    /// circuit breaker holds calls back until its cool-down ends. Stores never return it;
    /// the engine's breaker does.
    #[error("session store not asked: it keeps failing, and the circuit breaker is open")]
    CircuitOpen,
}

/// The message of a size refusal, naming both numbers.
fn too_large_message(budget: usize, size: usize) -> String {
    if budget == 0 {
        format!(
            "session would hold {size} bytes, more than the session store takes (its limit is unknown)"
        )
    } else {
        format!(
            "session would hold {size} bytes, over its budget of {budget} (SESSION_MAX_SIZE; \
             under SESSION_TYPE=cookie, what one cookie carries)"
        )
    }
}

impl StoreError {
    /// Wraps a backend failure; for `.map_err(StoreError::backend)`.
    pub fn backend(error: impl Into<BoxError>) -> Self {
        Self::Backend(error.into())
    }

    /// Wraps an encoding failure; for `.map_err(StoreError::encode)`.
    pub fn encode(error: impl Into<BoxError>) -> Self {
        Self::Encode(error.into())
    }

    /// Wraps a decoding failure; for `.map_err(StoreError::decode)`.
    pub fn decode(error: impl Into<BoxError>) -> Self {
        Self::Decode(error.into())
    }
}

/// An error from a [`Session`](crate::Session) operation.
///
/// With the `axum` feature it converts into an empty-bodied `500 Internal Server Error`,
/// so handlers can use `?` on session calls.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed while loading or saving this request's session. The cause was
    /// logged where it happened; the response becomes an empty 500 (or what
    /// SESSION_STORE_FAILURE says).
    #[error("session store unavailable")]
    Unavailable,
    /// Sessions are disabled (SESSION_TYPE is `null`), so the session cannot be modified.
    #[error(
        "sessions are disabled: set SESSION_TYPE to a store (e.g. memory, filesystem, redis) to enable them"
    )]
    Disabled,
    /// The session was destroyed, rotated to a new id or expired by another request
    /// while this one ran, so this request's changes were not kept: they are dropped
    /// with the old session rather than written into it (which would undo a logout) or
    /// carried to its new id (which would let whoever holds the old id write into the
    /// new session). The response becomes an empty `409 Conflict` with `Vary: Cookie`
    /// and no `Set-Cookie`: the browser keeps what the other request sent it.
    #[error("the session ended while this request ran: its changes were not kept")]
    Superseded,
    /// A conditional write ([`Session::insert_if_unchanged`](crate::Session::insert_if_unchanged))
    /// found that another request changed the key since this request read it: nothing
    /// was written. As an answer, an empty `409 Conflict`; a handler may instead map it
    /// to its own answer or decide again from the key's current value.
    #[error("session key {key:?} was changed by another request")]
    Conflict {
        /// The session key whose value changed.
        key: String,
    },
    /// [`Session::increment`](crate::Session::increment) found a value that is not an
    /// integer, or the sum would leave the 64-bit range: nothing was written.
    #[error("session value for key {key:?} is not an integer that can be incremented")]
    NotAnInteger {
        /// The session key.
        key: String,
    },
    /// The store cannot do what was asked: the `cookie` store keeps no sessions on a
    /// server, so it cannot list a user's sessions or revoke one. As an answer, an empty
    /// `500`.
    #[error("the session store cannot {0}")]
    Unsupported(&'static str),
    /// [`Session::set_lifetime`](crate::Session::set_lifetime) was given a lifetime
    /// under one second (stores keep whole seconds) or over 100 years: nothing was
    /// changed.
    #[error("a session lifetime must be between one second and 100 years")]
    InvalidLifetime,
    /// The session would grow over its size budget (SESSION_MAX_SIZE), or over what the
    /// store takes: nothing was changed. An insert that would cross the budget fails at
    /// once, leaving the session as it was; a save whose merge onto a newer stored entry
    /// would cross it is refused by the store, and the request's changes are not kept.
    /// As an answer, an empty `500`; a handler may map it to its own answer (e.g. `413`).
    #[error("{}", too_large_message(*.budget, *.size))]
    TooLarge {
        /// The budget in bytes; `0` when the limit is the store's own and unknown.
        budget: usize,
        /// The size the session would have had, in bytes.
        size: usize,
    },
    /// A value could not be converted to or from its stored form.
    #[error("session value for key {key:?} could not be converted")]
    Value {
        /// The session key whose value failed to convert.
        key: String,
        /// What went wrong.
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// The HTTP status an integration answers with when this error ends a request:
    /// `409` for [`Superseded`](Self::Superseded) and [`Conflict`](Self::Conflict), `500`
    /// for the rest (a store that failed, or a mistake of the application's, never the
    /// client's).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(satchel::Error::Superseded.status_code(), 409);
    /// assert_eq!(satchel::Error::Unavailable.status_code(), 500);
    /// ```
    #[must_use]
    pub fn status_code(&self) -> u16 {
        match self {
            Self::Superseded | Self::Conflict { .. } => 409,
            Self::Unavailable
            | Self::Disabled
            | Self::NotAnInteger { .. }
            | Self::InvalidLifetime
            | Self::Unsupported(_)
            | Self::TooLarge { .. }
            | Self::Value { .. } => 500,
        }
    }

    /// Whether the error is one to log at `error` level where it is answered: a
    /// mistake of the application's or its configuration. A store failure was logged
    /// where it happened, and a conflict is the client's race, not a fault.
    fn is_fault(&self) -> bool {
        matches!(
            self,
            Self::Disabled
                | Self::NotAnInteger { .. }
                | Self::InvalidLifetime
                | Self::Unsupported(_)
                | Self::TooLarge { .. }
                | Self::Value { .. }
        )
    }

    /// The status an integration answers with when a handler returns this error, logged
    /// at `error` level when it is [a fault](Self::is_fault): the one rule both
    /// integrations apply.
    #[cfg_attr(not(any(feature = "axum", feature = "actix")), allow(dead_code))]
    pub(crate) fn answered(&self) -> u16 {
        if self.is_fault() {
            tracing::error!(error = %self, "session operation failed");
        }
        self.status_code()
    }
}

/// A configuration value is wrong, or two values contradict each other.
///
/// Every message names the key, the offending value (never for secrets) and what is
/// accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A key has a value it cannot take.
    Invalid {
        /// The configuration key, e.g. `SESSION_COOKIE_SAMESITE`.
        key: String,
        /// The value as given (`<redacted>` for secrets).
        value: String,
        /// What the key accepts.
        expected: String,
    },
    /// The TOML file names a key Satchel does not know (probably a typo).
    UnknownKey {
        /// The unknown key.
        key: String,
        /// Where it was found.
        source: String,
    },
    /// Two settings contradict each other, or a required one is missing.
    Conflict(String),
    /// A file or directory named by the configuration cannot be used.
    Io {
        /// The configuration key naming the path.
        key: String,
        /// The path.
        path: String,
        /// What failed.
        message: String,
    },
    /// The configuration file cannot be read or parsed.
    File {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid {
                key,
                value,
                expected,
            } => write!(f, "invalid {key} value {value:?}: expected {expected}"),
            Self::UnknownKey { key, source } => {
                write!(f, "unknown configuration key {key} in {source}")?;
                match crate::config::unknown_setting(key) {
                    Some(unknown) => write!(f, ": {}", unknown.hint),
                    None => Ok(()),
                }
            }
            Self::Conflict(message) => f.write_str(message),
            Self::Io { key, path, message } => write!(f, "{key} {path:?}: {message}"),
            Self::File { path, message } => {
                write!(f, "configuration file {path:?}: {message}")
            }
        }
    }
}

impl std::error::Error for ConfigError {}
