//! Subcommands, one file each. A command turns parsed arguments into output and an exit
//! code; it must not install signal handlers or own long-lived tasks (that is `runtime`).

pub(crate) mod ack;
pub(crate) mod check;
pub(crate) mod history;
pub(crate) mod manpages;
pub(crate) mod preview;
pub(crate) mod report;
pub(crate) mod send_test;
pub(crate) mod status;

use std::path::{Path, PathBuf};

/// The default plugin directory: the user's config dir when there is a home, else `/etc`.
pub(crate) fn default_plugin_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("kithd/plugins");
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty() && v != "/") {
        Some(h) => PathBuf::from(h).join(".config/kithd/plugins"),
        None => PathBuf::from("/etc/kithd/plugins"),
    }
}

/// The default state directory: systemd's `$STATE_DIRECTORY`, else
/// `$XDG_STATE_HOME/kithd`, else `~/.local/state/kithd`, else `/var/lib/kithd`.
pub(crate) fn default_state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("STATE_DIRECTORY").filter(|v| !v.is_empty()) {
        // systemd may pass several, separated by `:`; the first is ours.
        let first = d
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or_default()
            .to_string();
        return PathBuf::from(first);
    }
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("kithd");
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty() && v != "/") {
        Some(h) => PathBuf::from(h).join(".local/state/kithd"),
        None => PathBuf::from("/var/lib/kithd"),
    }
}

/// Runs the load step for a command. Warnings go to `err` in the long form when
/// `show_warnings`; problems come back as the command's error.
pub(crate) fn load(
    plan: &Path,
    plugin_dir: &Path,
    secrets: crate::load::Secrets,
    show_warnings: bool,
    now: chrono::DateTime<chrono::Utc>,
    err: &mut dyn std::io::Write,
) -> Result<crate::load::Loaded, crate::exit::Error> {
    let opts = crate::load::Options {
        plan,
        plugin_dir,
        secrets,
        now,
    };
    match crate::load::load(&opts) {
        Ok(loaded) => {
            if show_warnings && !loaded.warnings.is_empty() {
                let _ = writeln!(err, "{}", loaded.source.render_all(&loaded.warnings));
            }
            Ok(loaded)
        }
        Err(f) => Err(crate::exit::Error::Plan(f)),
    }
}
