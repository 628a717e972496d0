//! Cluster mode: several nodes share one set of users over a bus (Redis, through the bridge).
//! The rules live here; the bytes on the wire and the reconnects are the bridge's.

mod bus;

pub use bus::{BusAction, BusEvent, Channel, Subscription};
