//! `pose`: body keypoints. Frames sampled `REELBASE_POSE_FPS` times a second go through
//! `scripts/pose.py` (MediaPipe BlazePose, bundled with mediapipe 0.10.21): per person per
//! frame, 33 keypoints with visibility and presence scores. Rows in `poses`.

use serde_json::{Value, json};

use super::context::{StepContext, StepError};
use super::sampling::frames_json;

/// People the detector is less sure of are dropped: on the test pictures people scored
/// 0.69-0.72 and a cup of coffee 0.53.
pub const MIN_CONFIDENCE: f64 = 0.6;
/// The most people looked for on one frame.
const MAX_PEOPLE: u32 = 6;
/// The most samples of one file: a long file is sampled more sparsely.
const MAX_SAMPLES: f64 = 20_000.0;
pub const DETECTOR: &str = "pose-detector";
pub const LANDMARKS: &str = "pose-landmarks";

/// One person on one sampled frame.
#[derive(Debug, Clone)]
struct Pose {
    sample: usize,
    time: f64,
    person: i32,
    score: f64,
    bbox: [f64; 4],
    keypoints: Value,
}

pub async fn run(ctx: &StepContext<'_>) -> Result<Value, StepError> {
    let duration = ctx.duration()?;
    let rate = ctx.tools.pose_fps.min(MAX_SAMPLES / duration);
    let (detector, landmarks) = (ctx.model(DETECTOR)?, ctx.model(LANDMARKS)?);
    let scratch = ctx.scratch()?;
    let pictures = ctx.sample_jpegs(scratch.path(), rate).await?;
    let request = json!({
        "frames": frames_json(&pictures),
        "detector": detector,
        "landmarks": landmarks,
        "max_people": MAX_PEOPLE,
        "min_confidence": MIN_CONFIDENCE,
    });
    let answer = ctx.run_script("pose", &request).await?;
    let poses = parse(&answer)?;
    store(ctx, &poses).await?;
    let most = most_at_once(&poses);
    Ok(json!({
        "model": "BlazePose (mediapipe 0.10.21): person detector and full landmark model",
        "sample_rate": rate,
        "frames": pictures.len(),
        "width": answer["width"],
        "height": answer["height"],
        "min_confidence": MIN_CONFIDENCE,
        "people_most_at_once": most,
        "keypoint_names": answer["keypoint_names"],
        "poses": poses.iter().map(|p| json!({
            "time": p.time,
            "person": p.person,
            "score": p.score,
            "box": p.bbox,
            "keypoints": p.keypoints,
        })).collect::<Vec<_>>(),
    }))
}

fn most_at_once(poses: &[Pose]) -> usize {
    let mut counts = std::collections::HashMap::<usize, usize>::new();
    for p in poses {
        *counts.entry(p.sample).or_default() += 1;
    }
    counts.values().copied().max().unwrap_or(0)
}

fn parse(answer: &Value) -> Result<Vec<Pose>, StepError> {
    let list = answer["poses"]
        .as_array()
        .ok_or_else(|| StepError::new("pose.py returned no `poses` list"))?;
    list.iter()
        .map(|p| {
            let bbox: Vec<f64> = p["box"]
                .as_array()
                .map(|b| b.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default();
            let keypoints_ok = p["keypoints"].as_array().is_some_and(|k| {
                !k.is_empty()
                    && k.iter()
                        .all(|point| point.as_array().is_some_and(|v| v.len() == 4))
            });
            match (
                p["frame"].as_u64(),
                p["time"].as_f64(),
                p["person"].as_u64(),
                p["score"].as_f64(),
            ) {
                (Some(sample), Some(time), Some(person), Some(score))
                    if bbox.len() == 4 && keypoints_ok =>
                {
                    Ok(Pose {
                        sample: sample as usize,
                        time,
                        person: person as i32,
                        score,
                        bbox: [bbox[0], bbox[1], bbox[2], bbox[3]],
                        keypoints: p["keypoints"].clone(),
                    })
                }
                _ => Err(StepError::new(
                    "pose.py returned a pose without frame, time, person, score, box and \
                     keypoints",
                )),
            }
        })
        .collect()
}

async fn store(ctx: &StepContext<'_>, poses: &[Pose]) -> Result<(), StepError> {
    let mut tx = ctx.pool.begin().await?;
    sqlx::query("DELETE FROM poses WHERE file_uuid = $1")
        .bind(&ctx.file.file_uuid)
        .execute(&mut *tx)
        .await?;
    for batch in poses.chunks(500) {
        let samples: Vec<i32> = batch.iter().map(|p| p.sample as i32).collect();
        let times: Vec<f64> = batch.iter().map(|p| p.time).collect();
        let people: Vec<i32> = batch.iter().map(|p| p.person).collect();
        let scores: Vec<f32> = batch.iter().map(|p| p.score as f32).collect();
        let boxes: Vec<String> = batch
            .iter()
            .map(|p| {
                format!(
                    "{{{},{},{},{}}}",
                    p.bbox[0], p.bbox[1], p.bbox[2], p.bbox[3]
                )
            })
            .collect();
        let keypoints: Vec<Value> = batch.iter().map(|p| p.keypoints.clone()).collect();
        sqlx::query(
            "INSERT INTO poses (file_uuid, sample, time, person, score, box, keypoints) \
             SELECT $1, s, t, p, sc, b::real[], k \
             FROM unnest($2::int[], $3::float8[], $4::int[], $5::real[], $6::text[], \
                         $7::jsonb[]) AS x(s, t, p, sc, b, k)",
        )
        .bind(&ctx.file.file_uuid)
        .bind(&samples)
        .bind(&times)
        .bind(&people)
        .bind(&scores)
        .bind(&boxes)
        .bind(&keypoints)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
