//! Small helpers shared by the configuration, the engine and the stores: masking URL
//! passwords, showing an error with its causes, Unix milliseconds, and the bound on a
//! store's every call to its server.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What stands in for a password wherever a URL is shown.
pub(crate) const MASK: &str = "<redacted>";

/// Masks the password of a URL's user information: `redis://user:pw@host` becomes
/// `redis://user:<redacted>@host`. Text without a password is returned unchanged.
pub(crate) fn redact_url(url: &str) -> Cow<'_, str> {
    let Some(scheme_end) = url.find("://") else {
        return Cow::Borrowed(url);
    };
    let rest_start = scheme_end + 3;
    let rest = &url[rest_start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let Some(at) = authority.rfind('@') else {
        return Cow::Borrowed(url);
    };
    let Some(colon) = authority[..at].find(':') else {
        return Cow::Borrowed(url);
    };
    Cow::Owned(format!(
        "{}{}{MASK}{}",
        &url[..rest_start],
        &authority[..=colon],
        &url[rest_start + at..],
    ))
}

/// Shows an error and its sources, `outer: inner: root`, for logs and messages.
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn StdError + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

/// An error and its sources, `outer: inner: root`, as one string.
#[cfg_attr(not(feature = "_sql"), allow(dead_code))]
pub(crate) fn chain(error: &(dyn StdError + 'static)) -> String {
    Chain(error).to_string()
}

/// Milliseconds since the Unix epoch; 0 for a time before it, `u64::MAX` past the range.
#[cfg_attr(
    not(any(feature = "redis", feature = "memcached", feature = "_sql")),
    allow(dead_code)
)]
pub(crate) fn unix_millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    })
}

/// The time `millis` milliseconds after the Unix epoch (the epoch itself, long past, for
/// a count beyond what the platform's clock holds).
#[cfg_attr(
    not(any(feature = "redis", feature = "memcached", feature = "_sql")),
    allow(dead_code)
)]
pub(crate) fn from_unix_millis(millis: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_millis(millis))
        .unwrap_or(UNIX_EPOCH)
}

/// A store's server did not answer within the store's timeout (SESSION_STORE_TIMEOUT).
#[cfg(any(
    feature = "redis",
    feature = "memcached",
    feature = "mongodb",
    feature = "_sql"
))]
#[derive(Debug, thiserror::Error)]
#[error("{server} did not answer within {timeout:?}")]
pub(crate) struct NoAnswer {
    /// The server, as users name it: `Redis`, `PostgreSQL`, …
    pub(crate) server: &'static str,
    pub(crate) timeout: Duration,
}

/// Bounds a store's call to `server` by `timeout`: a server that stops answering fails
/// the request with [`NoAnswer`] instead of holding it. The one timeout of every store.
///
/// A plain future around tokio's `Timeout`, not an `async fn`: store futures can be
/// large (a Redis cluster call's is kilobytes), and each `async` layer would copy them.
#[cfg(any(
    feature = "redis",
    feature = "memcached",
    feature = "mongodb",
    feature = "_sql"
))]
// The SQL stores time out through it on the servers; SQLite, in process, does not.
#[cfg_attr(
    not(any(
        feature = "redis",
        feature = "memcached",
        feature = "mongodb",
        feature = "postgres",
        feature = "mysql"
    )),
    allow(dead_code)
)]
pub(crate) fn within<F, T>(
    server: &'static str,
    timeout: Duration,
    operation: F,
) -> Within<F::IntoFuture>
where
    F: std::future::IntoFuture<Output = Result<T, crate::error::StoreError>>,
{
    Within {
        inner: tokio::time::timeout(timeout, operation),
        server,
        timeout,
    }
}

#[cfg(any(
    feature = "redis",
    feature = "memcached",
    feature = "mongodb",
    feature = "_sql"
))]
pin_project_lite::pin_project! {
    /// The future of [`within`].
    pub(crate) struct Within<F> {
        #[pin]
        inner: tokio::time::Timeout<F>,
        server: &'static str,
        timeout: Duration,
    }
}

#[cfg(any(
    feature = "redis",
    feature = "memcached",
    feature = "mongodb",
    feature = "_sql"
))]
impl<F, T> std::future::Future for Within<F>
where
    F: std::future::Future<Output = Result<T, crate::error::StoreError>>,
{
    type Output = Result<T, crate::error::StoreError>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        this.inner.poll(cx).map(|result| {
            result.unwrap_or_else(|_| {
                Err(crate::error::StoreError::backend(NoAnswer {
                    server: this.server,
                    timeout: *this.timeout,
                }))
            })
        })
    }
}

/// A short random pause before retrying a conditional write, growing with the attempt
/// (up to about 6 ms) so that contending writers fall out of step.
#[cfg(any(feature = "memcached", feature = "flask"))]
pub(crate) async fn pause(attempt: u32) {
    let cap = 200_u32 << attempt.min(5);
    let micros = getrandom::u32().unwrap_or(cap / 2) % cap;
    tokio::time::sleep(std::time::Duration::from_micros(u64::from(micros))).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked_and_nothing_else_changes() {
        assert_eq!(
            redact_url("redis://user:hunter2@cache:6379/0"),
            "redis://user:<redacted>@cache:6379/0"
        );
        assert_eq!(
            redact_url("postgres://app:p@ss@db/app?sslmode=require"),
            "postgres://app:<redacted>@db/app?sslmode=require"
        );
        assert_eq!(
            redact_url("mongodb://root:pw@h1,h2/?replicaSet=rs"),
            "mongodb://root:<redacted>@h1,h2/?replicaSet=rs"
        );
        assert_eq!(redact_url("redis://cache:6379"), "redis://cache:6379");
        assert_eq!(redact_url("redis://user@cache"), "redis://user@cache");
        assert_eq!(redact_url("cache:11211"), "cache:11211");
        assert_eq!(redact_url("garbage"), "garbage");
        assert_eq!(redact_url("mysql://root@h/db"), "mysql://root@h/db");
        assert_eq!(redact_url("sqlite://a@b.db"), "sqlite://a@b.db");
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(
            redact_url("redis+sentinel://user:pw@a:1,b:2/m"),
            "redis+sentinel://user:<redacted>@a:1,b:2/m"
        );
        assert_eq!(redact_url("redis://h/0?x=a@b:c"), "redis://h/0?x=a@b:c");
    }

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("saving failed")
        }
    }

    impl StdError for Outer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_chain_shows_every_cause() {
        let error = Outer(std::io::Error::other("connection refused"));
        assert_eq!(
            Chain(&error).to_string(),
            "saving failed: connection refused"
        );
    }

    #[test]
    fn millis_round_trip() {
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(unix_millis(at), 1_700_000_000_123);
        assert_eq!(from_unix_millis(unix_millis(at)), at);
        assert_eq!(unix_millis(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
