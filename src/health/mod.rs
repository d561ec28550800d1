//! Health: the background monitor, its snapshot, and one check per service.

pub mod checks;
pub mod monitor;
pub mod report;
pub mod resources;
pub mod snapshot;

pub use checks::Limits;
pub use monitor::{HealthMonitor, Probes};
pub use snapshot::{Fault, ServiceHealth, Snapshot, Status};
