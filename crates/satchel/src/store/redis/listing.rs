//! Listing the store: `SCAN` through the keys of the store's prefix, one master at a time
//! in a Redis Cluster, and a load of each key found (`GET`).
//!
//! `SCAN` returns every key that exists from the start of a walk to its end at least once,
//! and more than once when the keyspace shrinks during the walk (Redis then folds buckets
//! it had visited into ones it has not): [`Capabilities::list_may_repeat`] says so.
//!
//! [`Capabilities::list_may_repeat`]: crate::store::Capabilities::list_may_repeat

use std::fmt;
use std::time::SystemTime;

use futures_util::future::join_all;
use redis::Value;

use crate::error::StoreError;
use crate::id::SessionId;
use crate::store::{Page, SessionStore};

use super::RedisStore;
use super::connection::{Backend, Node, Request};

/// At most this many `SCAN` calls make one page: a keyspace that holds mostly other keys
/// gives short pages rather than one call that runs on.
const SCANS_PER_PAGE: usize = 16;

/// Where a walk through the store's keys stands: the node being scanned (a Redis Cluster
/// master; `None` elsewhere) and its `SCAN` cursor, or `None` once every node is done,
/// and the ids found beyond the last page's limit.
///
/// As text: `[host:port@]cursor` for the position (empty once done), then `+` and the
/// pending ids, comma-separated, when there are any.
#[derive(Debug, Default, PartialEq, Eq)]
struct Cursor {
    position: Option<(Option<Node>, u64)>,
    pending: Vec<SessionId>,
}

impl Cursor {
    fn parse(text: &str) -> Option<Self> {
        let (position, pending) = text.split_once('+').unwrap_or((text, ""));
        let position = if position.is_empty() {
            None
        } else {
            let (node, scan) = match position.rsplit_once('@') {
                Some((address, scan)) => {
                    let (host, port) = address.rsplit_once(':')?;
                    let node = Node {
                        host: host.to_owned(),
                        port: port.parse().ok()?,
                    };
                    (Some(node), scan)
                }
                None => (None, position),
            };
            Some((node, scan.parse().ok()?))
        };
        let pending = pending
            .split(',')
            .filter(|id| !id.is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        Some(Self { position, pending })
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.position {
            Some((Some(node), scan)) => write!(f, "{}:{}@{scan}", node.host, node.port)?,
            Some((None, scan)) => write!(f, "{scan}")?,
            None => {}
        }
        for (i, id) in self.pending.iter().enumerate() {
            f.write_str(if i == 0 { "+" } else { "," })?;
            write!(f, "{id}")?;
        }
        Ok(())
    }
}

/// `prefix` as a `SCAN MATCH` pattern for every key that starts with it.
fn glob(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('*');
    pattern
}

impl RedisStore {
    /// Up to `limit` live entries from `cursor`; see the [module documentation](self).
    pub(super) async fn list_page(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let limit = limit.max(1);
        let mut at = match cursor {
            Some(text) => Cursor::parse(text)
                .ok_or_else(|| StoreError::backend("a malformed Redis listing cursor"))?,
            None => Cursor {
                position: Some((self.node_after(None).await?, 0)),
                pending: Vec::new(),
            },
        };
        let mut ids = std::mem::take(&mut at.pending);
        let mut scans = 0;
        while ids.len() < limit && scans < SCANS_PER_PAGE {
            let Some((node, scan)) = at.position.take() else {
                break;
            };
            let (next, found) = self.scan(node.as_ref(), scan, limit - ids.len()).await?;
            scans += 1;
            ids.extend(found);
            at.position = if next != 0 {
                Some((node, next))
            } else if node.is_some() {
                self.node_after(node.as_ref())
                    .await?
                    .map(|after| (Some(after), 0))
            } else {
                None
            };
        }
        if ids.len() > limit {
            at.pending = ids.split_off(limit);
        }
        let now = SystemTime::now();
        let loads = ids
            .iter()
            .map(|id| async move { (*id, self.load(id, None).await) });
        let mut entries = Vec::with_capacity(ids.len());
        for (id, loaded) in join_all(loads).await {
            match loaded {
                Ok(Some(record)) if !record.is_expired(now) => entries.push((id, record)),
                // Gone since the scan, or not a session the store could read: not listed.
                Ok(_) | Err(StoreError::Decode(_)) => {}
                Err(error) => return Err(error),
            }
        }
        let done = at.position.is_none() && at.pending.is_empty();
        Ok(Page::new(entries, (!done).then(|| at.to_string())))
    }

    /// One `SCAN` call at `node` (the server itself outside a cluster): the next cursor,
    /// and the ids of the session keys found.
    async fn scan(
        &self,
        node: Option<&Node>,
        cursor: u64,
        count: usize,
    ) -> Result<(u64, Vec<SessionId>), StoreError> {
        let mut command = redis::cmd("SCAN");
        command
            .arg(cursor)
            .arg("MATCH")
            .arg(glob(&self.inner.key_prefix))
            .arg("COUNT")
            .arg(count);
        let request = match node {
            Some(node) => Request::At(&command, node),
            None => Request::Command(&command),
        };
        let (next, keys): (u64, Vec<Vec<u8>>) = self.execute(request).await?;
        let prefix = self.inner.key_prefix.as_bytes();
        let ids = keys
            .iter()
            .filter_map(|key| {
                let rest = key.strip_prefix(prefix)?;
                std::str::from_utf8(rest).ok()?.parse().ok()
            })
            .collect();
        Ok((next, ids))
    }

    /// In a Redis Cluster, the master after `node` in address order (the first for
    /// `None`), or `None` after the last; `None` outside a cluster, which is one node.
    async fn node_after(&self, node: Option<&Node>) -> Result<Option<Node>, StoreError> {
        if !matches!(self.inner.backend, Backend::Cluster(_)) {
            return Ok(None);
        }
        let mut command = redis::cmd("CLUSTER");
        command.arg("SLOTS");
        let slots: Value = self.execute(Request::Command(&command)).await?;
        let mut masters = masters(&slots)
            .ok_or_else(|| StoreError::backend("an unexpected reply to CLUSTER SLOTS"))?;
        masters.sort();
        masters.dedup();
        Ok(masters
            .into_iter()
            .find(|master| node.is_none_or(|node| master > node)))
    }
}

/// The master of each slot range in a `CLUSTER SLOTS` reply: `[start, end, [host, port,
/// id, …], replicas…]` per range.
fn masters(reply: &Value) -> Option<Vec<Node>> {
    let Value::Array(ranges) = reply else {
        return None;
    };
    ranges
        .iter()
        .map(|range| {
            let Value::Array(range) = range else {
                return None;
            };
            let Value::Array(master) = range.get(2)? else {
                return None;
            };
            let host = match master.first()? {
                Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok()?,
                Value::SimpleString(text) => text.clone(),
                _ => return None,
            };
            let Value::Int(port) = master.get(1)? else {
                return None;
            };
            Some(Node {
                host,
                port: u16::try_from(*port).ok()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_back_as_written() {
        let (a, b) = (SessionId::generate(), SessionId::generate());
        let node = Node {
            host: "10.0.0.7".to_owned(),
            port: 7102,
        };
        for cursor in [
            Cursor::default(),
            Cursor {
                position: Some((None, 1234)),
                pending: Vec::new(),
            },
            Cursor {
                position: Some((Some(node), 0)),
                pending: vec![a, b],
            },
            Cursor {
                position: None,
                pending: vec![a],
            },
        ] {
            assert_eq!(Cursor::parse(&cursor.to_string()), Some(cursor));
        }
        for malformed in ["x", "10.0.0.7@5", "5+nope", "host:99999@0"] {
            assert_eq!(Cursor::parse(malformed), None, "{malformed}");
        }
    }

    #[test]
    fn the_prefix_matches_itself_only() {
        assert_eq!(glob("session:"), "session:*");
        assert_eq!(glob("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\*");
    }

    #[test]
    fn masters_are_read_from_cluster_slots() {
        let node = |host: &str, port| {
            Value::Array(vec![
                Value::BulkString(host.as_bytes().to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("127.0.0.1", 7101),
                node("127.0.0.1", 7104),
            ]),
            Value::Array(vec![Value::Int(5461), Value::Int(16383), node("::1", 7102)]),
        ]);
        let found = masters(&reply).expect("a well-formed reply");
        assert_eq!(found.len(), 2);
        assert_eq!((found[1].host.as_str(), found[1].port), ("::1", 7102));
        assert_eq!(masters(&Value::Int(1)), None);
    }
}
