//! Notifier plugins: sandboxed rhai scripts that describe what to send, and the host that
//! performs it. Owns the plugin contract, the sandbox, secret handles and the I/O for a
//! request. It must not know about plans, schedules or dispatch policy (no `plan` types
//! except the channel settings it is handed).

pub mod contract;
pub mod grant;
pub mod host;
pub mod pinned_tls;
pub mod registry;
pub mod sandbox;
pub mod secret;

pub use contract::{Message, Outcome, Request};
pub use grant::Grant;
pub use registry::{Plugin, PluginError, Registry};
pub use secret::{SecretStore, SecretText};
