//! The one way the pipeline runs external programs (ffmpeg, tesseract, Python): a bounded
//! number at once, each in its own process group with a timeout, killed (group and all) when
//! the caller gives up, with stdout kept and the tail of stderr kept for failure reasons.

use std::ffi::OsStr;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::sync::Semaphore;

/// How much of stderr a failure reason quotes.
const STDERR_TAIL: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{program} could not start: {reason}")]
    Start { program: String, reason: String },
    #[error("{program} did not finish within {} s", timeout.as_secs())]
    Timeout { program: String, timeout: Duration },
    #[error("{program} exited with {status}: {stderr}")]
    Failed {
        program: String,
        status: ExitStatus,
        stderr: String,
    },
    #[error("reading {program}'s output failed: {reason}")]
    Output { program: String, reason: String },
}

/// What a program gets besides its arguments.
#[derive(Debug, Default, Clone)]
pub struct Input {
    /// Added to the inherited environment.
    pub env: Vec<(String, String)>,
    /// Written to stdin, which is then closed; without it stdin is empty.
    pub stdin: Option<Vec<u8>>,
}

/// What a finished program printed.
#[derive(Debug)]
pub struct Finished {
    pub stdout: Vec<u8>,
    pub stderr_tail: String,
}

/// Runs programs, at most `limit` at once.
#[derive(Clone)]
pub struct Runner {
    slots: Arc<Semaphore>,
}

impl Runner {
    pub fn new(limit: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(limit.max(1))),
        }
    }

    /// Runs `program args` to the end and returns its output; fails on a non-zero exit, on
    /// timeout, or if it cannot start. Dropping the future kills the process group.
    pub async fn run<I, S>(
        &self,
        program: &OsStr,
        args: I,
        timeout: Duration,
    ) -> Result<Finished, RunError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run_with(program, args, &Input::default(), timeout)
            .await
    }

    /// `run`, with variables added to the environment and bytes written to stdin (a script's
    /// JSON request).
    pub async fn run_with<I, S>(
        &self,
        program: &OsStr,
        args: I,
        input: &Input,
        timeout: Duration,
    ) -> Result<Finished, RunError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let _slot = self
            .slots
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let name = program.to_string_lossy().into_owned();
        let mut command = Command::new(program);
        command
            .args(args)
            .envs(input.env.iter().map(|(k, v)| (k, v)))
            .stdin(if input.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|error| RunError::Start {
            program: name.clone(),
            reason: error.to_string(),
        })?;
        let mut guard = GroupGuard(child.id());
        // Written beside the reading, so a request larger than the pipe cannot deadlock; a
        // program that exits without reading it all is not an error of the writer's.
        if let (Some(mut pipe), Some(bytes)) = (child.stdin.take(), input.stdin.clone()) {
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let _ = pipe.write_all(&bytes).await;
            });
        }
        let result = tokio::time::timeout(timeout, collect(&mut child)).await;
        let (status, stdout, stderr) = match result {
            Ok(Ok(done)) => done,
            Ok(Err(error)) => {
                return Err(RunError::Output {
                    program: name,
                    reason: error.to_string(),
                });
            }
            Err(_) => {
                return Err(RunError::Timeout {
                    program: name,
                    timeout,
                });
            }
        };
        // Waited for: the group is gone, nothing to kill.
        guard.0 = None;
        let stderr_tail = tail(&stderr);
        if !status.success() {
            return Err(RunError::Failed {
                program: name,
                status,
                stderr: stderr_tail,
            });
        }
        Ok(Finished {
            stdout,
            stderr_tail,
        })
    }

    /// Starts `program args` with stdout piped for the caller to stream (a decoder's frames),
    /// holding a slot until the returned `Streaming` is dropped. stderr is discarded.
    pub async fn stream<I, S>(&self, program: &OsStr, args: I) -> Result<Streaming, RunError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("never closed");
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| RunError::Start {
                program: program.to_string_lossy().into_owned(),
                reason: error.to_string(),
            })?;
        // stderr is drained all along (keeping its tail): a program that writes much to it
        // would otherwise block once the pipe is full, and never finish its stdout.
        let stderr = child.stderr.take().map(|mut pipe| {
            tokio::spawn(async move {
                let mut tail = Vec::new();
                let mut buffer = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut buffer).await {
                    if n == 0 {
                        break;
                    }
                    tail.extend_from_slice(&buffer[..n]);
                    if tail.len() > 4 * STDERR_TAIL {
                        tail.drain(..tail.len() - 2 * STDERR_TAIL);
                    }
                }
                tail
            })
        });
        Ok(Streaming {
            guard: GroupGuard(child.id()),
            child,
            stderr,
            _slot: slot,
        })
    }
}

/// A running program whose stdout the caller reads.
pub struct Streaming {
    pub child: Child,
    stderr: Option<tokio::task::JoinHandle<Vec<u8>>>,
    guard: GroupGuard,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl Streaming {
    /// Reads stdout in frames of `frame_len` bytes, handing each to `each`, until the program
    /// closes it (a partial last frame is dropped), then waits for it like `finish`.
    pub async fn frames(
        mut self,
        program: &str,
        frame_len: usize,
        mut each: impl FnMut(&[u8]),
    ) -> Result<(), RunError> {
        let mut stdout = self.child.stdout.take().ok_or_else(|| RunError::Output {
            program: program.to_owned(),
            reason: "no output pipe".to_owned(),
        })?;
        let mut frame = vec![0u8; frame_len];
        loop {
            match stdout.read_exact(&mut frame).await {
                Ok(_) => each(&frame),
                Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(error) => {
                    return Err(RunError::Output {
                        program: program.to_owned(),
                        reason: error.to_string(),
                    });
                }
            }
        }
        self.finish(program).await
    }

    /// Waits for the program to end after its stdout was read; fails on a non-zero exit.
    pub async fn finish(mut self, program: &str) -> Result<(), RunError> {
        let stderr = match self.stderr.take() {
            Some(reader) => reader.await.unwrap_or_default(),
            None => Vec::new(),
        };
        let status = self.child.wait().await.map_err(|error| RunError::Output {
            program: program.to_owned(),
            reason: error.to_string(),
        })?;
        self.guard.0 = None;
        if status.success() {
            Ok(())
        } else {
            Err(RunError::Failed {
                program: program.to_owned(),
                status,
                stderr: tail(&stderr),
            })
        }
    }
}

async fn collect(child: &mut Child) -> std::io::Result<(ExitStatus, Vec<u8>, Vec<u8>)> {
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let (out, err) = tokio::join!(read_all(stdout), read_all(stderr));
    let status = child.wait().await?;
    Ok((status, out?, err?))
}

async fn read_all(pipe: Option<impl AsyncRead + Unpin>) -> std::io::Result<Vec<u8>> {
    let mut buffer = Vec::new();
    if let Some(mut pipe) = pipe {
        pipe.read_to_end(&mut buffer).await?;
    }
    Ok(buffer)
}

/// The last part of stderr, on a line boundary, as text.
fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    if text.len() <= STDERR_TAIL {
        return text.to_owned();
    }
    let mut start = text.len() - STDERR_TAIL;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let cut = &text[start..];
    cut.split_once('\n')
        .map_or(cut, |(_, rest)| rest)
        .to_owned()
}

/// Kills the whole process group when dropped before the program was waited for: a timeout
/// or a cancelled step leaves no grandchildren behind.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take().and_then(|pid| i32::try_from(pid).ok()) {
            // SAFETY: kill(2) with a negative pid signals the group this child leads; it has
            // no memory effects.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn output_failure_and_timeout_are_told_apart() {
        let runner = Runner::new(2);
        let sh = OsStr::new("sh");
        let done = runner
            .run(sh, ["-c", "echo out; echo err >&2"], Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(done.stdout, b"out\n");
        assert_eq!(done.stderr_tail, "err");

        let failed = runner
            .run(
                sh,
                ["-c", "echo broken model >&2; exit 3"],
                Duration::from_secs(5),
            )
            .await
            .unwrap_err();
        assert!(failed.to_string().contains("broken model"), "{failed}");

        let started = std::time::Instant::now();
        let slow = runner
            .run(sh, ["-c", "sleep 30"], Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(slow, RunError::Timeout { .. }), "{slow}");
        assert!(started.elapsed() < Duration::from_secs(5));

        let missing = runner
            .run(
                OsStr::new("/nonexistent/tool"),
                ["x"],
                Duration::from_secs(1),
            )
            .await
            .unwrap_err();
        assert!(matches!(missing, RunError::Start { .. }));
    }

    #[tokio::test]
    async fn input_reaches_the_program() {
        let runner = Runner::new(1);
        let input = Input {
            env: vec![("REELBASE_RUNNER_PROBE".into(), "seen".into())],
            stdin: Some(b"{\"request\": 1}".to_vec()),
        };
        let script = "cat; printf ' %s' \"$REELBASE_RUNNER_PROBE\"";
        let done = runner
            .run_with(
                OsStr::new("sh"),
                ["-c", script],
                &input,
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!(done.stdout, b"{\"request\": 1} seen");
    }

    #[test]
    fn the_tail_keeps_the_end_on_a_line_boundary() {
        let long = format!("{}\nlast line", "x".repeat(5000));
        assert_eq!(tail(long.as_bytes()), "last line");
        assert_eq!(tail(b"  short \n"), "short");
    }
}
