//! Runs reelbase's shot-boundary detector on video files, outside the server, and prints one
//! JSON line per file: its frame rate, frames, boundaries and analysis speed. Used by
//! `tools/bench-cut` to compare with other detectors on the same files.
//!
//! cargo run --release --example cut_detect -- FILE...

use std::path::Path;
use std::time::Duration;

use reelbase::ingest::probe;
use reelbase::pipeline::cut;
use reelbase::pipeline::runner::Runner;
use serde_json::json;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let runner = Runner::new(1);
    let mut failed = false;
    for file in std::env::args().skip(1) {
        let path = Path::new(&file);
        let facts = match probe::probe(Path::new("ffprobe"), path).await {
            Ok(facts) => facts,
            Err(error) => {
                eprintln!("{file}: {error}");
                failed = true;
                continue;
            }
        };
        let fps = facts.fps.unwrap_or(25.0);
        let input = format!("file:{}", path.display());
        match cut::detect(
            &runner,
            "ffmpeg".as_ref(),
            input.as_ref(),
            fps,
            Duration::from_secs(3600),
        )
        .await
        {
            Ok(found) => {
                let boundaries: Vec<_> = found
                    .boundaries
                    .iter()
                    .map(|b| json!({"frame": b.frame, "kind": b.kind.as_str(), "score": b.score}))
                    .collect();
                let line = json!({"file": file, "fps": fps, "frames": found.frames,
                    "speed_fps": found.speed, "boundaries": boundaries});
                println!("{line}");
            }
            Err(error) => {
                eprintln!("{file}: {}", error.0);
                failed = true;
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
}
