//! Cluster mode, driven through the public API over a simulated Redis bus.
//!
//! `sim_bus` is the bus (with the semantics the bridge gives the core) and `Cluster`, a driver
//! of several nodes whose clients are simulated; `behaviour` states one behaviour per test;
//! `model` runs random interleavings of clients, bus deliveries, clock, outages and a node's
//! death, and checks the invariants after every step.
//!
//! `SWITCHBOARD_MODEL_CASES` sets the model's case count (200 by default).

#[path = "cluster/behaviour.rs"]
mod behaviour;
#[path = "cluster/model.rs"]
mod model;
#[path = "cluster/sim_bus.rs"]
mod sim_bus;
