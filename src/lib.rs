//! reelbase: a self-hosted video asset intelligence server. This library holds everything;
//! the binary only parses the command line and calls into it, so tests drive the real app.

pub mod api;
pub mod app;
pub mod auth;
pub mod build_info;
pub mod cache;
pub mod cli;
pub mod config;
pub mod db;
pub mod digest;
pub mod health;
pub mod identities;
pub mod ingest;
pub mod integrations;
pub mod pipeline;
pub mod server;
pub mod shutdown;
pub mod startup;
pub mod telemetry;
pub mod textvec;
pub mod vectors;
