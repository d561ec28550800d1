//! The analysis pipeline. For now: the manifests that pin what the scripts and models folders
//! must hold.

pub mod manifest;
pub mod readiness;
