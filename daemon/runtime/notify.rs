//! The systemd notify protocol (READY, RELOADING, STOPPING, WATCHDOG, STATUS), a no-op
//! without `NOTIFY_SOCKET`. Must not carry message text in STATUS.

use std::time::Duration;

use sd_notify::NotifyState;

pub(crate) struct Notifier {
    enabled: bool,
    watchdog: Option<Duration>,
}

impl Notifier {
    pub(crate) fn from_env() -> Self {
        let mut usec = 0;
        let watchdog =
            sd_notify::watchdog_enabled(false, &mut usec).then(|| Duration::from_micros(usec));
        Self {
            enabled: std::env::var_os("NOTIFY_SOCKET").is_some(),
            watchdog,
        }
    }

    /// Tells systemd nothing (a plan of a directory: the supervisor speaks for it).
    pub(crate) fn silent() -> Self {
        Self {
            enabled: false,
            watchdog: None,
        }
    }

    /// How often to ping the watchdog (half its timeout), when `WatchdogSec=` is set.
    pub(crate) fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|w| w / 2)
    }

    fn send(&self, states: &[NotifyState]) {
        if self.enabled
            && let Err(e) = sd_notify::notify(false, states)
        {
            tracing::warn!(error = %e, "Could not notify systemd.");
        }
    }

    pub(crate) fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    pub(crate) fn reloading(&self) {
        match NotifyState::monotonic_usec_now() {
            Ok(m) => self.send(&[NotifyState::Reloading, m]),
            Err(_) => self.send(&[NotifyState::Reloading]),
        }
    }

    pub(crate) fn stopping(&self) {
        self.send(&[NotifyState::Stopping, NotifyState::Status("Stopping.")]);
    }

    pub(crate) fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    pub(crate) fn watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }
}
