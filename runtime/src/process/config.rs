//! `#[graceful_main]`'s arguments as the runner takes them, and the run-time override
//! of the budget (`SUNDOWN_TIMEOUT`).

use std::time::Duration;

use crate::duration::{self, Human};
use crate::scope::FailurePolicy;

/// How `#[graceful_main]` ends a signal-initiated graceful shutdown.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitMode {
    /// Exit with the code from the table.
    Code,
    /// Re-raise the signal with its default disposition (as shells expect of CLI tools).
    Signal,
}

/// The tokio runtime flavor.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    MultiThread,
    CurrentThread,
}

/// `#[graceful_main]`'s arguments.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct MainConfig {
    pub name: &'static str,
    pub timeout: Duration,
    pub delay: Duration,
    pub signals: &'static [&'static str],
    pub dump_signal: Option<&'static str>,
    pub on_task_failure: FailurePolicy,
    pub exit: ExitMode,
    pub flavor: Flavor,
    pub worker_threads: Option<usize>,
    /// Debug mode (`SUNDOWN_DEBUG=1` turns it on too): slow polls are named on stderr.
    pub debug: bool,
}

#[cfg(unix)]
const DEFAULT_SIGNALS: &[&str] = &["SIGINT", "SIGTERM"];
#[cfg(windows)]
const DEFAULT_SIGNALS: &[&str] = &[
    "CTRL_C",
    "CTRL_BREAK",
    "CTRL_CLOSE",
    "CTRL_LOGOFF",
    "CTRL_SHUTDOWN",
];

impl MainConfig {
    /// 9 s fits inside Docker's 10 s stop window and Kubernetes' 30 s grace period.
    pub const DEFAULT: MainConfig = MainConfig {
        name: "main",
        timeout: Duration::from_secs(9),
        delay: Duration::ZERO,
        signals: DEFAULT_SIGNALS,
        dump_signal: None,
        on_task_failure: FailurePolicy::Log,
        exit: ExitMode::Code,
        flavor: Flavor::MultiThread,
        worker_threads: None,
        debug: false,
    };
}

/// The environment variable that overrides `timeout` at run time.
pub(crate) const TIMEOUT_VAR: &str = "SUNDOWN_TIMEOUT";

/// The configuration the program runs with: `SUNDOWN_TIMEOUT` applied, `delay` kept
/// shorter than the budget. `Err` is the line saying why the program cannot start.
pub(crate) fn resolve(config: MainConfig) -> Result<(MainConfig, Duration), String> {
    let budget = match std::env::var(TIMEOUT_VAR) {
        Ok(text) => duration::parse(&text)
            .map_err(|why| format!("{TIMEOUT_VAR}=\"{text}\" is not a valid duration ({why})"))?,
        Err(std::env::VarError::NotPresent) => config.timeout,
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(format!("{TIMEOUT_VAR} is not valid UTF-8"));
        }
    };
    let mut config = config;
    let (delay, why) = fit_delay(config.delay, budget);
    if let Some(why) = why {
        crate::output::line(&why);
    }
    config.delay = delay;
    Ok((config, budget))
}

/// `delay` counts inside the budget, before the drain: more than half of it would
/// leave the drain less time than the delay, and a delay past the drain deadline
/// would abort tasks that were never asked to stop. Such a delay is cut to half the
/// budget, with the line saying so.
fn fit_delay(delay: Duration, budget: Duration) -> (Duration, Option<String>) {
    let most = budget / 2;
    if delay <= most {
        return (delay, None);
    }
    let why = format!(
        "delay {} leaves the {} budget too little for the drain; using {}",
        Human(delay),
        Human(budget),
        Human(most)
    );
    (most, Some(why))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::facts;

    #[test]
    fn a_delay_over_half_the_budget_is_cut_to_half() {
        let ms = Duration::from_millis;
        assert_eq!(fit_delay(ms(500), ms(1000)), (ms(500), None));
        let (delay, why) = fit_delay(ms(950), ms(1000));
        assert_eq!(delay, ms(500));
        let why = why.unwrap_or_default();
        assert!(
            why.contains("delay 950ms") && why.contains("using 500ms"),
            "{why}"
        );
        assert_eq!(fit_delay(ms(3000), ms(3100)).0, ms(1550));
    }

    #[test]
    fn the_default_configuration_uses_the_shared_defaults() {
        let default = MainConfig::DEFAULT;
        assert_eq!(
            default.timeout,
            Duration::from_millis(facts::DEFAULT_MAIN_TIMEOUT_MS)
        );
        #[cfg(unix)]
        assert_eq!(default.signals, facts::DEFAULT_SIGNALS);
    }
}
