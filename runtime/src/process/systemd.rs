//! systemd's notification protocol, with the `systemd` feature: `READY=1` when the
//! body starts, `STOPPING=1` when shutdown begins, `WATCHDOG=1` every half
//! `WATCHDOG_USEC` from a task on the program's own runtime (so a wedged runtime stops
//! the pings and systemd notices). Without `NOTIFY_SOCKET` nothing is sent.

use std::time::Duration;

#[cfg(all(unix, feature = "systemd"))]
fn send(state: sd_notify::NotifyState<'_>) {
    if let Err(e) = sd_notify::notify(&[state]) {
        crate::output::line(&format!("systemd notification failed: {e}"));
    }
}

/// `READY=1`.
pub(crate) fn ready() {
    #[cfg(all(unix, feature = "systemd"))]
    send(sd_notify::NotifyState::Ready);
}

/// `STOPPING=1`.
pub(crate) fn stopping() {
    #[cfg(all(unix, feature = "systemd"))]
    send(sd_notify::NotifyState::Stopping);
}

/// How often to send `WATCHDOG=1`, when systemd asked for it.
pub(crate) fn watchdog_interval() -> Option<Duration> {
    #[cfg(all(unix, feature = "systemd"))]
    {
        if std::env::var_os("NOTIFY_SOCKET").is_some() {
            return sd_notify::watchdog_enabled().map(|d| d / 2);
        }
    }
    None
}

/// `WATCHDOG=1`.
pub(crate) fn watchdog() {
    #[cfg(all(unix, feature = "systemd"))]
    send(sd_notify::NotifyState::Watchdog);
}
