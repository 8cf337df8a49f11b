//! Hubs on one real nats-server: every message reaches every subscriber of
//! its topic on every node exactly once, in order per publisher, with its
//! type and bytes; topics stay apart; unsubscribing stops delivery; the
//! wire carries one envelope per message on the documented subject;
//! foreign messages are counted and ignored; credentials work.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use sockeye::Message;
use sockeye::hub::NodeId;
use sockeye::hub::backplane::{decode_envelope, encode_envelope};
use sockeye_nats::NatsBackplane;
use sockeye_nats::subject::MAX_SUBJECT_LEN;

use common::{HANG_GUARD, NatsServer, Node, eventually, skip};

/// Topics that NATS subjects could confuse: the empty one, dots,
/// wildcards, spaces, non-ASCII, and one that looks escaped.
const TOPICS: &[&str] = &[
    "", "a", "a.b", "a*", "a>", "*", ">", "a.*", "room 1", "日本", "a%2Eb",
];

/// Messages each node publishes on each topic.
const PER_TOPIC: usize = 6;

/// Message `seq` of node `node` on topic `topic`: text and binary,
/// non-UTF-8 binary, and empty messages of both types.
fn message(topic: usize, node: usize, seq: usize) -> Message {
    let (topic_byte, node_byte, seq_byte) = (topic as u8, node as u8, seq as u8);
    match seq {
        0 => Message::text(format!("{topic}:{node}:0")),
        1 => Message::binary(vec![0xff, topic_byte, node_byte, seq_byte, 0x80]),
        2 => Message::text(""),
        3 => Message::binary(Vec::new()),
        4 => Message::text(format!("{topic}:{node}:4 é\u{0}")),
        _ => Message::binary(vec![0xc3, 0x28, topic_byte, node_byte, seq_byte]),
    }
}

/// Checks what one subscriber of topic `topic` got from `nodes`
/// publishers: each message once, each publisher's in order.
fn check_received(topic: usize, nodes: usize, received: &[Message]) {
    assert_eq!(received.len(), nodes * PER_TOPIC, "topic {topic}");
    for node in 0..nodes {
        let expected: Vec<Message> = (0..PER_TOPIC)
            .map(|seq| message(topic, node, seq))
            .filter(|message| !message.is_empty())
            .collect();
        let from_node: Vec<Message> = received
            .iter()
            .filter(|message| expected.contains(message))
            .cloned()
            .collect();
        assert_eq!(from_node, expected, "topic {topic}, from node {node}");
    }
    let empty_text = received
        .iter()
        .filter(|message| message.is_empty() && message.is_text())
        .count();
    let empty_binary = received
        .iter()
        .filter(|message| message.is_empty() && message.is_binary())
        .count();
    assert_eq!((empty_text, empty_binary), (nodes, nodes), "topic {topic}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_deliver_each_message_once_in_order_to_its_topic_only() {
    let Some(server) = NatsServer::start() else {
        skip("three_nodes_deliver_each_message_once_in_order_to_its_topic_only");
        return;
    };
    let url = server.url();
    let nodes = [
        Node::start(&url, "node-0").await,
        Node::start(&url, "node-1").await,
        Node::start(&url, "node-2").await,
    ];
    let node_ids: Vec<NodeId> = nodes.iter().map(|node| node.hub.node_id()).collect();

    // Another program on the server, watching the wire and later
    // publishing foreign messages.
    let observer = async_nats::connect(url.as_str()).await.unwrap();
    let mut wire = observer.subscribe("sockeye.>").await.unwrap();
    observer.flush().await.unwrap();

    // One subscriber per topic per node, and a second one on "a" on node 0.
    let mut clients: Vec<Vec<common::Client>> = nodes
        .iter()
        .map(|node| {
            TOPICS
                .iter()
                .map(|topic| node.subscriber(&[topic]))
                .collect()
        })
        .collect();
    let mut second_a = nodes[0].subscriber(&["a"]);
    let subjects: Vec<String> = TOPICS
        .iter()
        .map(|topic| nodes[0].backplane.subject(topic).unwrap())
        .collect();
    for expected in [
        "sockeye.%",
        "sockeye.a",
        "sockeye.a%2Eb",
        "sockeye.a%2A",
        "sockeye.a%3E",
        "sockeye.%2A",
        "sockeye.%3E",
        "sockeye.a%2E%2A",
        "sockeye.room%201",
        "sockeye.%E6%97%A5%E6%9C%AC",
        "sockeye.a%252Eb",
    ] {
        assert!(
            subjects.iter().any(|subject| subject == expected),
            "{expected}"
        );
    }
    let subject_refs: Vec<&str> = subjects.iter().map(String::as_str).collect();
    for node in &nodes {
        server.wait_subscriptions(&node.name, &subject_refs).await;
    }

    // Every node publishes on every topic, interleaved.
    for seq in 0..PER_TOPIC {
        for (node_index, node) in nodes.iter().enumerate() {
            for (topic_index, topic) in TOPICS.iter().enumerate() {
                let local = node
                    .hub
                    .publish(topic, message(topic_index, node_index, seq));
                let expected_local = if node_index == 0 && *topic == "a" {
                    2
                } else {
                    1
                };
                assert_eq!(local, expected_local);
            }
        }
    }
    for node_clients in &mut clients {
        for (topic_index, client) in node_clients.iter_mut().enumerate() {
            check_received(
                topic_index,
                nodes.len(),
                &client.take(nodes.len() * PER_TOPIC).await,
            );
        }
    }
    check_received(
        1,
        nodes.len(),
        &second_a.take(nodes.len() * PER_TOPIC).await,
    );

    // The wire: one envelope per message (not per subscriber), on the
    // topic's subject, from its node.
    let total = nodes.len() * TOPICS.len() * PER_TOPIC;
    let mut per_subject: HashMap<String, usize> = HashMap::new();
    for _ in 0..total {
        let sent = tokio::time::timeout(HANG_GUARD, wire.next())
            .await
            .expect("the wire carries every message")
            .unwrap();
        let topic_index = subjects
            .iter()
            .position(|subject| subject.as_str() == sent.subject.as_str())
            .expect("a topic's subject");
        let (from, message) = decode_envelope(sent.payload).expect("an envelope");
        let node_index = node_ids.iter().position(|id| *id == from).expect("a node");
        assert!(
            (0..PER_TOPIC).any(|seq| message == self::message(topic_index, node_index, seq)),
            "{message:?} on {}",
            sent.subject
        );
        *per_subject.entry(sent.subject.to_string()).or_default() += 1;
    }
    assert!(
        per_subject
            .values()
            .all(|count| *count == nodes.len() * PER_TOPIC)
    );

    for node in &nodes {
        let status = node.hub.backplane_status().unwrap();
        let remote = ((nodes.len() - 1) * TOPICS.len() * PER_TOPIC) as u64;
        assert!(status.connected);
        assert_eq!(status.reconnects, 0);
        assert_eq!(status.published, (TOPICS.len() * PER_TOPIC) as u64);
        // No echo: a node's own envelopes do not come back.
        assert_eq!(status.received, remote);
        assert_eq!(status.dropped, 0);
        assert_eq!(status.subscriptions, TOPICS.len());
        let stats = node.hub.stats();
        assert_eq!(stats.received_remote, remote);
        assert_eq!(stats.dropped_backplane, 0);
        assert_eq!(stats.invalid_envelopes, 0);
    }

    // Foreign messages: not envelopes, or broken ones, are counted and
    // ignored; a well-formed envelope from another program is delivered.
    let subject_of = |topic: &str| nodes[0].backplane.subject(topic).unwrap();
    observer
        .publish(subject_of("a"), Bytes::from_static(b"hello"))
        .await
        .unwrap();
    let mut bad_text = encode_envelope(NodeId([9; 16]), &Message::text("x")).to_vec();
    bad_text.push(0xff);
    observer
        .publish(subject_of("a.b"), bad_text.into())
        .await
        .unwrap();
    observer
        .publish("sockeye.nobody", Bytes::from_static(b"x"))
        .await
        .unwrap();
    let foreign = Message::text("from elsewhere");
    observer
        .publish(
            subject_of("room 1"),
            encode_envelope(NodeId([9; 16]), &foreign),
        )
        .await
        .unwrap();
    observer.flush().await.unwrap();
    let room = TOPICS.iter().position(|topic| *topic == "room 1").unwrap();
    for node_clients in &mut clients {
        assert_eq!(node_clients[room].take(1).await, vec![foreign.clone()]);
    }
    for node in &nodes {
        eventually("foreign messages counted", || {
            node.hub.stats().invalid_envelopes == 2
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for client in clients.iter_mut().flatten() {
        client.expect_nothing(Duration::from_millis(1)).await;
    }
    second_a.expect_nothing(Duration::from_millis(1)).await;

    // The last subscriber of "a" on node 2 leaves: node 2 unsubscribes,
    // and gets nothing more on "a".
    let a = TOPICS.iter().position(|topic| *topic == "a").unwrap();
    let without_a: Vec<&str> = subject_refs
        .iter()
        .copied()
        .filter(|subject| *subject != "sockeye.a")
        .collect();
    let node_2_a = clients[2].remove(a);
    drop(node_2_a);
    server.wait_subscriptions("node-2", &without_a).await;
    let received_by_2 = nodes[2].hub.backplane_status().unwrap().received;
    assert_eq!(nodes[0].hub.publish("a", "after node 2 left"), 2);
    assert_eq!(
        clients[1][a].take(1).await,
        vec![Message::text("after node 2 left")]
    );
    assert_eq!(clients[0][a].take(1).await.len(), 1);
    assert_eq!(second_a.take(1).await.len(), 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        nodes[2].hub.backplane_status().unwrap().received,
        received_by_2
    );

    // Subscribing and leaving in quick succession (hints out of order with
    // the backplane's work): the server ends up with the hub's state, and
    // a message arrives once.
    for _ in 0..50 {
        drop(nodes[2].subscriber(&["a"]));
    }
    let mut back = nodes[2].subscriber(&["a"]);
    for _ in 0..50 {
        drop(nodes[2].subscriber(&["a"]));
    }
    server.wait_subscriptions("node-2", &subject_refs).await;
    assert_eq!(nodes[1].hub.publish("a", "node 2 is back"), 1);
    assert_eq!(back.take(1).await, vec![Message::text("node 2 is back")]);
    for _ in 0..50 {
        drop(nodes[2].subscriber(&["a"]));
    }
    drop(back);
    server.wait_subscriptions("node-2", &without_a).await;
    let [node_0_clients, node_1_clients, _] = &mut clients[..] else {
        unreachable!()
    };
    for client in [
        &mut node_0_clients[a],
        &mut node_1_clients[a],
        &mut second_a,
    ] {
        assert_eq!(client.take(1).await, vec![Message::text("node 2 is back")]);
    }

    // The longest subject that fits is carried; one byte more stays local
    // and is counted as dropped, and the connection is not hurt.
    let longest = "x".repeat(MAX_SUBJECT_LEN - "sockeye.".len());
    let too_long = format!("{longest}x");
    let mut long_client = nodes[1].subscriber(&[longest.as_str(), too_long.as_str()]);
    let mut with_longest = subject_refs.clone();
    let longest_subject = format!("sockeye.{longest}");
    with_longest.push(&longest_subject);
    server.wait_subscriptions("node-1", &with_longest).await;
    assert_eq!(nodes[0].backplane.subject(&too_long), None);
    nodes[0].hub.publish(&longest, "long");
    assert_eq!(long_client.take(1).await, vec![Message::text("long")]);
    let dropped = nodes[0].hub.stats().dropped_backplane;
    nodes[0].hub.publish(&too_long, "too long");
    assert_eq!(nodes[0].hub.stats().dropped_backplane, dropped + 1);
    long_client.expect_nothing(Duration::from_millis(200)).await;
    for node in &nodes {
        let status = node.hub.backplane_status().unwrap();
        assert!(status.connected);
        assert_eq!(status.reconnects, 0);
    }

    // A hub dropped while its backplane is still held: the backplane
    // notices and closes its connection. A node dropped whole: likewise.
    let [node_0, node_1, node_2] = nodes;
    drop(clients);
    drop((second_a, long_client));
    let backplane_1 = node_1.backplane.clone();
    drop(node_1);
    eventually("node 1's backplane stops", || backplane_1.is_stopped()).await;
    assert!(!backplane_1.wait_connected().await);
    drop(node_2);
    eventually("node 1 and 2 leave the server", || {
        let connections = server.subscriptions();
        !connections.contains_key("node-1") && !connections.contains_key("node-2")
    })
    .await;
    assert!(!node_0.backplane.is_stopped());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_from_the_url_or_the_builder() {
    let Some(server) = NatsServer::start_with(&["--user", "alice", "--pass", "s3cr3t"]) else {
        skip("credentials_from_the_url_or_the_builder");
        return;
    };
    let in_url = format!("nats://alice:s3cr3t@127.0.0.1:{}", server.port);
    let node = Node::start(&in_url, "in-url").await;
    assert!(node.hub.backplane_status().unwrap().connected);

    let wrong = NatsBackplane::builder()
        .url(server.url())
        .user_and_password("alice", "wrong")
        .build()
        .unwrap();
    let hub = sockeye::hub::Hub::builder().backplane(wrong).build();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = hub.backplane_status().unwrap();
    assert!(!status.connected);
    hub.publish("t", "nobody hears");
    assert_eq!(hub.stats().dropped_backplane, 1);
    drop(hub);

    let right = NatsBackplane::builder()
        .url(server.url())
        .user_and_password("alice", "s3cr3t")
        .build()
        .unwrap();
    let hub = sockeye::hub::Hub::builder().backplane(right).build();
    eventually("user and password from the builder", || {
        hub.backplane_status().unwrap().connected
    })
    .await;
    drop(server);

    let Some(server) = NatsServer::start_with(&["--auth", "t0ken"]) else {
        return;
    };
    let token_in_url = format!("nats://t0ken@127.0.0.1:{}", server.port);
    Node::start(&token_in_url, "token-in-url").await;
    let token = NatsBackplane::builder()
        .url(server.url())
        .token("t0ken")
        .build()
        .unwrap();
    let hub = sockeye::hub::Hub::builder().backplane(token).build();
    eventually("token from the builder", || {
        hub.backplane_status().unwrap().connected
    })
    .await;
}
