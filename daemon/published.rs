//! The next-firings file the daemon publishes in its state directory for `kithd status`:
//! a contract between the two, kept below both. Item, kind and local time only, never
//! message text. Must not read the ledger or the plan.

/// The file's name in the state directory.
pub const NEXT_FILE: &str = "next.json";

/// One upcoming firing as published.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NextFiring {
    pub at: String,
    pub item: String,
    pub kind: String,
}
