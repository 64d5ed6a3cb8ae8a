//! A directory of plans, one person each: its `*.toml` files in name order, each loaded on
//! its own (one bad plan never hides the others), each needing `[person] id`, unique in the
//! directory (the ledger keys everything by it, so renaming a file changes nothing), and
//! agreeing on `[server]` (one answer server serves them all). Each plan's secrets are its
//! own first (`ID/NAME` in the credentials directory). Used by `check`, `preview` and
//! `run`; must not run or send anything.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::diagnostic::Diagnostic;
use crate::exit;
use crate::load::{Failure, Loaded, Secrets};

/// One plan of the directory: its file, and the plan or why it can't be used.
pub(crate) struct DirPlan {
    pub path: PathBuf,
    pub loaded: Result<Loaded, exit::Error>,
}

/// The `*.toml` files directly in `dir`, sorted.
fn plan_files(dir: &Path) -> Result<Vec<PathBuf>, exit::Error> {
    let unreadable = |e: std::io::Error| {
        exit::Error::Plan(Failure::Unreadable(format!(
            "can't read the plan directory `{}`: {e}",
            dir.display()
        )))
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(unreadable)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(exit::Error::Plan(Failure::Unreadable(format!(
            "`{}` holds no plans (`*.toml` files)",
            dir.display()
        ))));
    }
    Ok(files)
}

/// Loads every plan in `dir` (secrets checked unless `offline`), warnings to `err`.
pub(crate) fn load_dir(
    dir: &Path,
    plugin_dir: &Path,
    offline: bool,
    show_warnings: bool,
    now: chrono::DateTime<chrono::Utc>,
    err: &mut dyn std::io::Write,
) -> Result<Vec<DirPlan>, exit::Error> {
    let mut plans = Vec::new();
    let mut ids: BTreeMap<String, PathBuf> = BTreeMap::new();
    // The person's phone picks the plan an SMS reply answers: one plan per number.
    let mut phones: BTreeMap<String, PathBuf> = BTreeMap::new();
    // The first plan's `[server]`: where the one answer server listens, and its URL.
    let mut first_server: Option<(std::net::SocketAddr, String, PathBuf)> = None;
    for path in plan_files(dir)? {
        let secrets = Secrets::InDirectory { check: !offline };
        let opts = crate::load::Options {
            plan: &path,
            plugin_dir,
            secrets,
            now,
            cache: None,
        };
        let loaded = crate::load::load(&opts).map_err(exit::Error::Plan).and_then(|l| {
            if show_warnings && !l.warnings.is_empty() {
                let _ = writeln!(err, "{}", l.source.render_all(&l.warnings));
            }
            let plan = &l.snapshot.plan;
            let id = plan.id.clone().unwrap_or_default();
            let phone = plan
                .person
                .addresses
                .get("phone")
                .map(|p| p.chars().filter(char::is_ascii_digit).collect::<String>())
                .filter(|p| !p.is_empty());
            let server = plan.server.as_ref().map(|s| (s.span.clone(), s.listen, s.public_url.clone()));
            let differs = match (&server, &first_server) {
                (Some((_, listen, url)), Some((l, u, _))) => (listen, url) != (l, u),
                _ => false,
            };
            let problem = match (ids.get(&id), phone.as_ref().and_then(|p| phones.get(p))) {
                _ if differs => {
                    let (l, u, other) = first_server.as_ref().expect("differs from it");
                    let span = server.as_ref().map(|s| s.0.clone()).unwrap_or_default();
                    Some(
                        Diagnostic::error(span, format!("`[server]` differs from `{}`'s", other.display()))
                            .with_hint(format!("one answer server serves every plan in the directory: give each plan with `[server]` listen = \"{l}\" and public_url = \"{u}\"")),
                    )
                }
                (Some(other), _) => Some(
                    Diagnostic::error(
                        plan.person.span.clone(),
                        format!("plan id `{id}` is taken by `{}`", other.display()),
                    )
                    .with_hint("each plan in the directory needs an id of its own"),
                ),
                (None, Some(other)) => Some(
                    Diagnostic::error(
                        plan.person.span.clone(),
                        format!("the person's `phone` is also the person's in `{}`", other.display()),
                    )
                    .with_hint("an SMS reply is matched to its plan by the sender's number, so each person's number belongs to one plan (contacts may appear in many)"),
                ),
                (None, None) => None,
            };
            if let Some(d) = problem {
                return Err(exit::Error::Plan(Failure::Invalid {
                    source: l.source,
                    diagnostics: vec![d],
                }));
            }
            ids.insert(id, path.clone());
            if let (Some((_, listen, url)), None) = (server, &first_server) {
                first_server = Some((listen, url, path.clone()));
            }
            if let Some(p) = phone {
                phones.insert(p, path.clone());
            }
            Ok(l)
        });
        plans.push(DirPlan { path, loaded });
    }
    Ok(plans)
}

/// Prints the problems of the plans that can't be used to `err`; the exit code: 0, or 65
/// when any plan has problems.
pub(crate) fn report_invalid(plans: &[DirPlan], err: &mut dyn std::io::Write) -> u8 {
    let bad: Vec<&DirPlan> = plans.iter().filter(|p| p.loaded.is_err()).collect();
    for p in &bad {
        if let Err(e) = &p.loaded {
            let _ = write!(err, "{}", e.render());
        }
    }
    if bad.is_empty() {
        return exit::OK;
    }
    let _ = writeln!(
        err,
        "error: {} of {} plans have problems: {}",
        bad.len(),
        plans.len(),
        bad.iter()
            .map(|p| p.path.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    exit::DATAERR
}
