//! The analysis pipeline: the queue's workers, the process runner, the processors, and the
//! manifests and readiness checks that say what can run here.

pub mod asr;
pub mod asrx;
pub mod context;
pub mod cut;
pub mod face;
pub mod manifest;
pub mod ocr;
pub mod pose;
pub mod python;
pub mod readiness;
pub mod registry;
pub mod runner;
pub mod sampling;
pub mod scene;
pub mod visual_chunk;
pub mod worker;
pub mod yolo;
