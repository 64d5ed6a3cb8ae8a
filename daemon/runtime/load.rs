//! Loading a plan for the daemon: plugins, plan, prepared channels — the same phases as
//! `kithd check` — into a dispatch snapshot, or every problem as a one-line message with
//! file:line:column. Must not touch the ledger or the network.

use std::path::Path;
use std::sync::Arc;

use crate::answer::LinkSigner;
use crate::diagnostic::{Diagnostic, Severity, SourceFile};
use crate::dispatch::ChannelSet;
use crate::dispatch::worker::Snapshot;
use crate::plan;
use crate::plugin::Registry;

/// The secret that keys answer links (systemd credential or `KITHD_SECRET_ANSWER_KEY`).
pub const ANSWER_KEY: &str = "answer_key";
/// The shared secret for the inbound-reply endpoint.
pub const INBOUND_TOKEN: &str = "inbound_token";

/// One line per diagnostic: `file:line:col: error: message (hint: …)`.
pub fn one_line(source: &SourceFile, d: &Diagnostic) -> String {
    let p = source.position(d.span.start);
    let sev = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let hint = d
        .hint
        .as_ref()
        .map(|h| format!(" (hint: {h})"))
        .unwrap_or_default();
    format!(
        "{}:{}:{}: {sev}: {}{hint}",
        source.name, p.line, p.column, d.message
    )
}

/// A loaded snapshot with its warnings, or the problems that stop it loading.
pub fn load(plan_path: &Path, plugin_dir: &Path) -> Result<(Snapshot, Vec<String>), Vec<String>> {
    let registry = Registry::load(plugin_dir).map_err(|e| vec![e.to_string()])?;
    let text = std::fs::read_to_string(plan_path)
        .map_err(|e| vec![format!("can't read plan `{}`: {e}", plan_path.display())])?;
    let source = SourceFile::new(plan_path.display().to_string(), text);
    let loaded = plan::load(&source, &registry).map_err(|diags| {
        diags
            .iter()
            .map(|d| one_line(&source, d))
            .collect::<Vec<_>>()
    })?;
    let warnings = loaded
        .warnings
        .iter()
        .map(|d| one_line(&source, d))
        .collect();
    let channels = ChannelSet::prepare(&registry, &loaded.plan).map_err(|errs| {
        errs.into_iter()
            .map(|(id, e)| format!("channel `{id}`: {e}"))
            .collect::<Vec<_>>()
    })?;
    let links = match &loaded.plan.server {
        None => None,
        Some(server) => {
            let key = crate::plugin::SecretStore::from_env()
                .get(ANSWER_KEY)
                .map_err(|e| vec![format!("[server]: {e}")])?;
            let signer = LinkSigner::new(
                key.expose().as_bytes(),
                &server.public_url,
                server.link_ttl.to_chrono(),
            )
            .map_err(|e| vec![format!("[server]: {e}")])?;
            Some(signer)
        }
    };
    Ok((
        Snapshot {
            plan: Arc::new(loaded.plan),
            channels,
            registry: Arc::new(registry),
            links,
        },
        warnings,
    ))
}
