//! Schedules: the next firing of an item after an instant, following kithd's time rules
//! (local wall-clock through DST, gap → first valid instant, fold → first occurrence,
//! `every` = elapsed time), and when each recipient's delivery is due after quiet hours.
//! Pure: it must not read the clock, sleep or dispatch.

mod delivery_time;
mod firing;

pub use crate::vocab::Purpose;
pub use delivery_time::{DeliveryTime, delivery_times, item_delivery_times};
pub(crate) use firing::appointment_at;
pub use firing::{Firing, Upcoming, next_after, upcoming, upcoming_of};
