//! The backplane's thread and the tasks on it: the driver (connection
//! state, subscriptions), the writer (envelopes out, in order) and one
//! reader per subscribed topic (envelopes in).
//!
//! Everything runs on one current-thread tokio runtime owned by the
//! thread, the NATS client's own tasks included. When the backplane
//! stops, the driver returns and the runtime is dropped, which ends every
//! task on it at once, the client's connection task even in the middle of
//! its reconnect loop (which, left alone, would retry forever).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::client::PublishErrorKind;
use async_nats::connection::State;
use async_nats::{Client, ConnectOptions, Event, SubscribeErrorKind};
use futures_util::StreamExt;
use sockeye::hub::BackplaneLink;
use sockeye::hub::backplane::Delivered;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::backplane::{Counters, Outgoing, Shared};
use crate::config::{Credentials, PUBLISH_BATCH};

/// How often the driver checks that the hub still exists and that the
/// connection state it knows from events matches the client's.
const CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// The backplane's thread: runs the driver on a runtime of its own, then
/// drops the runtime and every task on it.
pub(crate) fn run_thread(
    shared: Arc<Shared>,
    link: BackplaneLink,
    queue: mpsc::Receiver<Outgoing>,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    if let Ok(runtime) = runtime {
        runtime.block_on(run(shared.clone(), link, queue));
        drop(runtime);
    }
    shared.shut_down();
}

async fn run(shared: Arc<Shared>, link: BackplaneLink, queue: mpsc::Receiver<Outgoing>) {
    let stop = shared.stop.clone();
    let client = tokio::select! {
        biased;
        _ = stop.cancelled() => return,
        client = connect(&shared, &link) => client,
    };
    // With `retry_on_initial_connect` the client is returned at once and
    // connects in the background; an error here is a server address the
    // client cannot use.
    let Ok(client) = client else {
        return;
    };
    tokio::spawn(write(shared.clone(), client.clone(), queue));
    drive(&shared, &link, &client).await;
}

/// Creates the client. It reconnects by itself, with our backoff, and
/// subscribes again to its subscriptions after each reconnect.
async fn connect(
    shared: &Arc<Shared>,
    link: &BackplaneLink,
) -> Result<Client, async_nats::ConnectError> {
    let settings = &shared.settings;
    let backoff = settings.backoff;
    let events = shared.clone();
    let name = settings
        .connection_name
        .clone()
        .unwrap_or_else(|| format!("sockeye-{}", link.node_id()));
    let mut options = ConnectOptions::new()
        .name(name)
        // The hub has delivered its own messages locally already.
        .no_echo()
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(settings.connection_timeout)
        .ping_interval(settings.ping_interval)
        .subscription_capacity(settings.receive_capacity)
        .reconnect_delay_callback(move |attempt| backoff.delay(attempt))
        .event_callback(move |event| {
            let shared = events.clone();
            async move { on_event(&shared, &event) }
        });
    match &settings.credentials {
        Credentials::None => {}
        Credentials::UserPassword(user, password) => {
            options = options.user_and_password(user.clone(), password.clone());
        }
        Credentials::Token(token) => options = options.token(token.clone()),
    }
    options.connect(settings.servers.clone()).await
}

fn on_event(shared: &Shared, event: &Event) {
    match event {
        Event::Connected => shared.set_connected(true),
        Event::Disconnected | Event::Closed => shared.set_connected(false),
        // Slow consumers, server errors (such as a permission refused) and
        // failed connection attempts change nothing here.
        _ => {}
    }
}

/// Keeps the server's subscriptions equal to the hub's topics with local
/// subscribers, and watches for the hub's end.
async fn drive(shared: &Arc<Shared>, link: &BackplaneLink, client: &Client) {
    let mut subscriptions: HashMap<String, CancellationToken> = HashMap::new();
    // The connection whose subscriptions were last checked in full.
    let mut checked_epoch = 0;
    let mut check = tokio::time::interval(CHECK_INTERVAL);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = shared.stop.cancelled() => return,
            _ = shared.wake.notified() => {}
            _ = check.tick() => {
                if !link.is_open() {
                    return;
                }
                // Events can be lost (the client's event queue is
                // bounded); its state cannot.
                match client.connection_state() {
                    State::Connected => shared.set_connected(true),
                    State::Disconnected => shared.set_connected(false),
                    State::Pending => {}
                }
            }
        }
        let epoch = shared.epoch.load(Ordering::Acquire);
        if epoch % 2 == 1 && epoch != checked_epoch {
            checked_epoch = epoch;
            shared
                .max_payload
                .store(client.max_payload(), Ordering::Relaxed);
            // The client has subscribed again to what it had; make sure
            // that is exactly what the hub needs now.
            let wanted: HashSet<String> = link
                .topics()
                .into_iter()
                .filter(|topic| shared.settings.prefix.subject(topic).is_some())
                .collect();
            let stale: Vec<String> = subscriptions
                .keys()
                .filter(|topic| !wanted.contains(*topic))
                .cloned()
                .collect();
            for topic in stale {
                unsubscribe(shared, &mut subscriptions, &topic);
            }
            for topic in wanted {
                if !subscriptions.contains_key(&topic)
                    && subscribe(shared, link, client, &mut subscriptions, &topic)
                        .await
                        .is_err()
                {
                    return;
                }
            }
        }
        for topic in shared.take_hints() {
            // Hints may arrive out of order: the hub's state now decides.
            let wanted =
                link.is_subscribed(&topic) && shared.settings.prefix.subject(&topic).is_some();
            match (wanted, subscriptions.contains_key(&topic)) {
                (true, false)
                    if subscribe(shared, link, client, &mut subscriptions, &topic)
                        .await
                        .is_err() =>
                {
                    return;
                }
                (false, true) => unsubscribe(shared, &mut subscriptions, &topic),
                _ => {}
            }
        }
    }
}

/// The client is gone, or the backplane is stopping.
struct Stopped;

/// Subscribes to `topic` and starts its reader.
async fn subscribe(
    shared: &Arc<Shared>,
    link: &BackplaneLink,
    client: &Client,
    subscriptions: &mut HashMap<String, CancellationToken>,
    topic: &str,
) -> Result<(), Stopped> {
    let Some(subject) = shared.settings.prefix.subject(topic) else {
        return Ok(());
    };
    // Waits only while the client's command queue is full (during an
    // outage, the client reads it again once reconnected).
    let subscribed = tokio::select! {
        biased;
        _ = shared.stop.cancelled() => return Err(Stopped),
        subscribed = client.subscribe(subject) => subscribed,
    };
    match subscribed {
        Ok(subscriber) => {
            let cancel = shared.stop.child_token();
            tokio::spawn(read(
                shared.clone(),
                link.clone(),
                topic.to_owned(),
                subscriber,
                cancel.clone(),
            ));
            subscriptions.insert(topic.to_owned(), cancel);
            shared
                .counters
                .subscriptions
                .store(subscriptions.len(), Ordering::Relaxed);
            Ok(())
        }
        Err(error) if error.kind() == SubscribeErrorKind::Other => Err(Stopped),
        // Our subjects are valid; were one refused, the topic stays local.
        Err(_) => Ok(()),
    }
}

/// Ends `topic`'s reader, which unsubscribes. The cancellation comes
/// before any new subscription to the topic, so the old reader delivers
/// nothing the new one does.
fn unsubscribe(
    shared: &Shared,
    subscriptions: &mut HashMap<String, CancellationToken>,
    topic: &str,
) {
    if let Some(cancel) = subscriptions.remove(topic) {
        cancel.cancel();
        shared
            .counters
            .subscriptions
            .store(subscriptions.len(), Ordering::Relaxed);
    }
}

/// Hands what NATS delivers on one topic's subscription to the hub.
async fn read(
    shared: Arc<Shared>,
    link: BackplaneLink,
    topic: String,
    mut subscriber: async_nats::Subscriber,
    cancel: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            message = subscriber.next() => message,
        };
        // A subscription's stream ends only when the client's connection
        // task has ended, which it does not while the backplane holds the
        // client (it reconnects forever): nothing works any more.
        let Some(message) = message else {
            shared.shut_down();
            return;
        };
        Counters::add(&shared.counters.received, 1);
        // The hub decodes the envelope, skips this node's own, and counts
        // what does not decode.
        if matches!(link.deliver(&topic, message.payload), Delivered::HubClosed) {
            shared.shut_down();
            return;
        }
    }
    if !shared.stop.is_cancelled() {
        tokio::select! {
            biased;
            _ = shared.stop.cancelled() => {}
            _ = subscriber.unsubscribe() => {}
        }
    }
}

/// Hands queued envelopes to the client in order, one batch at a time,
/// and flushes after each batch.
///
/// The flush bounds what the client holds: when a connection breaks, the
/// envelopes the client had written are lost, and those it still held (at
/// most one batch) are sent once it has reconnected. Envelopes queued
/// before the outage but not yet handed over are dropped and counted, as
/// their epoch is over.
async fn write(shared: Arc<Shared>, client: Client, mut queue: mpsc::Receiver<Outgoing>) {
    let stop = shared.stop.clone();
    let counters = &shared.counters;
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    loop {
        let received = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            received = queue.recv_many(&mut batch, PUBLISH_BATCH) => received,
        };
        if received == 0 {
            return;
        }
        let mut handed = 0;
        for outgoing in batch.drain(..) {
            if outgoing.epoch != shared.epoch.load(Ordering::Acquire) {
                Counters::add(&counters.dropped, 1);
                continue;
            }
            let published = tokio::select! {
                biased;
                _ = stop.cancelled() => return,
                published = client.publish(outgoing.subject, outgoing.envelope) => published,
            };
            match published {
                Ok(()) => {
                    Counters::add(&counters.published, 1);
                    handed += 1;
                }
                Err(error) => {
                    Counters::add(&counters.dropped, 1);
                    if error.kind() == PublishErrorKind::Send {
                        shared.shut_down();
                        return;
                    }
                }
            }
        }
        if handed > 0 {
            let flushed = tokio::select! {
                biased;
                _ = stop.cancelled() => return,
                flushed = client.flush() => flushed,
            };
            if flushed.is_err() {
                shared.shut_down();
                return;
            }
        }
    }
}
