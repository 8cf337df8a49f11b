//! The backplane's task: connects, sends the queued envelopes, keeps the
//! subscriptions in line with the hub's topics, hands what arrives to the
//! hub, and connects again when Redis goes away.
//!
//! One *session* is a pair of connections made together: the publisher
//! (pipelined `PUBLISH`/`SPUBLISH`, in queue order) and the subscriber
//! (`SUBSCRIBE`/`SSUBSCRIBE`, and the messages). When either ends, fails a
//! health check or times out a command, both are closed and the next
//! session, after a backoff, subscribes again to exactly
//! [`BackplaneLink::topics`].

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use fred::clients::Client;
use fred::error::{Error as FredError, ErrorKind};
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use fred::types::config::TcpConfig;
use fred::types::{Builder, ConnectHandle, CustomCommand, Message, MessageKind, Value};
use sockeye::hub::BackplaneLink;
use sockeye::hub::backplane::Delivered;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::backplane::{MODE_CLASSIC, MODE_SHARDED, Outgoing, Phase, Shared};
use crate::config::Sharded;

/// Envelopes sent in one pipeline at most: what piled up while the last
/// batch was on its way.
const MAX_BATCH: usize = 512;

/// Channels named in one `SUBSCRIBE` or `UNSUBSCRIBE` at most.
const SUBSCRIBE_CHUNK: usize = 256;

/// How often the task checks that its hub still exists (the hub does not
/// tell its backplane when it is dropped).
const LINK_CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// Broadcast capacity of the publisher's client, which receives no
/// messages (its event channels only carry connection events).
const PUBLISHER_EVENTS: usize = 16;

/// Why a session ended.
enum End {
    /// For good: shut down, or the hub is gone.
    Stop,
    /// The connection was lost or failed; connect again.
    Lost(String),
}

/// Runs until the backplane stops.
pub(crate) async fn run(
    shared: Arc<Shared>,
    link: BackplaneLink,
    mut queue: mpsc::Receiver<Outgoing>,
) {
    let settings = &shared.settings;
    let mut backoff = Backoff::new(settings.reconnect_min, settings.reconnect_max);
    let mut sessions: u64 = 0;
    loop {
        if shared.stop.is_cancelled() || !link.is_open() {
            break;
        }
        let connected = tokio::select! {
            biased;
            () = shared.stop.cancelled() => break,
            () = link_closed(&link) => break,
            connected = Session::connect(&shared) => connected,
        };
        match connected {
            Ok(mut session) => {
                if sessions > 0 {
                    shared.counters.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                sessions += 1;
                let started = Instant::now();
                let end = session.run(&shared, &link, &mut queue).await;
                shared.set_phase(Phase::Connecting);
                shared.stop_recording_hints();
                // Closes both connections.
                drop(session);
                shared.count_dropped(shared.in_flight.swap(0, Ordering::Relaxed));
                shared.drop_queued(&mut queue);
                shared.counters.subscriptions.store(0, Ordering::Relaxed);
                match end {
                    End::Stop => break,
                    End::Lost(why) => shared.record_error(why),
                }
                if started.elapsed() >= settings.reconnect_max {
                    backoff.reset();
                }
            }
            Err(why) => {
                shared
                    .counters
                    .failed_connects
                    .fetch_add(1, Ordering::Relaxed);
                shared.record_error(why);
            }
        }
        let delay = backoff.next_delay();
        tokio::select! {
            biased;
            () = shared.stop.cancelled() => break,
            () = link_closed(&link) => break,
            () = tokio::time::sleep(delay) => {}
        }
    }
    shared.stop_recording_hints();
    shared.finish(&mut queue);
}

/// Returns once the hub is gone.
async fn link_closed(link: &BackplaneLink) {
    let mut ticks = tokio::time::interval(LINK_CHECK_INTERVAL);
    loop {
        ticks.tick().await;
        if !link.is_open() {
            return;
        }
    }
}

/// A fred client with a connection of its own, closed when this is
/// dropped.
struct Connection {
    client: Client,
    task: ConnectHandle,
    /// The task has ended (its handle must not be polled again).
    ended: bool,
}

impl Drop for Connection {
    fn drop(&mut self) {
        // The task owns the socket: aborting it closes the connection at
        // once, and Redis forgets its subscriptions.
        self.task.abort();
    }
}

impl Connection {
    /// Connects `client` (which has no reconnect policy: reconnecting is
    /// the session's business). Returns once the connection is set up
    /// (`AUTH`, `SELECT`, `INFO` done).
    async fn open(client: Client) -> Result<Connection, FredError> {
        // Subscribed before connecting, so the event cannot be missed.
        let mut ready = client.reconnect_rx();
        let task = client.connect();
        let mut connection = Connection {
            client,
            task,
            ended: false,
        };
        let outcome = tokio::select! {
            event = ready.recv() => match event {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => Ok(()),
                Err(broadcast::error::RecvError::Closed) => {
                    Err(FredError::new(ErrorKind::Canceled, "client closed"))
                }
            },
            why = connection.ended() => Err(FredError::new(ErrorKind::IO, why)),
        };
        outcome.map(|()| connection)
    }

    /// Waits until the connection's task ends, and says why. Pending
    /// forever once it has said so.
    async fn ended(&mut self) -> String {
        if self.ended {
            return std::future::pending().await;
        }
        let result = (&mut self.task).await;
        self.ended = true;
        match result {
            Ok(Ok(())) => "connection closed".to_owned(),
            Ok(Err(error)) => error.to_string(),
            Err(join_error) => format!("connection task ended: {join_error}"),
        }
    }
}

/// A new fred client for the backplane's server, with our timeouts and no
/// reconnect policy.
fn new_client(shared: &Shared, events: usize) -> Result<Client, FredError> {
    let settings = &shared.settings;
    let mut builder = Builder::from_config(shared.server.clone());
    builder
        .with_connection_config(|connection| {
            connection.connection_timeout = settings.connect_timeout;
            connection.internal_command_timeout = settings.connect_timeout;
            // A command is never sent twice: the backplane is at most once.
            connection.max_command_attempts = 1;
            connection.tcp = TcpConfig {
                nodelay: Some(true),
                ..TcpConfig::default()
            };
        })
        .with_performance_config(|performance| {
            performance.default_command_timeout = settings.command_timeout;
            performance.broadcast_channel_capacity = events;
        });
    builder.build()
}

/// The two connections of one session, and what it subscribed.
struct Session {
    publisher: Connection,
    subscriber: Connection,
    /// What the subscriber receives, subscribed before it connected.
    messages: broadcast::Receiver<Message>,
    sharded: bool,
    /// Topics subscribed on the server now.
    subscribed: HashSet<String>,
}

impl Session {
    /// Makes both connections and decides the mode, within the connect
    /// timeout.
    async fn connect(shared: &Shared) -> Result<Session, String> {
        let timeout = shared.settings.connect_timeout;
        match tokio::time::timeout(timeout, Session::open(shared)).await {
            Ok(Ok(session)) => Ok(session),
            Ok(Err(error)) => Err(format!("connecting: {error}")),
            Err(_) => Err(format!("connecting: no answer within {timeout:?}")),
        }
    }

    async fn open(shared: &Shared) -> Result<Session, FredError> {
        let publisher = new_client(shared, PUBLISHER_EVENTS)?;
        let subscriber = new_client(shared, shared.settings.receive_buffer)?;
        let messages = subscriber.message_rx();
        let (publisher, subscriber) =
            tokio::try_join!(Connection::open(publisher), Connection::open(subscriber))?;
        let sharded = match shared.settings.sharded {
            Sharded::Always => true,
            Sharded::Never => false,
            Sharded::Auto => server_has_sharded_pubsub(&publisher.client).await,
        };
        Ok(Session {
            publisher,
            subscriber,
            messages,
            sharded,
            subscribed: HashSet::new(),
        })
    }

    /// Publishes, receives, restores the subscriptions and follows the
    /// hub's topics, until the session ends.
    async fn run(
        &mut self,
        shared: &Shared,
        link: &BackplaneLink,
        queue: &mut mpsc::Receiver<Outgoing>,
    ) -> End {
        let Session {
            publisher,
            subscriber,
            messages,
            sharded,
            subscribed,
        } = self;
        let sharded = *sharded;
        let publisher_client = publisher.client.clone();
        let subscriber_client = subscriber.client.clone();
        let work = async {
            // Envelopes queued for the last session are stale by now.
            shared.drop_queued(queue);
            // Hints from now on are kept; those from before are covered by
            // the topics read next.
            shared.start_recording_hints();
            let topics = link.topics();
            shared.mode.store(
                if sharded { MODE_SHARDED } else { MODE_CLASSIC },
                Ordering::Relaxed,
            );
            // Publishes are taken from now on, while the subscriptions are
            // restored.
            shared.set_phase(Phase::Connected);
            tokio::select! {
                end = publish(&publisher_client, sharded, shared, queue) => end,
                end = receive(messages, shared, link) => end,
                end = follow_topics(&subscriber_client, sharded, subscribed, shared, link, topics) => end,
                end = check_health(&publisher_client, &subscriber_client, shared) => end,
            }
        };
        tokio::select! {
            biased;
            () = shared.stop.cancelled() => End::Stop,
            () = link_closed(link) => End::Stop,
            why = publisher.ended() => End::Lost(format!("publisher: {why}")),
            why = subscriber.ended() => End::Lost(format!("subscriber: {why}")),
            end = work => end,
        }
    }
}

/// Whether the server has sharded pub/sub: Redis 7.0 or later by its
/// `INFO`, or, if that told no version, `COMMAND INFO SPUBLISH`.
async fn server_has_sharded_pubsub(client: &Client) -> bool {
    if let Some(version) = client.server_version() {
        return version.major >= 7;
    }
    let command = CustomCommand::new_static("COMMAND", None, false);
    match client
        .custom::<Value, _>(command, vec!["INFO", "SPUBLISH"])
        .await
    {
        Ok(Value::Array(entries)) => entries
            .first()
            .is_some_and(|entry| !matches!(entry, Value::Null)),
        _ => false,
    }
}

/// Errors after which the connection cannot be trusted: it is made again.
fn is_connection_error(error: &FredError) -> bool {
    matches!(
        error.kind(),
        ErrorKind::IO | ErrorKind::Timeout | ErrorKind::Canceled | ErrorKind::Protocol
    )
}

/// Sends the queued envelopes in order, in pipelined batches: whatever
/// piled up while the previous batch was on its way goes out at once (fred
/// flushes every 200 commands), and the replies are read after.
async fn publish(
    client: &Client,
    sharded: bool,
    shared: &Shared,
    queue: &mut mpsc::Receiver<Outgoing>,
) -> End {
    let mut batch: Vec<Outgoing> = Vec::with_capacity(MAX_BATCH);
    loop {
        if queue.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return End::Stop;
        }
        let count = batch.len();
        let bytes: usize = batch.iter().map(|outgoing| outgoing.envelope.len()).sum();
        shared.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
        shared.in_flight.store(count, Ordering::Relaxed);
        let pipeline = client.pipeline();
        let mut refused = 0;
        for Outgoing { channel, envelope } in batch.drain(..) {
            let message = Value::Bytes(envelope);
            let queued: Result<(), FredError> = if sharded {
                pipeline.spublish(channel, message).await
            } else {
                pipeline.publish(channel, message).await
            };
            // Only an argument that does not convert fails here.
            if queued.is_err() {
                refused += 1;
            }
        }
        let results = pipeline.try_all::<Value>().await;
        shared.in_flight.store(0, Ordering::Relaxed);
        let sent = count - refused;
        let mut published = 0;
        let mut lost = None;
        for result in &results {
            match result {
                Ok(_) => published += 1,
                Err(error) if is_connection_error(error) => lost = Some(error.to_string()),
                Err(error) => shared.record_error(format!("publishing: {error}")),
            }
        }
        if results.len() < sent {
            // The whole pipeline failed with one error.
            published = 0;
        }
        let counters = &shared.counters;
        counters.published.fetch_add(published, Ordering::Relaxed);
        shared.count_dropped(count.saturating_sub(published as usize));
        if let Some(why) = lost {
            return End::Lost(format!("publishing: {why}"));
        }
    }
}

/// Hands every message that arrives to the hub.
async fn receive(
    messages: &mut broadcast::Receiver<Message>,
    shared: &Shared,
    link: &BackplaneLink,
) -> End {
    let prefix = shared.settings.channel_prefix.as_str();
    loop {
        let message = match messages.recv().await {
            Ok(message) => message,
            Err(broadcast::error::RecvError::Lagged(lost)) => {
                shared
                    .counters
                    .lost_incoming
                    .fetch_add(lost, Ordering::Relaxed);
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => {
                return End::Lost("subscriber closed".to_owned());
            }
        };
        if !matches!(message.kind, MessageKind::Message | MessageKind::SMessage) {
            continue;
        }
        let Some(topic) = message.channel.strip_prefix(prefix) else {
            continue;
        };
        shared.counters.received.fetch_add(1, Ordering::Relaxed);
        let envelope = match message.value {
            Value::Bytes(bytes) => bytes,
            Value::String(text) => text.into_inner(),
            // Not an envelope: the hub counts it as invalid.
            _ => Bytes::new(),
        };
        if matches!(link.deliver(topic, envelope), Delivered::HubClosed) {
            return End::Stop;
        }
    }
}

/// Subscribes to `topics` (the hub's topics when the session started),
/// then to and from the topics the hub hints at, by what
/// [`BackplaneLink::is_subscribed`] says when the hint is handled.
async fn follow_topics(
    client: &Client,
    sharded: bool,
    subscribed: &mut HashSet<String>,
    shared: &Shared,
    link: &BackplaneLink,
    topics: Vec<String>,
) -> End {
    let prefix = shared.settings.channel_prefix.as_str();
    let mut wanted = topics;
    let mut unwanted = Vec::new();
    loop {
        let changed =
            change_subscriptions(client, prefix, sharded, subscribed, wanted, unwanted).await;
        shared
            .counters
            .subscriptions
            .store(subscribed.len(), Ordering::Relaxed);
        match changed {
            Ok(()) => {}
            Err(error) if is_connection_error(&error) => {
                return End::Lost(format!("subscribing: {error}"));
            }
            // Refused by the server (an ACL, say): tried again at the next
            // hint for the topic or the next connection.
            Err(error) => shared.record_error(format!("subscribing: {error}")),
        }
        shared.hints_changed.notified().await;
        (wanted, unwanted) = (Vec::new(), Vec::new());
        for topic in shared.take_hints() {
            match (link.is_subscribed(&topic), subscribed.contains(&topic)) {
                (true, false) => wanted.push(topic),
                (false, true) => unwanted.push(topic),
                _ => {}
            }
        }
    }
}

/// Subscribes to `wanted` and unsubscribes from `unwanted`, updating
/// `subscribed` as the server confirms.
async fn change_subscriptions(
    client: &Client,
    prefix: &str,
    sharded: bool,
    subscribed: &mut HashSet<String>,
    wanted: Vec<String>,
    unwanted: Vec<String>,
) -> Result<(), FredError> {
    let channels = |topics: &[String]| -> Vec<String> {
        topics
            .iter()
            .map(|topic| format!("{prefix}{topic}"))
            .collect()
    };
    if sharded {
        // One channel per SSUBSCRIBE: fred matches only the first of
        // several confirmations to the command, and the others could be
        // taken for the replies to the next commands.
        for topic in wanted {
            client.ssubscribe(format!("{prefix}{topic}")).await?;
            subscribed.insert(topic);
        }
    } else {
        for topics in wanted.chunks(SUBSCRIBE_CHUNK) {
            client.subscribe(channels(topics)).await?;
            subscribed.extend(topics.iter().cloned());
        }
    }
    for topics in unwanted.chunks(SUBSCRIBE_CHUNK) {
        if sharded {
            client.sunsubscribe(channels(topics)).await?;
        } else {
            client.unsubscribe(channels(topics)).await?;
        }
        for topic in topics {
            subscribed.remove(topic);
        }
    }
    Ok(())
}

/// Sends a `PING` on both connections at every health check interval.
async fn check_health(publisher: &Client, subscriber: &Client, shared: &Shared) -> End {
    let interval = shared.settings.health_check_interval;
    let mut ticks = tokio::time::interval_at(Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let (publisher_pong, subscriber_pong) = tokio::join!(
            publisher.ping::<Value>(None),
            subscriber.ping::<Value>(None)
        );
        if let Err(error) = publisher_pong {
            return End::Lost(format!("publisher health check: {error}"));
        }
        if let Err(error) = subscriber_pong {
            return End::Lost(format!("subscriber health check: {error}"));
        }
    }
}
