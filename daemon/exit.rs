//! Process exit codes (sysexits-style), in one place, so systemd's
//! `RestartPreventExitStatus=` can stop a restart loop on a bad plan.

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
