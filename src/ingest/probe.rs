//! What ffprobe says about a file: container, duration, picture size, frame rate, frame count
//! and audio streams. A file with neither a video nor an audio stream is not media.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;

/// The demuxers a registered file may use: audio and video containers and elementary
/// streams. Playlist and reference formats are left out on purpose, and so are still images.
const DEMUXERS: &str = "mov,matroska,avi,mpegts,mpegtsraw,mpeg,mpegvideo,flv,asf,mxf,gxf,dv,\
nut,ogg,wav,w64,aiff,caf,au,mp3,aac,ac3,eac3,dts,truehd,flac,ape,wv,tta,tak,amr,amrnb,amrwb,\
m4v,h264,hevc,vc1,rm,ivf,yuv4mpegpipe,gif,mjpeg,smjpeg,dirac,avs,bink,vqf,xwma,voc,sox,\
mlp,loas,latm,oma,mpc,mpc8";

/// Longest a probe may take. ffprobe reads only the headers (and a few packets) of a file, so
/// this is generous; it bounds a file on a hung network mount.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// ffprobe ran and could not find audio or video in the file.
    #[error("{0}")]
    NotMedia(&'static str),
    /// ffprobe could not be run at all, or did not finish in time.
    #[error("ffprobe could not run: {0}")]
    Unavailable(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct MediaFacts {
    /// `video` (has a picture stream) or `audio`.
    pub file_type: &'static str,
    pub container: String,
    pub duration: Option<f64>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub fps: Option<f64>,
    pub total_frames: Option<i64>,
    pub audio_streams: i32,
}

pub async fn probe(ffprobe: &Path, file: &Path) -> Result<MediaFacts, ProbeError> {
    let mut input = std::ffi::OsString::from("file:");
    input.push(file.as_os_str());
    let child = Command::new(ffprobe)
        .args(["-v", "error", "-hide_banner", "-print_format", "json"])
        // Only the file itself, only containers of audio and video: playlists and the like
        // (HLS, concat, SDP) would read other files or the network.
        .args(["-protocol_whitelist", "file", "-format_whitelist", DEMUXERS])
        .args(["-show_format", "-show_streams"])
        .arg(input)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| ProbeError::Unavailable(error.to_string()))?;
    let output = tokio::time::timeout(PROBE_TIMEOUT, child.wait_with_output())
        .await
        // A file ffprobe cannot get through in a minute is not usable media (a hung mount,
        // say); the watcher then leaves it until it changes.
        .map_err(|_| ProbeError::NotMedia("ffprobe did not finish reading this file"))?
        .map_err(|error| ProbeError::Unavailable(error.to_string()))?;
    if !output.status.success() {
        tracing::debug!(
            stderr = %String::from_utf8_lossy(&output.stderr).trim(),
            "ffprobe refused a file"
        );
        return Err(ProbeError::NotMedia(
            "ffprobe cannot read this file as audio or video",
        ));
    }
    let report: Value = serde_json::from_slice(&output.stdout)
        .map_err(|_| ProbeError::Unavailable("ffprobe printed no JSON".to_owned()))?;
    facts(&report, file)
}

/// Reads the facts out of ffprobe's JSON report.
pub fn facts(report: &Value, file: &Path) -> Result<MediaFacts, ProbeError> {
    let format = &report["format"];
    let format_name = format["format_name"].as_str().unwrap_or_default();
    // ffprobe "reads" text as ANSI art and single pictures as one-frame video.
    if format_name == "tty" || format_name.is_empty() {
        return Err(ProbeError::NotMedia("this is not an audio or video file"));
    }
    let streams = report["streams"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let video = streams.iter().find(|s| {
        s["codec_type"] == "video" && s["disposition"]["attached_pic"].as_i64() != Some(1)
    });
    let audio_streams = streams
        .iter()
        .filter(|s| s["codec_type"] == "audio")
        .count();
    let still_image = format_name == "image2" || format_name.ends_with("_pipe");
    if still_image && audio_streams == 0 {
        return Err(ProbeError::NotMedia(
            "this is a still image, not a video or audio file",
        ));
    }
    if video.is_none() && audio_streams == 0 {
        return Err(ProbeError::NotMedia(
            "the file has no audio or video stream",
        ));
    }
    let duration = number(&format["duration"])
        .or_else(|| video.and_then(|v| number(&v["duration"])))
        .filter(|d| d.is_finite() && *d >= 0.0);
    let fps = video.and_then(|v| rate(&v["avg_frame_rate"]).or_else(|| rate(&v["r_frame_rate"])));
    let total_frames = video.and_then(|v| {
        number(&v["nb_frames"])
            .map(|n| n as i64)
            .filter(|n| *n > 0)
            .or_else(|| Some((duration? * fps?).round() as i64))
    });
    Ok(MediaFacts {
        file_type: if video.is_some() { "video" } else { "audio" },
        container: container(format_name, file),
        duration,
        width: video.and_then(|v| v["width"].as_i64()).map(|w| w as i32),
        height: video.and_then(|v| v["height"].as_i64()).map(|h| h as i32),
        fps,
        total_frames,
        audio_streams: audio_streams as i32,
    })
}

/// ffprobe names demuxers by families (`mov,mp4,m4a,3gp,3g2,mj2`); the file's own extension
/// picks the member when it is one of them, else the first name stands.
fn container(format_name: &str, file: &Path) -> String {
    let extension = file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let mut names = format_name.split(',');
    let first = names.next().unwrap_or(format_name);
    match extension {
        Some(ext) if format_name.split(',').any(|name| name == ext) => ext,
        _ => first.to_owned(),
    }
}

/// ffprobe writes most numbers as strings.
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::String(text) => text.parse().ok(),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// A frame rate such as `30000/1001`; `0/0` means unknown.
fn rate(value: &Value) -> Option<f64> {
    let (num, den) = value.as_str()?.split_once('/')?;
    let (num, den): (f64, f64) = (num.parse().ok()?, den.parse().ok()?);
    (num > 0.0 && den > 0.0).then(|| num / den)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn facts_come_from_the_video_stream_and_the_format() {
        let report = json!({
            "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "2.002000"},
            "streams": [
                {"codec_type": "video", "width": 320, "height": 240,
                 "avg_frame_rate": "30000/1001", "r_frame_rate": "30000/1001", "nb_frames": "60"},
                {"codec_type": "audio"},
                {"codec_type": "video", "disposition": {"attached_pic": 1}, "width": 1}
            ]
        });
        let facts = facts(&report, Path::new("/m/clip.MP4")).unwrap();
        assert_eq!(facts.file_type, "video");
        assert_eq!(facts.container, "mp4");
        assert_eq!((facts.width, facts.height), (Some(320), Some(240)));
        assert!((facts.fps.unwrap() - 29.97).abs() < 0.01);
        assert_eq!(facts.total_frames, Some(60));
        assert_eq!(facts.audio_streams, 1);
        assert_eq!(facts.duration, Some(2.002));
    }

    #[test]
    fn frames_are_estimated_when_the_container_does_not_count_them() {
        let report = json!({
            "format": {"format_name": "matroska,webm", "duration": "4.0"},
            "streams": [{"codec_type": "video", "avg_frame_rate": "25/1"}]
        });
        let facts = facts(&report, Path::new("/m/clip")).unwrap();
        assert_eq!(facts.container, "matroska");
        assert_eq!(facts.total_frames, Some(100));
    }

    #[test]
    fn text_images_and_empty_containers_are_not_media() {
        let cases = [
            json!({"format": {"format_name": "tty"}, "streams": [{"codec_type": "video"}]}),
            json!({"format": {"format_name": "png_pipe"}, "streams": [{"codec_type": "video"}]}),
            json!({"format": {"format_name": "mov,mp4"}, "streams": [{"codec_type": "data"}]}),
        ];
        for report in cases {
            assert!(
                matches!(
                    facts(&report, Path::new("/m/x")),
                    Err(ProbeError::NotMedia(_))
                ),
                "{report}"
            );
        }
    }
}
