//! Subcommands, one file each. A command turns parsed arguments into output and an exit
//! code; it must not install signal handlers or own long-lived tasks (that is `runtime`).

pub(crate) mod ack;
pub(crate) mod calendar;
pub(crate) mod check;
pub(crate) mod history;
pub(crate) mod init;
pub(crate) mod invite;
pub(crate) mod keeping;
pub(crate) mod ledger;
pub(crate) mod manpages;
pub(crate) mod passphrase;
pub(crate) mod pause;
pub(crate) mod preview;
pub(crate) mod replay;
pub(crate) mod report;
pub(crate) mod send_test;
pub(crate) mod snooze;
pub(crate) mod status;

use std::path::{Path, PathBuf};

/// Whether this process runs as root (then the system service's directories are the
/// defaults, when they exist). `/proc/self` belongs to the process's effective user; the
/// crate forbids `unsafe`, so this stands in for `geteuid()`.
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The default plugin directory: `/etc/kithd/plugins` for root when it exists (the
/// system service's), else the user's config directory, else `/etc/kithd/plugins`.
pub(crate) fn default_plugin_dir() -> PathBuf {
    let system = PathBuf::from("/etc/kithd/plugins");
    if is_root() && system.is_dir() {
        return system;
    }
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("kithd/plugins");
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty() && v != "/") {
        Some(h) => PathBuf::from(h).join(".config/kithd/plugins"),
        None => system,
    }
}

/// Where `init` writes a plan: the system service's as root, else the user service's.
pub(crate) fn default_plan() -> PathBuf {
    if is_root() {
        return PathBuf::from("/etc/kithd/plan.toml");
    }
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("kithd/plan.toml");
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty() && v != "/") {
        Some(h) => PathBuf::from(h).join(".config/kithd/plan.toml"),
        None => PathBuf::from("/etc/kithd/plan.toml"),
    }
}

/// A state directory and how it was chosen (said when no ledger is found there).
#[derive(Debug, Clone)]
pub(crate) struct StateDir {
    pub path: PathBuf,
    pub chosen_by: &'static str,
    /// `--ledger`/`KITHD_LEDGER`, when given.
    pub ledger: Option<String>,
    /// `--plan`: one plan of a daemon that runs a directory of plans (its ledger and what
    /// it publishes are under `plans/ID/` in the state directory, or its rows of a shared
    /// database).
    pub plan: Option<String>,
}

/// The state directory for every command, `run` included: `--state-dir`, else
/// `$KITHD_STATE_DIR`, else systemd's `$STATE_DIRECTORY`, else `/var/lib/kithd` for root
/// when it exists (so `sudo kithd status` finds the system service's ledger), else
/// `$XDG_STATE_HOME/kithd`, else `~/.local/state/kithd`, else `/var/lib/kithd`.
pub(crate) fn state_dir(given: Option<PathBuf>) -> StateDir {
    let pick = |path: PathBuf, chosen_by| StateDir {
        path,
        chosen_by,
        ledger: None,
        plan: None,
    };
    if let Some(p) = given {
        return pick(p, "given with --state-dir");
    }
    if let Some(d) = std::env::var_os("KITHD_STATE_DIR").filter(|v| !v.is_empty()) {
        return pick(PathBuf::from(d), "from $KITHD_STATE_DIR");
    }
    if let Some(d) = std::env::var_os("STATE_DIRECTORY").filter(|v| !v.is_empty()) {
        // systemd may pass several, separated by `:`; the first is ours.
        let first = d
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or_default()
            .to_string();
        return pick(PathBuf::from(first), "from systemd's $STATE_DIRECTORY");
    }
    let system = PathBuf::from("/var/lib/kithd");
    if is_root() && system.is_dir() {
        return pick(system, "the system service's, used by root when it exists");
    }
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return pick(PathBuf::from(x).join("kithd"), "from $XDG_STATE_HOME");
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty() && v != "/") {
        Some(h) => pick(
            PathBuf::from(h).join(".local/state/kithd"),
            "the default under your home",
        ),
        None => pick(system, "the default without a home directory"),
    }
}

impl StateDir {
    /// With the ledger given by `--ledger`/`KITHD_LEDGER`.
    pub(crate) fn with_ledger(mut self, ledger: Option<String>) -> Self {
        self.ledger = ledger;
        self
    }

    /// One plan of a directory's daemon (`--plan`).
    pub(crate) fn with_plan(mut self, plan: Option<String>) -> Self {
        if let Some(id) = &plan {
            self.path = self.path.join("plans").join(id);
        }
        self.plan = plan;
        self
    }

    /// Where the ledger is.
    pub(crate) fn place(&self) -> Result<crate::store::Place, crate::exit::Error> {
        use crate::store::Place;
        let place =
            Place::parse(self.ledger.as_deref(), &self.path).map_err(|e| self.open_error(e))?;
        Ok(match (place, &self.plan, &self.ledger) {
            // `--ledger sqlite:DIR` names the daemon's state directory, which holds a
            // directory of plans' ledgers under `plans/ID/`.
            (Place::Sqlite(dir), Some(id), Some(_)) => Place::Sqlite(dir.join("plans").join(id)),
            (Place::Sqlite(dir), None, _) => {
                let plans = dir.join("plans");
                if !dir.join("kithd.db").exists() && plans.is_dir() {
                    let mut ids: Vec<String> = std::fs::read_dir(&plans)
                        .map(|r| {
                            r.filter_map(|e| e.ok())
                                .map(|e| e.file_name().to_string_lossy().into_owned())
                                .collect()
                        })
                        .unwrap_or_default();
                    ids.sort();
                    return Err(crate::exit::Error::PlanNeeded { dir, plans: ids });
                }
                Place::Sqlite(dir)
            }
            (place, _, _) => place,
        })
    }

    /// Whether the ledger is shared (PostgreSQL): no lock file says whether a daemon runs.
    pub(crate) fn shared(&self) -> bool {
        matches!(self.place(), Ok(crate::store::Place::Postgres(_)))
    }

    /// Opens the ledger read-only (`status`, `history`, `report`).
    pub(crate) fn read_only(&self) -> Result<Box<dyn crate::store::Ledger>, crate::exit::Error> {
        self.place()?
            .open_client(true, self.plan.as_deref())
            .map_err(|e| self.open_error(e))
    }

    /// Opens the ledger for an answer while the daemon runs (`ack`).
    pub(crate) fn client(&self) -> Result<Box<dyn crate::store::Ledger>, crate::exit::Error> {
        self.place()?
            .open_client(false, self.plan.as_deref())
            .map_err(|e| self.open_error(e))
    }

    fn open_error(&self, error: crate::store::StoreError) -> crate::exit::Error {
        crate::exit::Error::LedgerOpen {
            error,
            dir: self.path.clone(),
            chosen_by: self.chosen_by,
        }
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
        cache: None,
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
