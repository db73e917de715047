//! The `http_server` example under load, stopped by SIGTERM: no request whose handler
//! started is lost, readiness goes 503 first, the listener closes after the `delay`, an
//! open event stream ends with the drain, and the process exits 0 well inside its
//! budget. The client is a small HTTP/1.1 client on tokio's `TcpStream`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sundown_tests::{Program, Start};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const SERVER: &str = env!("CARGO_BIN_EXE_http_server");
/// The example's `delay`.
const DELAY: Duration = Duration::from_secs(1);
const CONNECTIONS: usize = 64;
/// The server may see the signal a little before `kill` returns to the test.
const SLACK: Duration = Duration::from_millis(100);

type Conn = BufReader<TcpStream>;

struct Response {
    status: u16,
    /// The server will close the connection after this response.
    close: bool,
    body: String,
}

/// Reads a status line and headers; `Err(UnexpectedEof)` if the connection closed first.
async fn read_head(conn: &mut Conn) -> io::Result<(u16, Vec<(String, String)>)> {
    let mut line = String::new();
    if conn.read_line(&mut line).await? == 0 {
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
        if conn.read_line(&mut line).await? == 0 {
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

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `GET path` on a keep-alive connection; the body is read by its Content-Length.
async fn get(conn: &mut Conn, path: &str) -> io::Result<Response> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    conn.get_mut().write_all(req.as_bytes()).await?;
    let (status, headers) = read_head(conn).await?;
    let len: usize = header(&headers, "content-length")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| io::Error::other("no content-length"))?;
    let mut body = vec![0; len];
    conn.read_exact(&mut body).await?;
    Ok(Response {
        status,
        close: header(&headers, "connection") == Some("close"),
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

async fn connect(addr: SocketAddr) -> io::Result<Conn> {
    Ok(BufReader::new(TcpStream::connect(addr).await?))
}

/// What one `/work` request got.
#[derive(Debug)]
enum Outcome {
    /// A full 200: the handler's number and whether the server was ready when it started.
    Served { n: u64, ready: bool },
    /// The connection closed before any response: the request was never handled.
    Unanswered,
    /// Anything else (a wrong status, a cut body): always a failure.
    Broken(String),
}

fn parse_work(r: &Response) -> Option<Outcome> {
    let mut words = r.body.split_whitespace();
    let (Some("work"), Some(n), Some("ready"), Some(ready)) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return None;
    };
    Some(Outcome::Served {
        n: n.parse().ok()?,
        ready: ready == "true",
    })
}

/// One client: `/work` in a loop on a keep-alive connection, reconnecting when the
/// server closes it, until a connection is refused.
async fn load(addr: SocketAddr, outcomes: Arc<Mutex<Vec<Outcome>>>) {
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until {
        let Ok(mut conn) = connect(addr).await else {
            return;
        };
        loop {
            let outcome = match get(&mut conn, "/work").await {
                Ok(r) if r.status == 200 => parse_work(&r)
                    .map(|o| (o, r.close))
                    .unwrap_or_else(|| (Outcome::Broken(format!("body {:?}", r.body)), true)),
                Ok(r) => (Outcome::Broken(format!("status {}", r.status)), true),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    (Outcome::Unanswered, true)
                }
                Err(e) => (Outcome::Broken(e.to_string()), true),
            };
            outcomes.lock().unwrap().push(outcome.0);
            if outcome.1 {
                break;
            }
        }
    }
}

/// What the `/events` client saw, with times relative to the signal.
#[derive(Debug, Default)]
struct Events {
    ticks_before: usize,
    ticks_after: usize,
    bye: bool,
    ended_after: Option<Duration>,
}

/// Reads the event stream (chunked) until it ends.
async fn watch_events(mut conn: Conn, signalled: Arc<Mutex<Option<Instant>>>) -> Events {
    let mut seen = Events::default();
    let mut text = String::new();
    loop {
        let mut size = String::new();
        if conn.read_line(&mut size).await.unwrap_or(0) == 0 {
            break;
        }
        let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if size == 0 {
            break;
        }
        let mut chunk = vec![0; size + 2];
        conn.read_exact(&mut chunk).await.expect("chunk");
        text.push_str(&String::from_utf8_lossy(&chunk[..size]));
        let after_signal = signalled.lock().unwrap().is_some();
        while let Some((event, rest)) = text.split_once("\n\n") {
            if event.contains("data: tick") {
                if after_signal {
                    seen.ticks_after += 1;
                } else {
                    seen.ticks_before += 1;
                }
            }
            seen.bye |= event.contains("event: bye");
            text = rest.to_string();
        }
    }
    seen.ended_after = signalled.lock().unwrap().map(|t| t.elapsed());
    seen
}

#[test]
fn sigterm_under_load_loses_no_started_request() {
    let mut p = Program::start(SERVER, "127.0.0.1:0", Start::default());
    let addr: SocketAddr = p
        .stdout_lines
        .iter()
        .find_map(|l| l.strip_prefix("listening on "))
        .expect("an address line before `ready`")
        .parse()
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // One open event stream, already flowing.
    let signalled = Arc::new(Mutex::new(None::<Instant>));
    let conn = rt.block_on(async {
        let mut conn = connect(addr).await.unwrap();
        conn.get_mut()
            .write_all(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .unwrap();
        let (status, headers) = read_head(&mut conn).await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(header(&headers, "content-type"), Some("text/event-stream"));
        conn
    });
    let events = rt.spawn(watch_events(conn, signalled.clone()));

    // 64 connections of /work requests; a second of load before the signal.
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|_| rt.spawn(load(addr, outcomes.clone())))
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let before_signal = outcomes.lock().unwrap().len();

    p.signal("TERM");
    let t0 = p.signalled_at.unwrap();
    *signalled.lock().unwrap() = Some(t0);

    // During the delay a new connection still gets its /work answered.
    let late = rt.spawn(async move {
        tokio::time::sleep(DELAY / 2).await;
        let mut conn = connect(addr).await?;
        get(&mut conn, "/work").await
    });
    // /ready on a new connection every 20 ms until connections are refused.
    let (probes, refused_after) = rt.block_on(async {
        let mut probes = Vec::new();
        loop {
            match connect(addr).await {
                Ok(mut conn) => {
                    let at = t0.elapsed();
                    if let Ok(r) = get(&mut conn, "/ready").await {
                        probes.push((at, r.status));
                    }
                }
                Err(e) => {
                    // Refused once the listener is closed; reset when the connection was
                    // still in the listen backlog as it closed. Both: no longer accepting.
                    assert!(
                        matches!(
                            e.kind(),
                            io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
                        ),
                        "{e}"
                    );
                    break (probes, t0.elapsed());
                }
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "never refused");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let end = p.wait(Duration::from_secs(10));
    let late = rt.block_on(late).unwrap();
    let events = rt.block_on(events).unwrap();
    for c in clients {
        rt.block_on(c).unwrap();
    }
    for _ in 0..3 {
        let again = rt.block_on(connect(addr));
        assert_eq!(
            again.err().map(|e| e.kind()),
            Some(io::ErrorKind::ConnectionRefused)
        );
    }

    // Exit: 0, inside the budget (5 s), soon after the delay.
    assert_eq!(end.code(), Some(0), "{}", end.stderr);
    end.assert_within(DELAY + Duration::from_secs(2));
    end.assert_mentions("exit code 0");

    // Every handler that started answered in full: the numbers the server gave out
    // are exactly those the clients received, each once.
    let started: u64 = end
        .stdout
        .iter()
        .find_map(|l| l.strip_prefix("served ")?.strip_suffix(" /work requests"))
        .expect("served line")
        .parse()
        .unwrap();
    let late = late.expect("a new connection is served during the delay");
    let outcomes = outcomes.lock().unwrap();
    let mut received = BTreeSet::new();
    let (mut before, mut during, mut unanswered) = (0, 0, 0);
    for o in outcomes.iter().chain(parse_work(&late).as_ref()) {
        match o {
            Outcome::Served { n, ready } => {
                assert!(received.insert(*n), "handler {n} answered twice");
                if *ready {
                    before += 1;
                } else {
                    during += 1;
                }
            }
            Outcome::Unanswered => unanswered += 1,
            Outcome::Broken(why) => panic!("a broken response: {why}"),
        }
    }
    let all: BTreeSet<u64> = (1..=started).collect();
    assert_eq!(
        received,
        all,
        "{started} handlers started; missing: {:?}",
        all.difference(&received).collect::<Vec<_>>()
    );
    assert!(
        before > 200,
        "load before the signal: {before} ({before_signal} at the signal)"
    );
    assert!(
        during > 64,
        "the server kept serving during the delay: {during}"
    );
    assert!(
        matches!(
            parse_work(&late),
            Some(Outcome::Served { ready: false, .. })
        ),
        "{:?}",
        late.body
    );

    // Readiness: 503 from the signal on (allowing for the signal to be delivered),
    // never 200 again, answered through the delay.
    let first_503 = probes
        .iter()
        .find(|(_, s)| *s == 503)
        .expect("a 503 probe")
        .0;
    assert!(first_503 < Duration::from_millis(200), "{probes:?}");
    assert!(
        probes.iter().all(|&(at, s)| s == 503 || at < first_503),
        "{probes:?}"
    );
    let last_503 = probes.last().unwrap().0;
    assert!(last_503 > DELAY * 8 / 10, "{probes:?}");
    // The listener closes when the delay is over, not before.
    assert!(
        refused_after > DELAY - SLACK && refused_after < DELAY + Duration::from_millis(700),
        "refused after {refused_after:?}"
    );

    // The event stream flowed through the delay, then ended with its `bye`.
    assert!(events.ticks_before >= 2, "{events:?}");
    assert!(events.ticks_after >= 5, "{events:?}");
    assert!(events.bye, "{events:?}");
    let ended = events.ended_after.unwrap();
    assert!(
        ended > DELAY - SLACK && ended < DELAY + Duration::from_millis(700),
        "{events:?}"
    );

    println!(
        "http_server: {CONNECTIONS} connections, {started} /work handlers started, all \
         answered: {before} before the signal, {during} during the 1s delay; {unanswered} \
         request(s) closed unanswered (never handled); {} readiness probes; stream ended \
         {ended:?} after the signal; exit 0 after {:?}",
        probes.len(),
        end.elapsed
    );
}
