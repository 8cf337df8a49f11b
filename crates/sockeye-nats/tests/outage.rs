//! The NATS server killed mid-run and restarted on the same port: local
//! delivery never stops, cross-node publishes during the outage are
//! dropped and counted (and never arrive later), the backplanes reconnect,
//! count it, restore their subscriptions (including changes made during
//! the outage) and deliver again within seconds. Then hubs dropped while
//! the server is down end their backplane threads.

mod common;

use std::time::{Duration, Instant};

use sockeye::Message;

use common::{NatsServer, Node, eventually, skip};

/// Threads of this process named like the backplane's.
fn backplane_threads() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| name.trim_end() == "sockeye-nats")
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_and_restarted() {
    let Some(mut server) = NatsServer::start() else {
        skip("server_killed_and_restarted");
        return;
    };
    let url = server.url();
    let a = Node::start(&url, "a").await;
    let b = Node::start(&url, "b").await;
    let mut a_t = a.subscriber(&["t"]);
    let mut b_t = b.subscriber(&["t"]);
    let b_v = b.subscriber(&["v"]);
    server.wait_subscriptions("a", &["sockeye.t"]).await;
    server
        .wait_subscriptions("b", &["sockeye.t", "sockeye.v"])
        .await;
    assert_eq!(a.hub.publish("t", "before"), 1);
    assert_eq!(a_t.take(1).await, vec![Message::text("before")]);
    assert_eq!(b_t.take(1).await, vec![Message::text("before")]);

    server.kill();
    let killed = Instant::now();
    eventually("both nodes see the outage", || {
        !a.hub.backplane_status().unwrap().connected && !b.hub.backplane_status().unwrap().connected
    })
    .await;
    let noticed = killed.elapsed();

    // Local delivery goes on; cross-node publishes are dropped, counted.
    let dropped_before = a.hub.stats().dropped_backplane;
    let status_dropped_before = a.hub.backplane_status().unwrap().dropped;
    let during: Vec<Message> = (0..20)
        .map(|i| Message::text(format!("during {i}")))
        .collect();
    for message in &during {
        assert_eq!(a.hub.publish("t", message.clone()), 1);
    }
    assert_eq!(a_t.take(during.len()).await, during);
    assert_eq!(a.hub.stats().dropped_backplane, dropped_before + 20);
    assert_eq!(
        a.hub.backplane_status().unwrap().dropped,
        status_dropped_before + 20
    );

    // Subscriptions change while the server is away.
    let mut b_u = b.subscriber(&["u"]);
    drop(b_v);
    tokio::time::sleep(Duration::from_millis(600)).await;

    server.launch();
    let restarted = Instant::now();
    eventually("both nodes reconnect", || {
        a.hub.backplane_status().unwrap().connected && b.hub.backplane_status().unwrap().connected
    })
    .await;
    let reconnected = restarted.elapsed();
    for node in [&a, &b] {
        assert_eq!(node.hub.backplane_status().unwrap().reconnects, 1);
    }
    server.wait_subscriptions("a", &["sockeye.t"]).await;
    server
        .wait_subscriptions("b", &["sockeye.t", "sockeye.u"])
        .await;

    // Delivery resumes, and nothing from the outage arrives late.
    assert_eq!(a.hub.publish("t", "after"), 1);
    assert_eq!(a.hub.publish("u", "after on u"), 0);
    assert_eq!(b_t.take(1).await, vec![Message::text("after")]);
    assert_eq!(b_u.take(1).await, vec![Message::text("after on u")]);
    let resumed = restarted.elapsed();
    assert!(
        resumed < Duration::from_secs(5),
        "resumed after {resumed:?}"
    );
    assert_eq!(a_t.take(1).await, vec![Message::text("after")]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    b_t.expect_nothing(Duration::from_millis(1)).await;
    b_u.expect_nothing(Duration::from_millis(1)).await;
    assert_eq!(b.hub.stats().received_remote, 3);
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!(
            "outage noticed after {noticed:?}; reconnected {reconnected:?} and delivering \
             {resumed:?} after the restart\n"
        )
        .as_bytes(),
    );

    // Hubs dropped while the server is down: their backplanes stop, the
    // NATS client's reconnect loop with them.
    server.kill();
    eventually("both nodes see the second outage", || {
        !a.hub.backplane_status().unwrap().connected && !b.hub.backplane_status().unwrap().connected
    })
    .await;
    assert_eq!(backplane_threads(), 2);
    drop((a_t, b_t, b_u));
    drop((a, b));
    eventually("the backplane threads end", || backplane_threads() == 0).await;
}
