//! Objects and people for tests: scikit-image 0.25.2's sample pictures (fetched and checked
//! by `tools/setup` into `target/fixtures/objects`), composited into video at known times.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn picture(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/fixtures/objects")
        .join(format!("{name}.png"));
    assert!(
        path.is_file(),
        "{} is missing: run tools/setup",
        path.display()
    );
    path
}

/// Where and when a picture is shown: name, height in pixels, x, y, from, to (seconds).
pub type Shown<'a> = (&'a str, u32, u32, u32, f64, f64);

/// A 640x360 video of two 6-second shots on different backgrounds, each with its pictures.
pub fn make_object_video(path: &Path, first: &[Shown], second: &[Shown]) {
    let mut command = Command::new("ffmpeg");
    command.args(["-v", "error", "-y"]);
    for colour in ["0x303850", "0x806040"] {
        command.args(["-f", "lavfi", "-i"]);
        command.arg(format!("color=c={colour}:s=640x360:r=25:d=6"));
    }
    for (name, ..) in first.iter().chain(second) {
        command.args(["-loop", "1", "-t", "6", "-i"]);
        command.arg(picture(name));
    }
    let mut graph = String::new();
    let mut input = 2;
    for (shot, shown) in [first, second].into_iter().enumerate() {
        let mut last = shot.to_string();
        for (i, (_, height, x, y, start, end)) in shown.iter().enumerate() {
            let (start, end) = (start - 6.0 * shot as f64, end - 6.0 * shot as f64);
            graph.push_str(&format!(
                "[{input}]scale=-2:{height}[p{shot}{i}];[{last}][p{shot}{i}]overlay=x={x}:y={y}:\
                 enable='between(t,{start},{end})'[v{shot}{i}];"
            ));
            last = format!("v{shot}{i}");
            input += 1;
        }
        graph.push_str(&format!("[{last}]format=yuv420p[s{shot}];"));
    }
    graph.push_str("[s0][s1]concat=n=2:v=1[out]");
    command.args(["-filter_complex", &graph, "-map", "[out]"]);
    command.args(["-c:v", "libx264", "-preset", "ultrafast"]);
    let status = command.arg(path).status().expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg made {}", path.display());
}
