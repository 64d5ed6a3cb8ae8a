//! Schedules: the next firing of an item after an instant, following kithd's time rules
//! (local wall-clock through DST, gap → first valid instant, fold → first occurrence,
//! `every` = elapsed time), and when each recipient's delivery is due after quiet hours.
//! Pure: it must not read the clock, sleep or dispatch.

mod firing;
mod keys;
mod quiet;

pub use firing::{Firing, Purpose, Upcoming, next_after, upcoming, upcoming_of};
pub use keys::{all_clear_id, delivery_id};
pub use quiet::{DeliveryTime, delivery_times, item_delivery_times};
