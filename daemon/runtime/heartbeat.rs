//! Heartbeat pings to an outside monitor (the Healthchecks.io protocol): `{url}` while
//! healthy, `{url}/fail` with a short reason while degraded. The runtime's loop starts each
//! ping, so a stuck loop stops them and the monitor alerts. Must not decide health itself.

use std::time::Duration;

use tracing::{debug, warn};

use crate::plan::Heartbeat;

/// The longest reason sent in a `/fail` ping.
const MAX_REASON: usize = 200;

#[derive(Clone)]
pub(crate) struct Pinger {
    http: reqwest::Client,
    url: String,
    pub every: Duration,
}

impl Pinger {
    pub(crate) fn new(config: &Heartbeat) -> Self {
        let http = crate::plugin::host::client_builder(crate::plugin::host::Timeouts {
            connect: Duration::from_secs(5),
            total: Duration::from_secs(10),
        })
        .build()
        .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            http,
            url: config.url.clone(),
            every: config.every.to_std(),
        }
    }

    /// Starts one ping in the background; `degraded` carries the reason.
    pub(crate) fn ping(&self, degraded: Option<String>) {
        let (url, body) = match degraded {
            None => (self.url.clone(), String::new()),
            Some(reason) => (
                format!("{}/fail", self.url),
                reason.chars().take(MAX_REASON).collect(),
            ),
        };
        let http = self.http.clone();
        tokio::spawn(async move {
            match http.post(&url).body(body).send().await {
                Ok(r) if r.status().is_success() => debug!("Heartbeat sent."),
                Ok(r) => warn!(
                    status = r.status().as_u16(),
                    "The heartbeat monitor refused a ping."
                ),
                Err(e) => warn!(error = %e.without_url(), "A heartbeat ping failed."),
            }
        });
    }
}
