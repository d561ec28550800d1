//! `cut`: shot boundaries. ffmpeg decodes the video to small YUV frames on a pipe, the
//! detector judges them as they arrive, and one keyframe per shot (its middle frame) is saved
//! as a JPEG next to the result.

pub mod detect;

use std::ffi::OsStr;
use std::time::Instant;

use serde_json::{Value, json};

use super::context::{StepContext, StepError};
use super::runner::Runner;
use detect::{Boundary, Detector};

/// Size of the analysed frames: enough to see a cut, small enough to decode fast.
const WIDTH: usize = 64;
const HEIGHT: usize = 36;
/// Width of the saved keyframes.
const KEYFRAME_WIDTH: u32 = 320;

#[derive(Debug, Clone)]
pub struct Shot {
    pub index: usize,
    pub start_frame: u64,
    pub end_frame: u64,
    pub transition: &'static str,
    pub score: f32,
}

/// What the detector found in one video.
pub struct Detection {
    pub boundaries: Vec<Boundary>,
    pub frames: u64,
    /// Frames analysed per second of wall time (decoding included).
    pub speed: f64,
}

/// Decodes `input` (an ffmpeg input such as `file:/path`) to small grey frames and finds its
/// shot boundaries. Needs no database: benchmarks call it directly.
pub async fn detect(
    runner: &Runner,
    ffmpeg: &OsStr,
    input: &OsStr,
    fps: f64,
    timeout: std::time::Duration,
) -> Result<Detection, StepError> {
    tokio::time::timeout(timeout, decode_and_detect(runner, ffmpeg, input, fps))
        .await
        .map_err(|_| {
            StepError::new(format!(
                "ffmpeg did not finish decoding within {} s",
                timeout.as_secs()
            ))
        })?
}

async fn decode_and_detect(
    runner: &Runner,
    ffmpeg: &OsStr,
    input: &OsStr,
    fps: f64,
) -> Result<Detection, StepError> {
    let started = Instant::now();
    let mut detector = Detector::new(WIDTH, HEIGHT, fps);
    // Full range, so black is 0 whatever the source's range.
    let scale = format!("scale={WIDTH}:{HEIGHT}:flags=area:out_range=full,format=yuv444p");
    let args: Vec<&OsStr> = vec![
        "-v".as_ref(),
        "error".as_ref(),
        "-nostdin".as_ref(),
        // The deblocking filter smooths block edges that shrinking to 64x36 averages away
        // anyway; skipping it saves about a tenth of the decoding time. Every frame is still
        // decoded, in order, so frame numbers and cut positions stay exact.
        "-skip_loop_filter".as_ref(),
        "all".as_ref(),
        "-i".as_ref(),
        input,
        "-map".as_ref(),
        "0:v:0".as_ref(),
        "-vf".as_ref(),
        scale.as_ref(),
        "-fps_mode".as_ref(),
        "passthrough".as_ref(),
        "-f".as_ref(),
        "rawvideo".as_ref(),
        "-".as_ref(),
    ];
    let decoder = runner.stream(ffmpeg, args).await?;
    let frame_len = detector.frame_len();
    decoder
        .frames("ffmpeg", frame_len, |frame| detector.push(frame))
        .await?;
    let frames = detector.frames();
    if frames == 0 {
        return Err(StepError::new("ffmpeg decoded no frames"));
    }
    Ok(Detection {
        boundaries: detector.finish(),
        frames,
        speed: frames as f64 / started.elapsed().as_secs_f64().max(1e-6),
    })
}

pub async fn run(ctx: &StepContext<'_>) -> Result<Value, StepError> {
    let fps = ctx.file.fps.filter(|f| *f > 0.0).ok_or_else(|| {
        StepError::new("the file has no video stream with a frame rate; nothing to cut")
    })?;
    let input = ctx.input();
    let Detection {
        boundaries,
        frames,
        speed: analysis_fps,
    } = detect(
        ctx.runner,
        ctx.ffmpeg(),
        input.as_os_str(),
        fps,
        ctx.timeout(),
    )
    .await?;
    let shots = shots(&boundaries, frames);
    let keyframes = save_keyframes(ctx, &shots).await?;
    store(ctx, &shots, fps, &keyframes).await?;

    let shot_docs: Vec<Value> = shots
        .iter()
        .zip(&keyframes)
        .map(|(shot, keyframe)| {
            json!({
                "index": shot.index,
                "start_time": seconds(shot.start_frame, fps),
                "end_time": seconds(shot.end_frame + 1, fps),
                "start_frame": shot.start_frame,
                "end_frame": shot.end_frame,
                "transition": shot.transition,
                "score": round3(f64::from(shot.score)),
                "keyframe": keyframe,
            })
        })
        .collect();
    Ok(json!({
        "fps": fps,
        "frames": frames,
        "shot_count": shots.len(),
        "shots": shot_docs,
        "analysis": {"width": WIDTH, "height": HEIGHT, "frames_per_second": analysis_fps.round()},
    }))
}

/// Shots between the boundaries: each begins at a boundary (the first at frame 0).
pub fn shots(boundaries: &[Boundary], frames: u64) -> Vec<Shot> {
    let mut shots = Vec::with_capacity(boundaries.len() + 1);
    let mut start = 0;
    let mut transition = "start";
    let mut score = 1.0;
    for boundary in boundaries
        .iter()
        .filter(|b| b.frame > 0 && b.frame < frames)
    {
        shots.push(Shot {
            index: shots.len(),
            start_frame: start,
            end_frame: boundary.frame - 1,
            transition,
            score,
        });
        start = boundary.frame;
        transition = boundary.kind.as_str();
        score = boundary.score;
    }
    shots.push(Shot {
        index: shots.len(),
        start_frame: start,
        end_frame: frames - 1,
        transition,
        score,
    });
    shots
}

/// Saves each shot's middle frame with one ffmpeg run; returns the file names (under output).
async fn save_keyframes(ctx: &StepContext<'_>, shots: &[Shot]) -> Result<Vec<String>, StepError> {
    let picks: Vec<u64> = shots
        .iter()
        .map(|s| (s.start_frame + s.end_frame) / 2)
        .collect();
    let select: Vec<String> = picks.iter().map(|n| format!("eq(n\\,{n})")).collect();
    let filter = format!("select='{}',scale={KEYFRAME_WIDTH}:-2", select.join("+"));
    let scratch = ctx.scratch()?;
    let pattern = scratch.path().join("kf%05d.jpg");
    let input = ctx.input();
    let args: Vec<&std::ffi::OsStr> = vec![
        "-v".as_ref(),
        "error".as_ref(),
        "-nostdin".as_ref(),
        "-i".as_ref(),
        input.as_os_str(),
        "-map".as_ref(),
        "0:v:0".as_ref(),
        "-vf".as_ref(),
        filter.as_ref(),
        "-fps_mode".as_ref(),
        "passthrough".as_ref(),
        "-q:v".as_ref(),
        "4".as_ref(),
        pattern.as_os_str(),
    ];
    ctx.runner.run(ctx.ffmpeg(), args, ctx.timeout()).await?;
    let mut names = Vec::with_capacity(shots.len());
    for shot in shots {
        let made = scratch.path().join(format!("kf{:05}.jpg", shot.index + 1));
        let name = format!("{}.cut.{:04}.jpg", ctx.file.file_uuid, shot.index);
        if made.exists() {
            std::fs::rename(&made, ctx.output_dir()?.join(&name))
                .map_err(|e| StepError::new(format!("saving a keyframe failed: {e}")))?;
            names.push(name);
        } else {
            names.push(String::new());
        }
    }
    Ok(names)
}

async fn store(
    ctx: &StepContext<'_>,
    shots: &[Shot],
    fps: f64,
    keyframes: &[String],
) -> Result<(), StepError> {
    let mut tx = ctx.pool.begin().await?;
    sqlx::query("DELETE FROM shots WHERE file_uuid = $1")
        .bind(&ctx.file.file_uuid)
        .execute(&mut *tx)
        .await?;
    for (shot, keyframe) in shots.iter().zip(keyframes) {
        sqlx::query(
            "INSERT INTO shots (file_uuid, idx, start_time, end_time, start_frame, end_frame, \
             transition, score, keyframe) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&ctx.file.file_uuid)
        .bind(shot.index as i32)
        .bind(seconds(shot.start_frame, fps))
        .bind(seconds(shot.end_frame + 1, fps))
        .bind(shot.start_frame as i64)
        .bind(shot.end_frame as i64)
        .bind(shot.transition)
        .bind(f64::from(shot.score))
        .bind((!keyframe.is_empty()).then_some(keyframe.as_str()))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

fn seconds(frame: u64, fps: f64) -> f64 {
    round3(frame as f64 / fps)
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::detect::Kind;
    use super::*;

    #[test]
    fn shots_lie_between_boundaries() {
        let boundaries = [
            Boundary {
                frame: 10,
                kind: Kind::Cut,
                score: 0.9,
            },
            Boundary {
                frame: 30,
                kind: Kind::Fade,
                score: 0.8,
            },
        ];
        let shots = shots(&boundaries, 50);
        let spans: Vec<(u64, u64, &str)> = shots
            .iter()
            .map(|s| (s.start_frame, s.end_frame, s.transition))
            .collect();
        assert_eq!(spans, [(0, 9, "start"), (10, 29, "cut"), (30, 49, "fade")]);
    }
}
