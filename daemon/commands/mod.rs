//! Subcommands, one file each. A command turns parsed arguments into output and an exit
//! code; it must not install signal handlers or own long-lived tasks (that is `runtime`).

pub mod ack;
pub mod check;
pub mod history;
pub mod preview;
pub mod report;
pub mod send_test;
pub mod status;

use std::path::{Path, PathBuf};

use crate::diagnostic::SourceFile;
use crate::exit;
use crate::plan::{self, Loaded, PluginCatalog};

/// The default plugin directory: the user's config dir when there is a home, else `/etc`.
pub fn default_plugin_dir() -> PathBuf {
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
pub fn default_state_dir() -> PathBuf {
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

/// Why a plan could not be loaded.
#[derive(Debug)]
pub enum LoadFailure {
    /// The file could not be read.
    Unreadable(String),
    /// The plan is invalid; the rendered diagnostics.
    Invalid { rendered: String, errors: usize },
}

impl LoadFailure {
    pub fn exit_code(&self) -> u8 {
        match self {
            LoadFailure::Unreadable(_) => exit::NOINPUT,
            LoadFailure::Invalid { .. } => exit::DATAERR,
        }
    }

    pub fn report(&self) -> String {
        match self {
            LoadFailure::Unreadable(m) => format!("error: {m}\n"),
            LoadFailure::Invalid { rendered, errors } => {
                format!(
                    "{rendered}\nerror: the plan has {errors} problem{}\n",
                    if *errors == 1 { "" } else { "s" }
                )
            }
        }
    }
}

/// Reads and validates a plan file. On success returns the plan and its rendered warnings.
pub fn load_plan(
    path: &Path,
    catalog: &dyn PluginCatalog,
) -> Result<(Loaded, SourceFile), LoadFailure> {
    let text = std::fs::read(path).map_err(|e| {
        LoadFailure::Unreadable(format!("can't read plan `{}`: {e}", path.display()))
    })?;
    let text = String::from_utf8(text).map_err(|e| {
        LoadFailure::Unreadable(format!(
            "plan `{}` is not UTF-8 text (byte {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })?;
    let source = SourceFile::new(path.display().to_string(), text);
    match plan::load(&source, catalog) {
        Ok(loaded) => Ok((loaded, source)),
        Err(diags) => Err(LoadFailure::Invalid {
            errors: diags.iter().filter(|d| d.is_error()).count(),
            rendered: source.render_all(&diags),
        }),
    }
}

/// Loads the plugins and the plan for a command, writing any problem to `err`; on failure
/// returns the exit code.
pub fn load_with_plugins(
    plan: &Path,
    plugin_dir: &Path,
    err: &mut dyn std::io::Write,
) -> Result<(crate::plugin::Registry, Loaded, SourceFile), u8> {
    let registry = crate::plugin::Registry::load(plugin_dir).map_err(|e| {
        let _ = write!(err, "{}", e.render());
        exit::DATAERR
    })?;
    let (loaded, source) = load_plan(plan, &registry).map_err(|f| {
        let _ = write!(err, "{}", f.report());
        f.exit_code()
    })?;
    Ok((registry, loaded, source))
}
