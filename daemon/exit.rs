//! Process exit codes (sysexits-style) and the typed failure that chooses one, in one place,
//! so that systemd's `RestartPreventExitStatus=` can stop a restart loop on a bad plan and
//! every command fails the same way.

use std::fmt::Write as _;

use crate::load::Failure;
use crate::store::StoreError;
use crate::vocab::Kind;

/// Success.
pub(crate) const OK: u8 = 0;
/// Generic failure (e.g. a test message that was not accepted).
pub(crate) const FAILURE: u8 = 1;
/// Command-line usage error.
pub(crate) const USAGE: u8 = 64;
/// The input data was invalid (a plan that fails `check`).
pub(crate) const DATAERR: u8 = 65;
/// An input file could not be read.
pub(crate) const NOINPUT: u8 = 66;
/// A service was unavailable (gateway unreachable, database locked).
pub(crate) const UNAVAILABLE: u8 = 69;
/// An internal software error.
pub(crate) const SOFTWARE: u8 = 70;
/// An input/output error (the ledger failed while running).
pub(crate) const IOERR: u8 = 74;
/// Can't create or write an output file (state directory).
pub(crate) const CANTCREAT: u8 = 73;
/// Configuration error: the daemon can't start with this plan.
pub(crate) const CONFIG: u8 = 78;

/// Why a command (or the daemon's start) failed: one value per failure, carrying its
/// data, with its exit code (`code`) and its text (`render`) chosen here and nowhere else.
/// Plan problems keep their own rendering (diagnostics with carets).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The plan can't be loaded.
    #[error("{}", .0.render().trim_end())]
    Plan(Failure),
    /// The daemon's plan can't be loaded: a configuration error, so that systemd doesn't
    /// restart it in a loop (`RestartPreventExitStatus=78`).
    #[error("the plan can't be loaded")]
    NotStarting(Failure),
    /// A command can't open the ledger it reads (no daemon has run there yet, …).
    #[error("{error}{}", state_hint(error, dir, chosen_by))]
    LedgerOpen {
        error: StoreError,
        dir: std::path::PathBuf,
        chosen_by: &'static str,
    },
    /// The daemon can't open or lock its state directory and ledger.
    #[error("{0}")]
    StateDir(StoreError),
    /// The ledger failed while in use.
    #[error("{0}")]
    Ledger(#[from] StoreError),
    /// A state directory of a daemon that runs a directory of plans, and no `--plan`.
    #[error("`{}` holds the ledgers of a daemon that runs a directory of plans: give `--plan ID` (one of: {})", dir.display(), plans.join(", "))]
    PlanNeeded {
        dir: std::path::PathBuf,
        plans: Vec<String>,
    },
    /// An option's value can't be read.
    #[error("can't read `{}{value}`: give {expected}", if option.is_empty() { String::new() } else { format!("--{option} ") })]
    BadOption {
        option: &'static str,
        value: String,
        expected: &'static str,
    },
    /// `ack`: the item has nothing open.
    #[error("nothing of `{0}` is waiting for an answer")]
    NothingOpen(String),
    /// `ack`: an item that never fired here (a typo, or the wrong state directory).
    #[error("no item `{item}` has ever fired here{}", .did_you_mean.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    UnknownItem {
        item: String,
        did_you_mean: Option<String>,
    },
    /// `snooze`: this firing's snoozes already add up to its `max_snooze`.
    #[error("`{0}` has been snoozed as long as its `max_snooze` allows; it stays as it is")]
    SnoozeCap(String),
    /// `ack`: answered in the meantime.
    #[error("`{0}` was answered already")]
    AlreadyAnswered(String),
    /// `ack`: a value that doesn't answer this kind of item.
    #[error("`{value}` doesn't answer a {kind}: give {}", expected_answer(*.kind))]
    WrongAnswer { value: String, kind: Kind },
    /// `send-test`: a channel the plan doesn't have.
    #[error("no channel `{channel}` in the plan (channels: {})", .known.join(", "))]
    NoChannel { channel: String, known: Vec<String> },
    /// `send-test`: a recipient the plan doesn't have.
    #[error("no recipient `{0}`: use `self` or a contact id")]
    NoRecipient(String),
    /// `send-test`: a contact without consent.
    #[error(
        "contact `{0}` has not consented; kithd never messages a contact without `consent` (or, to ask them, `invite = true` in [contacts.{0}] and `kithd invite`)"
    )]
    NoConsent(String),
    /// `send-test`: the recipient lacks the address the channel needs.
    #[error("`{recipient}` has no `{field}` address for channel `{channel}`")]
    NoAddress {
        recipient: String,
        field: String,
        channel: String,
    },
    /// `init`: answers that don't make a plan.
    #[error("{0}")]
    Init(String),
    /// `init`: a plan is there already.
    #[error("`{}` exists; kithd never overwrites a plan (give --force to replace it)", .0.display())]
    PlanExists(std::path::PathBuf),
    /// A file can't be written.
    #[error("can't write `{}`: {source}", .path.display())]
    CantWrite {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// The answer server can't listen.
    #[error("{0}")]
    AnswerServer(String),
    /// `ledger copy`: the shared database holds a ledger already.
    #[error("`{0}` already holds a ledger; copy only into an empty database")]
    NotEmpty(String),
    /// Something else holds what the command needs (a daemon on the ledger to copy).
    #[error("{0}")]
    Busy(String),
    /// `send-test --inbound`: the channel or the capture can't be replayed.
    #[error("{0}")]
    Replay(String),
    /// The process can't set itself up (async runtime, signal handlers, a thread).
    #[error("{what}: {source}")]
    Setup {
        what: &'static str,
        source: std::io::Error,
    },
}

/// Where a command looked for a ledger that isn't there, and how to point it at `run`'s.
fn state_hint(error: &StoreError, dir: &std::path::Path, chosen_by: &str) -> String {
    match error {
        StoreError::Open { .. } => format!(
            "\n  kithd looked in {} ({chosen_by}); give the state directory `kithd run` uses with --state-dir, or set KITHD_STATE_DIR",
            dir.display()
        ),
        _ => String::new(),
    }
}

fn expected_answer(kind: Kind) -> &'static str {
    match kind {
        Kind::Medication => "`taken` or `skipped`",
        _ => "`ok` or a mood from 1 to 5",
    }
}

impl Error {
    /// The process exit code for this failure.
    pub(crate) fn code(&self) -> u8 {
        match self {
            Error::Plan(Failure::Unreadable(_)) => NOINPUT,
            Error::Plan(Failure::Plugins(_) | Failure::Invalid { .. }) => DATAERR,
            Error::NotStarting(_) => CONFIG,
            Error::LedgerOpen { .. } => NOINPUT,
            Error::StateDir(e) => match e {
                StoreError::Locked(_) => UNAVAILABLE,
                StoreError::StateDir { .. }
                | StoreError::Insecure { .. }
                | StoreError::ReadOnly(_) => CANTCREAT,
                _ => IOERR,
            },
            Error::Ledger(_) => IOERR,
            Error::BadOption { .. } | Error::WrongAnswer { .. } | Error::PlanNeeded { .. } => USAGE,
            Error::NothingOpen(_)
            | Error::AlreadyAnswered(_)
            | Error::UnknownItem { .. }
            | Error::SnoozeCap(_) => DATAERR,
            Error::NoChannel { .. }
            | Error::NoRecipient(_)
            | Error::NoConsent(_)
            | Error::NoAddress { .. }
            | Error::Replay(_) => USAGE,
            Error::Init(_) => USAGE,
            Error::PlanExists(_) | Error::CantWrite { .. } | Error::NotEmpty(_) => CANTCREAT,
            Error::AnswerServer(_) | Error::Busy(_) => UNAVAILABLE,
            Error::Setup { .. } => SOFTWARE,
        }
    }

    /// The text for a terminal: `error: …` (a plan's problems in their long form).
    pub(crate) fn render(&self) -> String {
        match self {
            Error::Plan(f) => f.render(),
            other => {
                let mut s = String::new();
                let _ = writeln!(s, "error: {other}");
                s
            }
        }
    }
}

/// A command's result: its exit code (0, or a code that is the answer, such as
/// `status --check`'s monitoring codes), or why it failed.
pub(crate) type Outcome = Result<u8, Error>;

/// Writes a failure to `err` and turns the outcome into the process's exit code.
pub(crate) fn finish(outcome: Outcome, err: &mut dyn std::io::Write) -> u8 {
    match outcome {
        Ok(code) => code,
        Err(e) => {
            let _ = err.write_all(e.render().as_bytes());
            e.code()
        }
    }
}
