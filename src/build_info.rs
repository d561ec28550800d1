//! Facts about this binary, captured by `build.rs` when it was compiled.

/// The crate's semver version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Short git commit hash, or `not-a-git-build` for a debug build made outside a checkout.
pub const GIT_HASH: &str = env!("REELBASE_BUILD_GIT_HASH");

/// RFC 3339 UTC time of the build (honours `SOURCE_DATE_EPOCH`).
pub const BUILD_TIMESTAMP: &str = env!("REELBASE_BUILD_TIMESTAMP");
