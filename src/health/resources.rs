//! Machine resources: CPU use sampled over an interval by a background task (a one-shot
//! reading of `/proc/stat` is an average since boot, not "now"), memory from `/proc/meminfo`,
//! and free disk space where reelbase writes its data.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often CPU use is sampled; the reported figure covers the last such interval.
pub const CPU_SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Resources {
    /// Busy share of all CPUs over the last sample interval; `null` before the first sample.
    pub cpu_used_percent: Option<f64>,
    pub memory_available_mb: u64,
    pub memory_used_percent: f64,
    pub memory_total_mb: u64,
    pub disk: Option<Disk>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Disk {
    /// The folder measured: `REELBASE_DATA_DIR`, or its nearest existing parent.
    pub path: PathBuf,
    pub available_mb: u64,
    pub used_percent: f64,
}

/// The latest CPU figure, kept by `spawn_cpu_sampler`.
#[derive(Clone, Default)]
pub struct CpuGauge(Arc<Mutex<Option<f64>>>);

impl CpuGauge {
    pub fn percent(&self) -> Option<f64> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Samples `/proc/stat` every second until `stop` flips to true.
pub fn spawn_cpu_sampler(mut stop: watch::Receiver<bool>) -> (CpuGauge, JoinHandle<()>) {
    let gauge = CpuGauge::default();
    let shared = gauge.clone();
    let task = tokio::spawn(async move {
        let mut previous = read_cpu_times();
        // The first figure comes after a short interval, so a new server has one quickly.
        let mut wait = CPU_SAMPLE_INTERVAL / 4;
        loop {
            tokio::select! {
                () = tokio::time::sleep(wait) => wait = CPU_SAMPLE_INTERVAL,
                _ = stop.wait_for(|stop| *stop) => return,
            }
            let current = read_cpu_times();
            if let (Some(before), Some(now)) = (previous, current) {
                let total = now.total.saturating_sub(before.total);
                let idle = now.idle.saturating_sub(before.idle);
                if total > 0 {
                    let busy = 100.0 * (total - idle) as f64 / total as f64;
                    *shared.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(round1(busy));
                }
            }
            previous = current;
        }
    });
    (gauge, task)
}

#[derive(Clone, Copy)]
struct CpuTimes {
    total: u64,
    idle: u64,
}

/// The aggregate `cpu` line: user nice system idle iowait irq softirq steal …
fn read_cpu_times() -> Option<CpuTimes> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    parse_cpu_line(text.lines().next()?)
}

fn parse_cpu_line(line: &str) -> Option<CpuTimes> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let values: Vec<u64> = fields.take(8).filter_map(|v| v.parse().ok()).collect();
    if values.len() < 5 {
        return None;
    }
    let idle = values[3] + values[4]; // idle + iowait
    Some(CpuTimes {
        total: values.iter().sum(),
        idle,
    })
}

/// Reads memory and disk now; CPU from the gauge.
pub fn measure(cpu: &CpuGauge, data_dir: &Path) -> Resources {
    let (total_kb, available_kb) = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| parse_meminfo(&text))
        .unwrap_or((0, 0));
    let used_percent = if total_kb > 0 {
        round1(100.0 * (total_kb - available_kb.min(total_kb)) as f64 / total_kb as f64)
    } else {
        0.0
    };
    Resources {
        cpu_used_percent: cpu.percent(),
        memory_available_mb: available_kb / 1024,
        memory_used_percent: used_percent,
        memory_total_mb: total_kb / 1024,
        disk: disk(data_dir),
    }
}

fn parse_meminfo(text: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
    };
    Some((field("MemTotal:")?, field("MemAvailable:")?))
}

/// Free space of the file system holding `dir` (or its nearest existing parent, so a data
/// folder not created yet still reports the disk it will land on).
fn disk(dir: &Path) -> Option<Disk> {
    let absolute = std::path::absolute(dir).ok()?;
    let existing = absolute.ancestors().find(|p| p.exists())?.to_owned();
    let c_path = std::ffi::CString::new(existing.as_os_str().as_encoded_bytes()).ok()?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is a valid NUL-terminated string and `stats` points to writable
    // memory of the right size; statvfs fills it completely when it returns 0.
    let stats = unsafe {
        if libc::statvfs(c_path.as_ptr(), stats.as_mut_ptr()) != 0 {
            return None;
        }
        stats.assume_init()
    };
    let block = stats.f_frsize as u64;
    let total = stats.f_blocks as u64 * block;
    let available = stats.f_bavail as u64 * block;
    let free = stats.f_bfree as u64 * block;
    // As `df` counts it: used out of what users can have (blocks reserved for root excluded).
    let used = total.saturating_sub(free);
    let usable = used + available;
    let used_percent = if usable > 0 {
        round1(100.0 * used as f64 / usable as f64)
    } else {
        0.0
    };
    Some(Disk {
        path: existing,
        available_mb: available / (1024 * 1024),
        used_percent,
    })
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_line_counts_iowait_as_idle() {
        let times = parse_cpu_line("cpu  100 0 50 800 50 0 0 0 0 0").unwrap();
        assert_eq!((times.total, times.idle), (1000, 850));
        assert!(parse_cpu_line("cpu0 1 2 3 4 5").is_none());
    }

    #[test]
    fn meminfo_gives_total_and_available() {
        let text = "MemTotal:       24000000 kB\nMemFree:  1 kB\nMemAvailable:   18000000 kB\n";
        assert_eq!(parse_meminfo(text), Some((24_000_000, 18_000_000)));
    }

    #[test]
    fn disk_is_measured_for_a_folder_that_does_not_exist_yet() {
        let disk = disk(Path::new("/tmp/reelbase-not-created-yet/data")).unwrap();
        assert_eq!(disk.path, PathBuf::from("/tmp"));
        assert!(disk.available_mb > 0);
    }
}
