//! Support code of the load benchmark (examples/loadbench.rs): a lean fake Bot API server that
//! is also the load generator, process statistics from /proc, and store seeding.

pub mod procstat;
pub mod seed;
pub mod server;
