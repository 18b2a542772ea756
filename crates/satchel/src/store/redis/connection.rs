//! How commands reach Redis: the connections of each topology behind one interface, the
//! lease of a connection to one attempt, and the retries within the store's timeout.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::sentinel::{SentinelClient, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Client, Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult,
    ScriptInvocation, ServerErrorKind, Value,
};
use tokio::time::Instant;

use crate::error::StoreError;
use crate::support::within;

use super::RedisStore;
use super::builder::Target;

/// The first pause before an operation that could not reach Redis is tried again.
const FIRST_PAUSE: Duration = Duration::from_millis(25);
/// The longest pause between two tries.
const MAX_PAUSE: Duration = Duration::from_millis(200);

impl RedisStore {
    /// Sends `request`, trying again while the server cannot be reached, all within the
    /// store's timeout.
    ///
    /// The future is boxed: it holds the client's own futures, the retry's pause and the
    /// timeout, several kilobytes that every operation holding it (and the engine, which
    /// boxes each store call) would otherwise copy as it moves. One small allocation
    /// costs less than those copies: a Redis read spent 8,400 instructions copying its
    /// future into its box before.
    pub(super) fn execute<'a, T>(
        &'a self,
        request: Request<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>
    where
        T: redis::FromRedisValue + Send + 'a,
    {
        Box::pin(self.execute_unboxed(request))
    }

    async fn execute_unboxed<T>(&self, request: Request<'_>) -> Result<T, StoreError>
    where
        T: redis::FromRedisValue + Send,
    {
        let timeout = self.inner.timeout;
        let deadline = Instant::now() + timeout;
        let tries = async {
            let mut pause = FIRST_PAUSE;
            loop {
                match self.attempt(&request).await {
                    Err(error)
                        if request.may_retry(&error) && Instant::now() + pause < deadline =>
                    {
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(MAX_PAUSE);
                    }
                    Err(error) if error.code() == Some("WRONGTYPE") => return Err(wrong_type()),
                    result => return result.map_err(StoreError::backend),
                }
            }
        };
        within("Redis", timeout, tries).await
    }

    async fn attempt<T>(&self, request: &Request<'_>) -> RedisResult<T>
    where
        T: redis::FromRedisValue + Send,
    {
        let mut lease = self.inner.backend.lease().await?;
        let result = match request {
            Request::Script(invocation) | Request::Once(invocation) => {
                invocation.invoke_async(&mut lease.conn).await
            }
            Request::Command(command) => command.query_async(&mut lease.conn).await,
            Request::Pipeline(pipeline) => pipeline.query_async(&mut lease.conn).await,
            Request::At(command, node) => match &mut lease.conn {
                Conn::Cluster(conn) => {
                    let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                        host: node.host.clone(),
                        port: node.port,
                    });
                    match conn.route_command((*command).clone(), routing).await {
                        Ok(value) => T::from_redis_value(value).map_err(RedisError::from),
                        Err(error) => Err(error),
                    }
                }
                conn => command.query_async(conn).await,
            },
        };
        lease.settle(result.as_ref().err());
        result
    }
}

/// One thing to send: a script or a plain command.
pub(super) enum Request<'a> {
    Script(&'a ScriptInvocation<'a>),
    Command(&'a Cmd),
    /// A script that must not run twice (an update: an increment sent again after it ran
    /// would add twice).
    Once(&'a ScriptInvocation<'a>),
    /// A command for one node of a Redis Cluster (a plain command elsewhere).
    At(&'a Cmd, &'a Node),
    /// Commands that read, sent together.
    Pipeline(&'a Pipeline),
}

/// The error of a command that found its key holding another Redis type.
pub(super) fn wrong_type() -> StoreError {
    StoreError::decode("the session key holds another Redis type than the store's layout")
}

/// A node of a Redis Cluster, by the address the cluster gives for it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Node {
    pub(super) host: String,
    pub(super) port: u16,
}

impl Request<'_> {
    /// Whether the request may be sent again after `error`. A script that must not run
    /// twice is sent again only when it cannot have run: the server refused it (loading,
    /// read-only, cluster down) or the connection was refused; an I/O error may also come
    /// after it ran, with only its reply lost.
    fn may_retry(&self, error: &RedisError) -> bool {
        is_transient(error)
            && match self {
                Self::Script(_) | Self::Command(_) | Self::At(..) | Self::Pipeline(_) => true,
                Self::Once(_) => !error.is_io_error() || error.is_connection_refusal(),
            }
    }
}

/// Whether an operation that failed with `error` may succeed when tried again shortly:
/// the server could not be reached, or is not ready to take writes yet.
fn is_transient(error: &RedisError) -> bool {
    match error.kind() {
        ErrorKind::Io => !error.is_timeout(),
        // During a failover the sentinels may briefly name no master that confirms it is
        // one.
        ErrorKind::ClusterConnectionNotFound | ErrorKind::MasterNameNotFoundBySentinel => true,
        ErrorKind::Server(kind) => matches!(
            kind,
            ServerErrorKind::ReadOnly
                | ServerErrorKind::MasterDown
                | ServerErrorKind::BusyLoading
                | ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
        ),
        _ => false,
    }
}

/// Whether `error` says something about the connection itself rather than the request:
/// it broke, timed out, or reaches a server that cannot serve the store (still loading,
/// demoted to a replica, refusing the credentials).
fn is_connection_error(error: &RedisError) -> bool {
    match error.kind() {
        ErrorKind::Io
        | ErrorKind::Parse
        | ErrorKind::AuthenticationFailed
        | ErrorKind::ClusterConnectionNotFound => true,
        ErrorKind::Server(kind) => matches!(
            kind,
            ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown | ServerErrorKind::BusyLoading
        ),
        _ => false,
    }
}

/// The connections of one topology, behind one interface.
pub(super) enum Backend {
    Standalone(Box<Standalone>),
    Cluster(ClusterConnection),
    Sentinel(Box<Sentinel>),
}

impl Backend {
    /// Connects to `target`: each command and each connection attempt is limited to
    /// `timeout`.
    pub(super) async fn open(target: Target, timeout: Duration) -> RedisResult<Self> {
        match target {
            Target::Standalone(info) => {
                let client = Client::open(info)?;
                // One attempt per reconnection: the store tries again itself, within its
                // own time limit (see `RedisStore::execute`). No time limit of the
                // client's per request: the store's own bounds each operation, and a
                // request given up on leaves its connection to be replaced (`Lease`), so
                // a second timer per request would only cost.
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(None)
                    .set_number_of_retries(0);
                let manager =
                    ConnectionManager::new_with_config(client.clone(), config.clone()).await?;
                Ok(Self::Standalone(Box::new(Standalone {
                    client,
                    config,
                    slot: Mutex::new(Slot {
                        generation: 0,
                        connection: Some(manager),
                    }),
                })))
            }
            Target::Cluster(nodes) => {
                let client = ClusterClientBuilder::new(nodes)
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .build()?;
                Ok(Self::Cluster(client.get_async_connection().await?))
            }
            Target::Sentinel {
                sentinels,
                master,
                node,
            } => {
                let client = SentinelClient::build(
                    sentinels,
                    master,
                    Some(node),
                    SentinelServerType::Master,
                )?;
                let sentinel = Sentinel {
                    resolver: tokio::sync::Mutex::new(client),
                    // As for a single server: the store's own time limit bounds each
                    // request.
                    config: AsyncConnectionConfig::new()
                        .set_connection_timeout(Some(timeout))
                        .set_response_timeout(None),
                    slot: Mutex::new(Slot {
                        generation: 0,
                        connection: None,
                    }),
                };
                // Resolve the master once now, so that a wrong name fails at startup.
                let lease = sentinel.connection().await?;
                drop(lease);
                Ok(Self::Sentinel(Box::new(sentinel)))
            }
        }
    }

    /// A connection for one attempt.
    /// Whether plain reads are sent in batches (see [`reads`](super::reads)): not on a
    /// Redis Cluster, where the keys of a batch would belong to many nodes.
    pub(super) fn batches_reads(&self) -> bool {
        !matches!(self, Self::Cluster(_))
    }

    async fn lease(&self) -> RedisResult<Lease<'_>> {
        let (generation, conn) = match self {
            Self::Standalone(standalone) => {
                let (generation, manager) = standalone.connection()?;
                (generation, Conn::Managed(manager))
            }
            Self::Cluster(cluster) => (0, Conn::Cluster(cluster.clone())),
            Self::Sentinel(sentinel) => {
                let (generation, connection) = sentinel.connection().await?;
                (generation, Conn::Plain(connection))
            }
        };
        Ok(Lease {
            backend: self,
            conn,
            generation,
            settled: false,
        })
    }

    /// Whether a connection that gave `error` should be replaced.
    fn replace_after(&self, error: &RedisError) -> bool {
        match self {
            // The connection manager reconnects by itself after I/O errors; it keeps a
            // failed handshake (a server still loading, refused credentials) and a
            // connection that stopped answering, so those are replaced.
            Self::Standalone(_) => {
                error.is_timeout() || (is_connection_error(error) && !error.is_io_error())
            }
            Self::Cluster(_) => false,
            Self::Sentinel(_) => is_connection_error(error),
        }
    }

    /// Drops the connection of `generation`, if it is still the current one; the next
    /// operation opens a new one.
    fn discard(&self, generation: u64) {
        match self {
            Self::Standalone(standalone) => standalone.slot.discard(generation),
            Self::Cluster(_) => {}
            Self::Sentinel(sentinel) => sentinel.slot.discard(generation),
        }
    }
}

/// A connection lent to one attempt. Unless the attempt settles it (succeeded, or failed
/// for a reason unrelated to the connection), the connection is discarded when the lease
/// is dropped: also when the attempt was cut short by the store's timeout.
struct Lease<'a> {
    backend: &'a Backend,
    conn: Conn,
    generation: u64,
    settled: bool,
}

impl Lease<'_> {
    fn settle(&mut self, error: Option<&RedisError>) {
        self.settled = error.is_none_or(|error| !self.backend.replace_after(error));
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.backend.discard(self.generation);
        }
    }
}

/// The current connection of a topology that the store manages itself, numbered so that a
/// failed attempt only discards the connection it used.
struct Slot<C> {
    generation: u64,
    connection: Option<C>,
}

trait SlotExt<C> {
    fn locked(&self) -> MutexGuard<'_, Slot<C>>;
    fn discard(&self, generation: u64);
}

impl<C> SlotExt<C> for Mutex<Slot<C>> {
    fn locked(&self) -> MutexGuard<'_, Slot<C>> {
        // The slot is consistent at every instant, so a poisoned lock is taken over.
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn discard(&self, generation: u64) {
        let mut slot = self.locked();
        if slot.generation == generation {
            slot.connection = None;
        }
    }
}

/// One server, through a connection manager.
pub(super) struct Standalone {
    client: Client,
    config: ConnectionManagerConfig,
    slot: Mutex<Slot<ConnectionManager>>,
}

impl Standalone {
    fn connection(&self) -> RedisResult<(u64, ConnectionManager)> {
        let mut slot = self.slot.locked();
        if let Some(manager) = &slot.connection {
            return Ok((slot.generation, manager.clone()));
        }
        // Connects on first use, within the attempt that needs it.
        let manager =
            ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone())?;
        slot.generation += 1;
        slot.connection = Some(manager.clone());
        Ok((slot.generation, manager))
    }
}

/// The master named by the sentinels, through one multiplexed connection that is
/// replaced, after asking the sentinels again, whenever it fails.
pub(super) struct Sentinel {
    /// Held while the master is looked up, so that concurrent requests wait for one
    /// lookup instead of each making their own.
    resolver: tokio::sync::Mutex<SentinelClient>,
    config: AsyncConnectionConfig,
    slot: Mutex<Slot<MultiplexedConnection>>,
}

impl Sentinel {
    async fn connection(&self) -> RedisResult<(u64, MultiplexedConnection)> {
        if let Some(current) = self.current() {
            return Ok(current);
        }
        let mut resolver = self.resolver.lock().await;
        if let Some(current) = self.current() {
            return Ok(current);
        }
        let master = resolver.async_get_client().await?;
        let connection = master
            .get_multiplexed_async_connection_with_config(&self.config)
            .await?;
        let mut slot = self.slot.locked();
        slot.generation += 1;
        slot.connection = Some(connection.clone());
        Ok((slot.generation, connection))
    }

    fn current(&self) -> Option<(u64, MultiplexedConnection)> {
        let slot = self.slot.locked();
        slot.connection
            .as_ref()
            .map(|connection| (slot.generation, connection.clone()))
    }
}

/// A connection of any topology.
enum Conn {
    Managed(ConnectionManager),
    Cluster(ClusterConnection),
    Plain(MultiplexedConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Managed(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
            Self::Plain(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Managed(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Plain(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Managed(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
            Self::Plain(conn) => conn.get_db(),
        }
    }
}
