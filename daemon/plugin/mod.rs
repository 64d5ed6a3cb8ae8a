//! Notifier plugins: sandboxed rhai scripts that describe what to send, and the host that
//! performs it. Owns the plugin contract, the sandbox, secret handles and the I/O for a
//! request. It must not know about plans, schedules or dispatch policy (no `plan` types
//! except the channel settings it is handed).

pub mod contract;
mod grant;
pub(crate) mod host;
pub mod inbound;
pub(crate) mod lane;
mod pinned_tls;
mod registry;
mod sandbox;
mod secret;

pub use contract::{Message, Outcome, Request};
pub use grant::Grant;
pub use registry::{Plugin, PluginError, Registry};
pub use secret::{SecretStore, SecretText};
