//! HTTP services on SIGTERM, as real processes: requests in flight finish (a
//! `#[cancel_safe]` call in a handler is in-flight work, cut only at the drain
//! deadline), a tracked background task is still cancelled at step 2, an event stream
//! ends on `requested()`, the `TrackRequests` layer puts each request in the task table
//! and cuts a stuck one at the deadline, and during `delay` responses carry
//! `connection: close`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use sundown_tests::{Program, Start, line_of};

const FIXTURE: &str = env!("CARGO_BIN_EXE_http_fixture");
const SERVER: &str = env!("CARGO_BIN_EXE_http_server");

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    /// When the whole reply had arrived.
    at: Instant,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn addr_of(p: &Program) -> SocketAddr {
    p.stdout_lines
        .iter()
        .find_map(|l| l.strip_prefix("listening on "))
        .expect("an address line before `ready`")
        .parse()
        .unwrap()
}

fn connect(addr: SocketAddr) -> io::Result<BufReader<TcpStream>> {
    let s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    Ok(BufReader::new(s))
}

/// Reads a status line and headers.
fn read_head(conn: &mut BufReader<TcpStream>) -> io::Result<(u16, Vec<(String, String)>)> {
    let mut line = String::new();
    if conn.read_line(&mut line)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        if conn.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let l = line.trim_end();
        if l.is_empty() {
            return Ok((status, headers));
        }
        let (k, v) = l.split_once(':').unwrap_or((l, ""));
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase()));
    }
}

/// `GET path` on a keep-alive connection; the body is read by its Content-Length.
fn get(conn: &mut BufReader<TcpStream>, path: &str) -> io::Result<Reply> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    conn.get_mut().write_all(req.as_bytes())?;
    let (status, headers) = read_head(conn)?;
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    conn.read_exact(&mut body)?;
    Ok(Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    })
}

/// `GET path` on a connection of its own, in a thread.
fn get_in_thread(addr: SocketAddr, path: &'static str) -> thread::JoinHandle<io::Result<Reply>> {
    thread::spawn(move || get(&mut connect(addr)?, path))
}

/// What an event-stream client saw.
#[derive(Debug)]
struct Stream {
    ticks: usize,
    bye_at: Option<Instant>,
    ended_at: Instant,
}

/// Opens `/events` and reads it (chunked) in a thread until it ends.
fn watch_events(addr: SocketAddr) -> thread::JoinHandle<Stream> {
    let mut conn = connect(addr).unwrap();
    conn.get_mut()
        .write_all(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let (status, _) = read_head(&mut conn).unwrap();
    assert_eq!(status, 200);
    thread::spawn(move || {
        let mut seen = Stream {
            ticks: 0,
            bye_at: None,
            ended_at: Instant::now(),
        };
        loop {
            let mut size = String::new();
            if conn.read_line(&mut size).unwrap_or(0) == 0 {
                break;
            }
            let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
                break;
            };
            if size == 0 {
                break;
            }
            let mut chunk = vec![0; size + 2];
            if conn.read_exact(&mut chunk).is_err() {
                break;
            }
            let text = String::from_utf8_lossy(&chunk);
            seen.ticks += text.matches("data: tick").count();
            if text.contains("event: bye") {
                seen.bye_at = Some(Instant::now());
            }
        }
        seen.ended_at = Instant::now();
        seen
    })
}

#[test]
fn plain_axum_finishes_the_six_requests_in_flight_at_sigterm() {
    let mut p = Program::start(FIXTURE, "plain", Start::default());
    let addr = addr_of(&p);
    let events = watch_events(addr);
    let renders: Vec<_> = (0..6)
        .map(|_| get_in_thread(addr, "/render?ms=1500"))
        .collect();
    for _ in 0..6 {
        p.wait_for_line("render started", Duration::from_secs(10));
    }
    // A few events flow first.
    thread::sleep(Duration::from_millis(300));
    p.signal("TERM");
    let t0 = p.signalled_at.unwrap();

    // The other side of the rule: a tracked task's `#[cancel_safe]` call is cancelled at
    // step 2, at once.
    let poller_cancelled = p.wait_for_line(
        "poller: cancelled: shutdown requested (SIGTERM)",
        Duration::from_secs(2),
    );
    let end = p.wait(Duration::from_secs(10));

    assert_eq!(end.code(), Some(0), "{}", end.stderr);
    end.assert_mentions("0 failed");
    end.assert_mentions("exit code 0");
    assert!(
        poller_cancelled.duration_since(t0) < Duration::from_millis(400),
        "poller cancelled {:?} after the signal",
        poller_cancelled.duration_since(t0)
    );
    // Every request in flight at the signal answered in full: the renders were not
    // cancelled at step 2 (no cleanup ran), they finished their 1.5 s.
    for r in renders {
        let r = r.join().unwrap().expect("a reply");
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "rendered in 1500ms\n"),
            "{r:?}"
        );
        assert!(r.at > t0, "answered after the signal");
    }
    assert!(
        !end.stdout.iter().any(|l| l == "render cleanup"),
        "{:?}",
        end.stdout
    );
    // The exit waited for them (they had ~1.5 s left), and no longer than that.
    assert!(
        end.elapsed > Duration::from_millis(900) && end.elapsed < Duration::from_secs(3),
        "exit {:?} after the signal",
        end.elapsed
    );
    // The stream ended on `requested()` at step 2, long before the renders finished.
    let events = events.join().unwrap();
    let bye = events.bye_at.expect("a bye event");
    assert!(events.ticks >= 2, "{events:?}");
    assert!(
        bye.duration_since(t0) < Duration::from_millis(500),
        "bye {:?} after the signal",
        bye.duration_since(t0)
    );
    assert!(events.ended_at.duration_since(t0) < Duration::from_millis(700));
}

#[test]
fn in_flight_work_is_cut_at_the_drain_deadline_not_at_step_2() {
    let mut p = Program::start(
        FIXTURE,
        "plain",
        Start {
            env: vec![("SUNDOWN_TIMEOUT", "1s")],
            ..Start::default()
        },
    );
    let addr = addr_of(&p);
    let render = get_in_thread(addr, "/render?ms=60000");
    p.wait_for_line("render started", Duration::from_secs(10));
    p.signal("TERM");
    let t0 = p.signalled_at.unwrap();
    let end = p.wait(Duration::from_secs(10));

    // The body (`plain`, waiting in `serve` for the request) ran out of budget: 124, on
    // time.
    end.assert_budget_ran_out(
        Duration::from_millis(1600),
        &["plain  tests/src/bin/http_fixture.rs", "exit code 124"],
    );
    // The render was not cancelled at step 2: whatever the client got, it got it at
    // the drain deadline (0.85 s of 1 s), not at the signal.
    match render.join().unwrap() {
        Ok(r) => {
            assert_eq!(r.status, 500, "{r:?}");
            assert!(r.body.starts_with("cancelled"), "{r:?}");
            assert!(
                r.at.duration_since(t0) > Duration::from_millis(700),
                "{r:?}"
            );
        }
        Err(e) => assert!(
            matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
            ),
            "{e}"
        ),
    }
}

#[test]
fn the_tower_layer_lists_a_stuck_request_and_cuts_it_at_the_deadline() {
    let mut p = Program::start(
        FIXTURE,
        "tracked",
        Start {
            env: vec![("SUNDOWN_TIMEOUT", "2s")],
            ..Start::default()
        },
    );
    let addr = addr_of(&p);
    let ready = get(&mut connect(addr).unwrap(), "/ready").unwrap();
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready\n"));
    let stuck = get_in_thread(addr, "/stuck?id=7");
    p.wait_for_line("stuck started", Duration::from_secs(10));
    thread::sleep(Duration::from_millis(300));

    // The live table (SIGUSR1): the request's row, with where the layer was added, its
    // age and state.
    let layer_line = line_of(
        include_str!("../src/bin/http_fixture.rs"),
        "TrackRequests::new()",
    );
    p.signal("USR1");
    p.wait_for_stderr("GET /stuck", Duration::from_secs(5));
    let row = p
        .stderr()
        .lines()
        .find(|l| l.contains("GET /stuck"))
        .unwrap()
        .to_owned();
    assert!(
        row.contains(&format!("http_fixture.rs:{layer_line}")),
        "{row}"
    );
    assert!(row.trim_end().ends_with("running"), "{row}");
    assert!(row.contains("ms") || row.contains('s'), "an age: {row}");
    assert!(!row.contains("?id=7"), "the path without the query: {row}");

    p.signal("TERM");
    let end = p.wait(Duration::from_secs(10));
    // At the drain deadline (85% of 2 s) the request is still running: named among the
    // stragglers, cut, counted as cancelled; the budget ran out.
    end.assert_budget_ran_out(
        Duration::from_millis(2600),
        &["still running at the drain deadline", "GET /stuck"],
    );
    let straggler = end
        .stderr
        .lines()
        .rev()
        .find(|l| l.contains("GET /stuck"))
        .unwrap();
    assert!(
        straggler.contains(&format!("http_fixture.rs:{layer_line}"))
            && !straggler.contains("blocking"),
        "{straggler}"
    );
    let counts = end
        .stderr
        .lines()
        .find(|l| l.starts_with("tasks: "))
        .expect("the counts line");
    // `/ready` is mounted after the layer: probes are not tracked. The stuck request is
    // counted cancelled; the body (`tracked`) too, or completed when `serve` saw the cut
    // request's connection close before the abort reached it.
    let nums: Vec<u64> = counts
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let [completed, failed, cancelled, 124] = nums[..] else {
        panic!("{counts}");
    };
    assert!(
        failed == 0 && cancelled >= 1 && completed + cancelled == 2,
        "{counts}"
    );
    // The client got a 503 telling it to go elsewhere, not a reset.
    let reply = stuck.join().unwrap().expect("the cut request is answered");
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(reply.header("connection"), Some("close"), "{reply:?}");
}

#[test]
fn during_the_delay_responses_close_keep_alive_connections() {
    let mut p = Program::start(SERVER, "127.0.0.1:0", Start::default());
    let addr = addr_of(&p);
    let mut conn = connect(addr).unwrap();
    let before = get(&mut conn, "/item").unwrap();
    assert_eq!(before.status, 200);
    assert_eq!(before.header("connection"), None, "keep-alive while ready");

    p.signal("TERM");
    let t0 = p.signalled_at.unwrap();
    thread::sleep(Duration::from_millis(100));
    // Same connection, inside the 1 s delay: served, and told to close.
    let during = get(&mut conn, "/item").unwrap();
    assert!(during.at.duration_since(t0) < Duration::from_millis(800));
    assert_eq!((during.status, during.body.as_str()), (200, "item\n"));
    assert_eq!(during.header("connection"), Some("close"), "{during:?}");
    // ... and the server does close it.
    let mut rest = Vec::new();
    assert_eq!(
        conn.read_to_end(&mut rest).unwrap(),
        0,
        "closed after the response"
    );
    // Readiness says 503 meanwhile (and closes too).
    let probe = get(&mut connect(addr).unwrap(), "/ready").unwrap();
    assert_eq!(
        (probe.status, probe.body.as_str()),
        (503, "shutting down\n")
    );
    assert_eq!(probe.header("connection"), Some("close"));

    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(0), "{}", end.stderr);
    end.assert_within(Duration::from_secs(3));
}
