//! The command line itself, on the real binary: what `sockeye` alone
//! prints, "did you mean" for a misspelt subcommand, one meaning for
//! `-p`, the global `-q`, and the built-in page at `/_sockeye/` beside a
//! `--dir` that has its own `index.html`.

mod common;

use common::{Proc, Scratch, get, run, serve};

#[test]
fn sockeye_alone_lists_the_subcommands_and_exits_2() {
    let finished = run(&[], b"");
    assert_eq!(finished.code, 2, "{}", finished.stderr);
    assert!(finished.stdout.is_empty(), "{}", finished.stdout);
    for subcommand in ["connect", "serve", "bench"] {
        assert!(
            finished
                .stderr
                .lines()
                .any(|line| line.trim_start().starts_with(subcommand)),
            "{subcommand} listed: {}",
            finished.stderr
        );
    }
    assert!(
        finished.stderr.contains("Usage: sockeye"),
        "{}",
        finished.stderr
    );
}

#[test]
fn a_misspelt_subcommand_or_option_gets_a_suggestion() {
    let finished = run(&["conect", "ws://127.0.0.1:9/"], b"");
    assert_eq!(finished.code, 2, "{}", finished.stderr);
    assert_eq!(finished.stderr.lines().count(), 1, "{}", finished.stderr);
    assert!(
        finished
            .stderr
            .contains("unrecognized subcommand 'conect'; a similar subcommand exists: 'connect'"),
        "{}",
        finished.stderr
    );
    let finished = run(&["bench", "--conections", "3"], b"");
    assert_eq!(finished.code, 2, "{}", finished.stderr);
    assert!(
        finished
            .stderr
            .contains("a similar argument exists: '--connections'"),
        "{}",
        finished.stderr
    );
}

#[test]
fn p_is_the_pipeline_in_bench_and_nothing_else() {
    // connect and serve: -p used to be --subprotocol; it now fails
    // loudly and says where the subprotocol went.
    for args in [
        &["connect", "ws://127.0.0.1:9/", "-p", "chat"][..],
        &["serve", "-p", "chat"],
    ] {
        let finished = run(args, b"");
        assert_eq!(finished.code, 2, "{args:?}: {}", finished.stderr);
        assert_eq!(finished.stderr.lines().count(), 1, "{}", finished.stderr);
        assert!(
            finished.stderr.contains("unexpected argument '-p'")
                && finished
                    .stderr
                    .contains("a subprotocol is -P NAME or --subprotocol NAME"),
            "{args:?}: {}",
            finished.stderr
        );
    }
    // bench: -p takes a count, as before; a name is refused.
    let finished = run(&["bench", "ws://127.0.0.1:9/", "-p", "chat"], b"");
    assert_eq!(finished.code, 2, "{}", finished.stderr);
    assert!(
        finished.stderr.contains("'--pipeline <N>'"),
        "{}",
        finished.stderr
    );
    // -P is the subprotocol in connect and serve.
    let server = serve(&["-P", "chat.v2", "-P", "chat.v1"]);
    let mut client = Proc::spawn(&["connect", &server.url, "-P", "chat.v1"]);
    let line = client.wait_stderr("connected to");
    assert!(line.contains("(subprotocol chat.v1)"), "{line}");
    client.close_stdin();
    assert_eq!(client.exit_code(), 0);
    // The help says so.
    let help = run(&["bench", "--help"], b"");
    assert!(
        help.stdout.contains("-p, --pipeline <N>"),
        "{}",
        help.stdout
    );
    let help = run(&["connect", "--help"], b"");
    assert!(
        help.stdout.contains("-P, --subprotocol <NAME>"),
        "{}",
        help.stdout
    );
}

#[test]
fn quiet_is_global_and_silences_status_lines() {
    // serve -q: no "listening on" line (its port is chosen here, since
    // it cannot be read from its output).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let mut server = Proc::spawn(&["-q", "serve", "--listen", &address, "--threads", "1"]);
    let url = format!("ws://{address}");
    let deadline = std::time::Instant::now() + common::WAIT;
    while std::net::TcpStream::connect(&address).is_err() {
        assert!(std::time::Instant::now() < deadline, "serve -q listens");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // connect with -q before the subcommand, bench with it after.
    let finished = run(&["-q", "connect", &url], b"hello\n");
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    assert_eq!(finished.stdout, "hello");
    assert!(
        finished.stderr.is_empty(),
        "connect -q: {}",
        finished.stderr
    );
    let finished = run(
        &[
            "bench",
            &url,
            "-q",
            "-c",
            "2",
            "-d",
            "1200ms",
            "--warmup",
            "100ms",
            "--progress-interval",
            "200ms",
        ],
        b"",
    );
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    assert!(finished.stdout.contains("messages "), "{}", finished.stdout);
    assert!(
        finished.stderr.is_empty(),
        "bench -q: no progress, no window lines: {}",
        finished.stderr
    );
    server.interrupt();
    assert_eq!(server.exit_code(), 0);
    assert!(
        server.stderr_lines().is_empty(),
        "serve -q: {:?}",
        server.stderr_lines()
    );
    // -q and -v contradict each other.
    let finished = run(&["-q", "-v", "connect", &url], b"");
    assert_eq!(finished.code, 2, "{}", finished.stderr);
    assert!(
        finished.stderr.contains("cannot be used with"),
        "{}",
        finished.stderr
    );
}

#[test]
fn the_built_in_page_stays_reachable_beside_a_sites_index() {
    let site = Scratch::new("page-beside-index");
    site.write("index.html", b"<h1>my own</h1>");
    let server = serve(&["--dir", site.path().to_str().unwrap(), "--broadcast"]);
    let (head, body) = get(&server.address, "/");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, b"<h1>my own</h1>");
    let (head, body) = get(&server.address, "/_sockeye/");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let page = String::from_utf8(body).unwrap();
    assert!(page.contains("<b id=\"mode\">broadcast</b>"), "{page}");
    // The page's WebSocket URLs are the server's, wherever it is served
    // from: the room picker's #room=NAME joins /room/NAME.
    assert!(page.contains("location.host"), "{page}");
    assert!(page.contains("base + \"/room/\""), "{page}");
    let (head, _) = get(&server.address, "/_sockeye");
    assert!(head.starts_with("HTTP/1.1 301"), "{head}");
    assert!(head.contains("Location: /_sockeye/"), "{head}");
    // Without --dir, the page is at both places.
    let plain = serve(&[]);
    for path in ["/", "/_sockeye/"] {
        let (head, body) = get(&plain.address, path);
        assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
        assert!(String::from_utf8(body).unwrap().contains("new WebSocket("));
    }
}
