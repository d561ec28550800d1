//! Test helpers: start the app, make a fresh database, stage failing dependencies.

pub mod app;
mod database;
pub mod faces;
pub mod media;
pub mod objects;
pub mod process;
mod proxy;
mod redis_server;
pub mod speech;
pub mod stubs;

pub use app::{TestApp, spawn_app, spawn_app_with, spawn_app_with_key};
pub use database::TestDb;
pub use proxy::{PgProxy, ProxyMode, SilentListener};
pub use redis_server::RedisServer;

use std::net::TcpListener;

/// A port that was free a moment ago (the OS picked it), for servers that need a port number
/// before they start.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}
