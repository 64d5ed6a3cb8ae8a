//! kithd: keeps a person in mental-health recovery close to their support network.
//!
//! `plan` (parse + validate, pure) → `schedule` (next firings, DST-correct) → `runtime`
//! (timer, signals, sd_notify) → `dispatch` (recipients, channels) → `plugin` (sandboxed rhai
//! describes, the host performs). `load` is the one load step every command uses; `health`
//! judges healthy or degraded. `commands` holds one file per subcommand.

#![warn(unreachable_pub)]

pub mod answer;
pub mod cli;
pub mod clock;
pub(crate) mod commands;
pub mod diagnostic;
pub mod dispatch;
pub(crate) mod exit;
pub(crate) mod health;
pub mod load;
pub mod plan;
pub mod plan_cache;
pub(crate) mod plan_dir;
pub mod plugin;
pub(crate) mod published;
pub mod runtime;
pub mod schedule;
pub(crate) mod store;
pub(crate) mod vocab;
