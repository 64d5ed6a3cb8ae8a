//! Dispatch: turns a firing into deliveries (one per recipient), renders the text, picks
//! the channel from the recipient's `reach` list and hands the message to the plugin host.
//! It must not own timers or signals (that is `runtime`) nor perform I/O itself.

pub mod channel;
pub(crate) mod fire;
pub(crate) mod render;
pub(crate) mod retry;
pub(crate) mod worker;

pub use channel::{ChannelSet, PreparedChannel};
