//! Frames for the picture processors: JPEG samples (`face`, `pose`), raw RGB samples fitted
//! into a square model input (`yolo`), single stills (`visual_chunk`), and the shots `cut`
//! found.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::context::{StepContext, StepError};
use crate::db::results;

/// Raw samples for a square model input: the frame scaled to fit and centred on black.
pub struct RawFrames {
    pub path: PathBuf,
    /// The side of the square.
    pub side: u32,
    /// Where the picture lies in the square: x, y, width, height in pixels.
    pub content: [u32; 4],
    pub times: Vec<f64>,
}

/// Sampled pictures as a script's request lists them: index, time, path.
pub fn frames_json(pictures: &[(PathBuf, f64)]) -> Vec<serde_json::Value> {
    pictures
        .iter()
        .enumerate()
        .map(|(i, (path, time))| serde_json::json!({"index": i, "time": time, "path": path}))
        .collect()
}

impl StepContext<'_> {
    /// The file's length in seconds, for the processors that sample it.
    pub fn duration(&self) -> Result<f64, StepError> {
        self.file
            .duration
            .filter(|d| *d > 0.0)
            .ok_or_else(|| StepError::new("the file has no duration; nothing to sample"))
    }

    /// Frames every `1/rate` seconds as JPEG files in `dir`, with their times.
    pub async fn sample_jpegs(
        &self,
        dir: &Path,
        rate: f64,
    ) -> Result<Vec<(PathBuf, f64)>, StepError> {
        let input = self.input();
        let pattern = dir.join("%06d.jpg");
        let list = || -> Result<Vec<PathBuf>, StepError> {
            let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(|e| StepError::new(format!("cannot read the sampled frames: {e}")))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
                .collect();
            names.sort();
            Ok(names)
        };
        let filter = format!("fps={rate:.6}");
        let mut args = picture_args(&[], &input, &filter);
        args.extend::<[&OsStr; 3]>(["-q:v".as_ref(), "3".as_ref(), pattern.as_os_str()]);
        self.runner.run(self.ffmpeg(), args, self.timeout()).await?;
        let mut names = list()?;
        if names.is_empty() {
            // Shorter than half a sample interval: the fps filter gave nothing; take the first
            // frame.
            let mut args = picture_args(&[], &input, "null");
            args.extend::<[&OsStr; 5]>([
                "-frames:v".as_ref(),
                "1".as_ref(),
                "-q:v".as_ref(),
                "3".as_ref(),
                pattern.as_os_str(),
            ]);
            self.runner.run(self.ffmpeg(), args, self.timeout()).await?;
            names = list()?;
        }
        Ok(names
            .into_iter()
            .enumerate()
            .map(|(i, path)| (path, i as f64 / rate))
            .collect())
    }

    /// Frames every `1/rate` seconds from `start` for `length` seconds as one raw RGB file
    /// in `dir`, each letterboxed into a `side`-pixel square (a squashed picture hides
    /// objects from the detector). Times are seconds from the start of the file.
    pub async fn sample_raw(
        &self,
        dir: &Path,
        (start, length): (f64, f64),
        rate: f64,
        side: u32,
    ) -> Result<RawFrames, StepError> {
        let (width, height) = match (self.file.width, self.file.height) {
            (Some(w), Some(h)) if w > 0 && h > 0 => (w as f64, h as f64),
            _ => return Err(StepError::new("the file has no picture size")),
        };
        // ffmpeg turns a picture stored sideways upright before the filters see it.
        let (width, height) = if self.quarter_turned().await? {
            (height, width)
        } else {
            (width, height)
        };
        let scale = side as f64 / width.max(height);
        // Even sizes, at least 2 pixels, centred.
        let fit = |v: f64| (((v * scale) / 2.0).round() as u32 * 2).clamp(2, side);
        let (w, h) = (fit(width), fit(height));
        let (x, y) = ((side - w) / 2, (side - h) / 2);
        let letterbox = format!("scale={w}:{h},setsar=1,pad={side}:{side}:{x}:{y}:black");
        let path = dir.join("frames.rgb");
        let input = self.input();
        let (from, span) = (format!("{start:.3}"), format!("{length:.3}"));
        let window: [&OsStr; 4] = ["-ss".as_ref(), from.as_ref(), "-t".as_ref(), span.as_ref()];
        let frame = side as u64 * side as u64 * 3;
        let mut count = 0;
        // A clip shorter than half a sample interval gets no frame from the fps filter: it
        // gets its first frame instead.
        let passes = [
            (format!("fps={rate:.6},{letterbox}"), false),
            (letterbox.clone(), true),
        ];
        for (filter, first_only) in passes {
            if first_only && (count > 0 || start > 0.0) {
                break;
            }
            let mut args = picture_args(&window, &input, &filter);
            if first_only {
                args.extend::<[&OsStr; 2]>(["-frames:v".as_ref(), "1".as_ref()]);
            }
            args.extend::<[&OsStr; 6]>([
                "-pix_fmt".as_ref(),
                "rgb24".as_ref(),
                "-f".as_ref(),
                "rawvideo".as_ref(),
                "-y".as_ref(),
                path.as_os_str(),
            ]);
            self.runner.run(self.ffmpeg(), args, self.timeout()).await?;
            let bytes = std::fs::metadata(&path)
                .map_err(|e| StepError::new(format!("cannot read the sampled frames: {e}")))?
                .len();
            count = bytes / frame;
        }
        Ok(RawFrames {
            path,
            side,
            content: [x, y, w, h],
            times: (0..count).map(|i| start + i as f64 / rate).collect(),
        })
    }

    /// The frame at `time` seconds as a JPEG at `path`, at most `max_side` pixels wide.
    pub async fn still(&self, time: f64, path: &Path, max_side: u32) -> Result<(), StepError> {
        let input = self.input();
        let at = format!("{:.3}", time.max(0.0));
        let filter = format!("scale='min({max_side},iw)':-2");
        let mut args = picture_args(&["-ss".as_ref(), at.as_ref()], &input, &filter);
        args.extend::<[&OsStr; 6]>([
            "-frames:v".as_ref(),
            "1".as_ref(),
            "-q:v".as_ref(),
            "4".as_ref(),
            "-y".as_ref(),
            path.as_os_str(),
        ]);
        self.runner.run(self.ffmpeg(), args, self.timeout()).await?;
        Ok(())
    }

    /// Whether the picture is stored a quarter turn off upright (a phone's portrait video):
    /// its display matrix or `rotate` tag says 90 or 270 degrees.
    async fn quarter_turned(&self) -> Result<bool, StepError> {
        let input = self.input();
        let args: Vec<&OsStr> = vec![
            "-v".as_ref(),
            "error".as_ref(),
            "-select_streams".as_ref(),
            "v:0".as_ref(),
            "-show_entries".as_ref(),
            "stream_side_data=rotation:stream_tags=rotate".as_ref(),
            "-of".as_ref(),
            "csv=p=0".as_ref(),
            input.as_os_str(),
        ];
        let done = self
            .runner
            .run(self.tools.ffprobe.as_os_str(), args, self.timeout())
            .await?;
        let text = String::from_utf8_lossy(&done.stdout);
        Ok(text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter_map(|v| v.trim().parse::<f64>().ok())
            .any(|degrees| (degrees.abs().round() as i64) % 180 == 90))
    }

    /// The shots `cut` found, as (start, end) seconds; none when it has not run.
    pub async fn shots(&self) -> Result<Vec<(f64, f64)>, StepError> {
        let cut = results::document(self.pool, &self.file.file_uuid, "cut").await?;
        Ok(cut
            .and_then(|doc| doc["result"]["shots"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|s| Some((s["start_time"].as_f64()?, s["end_time"].as_f64()?)))
            .collect())
    }
}

/// ffmpeg's arguments up to the output options: quiet, `before` the input (a seek), the file's
/// first video stream through `filter`.
fn picture_args<'a>(before: &[&'a OsStr], input: &'a Path, filter: &'a str) -> Vec<&'a OsStr> {
    let mut args: Vec<&OsStr> = vec!["-v".as_ref(), "error".as_ref(), "-nostdin".as_ref()];
    args.extend_from_slice(before);
    args.extend::<[&OsStr; 6]>([
        "-i".as_ref(),
        input.as_os_str(),
        "-map".as_ref(),
        "0:v:0".as_ref(),
        "-vf".as_ref(),
        filter.as_ref(),
    ]);
    args
}
