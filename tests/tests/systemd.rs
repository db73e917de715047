//! systemd notifications (`systemd` feature) on a real unix datagram socket.

#![allow(clippy::unwrap_used)]

use std::os::unix::net::UnixDatagram;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sundown_tests::{Program, Start};

const FIXTURE: &str = env!("CARGO_BIN_EXE_fixture");

struct NotifySocket {
    path: std::path::PathBuf,
    messages: mpsc::Receiver<(Instant, String)>,
}

impl NotifySocket {
    fn bind(tag: &str) -> NotifySocket {
        let path = std::env::temp_dir().join(format!("sundown-{tag}-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let socket = UnixDatagram::bind(&path).unwrap();
        let (tx, messages) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).trim().to_owned();
                if tx.send((Instant::now(), text)).is_err() {
                    return;
                }
            }
        });
        NotifySocket { path, messages }
    }

    fn next(&self, within: Duration) -> Option<(Instant, String)> {
        self.messages.recv_timeout(within).ok()
    }

    fn drain(&self) -> Vec<String> {
        self.messages.try_iter().map(|(_, m)| m).collect()
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[test]
fn ready_watchdog_and_stopping_are_sent() {
    let sock = NotifySocket::bind("notify");
    let path = sock.path.to_string_lossy().into_owned();
    let mut p = Program::start(
        FIXTURE,
        "patient",
        Start {
            env: vec![("NOTIFY_SOCKET", &path), ("WATCHDOG_USEC", "200000")],
            ..Start::default()
        },
    );
    let (_, first) = sock.next(Duration::from_secs(5)).expect("a notification");
    assert_eq!(first, "READY=1");
    std::thread::sleep(Duration::from_millis(550));
    let running = sock.drain();
    let pings = running.iter().filter(|m| *m == "WATCHDOG=1").count();
    assert!(
        pings >= 3,
        "WATCHDOG=1 every 100ms while running: {running:?}"
    );

    p.signal("TERM");
    let (_, stopping) = sock.next(Duration::from_secs(5)).expect("STOPPING=1");
    let stopping = if stopping == "WATCHDOG=1" {
        // a ping that crossed the signal
        sock.next(Duration::from_secs(5)).expect("STOPPING=1").1
    } else {
        stopping
    };
    assert_eq!(stopping, "STOPPING=1");
    // `patient` has a stubborn task and a 20s budget: it is draining now.
    std::thread::sleep(Duration::from_millis(450));
    let draining = sock.drain();
    assert!(
        draining.iter().filter(|m| *m == "WATCHDOG=1").count() >= 2,
        "pings continue while draining: {draining:?}"
    );
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(5));
    assert_eq!(end.code(), Some(143));
}

/// `WATCHDOG_USEC` without `NOTIFY_SOCKET` (a program started by hand with a leftover
/// environment): no pings, no notification errors, a clean exit.
#[test]
fn nothing_is_attempted_without_notify_socket() {
    let mut p = Program::start(
        FIXTURE,
        "clean",
        Start {
            env: vec![("WATCHDOG_USEC", "100000")],
            ..Start::default()
        },
    );
    std::thread::sleep(Duration::from_millis(300));
    p.signal("TERM");
    let end = p.wait(Duration::from_secs(10));
    assert_eq!(end.code(), Some(0), "{}", end.stderr);
    assert!(!end.stderr.contains("systemd"), "{}", end.stderr);
}
