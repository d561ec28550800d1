//! `face`: who appears. Frames sampled twice a second go through `scripts/face.py`
//! (MediaPipe's BlazeFace detector, dlib's 5-point alignment and 128-d face vectors); faces
//! are linked into tracks within each shot (when `cut` has run), each track is matched
//! against the identity library, and tracks nobody knows are clustered so that one stranger
//! gets one label (`UNKNOWN_1`, ...) across the file. Hand-made bindings survive a re-run.

pub mod tracks;

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::context::{StepContext, StepError, Tools, run_script};
use super::runner::Runner;
use super::sampling::frames_json;
use crate::identities::matching;
use tracks::{Detection, SAME_PERSON, Track};

/// Samples per second, and the most samples of one file (a long file is sampled more
/// sparsely).
const RATE: f64 = 2.0;
const MAX_SAMPLES: f64 = 7200.0;
/// Faces the detector is less sure of are dropped: clothing and objects scored up to 0.60 on
/// the test images, real faces 0.75-0.94.
pub const MIN_CONFIDENCE: f64 = 0.7;
pub const DETECTOR: &str = "face-detector";
pub const LANDMARKS: &str = "face-landmarks";
pub const ENCODER: &str = "face-encoder";

/// A face the script found on one picture.
#[derive(Debug, Clone)]
pub struct Found {
    pub frame: usize,
    pub time: f64,
    pub bbox: [f64; 4],
    pub confidence: f64,
    pub vector: Vec<f32>,
}

/// Faces on `pictures` (paths with their times), through `scripts/face.py`.
pub async fn find_faces(
    runner: &Runner,
    tools: &Tools,
    pictures: &[(PathBuf, f64)],
) -> Result<Vec<Found>, StepError> {
    let model = |name: &str| {
        tools
            .scripts
            .model(name, &tools.hashes)
            .map_err(StepError::new)
    };
    let request = json!({
        "frames": frames_json(pictures),
        "detector": model(DETECTOR)?,
        "landmarks": model(LANDMARKS)?,
        "encoder": model(ENCODER)?,
        "min_confidence": MIN_CONFIDENCE,
    });
    let answer = run_script(runner, tools, "face", &request).await?;
    let faces = answer["faces"]
        .as_array()
        .ok_or_else(|| StepError::new("face.py returned no `faces` list"))?;
    faces
        .iter()
        .map(|f| {
            let bbox: Vec<f64> = f["box"]
                .as_array()
                .map(|b| b.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default();
            let vector: Vec<f32> = f["vector"]
                .as_array()
                .map(|v| {
                    v.iter()
                        .filter_map(Value::as_f64)
                        .map(|x| x as f32)
                        .collect()
                })
                .unwrap_or_default();
            match (
                f["frame"].as_u64(),
                f["time"].as_f64(),
                f["confidence"].as_f64(),
            ) {
                (Some(frame), Some(time), Some(confidence))
                    if bbox.len() == 4 && vector.len() == 128 =>
                {
                    Ok(Found {
                        frame: frame as usize,
                        time,
                        bbox: [bbox[0], bbox[1], bbox[2], bbox[3]],
                        confidence,
                        vector,
                    })
                }
                _ => Err(StepError::new(
                    "face.py returned a face without frame, time, box and a 128-d vector",
                )),
            }
        })
        .collect()
}

pub async fn run(ctx: &StepContext<'_>) -> Result<Value, StepError> {
    let duration = ctx.duration()?;
    let rate = RATE.min(MAX_SAMPLES / duration);
    let scratch = ctx.scratch()?;
    let pictures = ctx.sample_jpegs(scratch.path(), rate).await?;
    let found = find_faces(ctx.runner, ctx.tools, &pictures).await?;
    let faces = found.len();
    let detections: Vec<Detection> = found
        .into_iter()
        .map(|f| Detection {
            sample: f.frame,
            time: f.time,
            bbox: f.bbox,
            confidence: f.confidence,
            vector: f.vector,
        })
        .collect();
    let shots = ctx.shots().await?;
    let shot_of = |time: f64| {
        shots
            .iter()
            .position(|(start, end)| time >= *start && time < *end)
    };
    // One missed sample may lie inside a track.
    let tracks = tracks::link(detections, shot_of, 2.5 / rate);
    let known = matching::names(ctx.pool).await?;
    let bound = bound_tracks(ctx).await?;
    let vectors: Vec<Vec<f32>> = tracks.iter().map(Track::vector).collect();
    let clusters = tracks::cluster(&vectors);
    let mut rows = Vec::with_capacity(tracks.len());
    for (i, track) in tracks.iter().enumerate() {
        let carried = bound.iter().find(|b| {
            b.start < track.end() + 1.0
                && b.end > track.start() - 1.0
                && tracks::cosine_distance(&b.vector, &vectors[i]) <= SAME_PERSON
        });
        let (identity, distance, is_bound) = match carried {
            Some(b) => (Some(b.identity_id.clone()), None, true),
            None => match matching::nearest(&ctx.tools.vectors, &known, &vectors[i])
                .await
                .map_err(|e| StepError::new(format!("the vector store: {e}")))?
            {
                Some((who, d)) => (Some(who), Some(d), false),
                None => (None, None, false),
            },
        };
        rows.push(TrackRow {
            index: i,
            track,
            vector: &vectors[i],
            cluster: format!("UNKNOWN_{}", clusters[i] + 1),
            identity,
            distance,
            bound: is_bound,
        });
    }
    store(ctx, &rows).await?;
    Ok(document(&rows, &known, pictures.len(), faces, rate))
}

struct Bound {
    identity_id: String,
    start: f64,
    end: f64,
    vector: Vec<f32>,
}

/// Tracks of this file that a person bound to an identity, from the previous run.
async fn bound_tracks(ctx: &StepContext<'_>) -> Result<Vec<Bound>, StepError> {
    let rows: Vec<(String, f64, f64, Vec<f32>)> = sqlx::query_as(
        "SELECT identity_id, start_time, end_time, vector FROM face_tracks \
         WHERE file_uuid = $1 AND bound AND identity_id IS NOT NULL",
    )
    .bind(&ctx.file.file_uuid)
    .fetch_all(ctx.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(identity_id, start, end, vector)| Bound {
            identity_id,
            start,
            end,
            vector,
        })
        .collect())
}

struct TrackRow<'a> {
    index: usize,
    track: &'a Track,
    vector: &'a [f32],
    cluster: String,
    identity: Option<String>,
    distance: Option<f64>,
    bound: bool,
}

fn boxes(track: &Track) -> Value {
    track
        .detections
        .iter()
        .map(|d| {
            json!({
                "time": d.time,
                "box": d.bbox.map(|v| v.round() as i64),
                "confidence": d.confidence,
            })
        })
        .collect()
}

async fn store(ctx: &StepContext<'_>, rows: &[TrackRow<'_>]) -> Result<(), StepError> {
    let mut tx = ctx.pool.begin().await?;
    sqlx::query("DELETE FROM face_tracks WHERE file_uuid = $1")
        .bind(&ctx.file.file_uuid)
        .execute(&mut *tx)
        .await?;
    for row in rows {
        sqlx::query(
            "INSERT INTO face_tracks (file_uuid, track, shot, start_time, end_time, detections, \
             vector, cluster, identity_id, distance, bound, boxes) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&ctx.file.file_uuid)
        .bind(row.index as i32)
        .bind(row.track.shot.map(|s| s as i32))
        .bind(row.track.start())
        .bind(row.track.end())
        .bind(row.track.detections.len() as i32)
        .bind(row.vector)
        .bind(&row.cluster)
        .bind(&row.identity)
        .bind(row.distance)
        .bind(row.bound)
        .bind(boxes(row.track))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

fn document(
    rows: &[TrackRow<'_>],
    known: &HashMap<String, String>,
    samples: usize,
    faces: usize,
    rate: f64,
) -> Value {
    let name_of = |id: &Option<String>| id.as_ref().and_then(|id| known.get(id).cloned());
    let tracks: Vec<Value> = rows
        .iter()
        .map(|row| {
            let name = name_of(&row.identity);
            json!({
                "track": row.index,
                "shot": row.track.shot,
                "start_time": row.track.start(),
                "end_time": row.track.end(),
                "detections": row.track.detections.len(),
                "identity_id": row.identity,
                "name": name,
                "label": name.clone().unwrap_or_else(|| row.cluster.clone()),
                "distance": row.distance,
                "bound": row.bound,
                "boxes": boxes(row.track),
            })
        })
        .collect();
    let mut people: Vec<(String, Option<String>, usize, f64)> = Vec::new();
    for row in rows {
        let label = name_of(&row.identity).unwrap_or_else(|| row.cluster.clone());
        let seconds = row.track.end() - row.track.start() + 1.0 / rate;
        // One entry per identity (two people may share a name), or per unknown cluster.
        let same = |p: &(String, Option<String>, usize, f64)| match &row.identity {
            Some(id) => p.1.as_ref() == Some(id),
            None => p.1.is_none() && p.0 == label,
        };
        match people.iter_mut().find(|p| same(p)) {
            Some(p) => {
                p.2 += 1;
                p.3 += seconds;
            }
            None => people.push((label, row.identity.clone(), 1, seconds)),
        }
    }
    let people: Vec<Value> = people
        .into_iter()
        .map(|(label, identity_id, tracks, seconds)| {
            json!({"label": label, "identity_id": identity_id, "tracks": tracks, "seconds": seconds})
        })
        .collect();
    json!({
        "samples": samples,
        "rate": rate,
        "faces": faces,
        "threshold": SAME_PERSON,
        "tracks": tracks,
        "people": people,
        "model": "BlazeFace short-range (mediapipe) + dlib ResNet 128-d",
    })
}
