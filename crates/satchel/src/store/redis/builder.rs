//! Building a store: [`RedisStoreBuilder`], [`OpenError`] when it cannot be opened, the
//! [`Topology`] of the Redis behind a store, and the parsing of Redis URLs.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::sentinel::SentinelNodeConnectionInfo;
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisError, TlsMode};

use crate::error::BoxError;
use crate::support::redact_url;

use super::connection::Backend;
use super::{Inner, RedisStore};

/// The URL forms the store accepts, for error messages.
const URL_FORMS: &str = "redis://[user:password@]host[:port][/db], rediss://…, \
     redis+cluster://host:port,host:port,… or redis+sentinel://host:port,…/master-name[/db]";
/// The default port of a sentinel.
const SENTINEL_PORT: u16 = 26379;

/// How the Redis behind a [`RedisStore`] is deployed, as the URL said.
///
/// # Examples
///
/// ```no_run
/// use satchel::RedisStore;
/// use satchel::store::redis::Topology;
///
/// # tokio_test::block_on(async {
/// let store = RedisStore::connect("redis+cluster://10.0.0.1:7000,10.0.0.2:7000").await?;
/// assert_eq!(store.topology(), Topology::Cluster);
/// # Ok::<_, satchel::store::redis::OpenError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Topology {
    /// One server (`redis://`, `rediss://`, `unix://`).
    Standalone,
    /// A Redis Cluster (`redis+cluster://`).
    Cluster,
    /// The master named by Redis Sentinel (`redis+sentinel://`).
    Sentinel,
}

/// Settings for a [`RedisStore`], made by [`RedisStore::builder`] and turned into a store
/// by [`open`](Self::open). `Debug` masks the password of the URL.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use satchel::RedisStore;
///
/// # tokio_test::block_on(async {
/// let store = RedisStore::builder("redis+sentinel://10.0.0.5:26379,10.0.0.6:26379/main")
///     .with_key_prefix("shop:")
///     .with_timeout(Duration::from_secs(1))
///     .open()
///     .await?;
/// # let _ = store;
/// # Ok::<_, satchel::store::redis::OpenError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
#[must_use]
pub struct RedisStoreBuilder {
    pub(super) url: String,
    pub(super) key_prefix: String,
    pub(super) timeout: Duration,
}

/// Why a [`RedisStore`] cannot be opened.
///
/// Messages never show the password of the URL.
///
/// # Examples
///
/// ```
/// use satchel::RedisStore;
/// use satchel::store::redis::OpenError;
///
/// # tokio_test::block_on(async {
/// // A malformed URL is refused before anything is contacted.
/// let error = RedisStore::connect("redis+sentinel://:pw@10.0.0.5:26379").await.unwrap_err();
/// assert!(matches!(error, OpenError::InvalidUrl { .. }));
/// assert!(!error.to_string().contains("pw@"));
/// # });
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The URL is not one of the accepted forms (see the [module documentation](super)).
    #[error("invalid Redis URL {url:?}: expected {expected} ({reason})")]
    InvalidUrl {
        /// The URL, its password masked.
        url: String,
        /// The forms the store accepts.
        expected: &'static str,
        /// What is wrong with this one.
        reason: String,
    },
    /// Redis did not answer within the timeout.
    #[error("Redis at {url} did not answer within {timeout:?}")]
    Timeout {
        /// The URL, its password masked.
        url: String,
        /// The timeout.
        timeout: Duration,
    },
    /// Redis cannot be reached, or refuses the connection (a wrong password, an unknown
    /// Sentinel master name).
    #[error("cannot connect to Redis at {url}")]
    Connect {
        /// The URL, its password masked.
        url: String,
        /// What the client said.
        #[source]
        source: BoxError,
    },
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("url", &redact_url(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl RedisStoreBuilder {
    /// Sets the prefix of every session key (default
    /// [`DEFAULT_KEY_PREFIX`](crate::store::DEFAULT_KEY_PREFIX)), so that sessions can
    /// share a Redis with other data or other applications.
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Sets the time limit of connecting and of every operation, retries included
    /// (default [`DEFAULT_TIMEOUT`](crate::store::DEFAULT_TIMEOUT)): past it an operation
    /// fails with [`StoreError::Backend`], so a request fails fast while Redis is
    /// unreachable.
    ///
    /// [`StoreError::Backend`]: crate::StoreError::Backend
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Opens the store: checks the URL, then connects to Redis (and, for a Cluster or
    /// Sentinel, finds the nodes or the master) within the timeout, so a wrong address or
    /// password shows at startup, not on the first request.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use satchel::RedisStore;
    ///
    /// # tokio_test::block_on(async {
    /// let store = RedisStore::builder("redis://127.0.0.1:6379/0")
    ///     .with_key_prefix("shop:")
    ///     .open()
    ///     .await?;
    /// assert_eq!(store.key_prefix(), "shop:");
    /// # Ok::<_, satchel::store::redis::OpenError>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`OpenError::InvalidUrl`] when the URL is not one of the accepted forms, before
    /// anything is contacted; [`OpenError::Connect`] when Redis cannot be reached or
    /// refuses the connection (a wrong password, an unknown Sentinel master name), and
    /// [`OpenError::Timeout`] when it does not answer within the timeout.
    pub async fn open(self) -> Result<RedisStore, OpenError> {
        let url = redact_url(&self.url).into_owned();
        let target = match parse(&self.url) {
            Ok(target) => target,
            Err(reason) => {
                return Err(OpenError::InvalidUrl {
                    url,
                    expected: URL_FORMS,
                    reason,
                });
            }
        };
        if target.uses_tls() {
            // The TLS connections need a process-wide crypto provider; when the
            // application installed one already, that one is used.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let backend =
            match tokio::time::timeout(self.timeout, Backend::open(target, self.timeout)).await {
                Ok(Ok(backend)) => backend,
                Ok(Err(error)) => {
                    return Err(OpenError::Connect {
                        url,
                        source: error.into(),
                    });
                }
                Err(_) => {
                    return Err(OpenError::Timeout {
                        url,
                        timeout: self.timeout,
                    });
                }
            };
        Ok(RedisStore {
            inner: Arc::new(Inner {
                backend,
                reads: super::reads::Reads::default(),
                key_prefix: self.key_prefix,
                timeout: self.timeout,
                url,
            }),
        })
    }
}

/// What a Redis URL points at.
pub(super) enum Target {
    Standalone(ConnectionInfo),
    Cluster(Vec<ConnectionInfo>),
    Sentinel {
        sentinels: Vec<ConnectionInfo>,
        master: String,
        node: SentinelNodeConnectionInfo,
    },
}

impl Target {
    fn uses_tls(&self) -> bool {
        let tls = |info: &ConnectionInfo| matches!(info.addr(), ConnectionAddr::TcpTls { .. });
        match self {
            Self::Standalone(info) => tls(info),
            Self::Cluster(nodes) => nodes.iter().any(tls),
            Self::Sentinel { sentinels, .. } => sentinels.iter().any(tls),
        }
    }
}

/// Parses a Redis URL; the error says what is wrong, without quoting the URL.
fn parse(url: &str) -> Result<Target, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| "no scheme".to_owned())?;
    let scheme = scheme.to_ascii_lowercase();
    let (base, topology) = match scheme.split_once('+') {
        Some((base @ ("redis" | "rediss"), topology @ ("cluster" | "sentinel"))) => {
            (base, topology)
        }
        _ => {
            return match scheme.as_str() {
                "redis" | "rediss" | "valkey" | "valkeys" | "unix" | "redis+unix"
                | "valkey+unix" => url
                    .into_connection_info()
                    .map(Target::Standalone)
                    .map_err(|error| describe(&error)),
                other => Err(format!("unknown scheme {other:?}")),
            };
        }
    };

    // authority = [userinfo@]host,host,…; then an optional path, query and fragment.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    let (tail, fragment) = match tail.find('#') {
        Some(at) => tail.split_at(at),
        None => (tail, ""),
    };
    let (path, query) = match tail.find('?') {
        Some(at) => tail.split_at(at),
        None => (tail, ""),
    };
    let hosts: Vec<&str> = hosts.split(',').collect();
    if hosts.iter().any(|host| host.is_empty()) {
        return Err("an empty host in the host list".to_owned());
    }

    if topology == "cluster" {
        let nodes = hosts
            .iter()
            .map(|host| {
                format!("{base}://{userinfo}{host}{path}{query}{fragment}")
                    .into_connection_info()
                    .map_err(|error| describe(&error))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if nodes.iter().any(|node| node.redis_settings().db() != 0) {
            return Err("a Redis Cluster has database 0 only".to_owned());
        }
        return Ok(Target::Cluster(nodes));
    }

    // Sentinel: the path is /master-name[/db].
    let mut segments = path.trim_start_matches('/').split('/');
    let master = segments.next().unwrap_or_default();
    if master.is_empty() {
        return Err("the Sentinel form needs a master name: /master-name[/db]".to_owned());
    }
    let db = segments.next().unwrap_or_default();
    if segments.next().is_some() {
        return Err("the path after the hosts is /master-name[/db]".to_owned());
    }
    if !query.is_empty() {
        return Err("the Sentinel form takes no query".to_owned());
    }
    // The master's settings (credentials, database, TLS) come from the same URL with a
    // stand-in host; the sentinels themselves get no credentials.
    let master_info = format!("{base}://{userinfo}localhost/{db}{fragment}")
        .into_connection_info()
        .map_err(|error| describe(&error))?;
    let mut node = SentinelNodeConnectionInfo::default()
        .set_redis_connection_info(master_info.redis_settings().clone());
    if let ConnectionAddr::TcpTls { insecure, .. } = master_info.addr() {
        node = node.set_tls_mode(if *insecure {
            TlsMode::Insecure
        } else {
            TlsMode::Secure
        });
    }
    let sentinels = hosts
        .iter()
        .map(|host| {
            let host = if has_port(host) {
                (*host).to_owned()
            } else {
                format!("{host}:{SENTINEL_PORT}")
            };
            format!("{base}://{host}/{fragment}")
                .into_connection_info()
                .map_err(|error| describe(&error))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Target::Sentinel {
        sentinels,
        master: master.to_owned(),
        node,
    })
}

/// Whether `host` (`name`, `name:port`, `[v6]` or `[v6]:port`) names a port.
fn has_port(host: &str) -> bool {
    match host.rfind(']') {
        Some(bracket) => host[bracket..].contains(':'),
        None => host.contains(':'),
    }
}

/// What the client library found wrong in a URL (its messages never quote the URL).
fn describe(error: &RedisError) -> String {
    error.to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn reason(url: &str) -> String {
        match parse(url) {
            Ok(_) => panic!("{url} should be refused"),
            Err(reason) => reason,
        }
    }

    #[test]
    fn the_accepted_forms_parse_to_their_topology() {
        assert!(matches!(
            parse("redis://127.0.0.1:6379/3").unwrap(),
            Target::Standalone(info) if info.redis_settings().db() == 3
        ));
        assert!(matches!(
            parse("redis://:pw@cache").unwrap(),
            Target::Standalone(info) if info.redis_settings().password() == Some("pw")
        ));
        let Target::Cluster(nodes) = parse("redis+cluster://u:p@a:7001,b:7002,[::1]:7003").unwrap()
        else {
            panic!("cluster")
        };
        assert_eq!(nodes.len(), 3);
        assert!(
            nodes
                .iter()
                .all(|n| n.redis_settings().password() == Some("p"))
        );
        assert_eq!(
            nodes[2].addr(),
            &ConnectionAddr::Tcp("::1".to_owned(), 7003)
        );
        let Target::Sentinel {
            sentinels, master, ..
        } = parse("redis+sentinel://:pw@s1,s2:26390/main/2").unwrap()
        else {
            panic!("sentinel")
        };
        assert_eq!(master, "main");
        assert_eq!(
            sentinels[0].addr(),
            &ConnectionAddr::Tcp("s1".to_owned(), SENTINEL_PORT)
        );
        assert_eq!(
            sentinels[1].addr(),
            &ConnectionAddr::Tcp("s2".to_owned(), 26390)
        );
        assert!(
            sentinels
                .iter()
                .all(|s| s.redis_settings().password().is_none())
        );
        assert!(parse("rediss://cache:6380").unwrap().uses_tls());
        assert!(parse("rediss+cluster://a:1,b:2").unwrap().uses_tls());
        assert!(parse("rediss+sentinel://a/m").unwrap().uses_tls());
        assert!(!parse("redis+sentinel://a/m").unwrap().uses_tls());
    }

    #[test]
    fn malformed_forms_are_refused_with_a_reason() {
        assert!(reason("127.0.0.1:6379").contains("scheme"));
        assert!(reason("http://cache").contains("scheme"));
        assert!(reason("redis+sentinel://s1:26379").contains("master name"));
        assert!(reason("redis+sentinel://s1/m/1/x").contains("/master-name[/db]"));
        assert!(reason("redis+cluster://a:1,,b:2").contains("empty host"));
        assert!(reason("redis+cluster://a:1,b:2/4").contains("database 0"));
        assert!(!reason("redis://cache/notanumber").is_empty());
    }
}
