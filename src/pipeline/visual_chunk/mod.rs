//! `visual_chunk`: stretches of footage by what is visible. The objects `yolo` found are
//! followed through each shot `cut` found; each stretch with one set of objects becomes a
//! chunk with its description ("2 people and a bicycle"), its objects and their boxes over
//! time, a representative frame (`{file_uuid}.visual_chunk.NNNN.jpg` beside the results),
//! and a 384-d text vector of the description (all-MiniLM-L6-v2, run in Rust) stored in
//! the vector store (`reelbase_visual_chunks`), so `GET /api/v1/search` finds footage by
//! meaning ("cyclist" finds "a bicycle"). The description is also a searchable text span
//! (source `visual`).

pub mod chunks;

use serde_json::{Value, json};

use super::context::{StepContext, StepError};
use super::yolo;
use crate::db::results;
use crate::textvec;
use crate::vectors::{Filter, Point, PointId};
use chunks::{Chunk, Track};

/// The vector store collection of chunk descriptions.
pub const COLLECTION: &str = "reelbase_visual_chunks";
pub const ENCODER: &str = "text-encoder";
/// Width of the saved representative frames, at most.
const FRAME_WIDTH: u32 = 640;

pub async fn run(ctx: &StepContext<'_>) -> Result<Value, StepError> {
    let uuid = &ctx.file.file_uuid;
    let doc = results::document(ctx.pool, uuid, "yolo")
        .await?
        .ok_or_else(|| StepError::new("no yolo result for this file (run yolo first)"))?;
    let (detections, rate) = yolo::from_document(&doc["result"])
        .ok_or_else(|| StepError::new("the yolo result has no detections list or sample rate"))?;
    let mut shots = ctx.shots().await?;
    if shots.is_empty() {
        // No shot list (cut found none, or an older result): the whole file is one shot.
        shots.push((0.0, ctx.file.duration.unwrap_or(f64::INFINITY)));
    }
    let tracks = chunks::follow(&detections, &shots);
    let found = chunks::chunks(&tracks, &shots, rate);
    let descriptions: Vec<String> = found.iter().map(|c| chunks::describe(&c.counts)).collect();
    let vectors = embed(ctx, &descriptions).await?;
    let frames = save_frames(ctx, &found).await;
    store(ctx, &found, &tracks, &descriptions, &vectors, &frames).await?;
    Ok(json!({
        "model": "all-MiniLM-L6-v2 text vectors (384-d) of each chunk's description",
        "collection": COLLECTION,
        "shots": shots.len(),
        "tracks": tracks.len(),
        "chunks": found.iter().enumerate().map(|(i, c)| {
            chunk_json(i, c, &descriptions[i], &tracks, frames[i].as_deref())
        }).collect::<Vec<_>>(),
    }))
}

fn chunk_json(
    index: usize,
    c: &Chunk,
    description: &str,
    tracks: &[Track],
    frame: Option<&str>,
) -> Value {
    json!({
        "chunk": index,
        "shot": c.shot,
        "start_time": c.start,
        "end_time": c.end,
        "description": description,
        "counts": c.counts,
        "frame_time": c.frame_time,
        "frame": frame,
        "objects": objects_json(c, tracks),
    })
}

/// The chunk's objects with their boxes (time, score, x, y, w, h) inside the chunk.
fn objects_json(c: &Chunk, tracks: &[Track]) -> Value {
    Value::Array(
        c.tracks
            .iter()
            .map(|&i| {
                let t = &tracks[i];
                let boxes: Vec<Value> = t
                    .boxes
                    .iter()
                    .filter(|b| b.1 >= c.start - 1e-6 && b.1 < c.end + 1e-6)
                    .map(|b| json!({"time": b.1, "score": b.2, "box": b.3}))
                    .collect();
                json!({"track": i, "label": t.label, "score": t.mean_score(), "boxes": boxes})
            })
            .collect(),
    )
}

/// One unit vector per description (equal descriptions are embedded once).
async fn embed(ctx: &StepContext<'_>, descriptions: &[String]) -> Result<Vec<Vec<f32>>, StepError> {
    if descriptions.is_empty() {
        return Ok(Vec::new());
    }
    let dir = ctx.model(ENCODER)?;
    ctx.tools
        .encoders
        .embed(&dir, descriptions.to_vec())
        .await
        .map_err(|e| StepError::new(format!("the text encoder: {e}")))
}

/// Saves each chunk's representative frame; a frame that cannot be saved is left out (the
/// chunk keeps its time).
async fn save_frames(ctx: &StepContext<'_>, found: &[Chunk]) -> Vec<Option<String>> {
    let Ok(dir) = ctx.output_dir() else {
        return vec![None; found.len()];
    };
    let mut names = Vec::with_capacity(found.len());
    for (i, c) in found.iter().enumerate() {
        let name = format!("{}.visual_chunk.{i:04}.jpg", ctx.file.file_uuid);
        let saved = ctx.still(c.frame_time, &dir.join(&name), FRAME_WIDTH).await;
        names.push(
            saved
                .ok()
                .filter(|_| dir.join(&name).is_file())
                .map(|_| name),
        );
    }
    names
}

async fn store(
    ctx: &StepContext<'_>,
    found: &[Chunk],
    tracks: &[Track],
    descriptions: &[String],
    vectors: &[Vec<f32>],
    frames: &[Option<String>],
) -> Result<(), StepError> {
    let uuid = &ctx.file.file_uuid;
    let store = &ctx.tools.vectors;
    let vector_error =
        |e: crate::vectors::VectorError| StepError::new(format!("the vector store: {e}"));
    store
        .ensure_collection(COLLECTION, textvec::DIMENSION)
        .await
        .map_err(vector_error)?;
    let mut tx = ctx.pool.begin().await?;
    sqlx::query("DELETE FROM visual_chunks WHERE file_uuid = $1")
        .bind(uuid)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM text_spans WHERE file_uuid = $1 AND source = 'visual'")
        .bind(uuid)
        .execute(&mut *tx)
        .await?;
    let mut points = Vec::with_capacity(found.len());
    for (i, c) in found.iter().enumerate() {
        let mean_score = {
            let scores: Vec<f64> = c.tracks.iter().map(|&t| tracks[t].mean_score()).collect();
            scores.iter().sum::<f64>() / scores.len().max(1) as f64
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO visual_chunks (file_uuid, chunk, shot, start_time, end_time, \
             description, counts, objects, frame_time, frame) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(uuid)
        .bind(i as i32)
        .bind(c.shot as i32)
        .bind(c.start)
        .bind(c.end)
        .bind(&descriptions[i])
        .bind(json!(c.counts))
        .bind(objects_json(c, tracks))
        .bind(c.frame_time)
        .bind(frames[i].as_deref())
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO text_spans (file_uuid, source, start_time, end_time, text, confidence) \
             VALUES ($1, 'visual', $2, $3, $4, $5)",
        )
        .bind(uuid)
        .bind(c.start)
        .bind(c.end)
        .bind(&descriptions[i])
        .bind(mean_score)
        .execute(&mut *tx)
        .await?;
        points.push(Point {
            id: PointId::Num(id as u64),
            vector: vectors[i].clone(),
            payload: json!({
                "file_uuid": uuid,
                "chunk": i,
                "start_time": c.start,
                "end_time": c.end,
                "description": descriptions[i],
                "labels": c.counts.keys().collect::<Vec<_>>(),
            }),
        });
    }
    // The store changes before the rows commit: if it fails, the old rows stay and the step
    // can be run again; points whose rows never commit are skipped by search.
    store
        .delete_where(COLLECTION, &Filter::new("file_uuid", uuid.as_str()))
        .await
        .map_err(vector_error)?;
    for batch in points.chunks(256) {
        store
            .upsert(COLLECTION, batch)
            .await
            .map_err(vector_error)?;
    }
    tx.commit().await?;
    Ok(())
}

/// Removes a deleted file's chunk vectors from the vector store.
pub async fn forget(store: &crate::vectors::VectorStore, file_uuid: &str) -> Result<(), String> {
    match store
        .delete_where(COLLECTION, &Filter::new("file_uuid", file_uuid))
        .await
    {
        Ok(()) => Ok(()),
        Err(crate::vectors::VectorError::MissingCollection(_)) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}
