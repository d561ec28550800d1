//! `asrx`: who spoke when. For each `asr` segment, `scripts/asrx.py` makes a speaker vector
//! with resemblyzer's voice encoder (its 17 MB model from PyPI `resemblyzer`, run with numpy:
//! no torch) and clusters the vectors into speakers (`SPEAKER_1`, ...). The speakers are
//! attached to the transcript's segments and rows, and neighbouring segments of one speaker
//! become turns.

use serde_json::{Value, json};

use super::asr;
use super::context::{StepContext, StepError};
use crate::db::results;

pub const MODEL: &str = "resemblyzer-encoder";

pub async fn run(ctx: &StepContext<'_>) -> Result<Value, StepError> {
    let transcript = results::document(ctx.pool, &ctx.file.file_uuid, "asr")
        .await?
        .ok_or_else(|| StepError::new("asr has no result for this file"))?;
    let segments = asr::parse(&transcript["result"])?;
    if segments.is_empty() {
        store(ctx, &[]).await?;
        return Ok(json!({"speakers": [], "segments": [], "turns": []}));
    }
    let model = ctx.model(MODEL)?;
    let scratch = ctx.scratch()?;
    let audio = scratch.path().join("audio.wav");
    ctx.extract_audio(&audio).await?;
    let spans: Vec<Value> = segments
        .iter()
        .map(|s| json!({"start": s.start, "end": s.end}))
        .collect();
    let request = json!({"audio": audio, "model": model, "segments": spans});
    let found = ctx.run_script("asrx", &request).await?;
    let labels = labels(&found, segments.len())?;
    store(ctx, &labels).await?;

    let attached: Vec<Value> = segments
        .iter()
        .zip(&labels)
        .zip(found["segments"].as_array().into_iter().flatten())
        .map(|((segment, speaker), judged)| {
            json!({
                "start": segment.start,
                "end": segment.end,
                "text": segment.text,
                "speaker": speaker,
                "similarity": judged["similarity"],
            })
        })
        .collect();
    let spans: Vec<(f64, f64, Option<&str>)> = segments
        .iter()
        .zip(&labels)
        .map(|(s, l)| (s.start, s.end, l.as_deref()))
        .collect();
    Ok(json!({
        "speakers": found["speakers"],
        "segments": attached,
        "turns": turns(&spans),
        "model": found["model"],
        "threshold": found["threshold"],
    }))
}

/// One label (or none) per transcript segment, in order; anything else is a failure.
fn labels(found: &Value, expected: usize) -> Result<Vec<Option<String>>, StepError> {
    let list = found["segments"]
        .as_array()
        .filter(|l| l.len() == expected)
        .ok_or_else(|| {
            StepError::new(format!(
                "asrx.py did not return one entry for each of the {expected} segments"
            ))
        })?;
    Ok(list
        .iter()
        .map(|s| s["speaker"].as_str().map(str::to_owned))
        .collect())
}

/// Neighbouring segments of one speaker merged into turns.
fn turns(segments: &[(f64, f64, Option<&str>)]) -> Vec<Value> {
    let mut turns: Vec<(f64, f64, &str, usize)> = Vec::new();
    for (start, end, speaker) in segments {
        let Some(speaker) = speaker else { continue };
        match turns.last_mut() {
            Some(last) if last.2 == *speaker => {
                last.1 = last.1.max(*end);
                last.3 += 1;
            }
            _ => turns.push((*start, *end, speaker, 1)),
        }
    }
    turns
        .into_iter()
        .map(|(start, end, speaker, count)| {
            json!({"speaker": speaker, "start": start, "end": end, "segments": count})
        })
        .collect()
}

/// The speakers onto the transcript's rows, matched by order of time.
async fn store(ctx: &StepContext<'_>, labels: &[Option<String>]) -> Result<(), StepError> {
    let mut tx = ctx.pool.begin().await?;
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM text_spans WHERE file_uuid = $1 AND source = 'asr' \
         ORDER BY start_time, id",
    )
    .bind(&ctx.file.file_uuid)
    .fetch_all(&mut *tx)
    .await?;
    if ids.len() != labels.len() {
        return Err(StepError::new(
            "the transcript rows changed while speakers were found; run asr and asrx again",
        ));
    }
    for (id, speaker) in ids.iter().zip(labels) {
        sqlx::query("UPDATE text_spans SET speaker = $1 WHERE id = $2")
            .bind(speaker)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_merge_neighbouring_segments_of_one_speaker() {
        let turns = turns(&[
            (0.0, 1.0, Some("SPEAKER_1")),
            (1.2, 2.0, Some("SPEAKER_1")),
            (2.5, 3.0, None),
            (3.1, 4.0, Some("SPEAKER_2")),
            (4.2, 5.0, Some("SPEAKER_1")),
        ]);
        let summary: Vec<(String, f64, f64)> = turns
            .iter()
            .map(|t| {
                let speaker = t["speaker"].as_str().unwrap().to_owned();
                (
                    speaker,
                    t["start"].as_f64().unwrap(),
                    t["end"].as_f64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("SPEAKER_1".to_owned(), 0.0, 2.0),
                ("SPEAKER_2".to_owned(), 3.1, 4.0),
                ("SPEAKER_1".to_owned(), 4.2, 5.0),
            ]
        );
    }
}
