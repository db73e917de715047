//! A rolling restart behind a real load balancer, on loopback only: HAProxy (Debian's
//! `haproxy`, started here with a config of its own) in front of two instances of the
//! `http_server` example, health-checking `/ready` every 200 ms; `wrk` drives requests
//! through HAProxy for a few seconds while each instance in turn is replaced the way a
//! Kubernetes rolling update does it: the replacement starts on a new address, and once
//! HAProxy sees it up the old instance gets SIGTERM.
//!
//! With readiness (`/ready` 503 from the signal, 1 s `delay`) HAProxy stops routing to
//! the old instance before it stops accepting: zero failed requests. The same run with
//! `/ready` always 200 fails requests: HAProxy keeps routing to the old instance until
//! its listener closes, and the requests it sent there in that window fail once its
//! retries are used up. Both runs are in the suite so the zero is shown to come from
//! the mechanism. `.ci/run` installs `haproxy` and `wrk`; without them the test says
//! so and is skipped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use sundown_tests::{Ended, Program, Start};

const SERVER: &str = env!("CARGO_BIN_EXE_http_server");
/// How long wrk drives load: long enough for both replacements and for HAProxy to give
/// up on requests it sent to a closed listener (3 retries, 1 s apart).
const LOAD: &str = "8s";

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A loopback port nobody is listening on (the kernel's pick).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// HAProxy in the foreground, killed when dropped.
struct Haproxy {
    child: Child,
    config: PathBuf,
    stats: u16,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}

impl Haproxy {
    /// Listens on 127.0.0.1:`front`, balances over the `servers` (name, port).
    fn start(front: u16, servers: &[(&str, u16)]) -> Haproxy {
        let stats = free_port();
        let mut config = format!(
            "global\n    nbthread 1\n    maxconn 512\n\
             defaults\n    mode http\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n\
             frontend web\n    bind 127.0.0.1:{front}\n    default_backend app\n\
             frontend stats\n    bind 127.0.0.1:{stats}\n    stats enable\n    stats uri /stats\n\
             backend app\n    balance roundrobin\n    option httpchk\n\
             \x20   http-check send meth GET uri /ready ver HTTP/1.1 hdr Host localhost\n\
             \x20   http-check expect status 200\n\
             \x20   default-server check inter 200ms fall 1 rise 2\n"
        );
        for (name, port) in servers {
            config.push_str(&format!("    server {name} 127.0.0.1:{port}\n"));
        }
        let path = std::env::temp_dir().join(format!(
            "sundown-rolling-{}-{front}.cfg",
            std::process::id()
        ));
        std::fs::write(&path, config).unwrap();
        let child = Command::new("haproxy")
            .args(["-db", "-q", "-f"])
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start haproxy");
        Haproxy {
            child,
            config: path,
            stats,
        }
    }

    /// Each server's status as HAProxy sees it (`UP`, `DOWN`, ...), from its CSV stats.
    fn statuses(&self) -> Vec<(String, String)> {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.stats)) else {
            return Vec::new();
        };
        let _ = s.write_all(b"GET /stats;csv HTTP/1.0\r\n\r\n");
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        text.lines()
            .filter_map(|l| {
                let cols: Vec<&str> = l.split(',').collect();
                (cols.len() > 17 && cols[0] == "app" && cols[1] != "BACKEND")
                    .then(|| (cols[1].to_owned(), cols[17].to_owned()))
            })
            .collect()
    }

    /// Waits until every server named has the given status.
    fn wait_for(&self, want: &[(&str, &str)]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = self.statuses();
            if want
                .iter()
                .all(|(name, status)| now.iter().any(|(n, s)| n == name && s.starts_with(status)))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "HAProxy never saw {want:?}: {now:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// What one run measured.
#[derive(Debug)]
struct Run {
    requests: u64,
    p50: String,
    p99: String,
    /// Responses that were not 2xx/3xx.
    non_2xx: u64,
    /// Connect, read, write errors and timeouts.
    socket_errors: u64,
    exits: Vec<Ended>,
    wrk: String,
}

impl Run {
    fn failed(&self) -> u64 {
        self.non_2xx + self.socket_errors
    }
}

/// Reads wrk's summary: requests, p50 and p99 latency, failures.
fn parse_wrk(out: &str) -> (u64, String, String, u64, u64) {
    let mut requests = None;
    let (mut p50, mut p99) = (String::new(), String::new());
    let (mut non_2xx, mut socket_errors) = (0, 0);
    for line in out.lines().map(str::trim) {
        if let Some((n, _)) = line.split_once(" requests in ") {
            requests = n.parse().ok();
        } else if let Some(v) = line.strip_prefix("50%") {
            p50 = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("99%") {
            p99 = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            non_2xx = v.trim().parse().unwrap();
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            socket_errors = v
                .split(',')
                .filter_map(|kv| kv.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
        }
    }
    (
        requests.expect("a request count"),
        p50,
        p99,
        non_2xx,
        socket_errors,
    )
}

fn start_instance(port: u16, readiness: bool) -> Program {
    let addr = format!("127.0.0.1:{port}");
    let args = if readiness {
        vec![]
    } else {
        vec!["--no-readiness"]
    };
    Program::start(
        SERVER,
        &addr,
        Start {
            args,
            ..Start::default()
        },
    )
}

/// Two instances behind HAProxy under wrk's load; each replaced in turn by a new
/// instance on a new port, the old one stopped by SIGTERM once the new one is up.
fn rolling_restart(readiness: bool) -> Run {
    let front = free_port();
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let names = ["a1", "b1", "a2", "b2"];
    let servers: Vec<(&str, u16)> = names.iter().copied().zip(ports.iter().copied()).collect();
    let mut old = vec![
        start_instance(ports[0], readiness),
        start_instance(ports[1], readiness),
    ];
    let lb = Haproxy::start(front, &servers);
    lb.wait_for(&[("a1", "UP"), ("b1", "UP"), ("a2", "DOWN"), ("b2", "DOWN")]);

    // Few connections, a few seconds, loopback only.
    let wrk = Command::new("wrk")
        .args(["-t2", "-c16", "-d", LOAD, "--timeout", "5s", "--latency"])
        .arg(format!("http://127.0.0.1:{front}/item"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wrk");
    thread::sleep(Duration::from_millis(800));

    let mut new = Vec::new();
    let mut exits = Vec::new();
    for (i, (old_name, new_name)) in [("a1", "a2"), ("b1", "b2")].into_iter().enumerate() {
        new.push(start_instance(ports[2 + i], readiness));
        lb.wait_for(&[(new_name, "UP")]);
        let mut p = old.remove(0);
        p.signal("TERM");
        let end = p.wait(Duration::from_secs(10));
        assert!(
            !lb.statuses()
                .iter()
                .any(|(n, s)| n == old_name && s.starts_with("UP"))
                || !readiness,
            "HAProxy still sends to {old_name} after it exited"
        );
        exits.push(end);
    }
    let out = wrk.wait_with_output().expect("wrk ran");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "wrk: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for mut p in new {
        p.signal("TERM");
        exits.push(p.wait(Duration::from_secs(10)));
    }
    drop(lb);
    let (requests, p50, p99, non_2xx, socket_errors) = parse_wrk(&text);
    Run {
        requests,
        p50,
        p99,
        non_2xx,
        socket_errors,
        exits,
        wrk: text,
    }
}

#[test]
fn a_rolling_restart_behind_haproxy_fails_no_request_and_fails_some_without_readiness() {
    let missing: Vec<&str> = ["haproxy", "wrk"]
        .into_iter()
        .filter(|t| !have(t))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "SKIPPED: the rolling-restart test needs {} (Debian packages; `.ci/run` installs \
             them: apt-get install -y haproxy wrk)",
            missing.join(" and ")
        );
        return;
    }

    let with = rolling_restart(true);
    let without = rolling_restart(false);
    for (run, name) in [(&with, "with readiness"), (&without, "without readiness")] {
        println!(
            "rolling restart {name}: {} requests, p50 {}, p99 {}, {} failed ({} non-2xx, {} \
             socket errors); instances exited {:?}",
            run.requests,
            run.p50,
            run.p99,
            run.failed(),
            run.non_2xx,
            run.socket_errors,
            run.exits.iter().map(Ended::code).collect::<Vec<_>>()
        );
        for end in &run.exits {
            assert_eq!(end.code(), Some(0), "{name}: {}", end.stderr);
            end.assert_within(Duration::from_secs(3));
            end.assert_mentions("exit code 0");
        }
        assert!(run.requests > 1000, "{name}: load was driven: {}", run.wrk);
    }
    assert_eq!(
        with.failed(),
        0,
        "with readiness nothing fails: {}",
        with.wrk
    );
    assert!(
        without.failed() > 0,
        "without readiness HAProxy routes to a closing instance: {}",
        without.wrk
    );
}
