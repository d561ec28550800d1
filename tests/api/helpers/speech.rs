//! Speech made with espeak-ng: known sentences in known voices at known times, mixed into a
//! generated video, so transcripts, timings and speakers can be checked against the truth.

use std::path::Path;
use std::process::Command;

/// One spoken line as it was made.
#[derive(Debug, Clone)]
pub struct Line {
    pub voice: &'static str,
    pub text: &'static str,
    pub start: f64,
    pub end: f64,
}

/// Silence before each line, in seconds.
const GAP: f64 = 1.0;

/// A 640x360 video whose sound is `lines` spoken one after another, each after a second of
/// silence (and a second after the last). Returns each line with its time span.
pub fn make_speech_video(path: &Path, lines: &[(&'static str, &'static str)]) -> Vec<Line> {
    let dir = path.with_extension("parts");
    std::fs::create_dir_all(&dir).unwrap();
    let mut truth = Vec::new();
    let mut at = 0.0;
    let mut inputs: Vec<String> = Vec::new();
    for (i, (voice, text)) in lines.iter().enumerate() {
        let raw = dir.join(format!("{i}.wav"));
        let status = Command::new("espeak-ng")
            .args(["-v", voice, "-s", "150", "-w"])
            .arg(&raw)
            .arg(text)
            .status()
            .expect("espeak-ng runs (tools/setup installs it)");
        assert!(status.success(), "espeak-ng spoke {text:?}");
        let seconds = duration(&raw);
        at += GAP;
        truth.push(Line {
            voice,
            text,
            start: at,
            end: at + seconds,
        });
        at += seconds;
        inputs.push(raw.display().to_string());
    }
    let total = at + GAP;
    // Each line delayed to its start and mixed (they never overlap), padded to the end.
    let mut command = Command::new("ffmpeg");
    command.args(["-v", "error", "-y", "-f", "lavfi", "-i"]);
    command.arg(format!("testsrc2=size=640x360:rate=25:duration={total:.3}"));
    for input in &inputs {
        command.args(["-i", input]);
    }
    let mut graph = String::new();
    for (i, line) in truth.iter().enumerate() {
        let ms = (line.start * 1000.0).round() as u64;
        graph.push_str(&format!(
            "[{}:a]aresample=16000,adelay={ms}:all=1[a{i}];",
            i + 1
        ));
    }
    for i in 0..truth.len() {
        graph.push_str(&format!("[a{i}]"));
    }
    graph.push_str(&format!(
        "amix=inputs={}:normalize=0:duration=longest,apad=whole_dur={total:.3}[sound]",
        truth.len()
    ));
    command.args(["-filter_complex", &graph, "-map", "0:v", "-map", "[sound]"]);
    command.args(["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"]);
    command.args(["-t", &format!("{total:.3}")]);
    let status = command.arg(path).status().expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg mixed {}", path.display());
    let _ = std::fs::remove_dir_all(&dir);
    truth
}

/// Seconds of a media file, by ffprobe.
fn duration(path: &Path) -> f64 {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("ffprobe gives a duration")
}

/// Lower-case words without punctuation.
pub fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric() || *c == '\'')
                .collect::<String>()
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Word error rate of `heard` against `said`: word edits (substitutions, insertions,
/// deletions) per word said.
pub fn word_error_rate(said: &str, heard: &str) -> f64 {
    let (said, heard) = (words(said), words(heard));
    let mut previous: Vec<usize> = (0..=heard.len()).collect();
    for (i, s) in said.iter().enumerate() {
        let mut row = vec![i + 1];
        for (j, h) in heard.iter().enumerate() {
            let substitute = previous[j] + usize::from(s != h);
            row.push(substitute.min(previous[j + 1] + 1).min(row[j] + 1));
        }
        previous = row;
    }
    previous[heard.len()] as f64 / said.len().max(1) as f64
}
