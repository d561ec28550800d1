//! Faces for tests: photos from the face-recognition 1.3.0 source archive (fetched and
//! checked by `tools/setup` into `target/fixtures/faces`), and videos with those photos
//! composited at known times.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn photo(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/fixtures/faces")
        .join(name);
    assert!(
        path.is_file(),
        "{} is missing: run tools/setup",
        path.display()
    );
    path
}

/// A 640x360 video of `seconds` on a grey background with each photo (scaled to 220 px high)
/// shown from `start` to `end` at its own place.
pub fn make_face_video(path: &Path, seconds: f64, shown: &[(&str, f64, f64)]) {
    let mut command = Command::new("ffmpeg");
    command.args(["-v", "error", "-y", "-f", "lavfi", "-i"]);
    command.arg(format!("color=c=0x506070:s=640x360:r=25:d={seconds}"));
    for (name, _, _) in shown {
        command.args(["-loop", "1", "-t", &seconds.to_string(), "-i"]);
        command.arg(photo(name));
    }
    let mut graph = String::new();
    let mut last = "0".to_owned();
    for (i, (_, start, end)) in shown.iter().enumerate() {
        let x = 40 + 300 * (i % 2);
        graph.push_str(&format!(
            "[{}]scale=-2:220[p{i}];[{last}][p{i}]overlay=x={x}:y=70:enable='between(t,{start},{end})'[v{i}];",
            i + 1
        ));
        last = format!("v{i}");
    }
    graph.push_str(&format!("[{last}]format=yuv420p[out]"));
    command.args(["-filter_complex", &graph, "-map", "[out]"]);
    command.args([
        "-t",
        &seconds.to_string(),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
    ]);
    let status = command.arg(path).status().expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg made {}", path.display());
}

/// A photo as the identity API takes it.
pub fn base64_of(name: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(photo(name)).unwrap())
}
