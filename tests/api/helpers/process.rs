//! Running the `reelbase` binary as an operator does, with its log lines collected.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The binary, with no `REELBASE_*` setting inherited from the developer's shell.
pub fn reelbase() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_reelbase"));
    // Only what the test sets: no settings leak in from the developer's shell.
    for (name, _) in std::env::vars() {
        if name.starts_with("REELBASE_") {
            command.env_remove(name);
        }
    }
    command
}

/// A running `reelbase serve` with its log lines collected from stdout and stderr.
pub struct Served {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Served {
    pub fn start(env: &[(&str, &str)]) -> Self {
        let mut command = reelbase();
        command.arg("serve").env("REELBASE_BIND", "127.0.0.1:0");
        command
            .env("REELBASE_LOG_FORMAT", "json")
            .env("REELBASE_LOG", "debug");
        command
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("binary starts");
        let (sender, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for stream in [
            Box::new(stdout) as Box<dyn std::io::Read + Send>,
            Box::new(stderr),
        ] {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = sender.send(line);
                }
            });
        }
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for the log event whose message is `message` and returns it as JSON.
    pub fn wait_for(&mut self, message: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok(line) = self.lines.recv_timeout(left) else {
                break;
            };
            self.seen.push(line.clone());
            let event = serde_json::from_str::<serde_json::Value>(&line).unwrap_or_default();
            if event["message"] == message {
                return event;
            }
        }
        panic!("no {message:?} log line; saw:\n{}", self.seen.join("\n"));
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        assert!(status.unwrap().success());
    }

    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn all_output(&mut self) -> String {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.seen.push(line);
        }
        self.seen.join("\n")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
