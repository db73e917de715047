//! Helpers for tests that run fixture programs as real processes and send them real
//! signals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A fixture program running as a child process.
pub struct Program {
    child: Child,
    stdout: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    /// When the last signal was sent.
    pub signalled_at: Option<Instant>,
    /// Everything read from stdout so far.
    pub stdout_lines: Vec<String>,
}

/// How a program ended.
#[derive(Debug)]
pub struct Ended {
    /// The exit status.
    pub status: ExitStatus,
    /// Everything it wrote to stderr.
    pub stderr: String,
    /// Everything it wrote to stdout.
    pub stdout: Vec<String>,
    /// From the last signal (or from the start) to its exit.
    pub elapsed: Duration,
}

impl Ended {
    /// The exit code, if it exited rather than died by a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Asserts the budget ran out: exit 124 within `within` of the signal, and stderr
    /// names each of `mentions` (tasks, states).
    #[track_caller]
    pub fn assert_budget_ran_out(&self, within: Duration, mentions: &[&str]) {
        assert_eq!(self.code(), Some(124), "{}", self.stderr);
        self.assert_within(within);
        for m in mentions {
            self.assert_mentions(m);
        }
    }

    /// Asserts stderr contains `text`.
    #[track_caller]
    pub fn assert_mentions(&self, text: &str) {
        assert!(
            self.stderr.contains(text),
            "no {text:?} in: {}",
            self.stderr
        );
    }

    /// Asserts the program ended less than `bound` after the signal (or the wait began).
    #[track_caller]
    pub fn assert_within(&self, bound: Duration) {
        assert!(
            self.elapsed < bound,
            "ended after {:?}, bound {bound:?}",
            self.elapsed
        );
    }

    /// The signal that killed it, if any.
    pub fn signal(&self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        self.status.signal()
    }
}

/// Options for starting a program.
#[derive(Default)]
pub struct Start<'a> {
    /// Environment variables to set.
    pub env: Vec<(&'a str, &'a str)>,
    /// Leave stderr as a pipe nobody reads.
    pub unread_stderr: bool,
    /// Close the read end of stderr at once: every write gets EPIPE.
    pub closed_stderr: bool,
    /// Leave stdout as a pipe nobody reads (then wait for `ready` on stderr).
    pub unread_stdout: bool,
    /// Wait for the `ready` line.
    pub no_wait: bool,
    /// Run the program under this command (e.g. `["unshare", "--pid", "--fork"]`).
    pub under: Vec<&'a str>,
    /// Arguments after the mode.
    pub args: Vec<&'a str>,
}

impl Start<'_> {
    /// The fixture fills its stderr pipe before it starts and nobody reads it, so every
    /// later write to stderr blocks.
    pub fn blocked_stderr() -> Self {
        Start {
            env: vec![("FIXTURE_FILL_STDERR", "1")],
            unread_stderr: true,
            ..Start::default()
        }
    }
}

impl Program {
    /// Starts `binary mode` and waits for its `ready` line.
    pub fn start(binary: &str, mode: &str, opts: Start<'_>) -> Program {
        let mut cmd = match opts.under.split_first() {
            Some((wrapper, args)) => {
                let mut c = Command::new(wrapper);
                c.args(args).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        cmd.arg(mode)
            .args(&opts.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("SUNDOWN_TIMEOUT");
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start the fixture");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        let out = if opts.unread_stdout {
            // Keep the pipe open and unread.
            std::mem::forget(out);
            None
        } else {
            Some(out)
        };
        std::thread::spawn(move || {
            let Some(out) = out else { return };
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let err = child.stderr.take().expect("stderr");
        if opts.unread_stderr {
            // Keep the pipe open and unread.
            std::mem::forget(err);
        } else if opts.closed_stderr {
            drop(err);
        } else {
            let buf = stderr.clone();
            std::thread::spawn(move || {
                let mut err = err;
                let mut chunk = [0u8; 4096];
                while let Ok(n) = err.read(&mut chunk) {
                    if n == 0 {
                        return;
                    }
                    buf.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&chunk[..n]));
                }
            });
        }
        let mut p = Program {
            child,
            stdout: rx,
            stderr,
            signalled_at: None,
            stdout_lines: Vec::new(),
        };
        if opts.unread_stdout {
            p.wait_for_stderr("ready", Duration::from_secs(20));
        } else if !opts.no_wait {
            p.wait_for_line("ready", Duration::from_secs(20));
        }
        p
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until stdout has printed `line`; returns when it did.
    pub fn wait_for_line(&mut self, line: &str, within: Duration) -> Instant {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(l) => {
                    let hit = l == line;
                    self.stdout_lines.push(l);
                    if hit {
                        return Instant::now();
                    }
                }
                Err(_) => panic!(
                    "no `{line}` line within {within:?}; stdout so far: {:?}; stderr: {}",
                    self.stdout_lines,
                    self.stderr()
                ),
            }
        }
    }

    /// Waits until stderr contains `text`.
    pub fn wait_for_stderr(&self, text: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.stderr().contains(text) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("stderr never contained {text:?}: {}", self.stderr());
    }

    /// Stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends a signal by name (`"TERM"`, `"INT"`, `"USR1"`).
    pub fn signal(&mut self, name: &str) {
        self.signal_pid(self.pid(), name);
    }

    /// The pid of the program's first child (the program itself when it runs under a
    /// wrapper such as `unshare --fork`).
    pub fn child_pid(&self) -> u32 {
        let path = format!("/proc/{0}/task/{0}/children", self.pid());
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        text.split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no child in {path}"))
    }

    /// Sends `signals` as fast as the kernel takes them; returns how long that took.
    pub fn storm(&mut self, signals: &[rustix::process::Signal]) -> Duration {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.pid()).unwrap()).unwrap();
        let started = Instant::now();
        for &s in signals {
            // The process may be gone before the storm ends.
            let _ = rustix::process::kill_process(pid, s);
        }
        self.signalled_at = Some(Instant::now());
        started.elapsed()
    }

    /// Sends a signal by name to a given pid.
    pub fn signal_pid(&mut self, pid: u32, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{name} failed");
        self.signalled_at = Some(Instant::now());
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Waits for the process to end (killing it after `within`).
    pub fn wait(mut self, within: Duration) -> Ended {
        let start = self.signalled_at.unwrap_or_else(Instant::now);
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "the program did not exit within {within:?}; stderr: {}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let elapsed = start.elapsed();
        // Let the readers drain what is left.
        std::thread::sleep(Duration::from_millis(50));
        while let Ok(l) = self.stdout.try_recv() {
            self.stdout_lines.push(l);
        }
        Ended {
            status,
            stderr: self.stderr(),
            stdout: self.stdout_lines,
            elapsed,
        }
    }
}

/// The line number of the first line of `source` that contains `marker`.
pub fn line_of(source: &str, marker: &str) -> usize {
    source
        .lines()
        .position(|l| l.contains(marker))
        .map(|i| i + 1)
        .expect("marker in source")
}

/// What the fixture programs (`src/bin/*`) share.
pub mod fixture {
    use std::io::Write;

    /// One line on stdout, flushed at once: what a test waits for (`ready`, …).
    pub fn say(line: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    /// A mode the fixture `program` does not have: says so, exits 2.
    pub fn unknown_mode(program: &str, mode: &str) -> ! {
        eprintln!("{program}: unknown mode {mode:?}");
        std::process::exit(2)
    }
}
