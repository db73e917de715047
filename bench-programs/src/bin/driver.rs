//! Runs the measured programs and prints the tables.
//!
//! ```text
//! driver shutdown [--rounds 15] [--warmup 1] [--tasks 10000]
//! driver build-times [--runs 3] DIR...
//! driver spawn [--processes 6] [--rounds 21] [--tasks 200000]
//! driver one NAME            (internal: one measured run of one program)
//! ```
//!
//! `shutdown` measures, for each program, the time from sending SIGTERM to the process's
//! exit, and its peak resident memory. The programs are run interleaved, round by round
//! (the starting program rotates), after the warm-up rounds. Every run happens in a
//! fresh helper process (`driver one`), so that `getrusage(RUSAGE_CHILDREN)` after the
//! wait reports the peak RSS of exactly that one program, including its shutdown:
//!
//! 1. start the program with stdout piped, stderr discarded;
//! 2. read its stdout until the line `ready`;
//! 3. read `VmHWM` from `/proc/<pid>/status`;
//! 4. take the time, send SIGTERM (`kill(2)`), `Child::wait`, take the time;
//! 5. check the exit status is 0, read `ru_maxrss` of the children.
//!
//! `spawn` runs the hand-written and the sundown program in spawn mode, alternating, each
//! process measuring `--rounds` rounds of spawning `--tasks` trivial tasks from a task and
//! awaiting them (its first round a warm-up), and reports the median time per task: a
//! tracked spawn on the process scope of a `#[graceful_main]` program (its plain
//! `tokio::spawn`, rewritten) against `TaskTracker::spawn` under `#[tokio::main]`.
//!
//! `build-times` runs `cargo clean` + `cargo build --release` in each package directory,
//! alternating between them, and reports the median wall time of the builds.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A measured program: its name in the tables, its binary, and its environment.
struct Program {
    name: &'static str,
    binary: &'static str,
    env: &'static [(&'static str, &'static str)],
}

const PROGRAMS: &[Program] = &[
    Program {
        name: "handwritten",
        binary: "handwritten",
        env: &[],
    },
    Program {
        name: "sundown",
        binary: "sundown",
        env: &[],
    },
    Program {
        name: "tgs",
        binary: "tgs",
        env: &[],
    },
    Program {
        name: "tgs-subsystems",
        binary: "tgs",
        env: &[("BENCH_TGS_SUBSYSTEMS", "1")],
    },
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("one") => one(&args[1..]),
        Some("shutdown") => shutdown(&args[1..]),
        Some("build-times") => build_times(&args[1..]),
        Some("spawn") => spawn(&args[1..]),
        _ => Err(
            "usage: driver shutdown [--rounds N] [--warmup N] [--tasks N] | \
                  driver build-times [--runs N] DIR... | \
                  driver spawn [--processes N] [--rounds N] [--tasks N] | driver one NAME"
                .to_owned(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("driver: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--name value` among `args`, parsed, or `default`.
fn option(args: &[String], name: &str, default: usize) -> Result<usize, String> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a number")),
        None => Ok(default),
    }
}

/// The arguments that are neither options nor option values.
fn positional(args: &[String]) -> Vec<&String> {
    let mut out = Vec::new();
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
        } else if a.starts_with("--") {
            skip = true;
        } else {
            out.push(a);
        }
    }
    out
}

fn program(name: &str) -> Result<&'static Program, String> {
    PROGRAMS
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| format!("unknown program `{name}`"))
}

/// The binaries are built next to the driver.
fn sibling(binary: &str) -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| format!("cannot find the driver: {e}"))?;
    let dir = me.parent().ok_or("the driver has no directory")?;
    Ok(dir.join(binary))
}

// ---------------------------------------------------------------------------------------
// One run (in its own helper process)

/// One run's numbers.
struct Run {
    /// From starting the program to reading `ready`.
    startup: Duration,
    /// From sending SIGTERM to `wait` returning.
    sigterm_to_exit: Duration,
    /// `VmHWM` just before SIGTERM, KiB.
    hwm_before_kib: u64,
    /// `ru_maxrss` of the program over its whole life, KiB.
    peak_kib: u64,
}

impl Run {
    fn to_line(&self) -> String {
        format!(
            "{} {} {} {}",
            self.startup.as_nanos(),
            self.sigterm_to_exit.as_nanos(),
            self.hwm_before_kib,
            self.peak_kib
        )
    }

    fn from_line(line: &str) -> Option<Run> {
        let mut f = line.split_whitespace().map(|v| v.parse::<u64>().ok());
        Some(Run {
            startup: Duration::from_nanos(f.next()??),
            sigterm_to_exit: Duration::from_nanos(f.next()??),
            hwm_before_kib: f.next()??,
            peak_kib: f.next()??,
        })
    }
}

fn one(args: &[String]) -> Result<(), String> {
    let name = args.first().ok_or("driver one NAME")?;
    let p = program(name)?;
    let path = sibling(p.binary)?;
    let started = Instant::now();
    let mut child = Command::new(&path)
        .envs(p.env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", path.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.trim() == "ready" => break,
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("{name}: reading stdout: {e}")),
            None => {
                let status = child.wait().map_err(|e| e.to_string())?;
                return Err(format!("{name} exited ({status}) before printing `ready`"));
            }
        }
    }
    let startup = started.elapsed();
    let pid = child.id();
    let hwm_before_kib = vm_hwm_kib(pid).ok_or("cannot read VmHWM")?;
    let pid = Pid::from_raw(i32::try_from(pid).map_err(|e| e.to_string())?);

    let t = Instant::now();
    kill(pid, Signal::SIGTERM).map_err(|e| format!("kill: {e}"))?;
    let status = child.wait().map_err(|e| format!("wait: {e}"))?;
    let sigterm_to_exit = t.elapsed();

    if !status.success() {
        return Err(format!("{name} exited with {status}, expected 0"));
    }
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).map_err(|e| format!("getrusage: {e}"))?;
    let run = Run {
        startup,
        sigterm_to_exit,
        hwm_before_kib,
        // Linux reports ru_maxrss in KiB.
        peak_kib: u64::try_from(usage.max_rss()).unwrap_or(0),
    };
    println!("{}", run.to_line());
    Ok(())
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

// ---------------------------------------------------------------------------------------
// The spawn benchmark

/// The times per task (ns) one process of `name` printed, its first round dropped.
fn spawn_rounds(name: &str, rounds: usize, tasks: usize) -> Result<Vec<f64>, String> {
    let p = program(name)?;
    let path = sibling(p.binary)?;
    let out = Command::new(&path)
        .env("BENCH_SPAWN_ROUNDS", (rounds + 1).to_string())
        .env("BENCH_TASKS", tasks.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("cannot start {}: {e}", path.display()))?;
    if !out.status.success() {
        return Err(format!("{name} exited with {}", out.status));
    }
    let times: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("round ")?.trim().parse().ok())
        .collect();
    if times.len() != rounds + 1 {
        return Err(format!(
            "{name} printed {} rounds, not {}",
            times.len(),
            rounds + 1
        ));
    }
    Ok(times[1..].to_vec())
}

fn spawn(args: &[String]) -> Result<(), String> {
    let processes = option(args, "--processes", 6)?;
    let rounds = option(args, "--rounds", 21)?;
    let tasks = option(args, "--tasks", 200_000)?;
    println!(
        "== spawn: spawn + join {tasks} trivial tasks from a task; {processes} processes per \
         program, alternating, {rounds} rounds each after 1 warm-up; median [min .. max]"
    );
    let names = ["handwritten", "sundown"];
    let mut samples = [Vec::new(), Vec::new()];
    for i in 0..processes * 2 {
        let k = i % 2;
        samples[k].extend(spawn_rounds(names[k], rounds, tasks)?);
    }
    let mut medians = Vec::new();
    for (name, s) in names.iter().zip(samples.iter_mut()) {
        s.sort_by(f64::total_cmp);
        let m = s[s.len() / 2];
        println!(
            "   {name:<12} {m:7.1} ns/task  [{:7.1} .. {:7.1}]",
            s[0],
            s[s.len() - 1]
        );
        medians.push(m);
    }
    println!(
        "   sundown (process scope, #[graceful_main]) / handwritten (TaskTracker) = {:.3}",
        medians[1] / medians[0]
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The shutdown benchmark

fn shutdown(args: &[String]) -> Result<(), String> {
    let rounds = option(args, "--rounds", 15)?;
    let warmup = option(args, "--warmup", 1)?;
    let tasks = option(args, "--tasks", 10_000)?;
    let me = std::env::current_exe().map_err(|e| format!("cannot find the driver: {e}"))?;
    println!(
        "== shutdown: {tasks} idle tasks, SIGTERM -> exit and peak RSS; {rounds} rounds after \
         {warmup} warm-up, programs interleaved (fresh process per run); median [min .. max]"
    );
    let mut runs: Vec<Vec<Run>> = PROGRAMS.iter().map(|_| Vec::new()).collect();
    for round in 0..warmup + rounds {
        for k in 0..PROGRAMS.len() {
            let i = (k + round) % PROGRAMS.len();
            let out = Command::new(&me)
                .args(["one", PROGRAMS[i].name])
                .env(sundown_bench_programs::TASKS_ENV, tasks.to_string())
                .stderr(Stdio::inherit())
                .output()
                .map_err(|e| format!("cannot run the helper: {e}"))?;
            let text = String::from_utf8_lossy(&out.stdout);
            let run = match Run::from_line(text.trim()) {
                Some(r) if out.status.success() => r,
                _ => return Err(format!("run of {} failed: {text}", PROGRAMS[i].name)),
            };
            if round >= warmup {
                runs[i].push(run);
            }
        }
    }

    let ms = |d: &Duration| d.as_secs_f64() * 1e3;
    let mib = |k: &u64| *k as f64 / 1024.0;
    println!();
    println!(
        "   {:<16} {:>27} {:>27} {:>27} {:>27}",
        "program",
        "SIGTERM -> exit (ms)",
        "peak RSS, whole run (MiB)",
        "VmHWM before SIGTERM (MiB)",
        "start -> ready (ms)"
    );
    let mut exit_medians = Vec::new();
    let mut peak_medians = Vec::new();
    for (p, r) in PROGRAMS.iter().zip(&runs) {
        let exit = Stat::of(r.iter().map(|x| ms(&x.sigterm_to_exit)).collect());
        let peak = Stat::of(r.iter().map(|x| mib(&x.peak_kib)).collect());
        let hwm = Stat::of(r.iter().map(|x| mib(&x.hwm_before_kib)).collect());
        let ready = Stat::of(r.iter().map(|x| ms(&x.startup)).collect());
        println!(
            "   {:<16} {:>27} {:>27} {:>27} {:>27}",
            p.name,
            exit.show(2),
            peak.show(1),
            hwm.show(1),
            ready.show(1)
        );
        exit_medians.push(exit.median);
        peak_medians.push(peak.median);
    }
    let find = |v: &[f64], name: &str| {
        PROGRAMS
            .iter()
            .position(|p| p.name == name)
            .map_or(f64::NAN, |i| v[i])
    };
    println!();
    let exit_ratio = find(&exit_medians, "sundown") / find(&exit_medians, "handwritten");
    println!(
        "   SIGTERM -> exit, sundown / handwritten = {exit_ratio:.3}  {}",
        at_most(exit_ratio, 1.2)
    );
    let tgs_ratio = find(&exit_medians, "tgs") / find(&exit_medians, "sundown");
    println!(
        "   SIGTERM -> exit, tgs / sundown = {tgs_ratio:.3}  {}",
        at_least(tgs_ratio, 5.0)
    );
    let tgs_sub_ratio = find(&exit_medians, "tgs-subsystems") / find(&exit_medians, "sundown");
    println!(
        "   SIGTERM -> exit, tgs-subsystems / sundown = {tgs_sub_ratio:.3}  {}",
        at_least(tgs_sub_ratio, 5.0)
    );
    let rss_ratio = find(&peak_medians, "sundown") / find(&peak_medians, "handwritten");
    println!(
        "   peak RSS, sundown / handwritten = {rss_ratio:.3}  {}",
        at_most(rss_ratio, 1.2)
    );
    println!(
        "   peak RSS, tgs / handwritten = {:.3}, tgs-subsystems / handwritten = {:.3}  \
         (for information)",
        find(&peak_medians, "tgs") / find(&peak_medians, "handwritten"),
        find(&peak_medians, "tgs-subsystems") / find(&peak_medians, "handwritten"),
    );
    Ok(())
}

/// Median, min and max of some samples.
struct Stat {
    median: f64,
    min: f64,
    max: f64,
}

impl Stat {
    fn of(mut samples: Vec<f64>) -> Stat {
        samples.sort_by(f64::total_cmp);
        let n = samples.len();
        if n == 0 {
            return Stat {
                median: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
            };
        }
        let median = if n % 2 == 1 {
            samples[n / 2]
        } else {
            (samples[n / 2 - 1] + samples[n / 2]) / 2.0
        };
        Stat {
            median,
            min: samples[0],
            max: samples[n - 1],
        }
    }

    fn show(&self, decimals: usize) -> String {
        format!(
            "{:.d$} [{:.d$} .. {:.d$}]",
            self.median,
            self.min,
            self.max,
            d = decimals
        )
    }
}

fn at_most(value: f64, target: f64) -> String {
    if value <= target {
        format!("target <= {target:.2}: PASS")
    } else {
        format!(
            "target <= {target:.2}: MISS by {:.1}%",
            (value / target - 1.0) * 100.0
        )
    }
}

fn at_least(value: f64, target: f64) -> String {
    if value >= target {
        format!("target >= {target:.2}: PASS")
    } else {
        format!(
            "target >= {target:.2}: MISS ({:.0}% of the target)",
            value / target * 100.0
        )
    }
}

// ---------------------------------------------------------------------------------------
// Clean release build times

fn build_times(args: &[String]) -> Result<(), String> {
    let runs = option(args, "--runs", 3)?;
    let dirs: Vec<&Path> = positional(args).into_iter().map(Path::new).collect();
    if dirs.is_empty() {
        return Err("build-times needs package directories".to_owned());
    }
    for d in &dirs {
        cargo(d, &["fetch", "--locked"])?;
    }
    println!(
        "== build: `cargo clean` then `cargo build --release`, dependencies fetched; \
         {runs} runs each, alternating (the starting package rotates); median [min .. max]"
    );
    let mut times: Vec<Vec<f64>> = dirs.iter().map(|_| Vec::new()).collect();
    for round in 0..runs {
        for k in 0..dirs.len() {
            let i = (k + round) % dirs.len();
            cargo(dirs[i], &["clean"])?;
            let t = Instant::now();
            cargo(dirs[i], &["build", "--release", "--locked", "--offline"])?;
            times[i].push(t.elapsed().as_secs_f64());
        }
    }
    println!();
    let mut medians = Vec::new();
    for (d, t) in dirs.iter().zip(&times) {
        let s = Stat::of(t.clone());
        println!("   {:<16} {:>24} s", name_of(d), s.show(2));
        medians.push(s.median);
    }
    if medians.len() == 2 {
        let ratio = medians[0] / medians[1];
        println!();
        println!(
            "   {} / {} = {ratio:.3}  {}",
            name_of(dirs[0]),
            name_of(dirs[1]),
            at_most(ratio, 1.15)
        );
    }
    Ok(())
}

fn name_of(dir: &Path) -> String {
    dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn cargo(dir: &Path, args: &[&str]) -> Result<(), String> {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`cargo {}` failed in {} ({status})",
            args.join(" "),
            dir.display()
        ))
    }
}
