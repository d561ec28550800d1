//! The processors: their dependencies, which ones this build has, and dispatch.

use serde_json::Value;

use super::context::{StepContext, StepError};
use super::{asr, asrx, cut, face, ocr, pose, scene, visual_chunk, yolo};

/// Every processor of the design and what it waits for (DESIGN.md section 5).
pub const DEPENDENCIES: &[(&str, &[&str])] = &[
    ("cut", &[]),
    ("scene", &["cut"]),
    ("asr", &[]),
    ("asrx", &["asr"]),
    ("yolo", &[]),
    ("visual_chunk", &["yolo", "cut"]),
    ("face", &[]),
    ("pose", &[]),
    ("ocr", &[]),
];

/// Orderings that hold only when both are in one job: `scene` uses the transcript when there
/// is one, and `face` the shots, so each waits for the other processor when it runs in the
/// same job (a failed one then skips it, as any dependency does).
const AFTER_WHEN_PLANNED: &[(&str, &str)] = &[("scene", "asr"), ("face", "cut")];

/// The processors this build can run (when their tools are present).
pub const BUILT: &[&str] = &[
    "cut",
    "scene",
    "ocr",
    "asr",
    "asrx",
    "face",
    "yolo",
    "pose",
    "visual_chunk",
];

/// Processors that need a picture: nothing for them to do in an audio file.
const NEED_VIDEO: &[&str] = &[
    "cut",
    "scene",
    "ocr",
    "yolo",
    "visual_chunk",
    "face",
    "pose",
];

pub fn names() -> Vec<&'static str> {
    DEPENDENCIES.iter().map(|(name, _)| *name).collect()
}

/// Of `ready`, those that apply to a file of `file_type` (`video` or `audio`).
pub fn applicable<'a>(ready: &[&'a str], file_type: &str) -> Vec<&'a str> {
    ready
        .iter()
        .copied()
        .filter(|name| file_type == "video" || !NEED_VIDEO.contains(name))
        .collect()
}

pub fn is_known(name: &str) -> bool {
    DEPENDENCIES.iter().any(|(n, _)| *n == name)
}

/// Processors that depend, directly or not, on any of `names` (not `names` themselves).
pub fn dependents_of(names: &[&str]) -> Vec<&'static str> {
    let mut found: Vec<&'static str> = Vec::new();
    let mut changed = true;
    while changed {
        changed = false;
        for (name, deps) in DEPENDENCIES {
            let needs = deps.iter().any(|d| names.contains(d) || found.contains(d));
            if needs && !found.contains(name) && !names.contains(name) {
                found.push(name);
                changed = true;
            }
        }
    }
    found
}

pub fn dependencies(name: &str) -> &'static [&'static str] {
    DEPENDENCIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, deps)| *deps)
        .unwrap_or(&[])
}

/// The requested processors (unknown names are ignored) plus everything they depend on, each
/// with its dependencies, dependencies first.
pub fn plan(requested: &[&str]) -> Vec<(&'static str, Vec<&'static str>)> {
    let mut wanted: Vec<&'static str> = Vec::new();
    let mut stack: Vec<&'static str> = DEPENDENCIES
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| requested.contains(name))
        .collect();
    while let Some(name) = stack.pop() {
        if !wanted.contains(&name) {
            wanted.push(name);
            stack.extend(dependencies(name));
        }
    }
    DEPENDENCIES
        .iter()
        .filter(|(name, _)| wanted.contains(name))
        .map(|(name, deps)| {
            let mut deps = deps.to_vec();
            deps.extend(
                AFTER_WHEN_PLANNED
                    .iter()
                    .filter(|(later, earlier)| later == name && wanted.contains(earlier))
                    .map(|(_, earlier)| *earlier),
            );
            (*name, deps)
        })
        .collect()
}

/// Runs one processor on one file and returns its result document.
pub async fn run(name: &str, ctx: &StepContext<'_>) -> Result<Value, StepError> {
    match name {
        "cut" => cut::run(ctx).await,
        "scene" => scene::run(ctx).await,
        "ocr" => ocr::run(ctx).await,
        "asr" => asr::run(ctx).await,
        "asrx" => asrx::run(ctx).await,
        "face" => face::run(ctx).await,
        "yolo" => yolo::run(ctx).await,
        "pose" => pose::run(ctx).await,
        "visual_chunk" => visual_chunk::run(ctx).await,
        other => Err(StepError::new(format!(
            "the {other} processor is not built into this reelbase"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_bring_their_dependencies_first() {
        let plan = plan(&["visual_chunk", "scene"]);
        let names: Vec<&str> = plan.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["cut", "scene", "yolo", "visual_chunk"]);
        assert_eq!(plan[3].1, ["yolo", "cut"]);
    }

    #[test]
    fn dependents_follow_the_chain() {
        assert_eq!(dependents_of(&["asr"]), ["asrx"]);
        let mut of_cut = dependents_of(&["cut"]);
        of_cut.sort_unstable();
        assert_eq!(of_cut, ["scene", "visual_chunk"]);
        assert!(dependents_of(&["ocr"]).is_empty());
    }

    #[test]
    fn scene_waits_for_speech_only_when_it_is_in_the_job() {
        let plan = plan(&["scene", "asr"]);
        let scene = plan.iter().find(|(n, _)| *n == "scene").unwrap();
        assert_eq!(scene.1, ["cut", "asr"]);
        let alone = super::plan(&["scene"]);
        assert_eq!(alone[1].1, ["cut"]);
    }
}
