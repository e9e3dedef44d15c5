//! Cache invalidation across instances: what one instance drops from its cache after a write,
//! every other instance on the same database drops too, within milliseconds.
//!
//! Several app instances on one database each keep their own [cache](super::cache). A write
//! (logout, password change or reset, uniquifier rotation, deactivation, role change, deletion,
//! two-factor change, a session saved or deleted) drops the entries it made stale in its own
//! process at once and **publishes** the same invalidation on a channel every instance listens
//! to:
//!
//! - **PostgreSQL** `LISTEN`/`NOTIFY` on the channel `rampart_invalidate`, started by
//!   [`Datastore::connect`](super::Datastore::connect) (and
//!   [`Datastore::from_pool`](super::Datastore::from_pool)) for a PostgreSQL database; the listener
//!   holds one connection of the pool;
//! - **Redis** pub/sub on the channel `rampart:<database>:invalidate`, when the application calls
//!   [`Datastore::use_redis`](super::Datastore::use_redis) (the sample app does when `REDIS_URL` is
//!   set); it replaces the PostgreSQL channel;
//! - **SQLite** (one process): nothing is published; the in-process invalidation is all there is.
//!
//! # Never stale
//! Until an instance's subscription is up, and from the moment it is lost until it is back, that
//! instance does not cache at all (every lookup reads the database), so a message it could not
//! hear cannot leave it with a stale answer; the loss is logged and
//! [`Datastore::invalidation_status`](super::Datastore::invalidation_status) (and so `/readyz`)
//! reports it. A lost channel is noticed when its connection fails or stays silent: each
//! instance publishes a heartbeat every [`HEARTBEAT`] and hears its own, so a channel silent for
//! [`SILENCE`] counts as lost even if its TCP connection looks open. On reconnection the cache
//! starts empty.
//!
//! Messages are published after the write committed, in batches (one `NOTIFY` or `PUBLISH` per
//! burst of writes). A publication that fails (the channel's server is down, so the other
//! instances' subscriptions are down as well and they are not caching) is logged.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::StreamExt as _;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::cache::Cache;

/// The PostgreSQL `NOTIFY` channel.
pub(crate) const PG_CHANNEL: &str = "rampart_invalidate";
/// How often each instance publishes a heartbeat on the channel.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(2);
/// How long a channel may stay silent (no message, not even the instance's own heartbeat)
/// before it counts as lost.
pub(crate) const SILENCE: Duration = Duration::from_secs(6);
/// The longest payload of one message (PostgreSQL's `NOTIFY` limit is 8000 bytes).
const MAX_PAYLOAD: usize = 7000;
/// The longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// One thing to drop from every instance's cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Invalidation {
    /// A user (by id) and their roles.
    User(i64),
    /// Every user (a role's permissions changed).
    AllUsers,
    /// One session, by id hash.
    Session(String),
    /// Every session (of every user).
    AllSessions,
    /// Every session of a user, except one (by id hash) when given.
    SessionsOfUser {
        /// The user.
        user_id: i64,
        /// The session kept.
        except: Option<String>,
    },
}

impl Invalidation {
    /// Applies this invalidation to `cache` (in this process only).
    pub(crate) fn apply(&self, cache: &Cache) {
        match self {
            Self::User(id) => cache.invalidate_user(*id),
            Self::AllUsers => cache.invalidate_users(),
            Self::Session(id_hash) => cache.invalidate_session(id_hash),
            Self::AllSessions => cache.invalidate_sessions(|_, _| true),
            Self::SessionsOfUser { user_id, except } => {
                cache.invalidate_sessions(|id, session| {
                    session.user_id == Some(*user_id) && Some(id) != except.as_deref()
                });
            }
        }
    }

    /// One line of a message.
    fn encode(&self, out: &mut String) {
        use std::fmt::Write as _;
        let _infallible = match self {
            Self::User(id) => write!(out, "u{id}"),
            Self::AllUsers => write!(out, "U"),
            Self::Session(id_hash) => write!(out, "s{id_hash}"),
            Self::AllSessions => write!(out, "A"),
            Self::SessionsOfUser { user_id, except } => match except {
                Some(keep) => write!(out, "S{user_id} {keep}"),
                None => write!(out, "S{user_id}"),
            },
        };
    }

    /// Reads one line of a message (`None` for a heartbeat or an unknown line).
    fn decode(line: &str) -> Option<Self> {
        let mut chars = line.chars();
        let tag = chars.next()?;
        let rest = chars.as_str();
        match tag {
            'u' => rest.parse().ok().map(Self::User),
            'U' => Some(Self::AllUsers),
            'A' => Some(Self::AllSessions),
            's' if !rest.is_empty() => Some(Self::Session(rest.to_owned())),
            'S' => {
                let (user_id, except) = match rest.split_once(' ') {
                    Some((id, keep)) => (id, Some(keep.to_owned())),
                    None => (rest, None),
                };
                Some(Self::SessionsOfUser {
                    user_id: user_id.parse().ok()?,
                    except,
                })
            }
            _ => None,
        }
    }
}

/// The state of an instance's invalidation channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidationStatus {
    /// No channel: one process (SQLite), invalidation is in-process only; the cache is on.
    Local,
    /// Subscribed: the cache is on and hears every other instance's writes.
    Up,
    /// Not (yet or any more) subscribed: the cache is off until the channel is back.
    Down,
}

impl fmt::Display for InvalidationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Local => "local",
            Self::Up => "up",
            Self::Down => "down",
        })
    }
}

/// Which engine carries the messages.
#[derive(Clone)]
pub(crate) enum Transport {
    /// PostgreSQL `LISTEN`/`NOTIFY` over the datastore's pool.
    Postgres(PgPool),
    /// Redis pub/sub, on the named channel.
    Redis(redis::Client, String),
}

/// A running channel: where to post invalidations, and the task carrying them.
pub(crate) struct Bus {
    sender: mpsc::UnboundedSender<Invalidation>,
    task: JoinHandle<()>,
    transport: &'static str,
}

impl fmt::Debug for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bus")
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The channel slot every clone of a datastore shares.
#[derive(Debug, Default)]
pub(crate) struct Channel {
    bus: RwLock<Option<Bus>>,
}

impl Channel {
    /// Starts (or replaces) the channel over `transport`; the cache is off until it is up.
    ///
    /// Must be called within a Tokio runtime.
    pub(crate) fn start(&self, transport: Transport, cache: Arc<Cache>) {
        cache.set_channel_up(false);
        let (sender, receiver) = mpsc::unbounded_channel();
        let name = match transport {
            Transport::Postgres(_) => "postgres",
            Transport::Redis(..) => "redis",
        };
        let task = tokio::spawn(run(transport, cache, receiver));
        if let Ok(mut bus) = self.bus.write() {
            // Dropping the old bus aborts its task.
            *bus = Some(Bus {
                sender,
                task,
                transport: name,
            });
        }
    }

    /// Stops the channel (its task ends, its connection is returned).
    pub(crate) fn stop(&self) {
        if let Ok(mut bus) = self.bus.write() {
            *bus = None;
        }
    }

    /// Posts `invalidation` for the other instances (nothing without a channel).
    pub(crate) fn publish(&self, invalidation: Invalidation) {
        if let Ok(bus) = self.bus.read()
            && let Some(bus) = bus.as_ref()
        {
            let _closed = bus.sender.send(invalidation);
        }
    }

    /// `"postgres"`, `"redis"` or `None` (in-process only).
    pub(crate) fn transport(&self) -> Option<&'static str> {
        self.bus.read().ok()?.as_ref().map(|bus| bus.transport)
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What an instance puts before each message, to recognise its own.
fn new_origin() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A subscription, whichever the engine.
enum Subscription {
    Postgres(PgListener),
    Redis(redis::aio::PubSub),
}

impl Subscription {
    async fn open(transport: &Transport) -> Result<Self, String> {
        match transport {
            Transport::Postgres(pool) => {
                let mut listener = PgListener::connect_with(pool)
                    .await
                    .map_err(|e| e.to_string())?;
                listener.eager_reconnect(false);
                listener
                    .listen(PG_CHANNEL)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Self::Postgres(listener))
            }
            Transport::Redis(client, channel) => {
                let mut pubsub = client.get_async_pubsub().await.map_err(|e| e.to_string())?;
                pubsub.subscribe(channel).await.map_err(|e| e.to_string())?;
                Ok(Self::Redis(pubsub))
            }
        }
    }

    /// The next payload; `Err` when the subscription is lost.
    async fn next(&mut self) -> Result<String, String> {
        match self {
            Self::Postgres(listener) => match listener.try_recv().await {
                Ok(Some(notification)) => Ok(notification.payload().to_owned()),
                Ok(None) => Err("connection lost".to_owned()),
                Err(error) => Err(error.to_string()),
            },
            Self::Redis(pubsub) => match pubsub.on_message().next().await {
                Some(message) => message
                    .get_payload::<String>()
                    .map_err(|error| error.to_string()),
                None => Err("connection lost".to_owned()),
            },
        }
    }
}

/// The publishing side, whichever the engine.
enum Publisher {
    Postgres(PgPool),
    Redis(
        Box<(
            redis::Client,
            String,
            Option<redis::aio::MultiplexedConnection>,
        )>,
    ),
}

impl Publisher {
    fn new(transport: &Transport) -> Self {
        match transport {
            Transport::Postgres(pool) => Self::Postgres(pool.clone()),
            Transport::Redis(client, channel) => {
                Self::Redis(Box::new((client.clone(), channel.clone(), None)))
            }
        }
    }

    async fn send(&mut self, payload: &str) -> Result<(), String> {
        match self {
            Self::Postgres(pool) => sqlx::query("SELECT pg_notify($1, $2)")
                .bind(PG_CHANNEL)
                .bind(payload)
                .execute(&*pool)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Self::Redis(redis) => {
                let (client, channel, connection) = &mut **redis;
                if connection.is_none() {
                    *connection = Some(
                        client
                            .get_multiplexed_async_connection()
                            .await
                            .map_err(|e| e.to_string())?,
                    );
                }
                let Some(conn) = connection.as_mut() else {
                    return Err("no connection".to_owned());
                };
                let sent = redis::cmd("PUBLISH")
                    .arg(&*channel)
                    .arg(payload)
                    .query_async::<i64>(conn)
                    .await;
                if let Err(error) = sent {
                    *connection = None;
                    return Err(error.to_string());
                }
                Ok(())
            }
        }
    }
}

/// The channel's task: subscribes (retrying), applies what other instances publish, publishes
/// this instance's invalidations and heartbeats, and turns the cache off while unsubscribed.
async fn run(
    transport: Transport,
    cache: Arc<Cache>,
    mut outbox: mpsc::UnboundedReceiver<Invalidation>,
) {
    let origin = new_origin();
    let mut publisher = Publisher::new(&transport);
    let mut backoff = Duration::from_millis(50);
    let mut warned = false;
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut subscription = match Subscription::open(&transport).await {
            Ok(subscription) => subscription,
            Err(error) => {
                if warned {
                    tracing::debug!(%error, "cache invalidation channel: still cannot subscribe");
                } else {
                    tracing::warn!(%error, "cache invalidation channel: cannot subscribe, caching is off");
                    warned = true;
                }
                // Invalidations posted meanwhile have no subscriber to reach but still go out
                // once the channel is back, harmlessly late.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        // Anything cached before was cached without hearing the other instances.
        cache.set_channel_up(true);
        tracing::info!("cache invalidation channel up: caching is on");
        warned = false;
        let mut heard = Instant::now();
        // The subscription is read on its own task, so the loop below only ever waits on
        // channels (cancel-safe) and a read is never cut in the middle.
        let (inbox_sender, mut inbox) = mpsc::channel::<Result<String, String>>(1024);
        let reader = AbortOnDrop(tokio::spawn(async move {
            loop {
                let received = subscription.next().await;
                let lost = received.is_err();
                if inbox_sender.send(received).await.is_err() || lost {
                    break;
                }
            }
        }));
        let lost = loop {
            tokio::select! {
                received = inbox.recv() => match received {
                    Some(Ok(payload)) => {
                        heard = Instant::now();
                        receive(&payload, &origin, &cache);
                    }
                    Some(Err(error)) => break error,
                    None => break "the subscription's reader stopped".to_owned(),
                },
                posted = outbox.recv() => {
                    let Some(first) = posted else { return };
                    let payloads = batch(&origin, first, &mut outbox);
                    for payload in payloads {
                        if let Err(error) = publisher.send(&payload).await {
                            tracing::error!(%error, "cannot publish a cache invalidation");
                        }
                    }
                }
                _ = heartbeat.tick() => {
                    if heard.elapsed() > SILENCE {
                        break "silent (not even this instance's own heartbeat came back)"
                            .to_owned();
                    }
                    if let Err(error) = publisher.send(&origin).await {
                        tracing::warn!(%error, "cannot publish the invalidation heartbeat");
                    }
                }
            }
        };
        cache.set_channel_up(false);
        tracing::error!(error = %lost, "cache invalidation channel lost: caching is off until it is back");
        drop(reader);
    }
}

/// The messages carrying `first` and whatever else is already posted (each within
/// [`MAX_PAYLOAD`]).
fn batch(
    origin: &str,
    first: Invalidation,
    outbox: &mut mpsc::UnboundedReceiver<Invalidation>,
) -> Vec<String> {
    let mut payloads = Vec::new();
    let mut payload = origin.to_owned();
    let mut next = Some(first);
    while let Some(invalidation) = next {
        let mut line = String::new();
        invalidation.encode(&mut line);
        if payload.len() + 1 + line.len() > MAX_PAYLOAD && payload.len() > origin.len() {
            payloads.push(std::mem::replace(&mut payload, origin.to_owned()));
        }
        payload.push('\n');
        payload.push_str(&line);
        next = outbox.try_recv().ok();
    }
    payloads.push(payload);
    payloads
}

/// Applies a message from another instance (one's own are already applied).
fn receive(payload: &str, origin: &str, cache: &Cache) {
    let mut lines = payload.split('\n');
    if lines.next() == Some(origin) {
        return;
    }
    for line in lines {
        if let Some(invalidation) = Invalidation::decode(line) {
            invalidation.apply(cache);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalidations_survive_the_wire() {
        let all = [
            Invalidation::User(42),
            Invalidation::AllUsers,
            Invalidation::AllSessions,
            Invalidation::Session("abc_DEF-123".into()),
            Invalidation::SessionsOfUser {
                user_id: 7,
                except: None,
            },
            Invalidation::SessionsOfUser {
                user_id: 7,
                except: Some("keep".into()),
            },
        ];
        for invalidation in all {
            let mut line = String::new();
            invalidation.encode(&mut line);
            assert_eq!(Invalidation::decode(&line), Some(invalidation));
        }
        assert_eq!(Invalidation::decode(""), None);
        assert_eq!(Invalidation::decode("ux"), None);
    }

    #[test]
    fn bursts_are_batched_within_the_payload_limit() {
        let (sender, mut receiver) = mpsc::unbounded_channel();
        for i in 0..2000 {
            sender
                .send(Invalidation::Session(format!("{i:064}")))
                .unwrap();
        }
        let first = receiver.try_recv().unwrap();
        let payloads = batch("me", first, &mut receiver);
        assert!(payloads.len() > 1);
        assert!(payloads.iter().all(|p| p.len() <= MAX_PAYLOAD));
        let lines: usize = payloads.iter().map(|p| p.lines().count() - 1).sum();
        assert_eq!(lines, 2000);
    }
}
