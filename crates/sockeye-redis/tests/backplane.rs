//! The Redis backplane against a real `redis-server`: hubs on several
//! nodes, WebSocket clients attached to them, and the server killed and
//! restarted under them. Each test that needs the server passes as skipped
//! (and says so) where `redis-server` is not installed.

mod common;

use std::time::{Duration, Instant};

use common::{Node, PATIENCE, QUIET, RedisServer, eventually, subscriber_count, wait_subscribers};
use fred::prelude::{ClientLike, PubsubInterface};
use fred::types::{CustomCommand, Value};
use sockeye::Message;
use sockeye::hub::Backplane;
use sockeye_redis::{RedisBackplane, Sharded};

/// A valid envelope but for its version byte, and a text envelope whose
/// payload is not UTF-8: what another program (or a newer sockeye) might
/// publish on our channels.
fn foreign_payloads() -> Vec<Vec<u8>> {
    let mut newer_version = vec![2, 1];
    newer_version.extend_from_slice(&[0; 16]);
    newer_version.extend_from_slice(b"hi");
    let mut bad_text = vec![1, 1];
    bad_text.extend_from_slice(&[7; 16]);
    bad_text.extend_from_slice(&[0xff, 0xfe]);
    vec![b"not an envelope".to_vec(), newer_version, bad_text]
}

async fn publish_raw(
    client: &fred::clients::Client,
    channel: &str,
    payload: Vec<u8>,
    sharded: bool,
) {
    let payload = Value::Bytes(payload.into());
    let _: i64 = if sharded {
        client.spublish(channel, payload).await.unwrap()
    } else {
        client.publish(channel, payload).await.unwrap()
    };
}

async fn connected_clients(client: &fred::clients::Client) -> usize {
    let info: String = client
        .custom(
            CustomCommand::new_static("INFO", None, false),
            vec!["clients"],
        )
        .await
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("connected_clients:"))
        .and_then(|count| count.trim().parse().ok())
        .expect("connected_clients in INFO")
}

/// (a) and (e): three nodes; every subscriber on every node gets each
/// message once, in its publisher's order, with its type and bytes; the
/// publishing node skips its own envelopes; what is not an envelope is
/// counted and dropped.
#[tokio::test]
async fn messages_reach_every_node_once_in_order_and_unchanged() {
    let Some(server) = RedisServer::start("messages_reach_every_node") else {
        return;
    };
    let checker = server.client().await;
    let nodes: Vec<Node> = (0..3)
        .map(|_| Node::new(RedisBackplane::builder(&server.url())))
        .collect();
    for node in &nodes {
        node.connected().await;
    }
    let sharded = nodes[0]
        .backplane
        .redis_status()
        .sharded
        .expect("connected");
    let server_is_7 = checker
        .server_version()
        .is_some_and(|version| version.major >= 7);
    assert_eq!(sharded, server_is_7, "Auto uses sharded pub/sub on Redis 7");

    // One subscriber on nodes 0 and 2, two on node 1.
    let mut clients = vec![
        nodes[0].client(),
        nodes[1].client(),
        nodes[1].client(),
        nodes[2].client(),
    ];
    for client in &clients {
        assert!(client.subscriber.subscribe("room"));
    }
    // One subscribed connection per node, not per subscriber.
    wait_subscribers(&checker, "sockeye:room", sharded, 3).await;
    assert_eq!(nodes[1].backplane.status().subscriptions, 1);

    let from_first = vec![
        Message::text("héllo"),
        Message::binary(vec![0xff, 0x00, 0xfe, 0x80]),
        Message::text(""),
        Message::binary(Vec::new()),
        Message::binary((0..100_000u32).map(|i| i as u8).collect::<Vec<u8>>()),
    ];
    let from_second: Vec<Message> = (0..50)
        .map(|i| Message::text(format!("second {i}")))
        .collect();
    for (i, message) in from_second.iter().enumerate() {
        if let Some(first) = from_first.get(i) {
            nodes[0].hub.publish("room", first.clone());
        }
        nodes[1].hub.publish("room", message.clone());
    }
    let total = from_first.len() + from_second.len();
    for client in &mut clients {
        let (mut got_first, mut got_second) = (Vec::new(), Vec::new());
        for _ in 0..total {
            let message = client.next().await;
            if from_second.contains(&message) {
                got_second.push(message);
            } else {
                got_first.push(message);
            }
        }
        assert_eq!(got_first, from_first);
        assert_eq!(got_second, from_second);
    }
    tokio::time::sleep(QUIET).await;
    for client in &mut clients {
        client.expect_nothing_now().await;
    }
    // Published counts when Redis has answered, maybe just after delivery.
    eventually("Redis confirmed every publish", || {
        nodes[0].backplane.status().published == 5 && nodes[1].backplane.status().published == 50
    })
    .await;
    for (index, node) in nodes.iter().enumerate() {
        let status = node.backplane.status();
        assert!(status.connected);
        assert_eq!(status.dropped, 0, "node {index}");
        // Redis sends every node every message, its own included.
        assert_eq!(status.received, total as u64, "node {index}");
        let own = [from_first.len(), from_second.len(), 0][index];
        assert_eq!(
            node.hub.stats().received_remote,
            (total - own) as u64,
            "node {index}"
        );
    }

    // (e) Foreign messages on the channel are counted and dropped.
    let foreign = foreign_payloads();
    for payload in &foreign {
        publish_raw(&checker, "sockeye:room", payload.clone(), sharded).await;
    }
    for (index, node) in nodes.iter().enumerate() {
        eventually(&format!("node {index} counts the foreign messages"), || {
            node.hub.stats().invalid_envelopes == foreign.len() as u64
        })
        .await;
    }
    nodes[2].hub.publish("room", Message::text("still here"));
    for client in &mut clients {
        assert_eq!(client.next().await, Message::text("still here"));
    }
}

/// (b) and (c), with the classic commands: topics (odd ones included) and
/// prefixes keep apart; a node unsubscribes on Redis when its last local
/// subscriber leaves, and then receives nothing; hints in any order end in
/// the right subscription; a full queue refuses at once.
#[tokio::test]
async fn topics_stay_apart_and_unsubscribing_stops_delivery() {
    let Some(server) = RedisServer::start("topics_stay_apart") else {
        return;
    };
    let checker = server.client().await;
    let builder = |prefix: &str| {
        RedisBackplane::builder(&server.url())
            .sharded(Sharded::Never)
            .channel_prefix(prefix)
    };
    let first = Node::new(builder("app:"));
    let second = Node::new(builder("app:"));
    let other_app = Node::new(builder("other:"));
    for node in [&first, &second, &other_app] {
        node.connected().await;
        assert_eq!(node.backplane.redis_status().sharded, Some(false));
    }

    let topics = ["", "a", "b", "app:a", "with space\r\n", "ünï*?[]"];
    let subscribe_all = |node: &Node| {
        topics
            .iter()
            .map(|topic| {
                let client = node.client();
                assert!(client.subscriber.subscribe(topic));
                client
            })
            .collect::<Vec<_>>()
    };
    let mut first_clients = subscribe_all(&first);
    let mut second_clients = subscribe_all(&second);
    let mut other_clients = subscribe_all(&other_app);
    for topic in topics {
        wait_subscribers(&checker, &format!("app:{topic}"), false, 2).await;
        wait_subscribers(&checker, &format!("other:{topic}"), false, 1).await;
    }

    for topic in topics {
        first
            .hub
            .publish(topic, Message::text(format!("to {topic:?}")));
    }
    for (index, topic) in topics.iter().enumerate() {
        let expected = Message::text(format!("to {topic:?}"));
        assert_eq!(first_clients[index].next().await, expected);
        assert_eq!(second_clients[index].next().await, expected);
    }
    tokio::time::sleep(QUIET).await;
    for client in first_clients
        .iter_mut()
        .chain(&mut second_clients)
        .chain(&mut other_clients)
    {
        client.expect_nothing_now().await;
    }
    assert_eq!(other_app.backplane.status().received, 0);

    // (c) The last local subscriber of "a" on the second node leaves.
    assert!(second_clients[1].subscriber.unsubscribe("a"));
    wait_subscribers(&checker, "app:a", false, 1).await;
    eventually("the second node counts one subscription less", || {
        second.backplane.status().subscriptions == topics.len() - 1
    })
    .await;
    let received = second.backplane.status().received;
    first.hub.publish("a", Message::text("after"));
    assert_eq!(first_clients[1].next().await, Message::text("after"));
    tokio::time::sleep(QUIET).await;
    second_clients[1].expect_nothing_now().await;
    assert_eq!(second.backplane.status().received, received);
    // Dropping a subscriber leaves its topics too.
    drop(second_clients.remove(2));
    wait_subscribers(&checker, "app:b", false, 1).await;

    // Hints that pile up, in any order, end in the last state.
    let flapper = second.client();
    for round in 0..100 {
        assert!(flapper.subscriber.subscribe("flap"));
        if round % 7 == 0 {
            tokio::task::yield_now().await;
        }
        assert!(flapper.subscriber.unsubscribe("flap"));
    }
    assert!(flapper.subscriber.subscribe("flap"));
    wait_subscribers(&checker, "app:flap", false, 1).await;
    for _ in 0..100 {
        assert!(flapper.subscriber.unsubscribe("flap"));
        assert!(flapper.subscriber.subscribe("flap"));
    }
    assert!(flapper.subscriber.unsubscribe("flap"));
    tokio::time::sleep(QUIET).await;
    assert_eq!(subscriber_count(&checker, "app:flap", false).await, 0);

    // A full queue refuses at once. This runtime has one thread, so the
    // backplane's task cannot take anything off the queue during the loop.
    let bounded = Node::new(builder("app:").queue_capacity(3).queue_bytes(1 << 20));
    bounded.connected().await;
    for i in 0..10 {
        bounded
            .hub
            .publish("a", Message::text(format!("burst {i}")));
    }
    assert_eq!(bounded.hub.stats().dropped_backplane, 7);
    assert_eq!(bounded.backplane.status().dropped, 7);
    for i in 0..3 {
        assert_eq!(
            first_clients[1].next().await,
            Message::text(format!("burst {i}"))
        );
    }
    // So does a queue full in bytes: 18 bytes of header and 1000 of
    // payload do not fit twice in 2000.
    let bounded_bytes = Node::new(builder("app:").queue_bytes(2000));
    bounded_bytes.connected().await;
    for _ in 0..3 {
        bounded_bytes
            .hub
            .publish("a", Message::binary(vec![7u8; 1000]));
    }
    assert_eq!(bounded_bytes.hub.stats().dropped_backplane, 2);
    assert_eq!(
        first_clients[1].next().await,
        Message::binary(vec![7u8; 1000])
    );
    first_clients[1].expect_nothing().await;
}

/// Subscribers on several threads join and leave one topic at once, so the
/// hub's hints reach the backplane in any order: the subscription on Redis
/// still ends as the hub's topics do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_subscribers_end_in_the_right_subscription() {
    let Some(server) = RedisServer::start("racing_subscribers") else {
        return;
    };
    let checker = server.client().await;
    let node = Node::new(RedisBackplane::builder(&server.url()));
    node.connected().await;
    let sharded = node.backplane.redis_status().sharded.expect("connected");
    let racers: Vec<_> = (0..4).map(|_| node.client()).collect();
    let mut tasks = Vec::new();
    for (index, racer) in racers.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for round in 0..300 {
                racer.subscriber.subscribe("race");
                if round % 3 == index % 3 {
                    tokio::task::yield_now().await;
                }
                racer.subscriber.unsubscribe("race");
            }
            // Two of them stay.
            if index < 2 {
                racer.subscriber.subscribe("race");
            }
            racer
        }));
    }
    let mut racers = Vec::new();
    for task in tasks {
        racers.push(task.await.expect("no panic"));
    }
    assert_eq!(node.hub.subscriber_count("race"), 2);
    wait_subscribers(&checker, "sockeye:race", sharded, 1).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(subscriber_count(&checker, "sockeye:race", sharded).await, 1);
    assert_eq!(node.backplane.status().subscriptions, 1);
    for racer in &racers {
        racer.subscriber.unsubscribe("race");
    }
    wait_subscribers(&checker, "sockeye:race", sharded, 0).await;
    eventually("no subscription left", || {
        node.backplane.status().subscriptions == 0
    })
    .await;
}

/// (d) The server is killed and restarted on the same port: no panic,
/// local delivery goes on, cross-node publishes meanwhile are counted as
/// dropped, and the backplane reconnects and subscribes again by itself
/// (to the topics of now, not of before). Then shutdown and the hub's drop
/// close the connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_degrades_to_local_delivery_and_recovers() {
    let Some(mut server) = RedisServer::start("a_redis_outage") else {
        return;
    };
    common::count_worker_panics();
    let panics_before = common::worker_panics();
    let first = Node::new(RedisBackplane::builder(&server.url()));
    let second = Node::new(RedisBackplane::builder(&server.url()));
    first.connected().await;
    second.connected().await;
    let sharded = first.backplane.redis_status().sharded.expect("connected");
    let mut first_client = first.client();
    let mut second_client = second.client();
    assert!(first_client.subscriber.subscribe("room"));
    assert!(second_client.subscriber.subscribe("room"));
    {
        let checker = server.client().await;
        wait_subscribers(&checker, "sockeye:room", sharded, 2).await;
    }
    first.hub.publish("room", Message::text("before"));
    assert_eq!(first_client.next().await, Message::text("before"));
    assert_eq!(second_client.next().await, Message::text("before"));

    server.kill();
    eventually("both nodes notice the outage", || {
        !first.backplane.status().connected && !second.backplane.status().connected
    })
    .await;
    let hub_dropped = first.hub.stats().dropped_backplane;
    let backplane_dropped = first.backplane.status().dropped;
    for i in 0..5 {
        let message = Message::text(format!("during {i}"));
        first.hub.publish("room", message.clone());
        // Local delivery does not wait for Redis.
        let started = Instant::now();
        assert_eq!(first_client.next().await, message);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    assert_eq!(first.hub.stats().dropped_backplane - hub_dropped, 5);
    assert!(first.backplane.status().dropped - backplane_dropped >= 5);
    // Subscriptions change while Redis is away.
    let mut first_late = first.client();
    assert!(first_late.subscriber.subscribe("late"));
    let second_late = second.client();
    assert!(second_late.subscriber.subscribe("late"));
    drop(second_late);
    let mut second_late = second.client();
    assert!(second_late.subscriber.subscribe("late"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(first.backplane.redis_status().failed_connects >= 1);
    assert!(first.backplane.redis_status().last_error.is_some());

    server.restart();
    let restarted = Instant::now();
    first.connected().await;
    second.connected().await;
    let took = restarted.elapsed();
    println!("reconnected {took:?} after the restart");
    assert!(took < Duration::from_secs(7), "reconnected after {took:?}");
    assert!(first.backplane.status().reconnects >= 1);
    assert!(second.backplane.status().reconnects >= 1);
    let checker = server.client().await;
    wait_subscribers(&checker, "sockeye:room", sharded, 2).await;
    wait_subscribers(&checker, "sockeye:late", sharded, 2).await;
    assert_eq!(first.backplane.status().subscriptions, 2);

    first.hub.publish("room", Message::text("after"));
    // The next message is this one: nothing dropped was buffered.
    assert_eq!(second_client.next().await, Message::text("after"));
    assert_eq!(first_client.next().await, Message::text("after"));
    second.hub.publish("late", Message::text("late news"));
    assert_eq!(first_late.next().await, Message::text("late news"));
    assert_eq!(second_late.next().await, Message::text("late news"));

    // Shutdown closes both connections; local delivery goes on.
    assert_eq!(connected_clients(&checker).await, 5);
    first.backplane.shutdown();
    tokio::time::timeout(PATIENCE, first.backplane.closed())
        .await
        .expect("closed after shutdown");
    assert!(first.backplane.is_stopped());
    let connected = tokio::time::timeout(PATIENCE, first.backplane.wait_connected()).await;
    assert_eq!(connected, Ok(false));
    assert!(!first.backplane.publish("room", "x".into()));
    first.hub.publish("room", Message::text("local only"));
    assert_eq!(first_client.next().await, Message::text("local only"));
    second_client.expect_nothing().await;
    let deadline = Instant::now() + PATIENCE;
    while connected_clients(&checker).await != 3 {
        assert!(Instant::now() < deadline, "shutdown left connections open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Dropping the hub stops its backplane, though the test holds a clone.
    let Node { hub, backplane } = second;
    drop((hub, second_client, second_late));
    tokio::time::timeout(PATIENCE, backplane.closed())
        .await
        .expect("closed after the hub's drop");
    while connected_clients(&checker).await != 1 {
        assert!(
            Instant::now() < deadline,
            "the hub's drop left connections open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(common::worker_panics(), panics_before, "a task panicked");
}

/// A server that stops answering but keeps its connections open (as
/// behind a network partition) is noticed by the health check and the
/// command timeout; once it answers again, the backplane reconnects.
#[tokio::test]
async fn a_server_that_stops_answering_is_noticed_and_left() {
    let Some(server) = RedisServer::start("a_server_that_stops_answering") else {
        return;
    };
    let builder = || {
        RedisBackplane::builder(&server.url())
            .health_check_interval(Duration::from_millis(200))
            .command_timeout(Duration::from_millis(300))
            .connect_timeout(Duration::from_millis(300))
            .reconnect_backoff(Duration::from_millis(50), Duration::from_millis(200))
    };
    let first = Node::new(builder());
    let second = Node::new(builder());
    first.connected().await;
    second.connected().await;
    let sharded = first.backplane.redis_status().sharded.expect("connected");
    let mut first_client = first.client();
    let mut second_client = second.client();
    assert!(first_client.subscriber.subscribe("room"));
    assert!(second_client.subscriber.subscribe("room"));
    let checker = server.client().await;
    wait_subscribers(&checker, "sockeye:room", sharded, 2).await;

    if !server.pause(true) {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "a_server_that_stops_answering: skipped: cannot signal redis-server"
        );
        return;
    }
    let paused = Instant::now();
    eventually("both nodes notice the silence", || {
        !first.backplane.status().connected && !second.backplane.status().connected
    })
    .await;
    let noticed = paused.elapsed();
    assert!(
        noticed < Duration::from_secs(2),
        "noticed after {noticed:?}"
    );
    first.hub.publish("room", Message::text("local"));
    assert_eq!(first_client.next().await, Message::text("local"));
    let last_error = first.backplane.redis_status().last_error;
    println!("noticed after {noticed:?}: {last_error:?}");

    assert!(server.pause(false));
    first.connected().await;
    second.connected().await;
    assert!(first.backplane.status().reconnects >= 1);
    // The old connections go once Redis reads their end.
    wait_subscribers(&checker, "sockeye:room", sharded, 2).await;
    first.hub.publish("room", Message::text("after"));
    assert_eq!(second_client.next().await, Message::text("after"));
    assert_eq!(first_client.next().await, Message::text("after"));
}

/// The URL's password and database are used; a wrong password is a failed
/// connection attempt, reported, not a panic.
#[tokio::test]
async fn the_url_carries_password_and_database() {
    let Some(server) =
        RedisServer::start_with("the_url_carries_password", &["--requirepass", "s3cret"])
    else {
        return;
    };
    let url = |credentials: &str| format!("redis://{credentials}@127.0.0.1:{}/3", server.port);
    let first = Node::new(RedisBackplane::builder(&url(":s3cret")));
    let second = Node::new(RedisBackplane::builder(&url("default:s3cret")));
    first.connected().await;
    second.connected().await;
    let mut client = second.client();
    assert!(client.subscriber.subscribe("room"));
    let checker = common::client_at(&url(":s3cret")).await;
    let sharded = second.backplane.redis_status().sharded.expect("connected");
    wait_subscribers(&checker, "sockeye:room", sharded, 1).await;
    first.hub.publish("room", Message::text("authenticated"));
    assert_eq!(client.next().await, Message::text("authenticated"));
    assert!(!format!("{:?}", first.backplane).contains("s3cret"));

    let refused = Node::new(
        RedisBackplane::builder(&url(":wrong"))
            .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(50)),
    );
    eventually("the wrong password is reported", || {
        refused.backplane.redis_status().failed_connects >= 2
    })
    .await;
    let status = refused.backplane.redis_status();
    assert!(!status.backplane.connected);
    println!("wrong password: {:?}", status.last_error);
    assert!(status.last_error.is_some());
}

/// Without a server (none listening on the port): publishes are refused at
/// once and counted, connection attempts are counted with their error, and
/// shutdown ends the task. Needs no `redis-server`.
#[tokio::test]
async fn publishes_are_refused_at_once_while_redis_is_unreachable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .port();
    let node = Node::new(
        RedisBackplane::builder(&format!("redis://127.0.0.1:{port}"))
            .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(50)),
    );
    let mut client = node.client();
    assert!(client.subscriber.subscribe("room"));
    let started = Instant::now();
    assert_eq!(node.hub.publish("room", Message::text("local")), 1);
    assert!(started.elapsed() < Duration::from_millis(100));
    assert_eq!(client.next().await, Message::text("local"));
    assert_eq!(node.hub.stats().dropped_backplane, 1);
    assert_eq!(node.backplane.status().dropped, 1);
    eventually("connection attempts are counted", || {
        node.backplane.redis_status().failed_connects >= 3
    })
    .await;
    let status = node.backplane.redis_status();
    assert!(!status.backplane.connected);
    assert_eq!(status.sharded, None);
    assert!(status.last_error.is_some(), "{status:?}");
    node.backplane.shutdown();
    tokio::time::timeout(PATIENCE, node.backplane.closed())
        .await
        .expect("closed after shutdown");
    let connected = tokio::time::timeout(PATIENCE, node.backplane.wait_connected()).await;
    assert_eq!(connected, Ok(false));
}
