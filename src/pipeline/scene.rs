//! `scene`: neighbouring shots grouped into scenes. Two shots belong together when their
//! keyframes look alike (colour histograms) or when speech runs across the cut between them
//! (once `asr` has a transcript). A fade through black always starts a new scene.

use serde_json::{Value, json};

use super::context::{StepContext, StepError};
use crate::db::results;

/// Keyframes are compared at this size.
const WIDTH: usize = 32;
const HEIGHT: usize = 18;
/// Levels per colour channel in the histogram (4 x 4 x 4 bins).
const LEVELS: usize = 4;
/// Histogram intersection (0..1) from which two shots look alike.
const ALIKE: f32 = 0.7;

#[derive(Debug, Clone)]
pub struct ShotFacts {
    pub start_time: f64,
    pub end_time: f64,
    pub transition: String,
    pub histogram: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    pub first_shot: usize,
    pub last_shot: usize,
}

pub async fn run(ctx: &StepContext<'_>) -> Result<Value, StepError> {
    let cut = results::document(ctx.pool, &ctx.file.file_uuid, "cut").await?;
    let cut = cut.ok_or_else(|| StepError::new("no cut result to group into scenes"))?;
    let shots = cut["result"]["shots"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if shots.is_empty() {
        return Err(StepError::new("the cut result has no shots"));
    }
    let histograms = tokio::time::timeout(ctx.timeout(), keyframe_histograms(ctx, &shots))
        .await
        .map_err(|_| StepError::new("decoding the keyframes did not finish in time"))??;
    let facts: Vec<ShotFacts> = shots
        .iter()
        .zip(histograms)
        .map(|(shot, histogram)| ShotFacts {
            start_time: shot["start_time"].as_f64().unwrap_or(0.0),
            end_time: shot["end_time"].as_f64().unwrap_or(0.0),
            transition: shot["transition"].as_str().unwrap_or("cut").to_owned(),
            histogram,
        })
        .collect();
    let speech = speech_spans(ctx).await?;
    let scenes = group(&facts, &speech);
    store(ctx, &facts, &scenes).await?;
    let docs: Vec<Value> = scenes
        .iter()
        .enumerate()
        .map(|(index, scene)| {
            json!({
                "index": index,
                "start_time": facts[scene.first_shot].start_time,
                "end_time": facts[scene.last_shot].end_time,
                "first_shot": scene.first_shot,
                "last_shot": scene.last_shot,
                "shots": (scene.first_shot..=scene.last_shot).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json!({
        "scene_count": scenes.len(),
        "scenes": docs,
        "used_transcript": !speech.is_empty(),
    }))
}

/// Groups shots: a shot joins the scene before it when it looks like that scene's last shot
/// or speech crosses the cut, unless it begins with a fade.
pub fn group(shots: &[ShotFacts], speech: &[(f64, f64)]) -> Vec<Scene> {
    let mut scenes: Vec<Scene> = Vec::new();
    for (index, shot) in shots.iter().enumerate() {
        let joins = scenes.last().is_some_and(|scene| {
            let previous = &shots[scene.last_shot];
            let alike = intersection(&previous.histogram, &shot.histogram) >= ALIKE;
            let boundary = shot.start_time;
            let talk_across = speech
                .iter()
                .any(|(start, end)| *start < boundary - 0.2 && *end > boundary + 0.2);
            shot.transition != "fade" && (alike || talk_across)
        });
        match scenes.last_mut() {
            Some(scene) if joins => scene.last_shot = index,
            _ => scenes.push(Scene {
                first_shot: index,
                last_shot: index,
            }),
        }
    }
    scenes
}

fn intersection(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x.min(*y)).sum()
}

/// Colour histograms of the shots' keyframes, decoded by one ffmpeg run over the JPEGs.
async fn keyframe_histograms(
    ctx: &StepContext<'_>,
    shots: &[Value],
) -> Result<Vec<Vec<f32>>, StepError> {
    let dir = ctx.output_dir()?;
    let scratch = ctx.scratch()?;
    // Links with consecutive numbers, so one image2 input reads them all in order.
    for (i, shot) in shots.iter().enumerate() {
        let name = shot["keyframe"].as_str().unwrap_or_default();
        if name.is_empty() || name.contains('/') {
            return Err(StepError::new(format!("shot {i} has no keyframe")));
        }
        std::os::unix::fs::symlink(dir.join(name), scratch.path().join(format!("{i:06}.jpg")))
            .map_err(|e| StepError::new(format!("cannot stage keyframes: {e}")))?;
    }
    let pattern = scratch.path().join("%06d.jpg");
    let scale = format!("scale={WIDTH}:{HEIGHT}:flags=area,format=rgb24");
    let args: Vec<&std::ffi::OsStr> = vec![
        "-v".as_ref(),
        "error".as_ref(),
        "-nostdin".as_ref(),
        "-start_number".as_ref(),
        "0".as_ref(),
        "-i".as_ref(),
        pattern.as_os_str(),
        "-vf".as_ref(),
        scale.as_ref(),
        "-f".as_ref(),
        "rawvideo".as_ref(),
        "-".as_ref(),
    ];
    let decoder = ctx.runner.stream(ctx.ffmpeg(), args).await?;
    let mut histograms = Vec::with_capacity(shots.len());
    decoder
        .frames("ffmpeg", WIDTH * HEIGHT * 3, |frame| {
            histograms.push(histogram(frame))
        })
        .await?;
    if histograms.len() != shots.len() {
        return Err(StepError::new(format!(
            "{} keyframes decoded for {} shots",
            histograms.len(),
            shots.len()
        )));
    }
    Ok(histograms)
}

fn histogram(rgb: &[u8]) -> Vec<f32> {
    let mut bins = vec![0f32; LEVELS * LEVELS * LEVELS];
    let pixels = rgb.len() / 3;
    for pixel in rgb.chunks_exact(3) {
        let level = |v: u8| usize::from(v) * LEVELS / 256;
        bins[(level(pixel[0]) * LEVELS + level(pixel[1])) * LEVELS + level(pixel[2])] += 1.0;
    }
    bins.iter_mut().for_each(|b| *b /= pixels.max(1) as f32);
    bins
}

/// Speech segments from the transcript, when `asr` has run.
async fn speech_spans(ctx: &StepContext<'_>) -> Result<Vec<(f64, f64)>, StepError> {
    let asr = results::document(ctx.pool, &ctx.file.file_uuid, "asr").await?;
    Ok(asr
        .and_then(|doc| doc["result"]["segments"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|s| Some((s["start"].as_f64()?, s["end"].as_f64()?)))
        .collect())
}

async fn store(
    ctx: &StepContext<'_>,
    shots: &[ShotFacts],
    scenes: &[Scene],
) -> Result<(), StepError> {
    let mut tx = ctx.pool.begin().await?;
    sqlx::query("DELETE FROM scenes WHERE file_uuid = $1")
        .bind(&ctx.file.file_uuid)
        .execute(&mut *tx)
        .await?;
    for (index, scene) in scenes.iter().enumerate() {
        sqlx::query(
            "INSERT INTO scenes (file_uuid, idx, start_time, end_time, first_shot, last_shot) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&ctx.file.file_uuid)
        .bind(index as i32)
        .bind(shots[scene.first_shot].start_time)
        .bind(shots[scene.last_shot].end_time)
        .bind(scene.first_shot as i32)
        .bind(scene.last_shot as i32)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shot(start: f64, transition: &str, colour: usize) -> ShotFacts {
        let mut histogram = vec![0.0; 64];
        histogram[colour] = 1.0;
        ShotFacts {
            start_time: start,
            end_time: start + 2.0,
            transition: transition.to_owned(),
            histogram,
        }
    }

    #[test]
    fn alike_shots_group_and_fades_or_new_looks_split() {
        let shots = [
            shot(0.0, "start", 1),
            shot(2.0, "cut", 1),
            shot(4.0, "cut", 9),
            shot(6.0, "cut", 9),
            shot(8.0, "fade", 9),
        ];
        let spans: Vec<(usize, usize)> = group(&shots, &[])
            .iter()
            .map(|s| (s.first_shot, s.last_shot))
            .collect();
        assert_eq!(spans, [(0, 1), (2, 3), (4, 4)]);
    }

    #[test]
    fn speech_across_a_cut_keeps_the_scene_together() {
        let shots = [shot(0.0, "start", 1), shot(2.0, "cut", 9)];
        assert_eq!(group(&shots, &[]).len(), 2);
        assert_eq!(group(&shots, &[(1.0, 3.0)]).len(), 1);
    }
}
