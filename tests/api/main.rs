//! Integration tests: the real application on 127.0.0.1:0 against the real PostgreSQL and
//! Redis. Failures are staged on copies the tests start themselves (a private redis-server, a
//! proxy in front of PostgreSQL, a silent listener), never on the shared services.

mod helpers;

mod auth_access;
mod auth_login;
mod binary;
mod cli;
mod dependencies;
mod detailed_health;
mod errors;
mod faces;
mod files;
mod identities;
mod integrations;
mod large_files;
mod metrics_and_cli;
mod migrations;
mod pipeline;
mod public_health;
mod sftpgo_stats;
mod shutdown;
mod speech;
mod uploads;
mod vectors;
mod visual;
mod workers;
