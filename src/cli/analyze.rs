//! `reelbase analyze PATH`: the main job in one command. Registers the file, runs every
//! processor that can run here (with a worker of its own, next to any others sharing the
//! database), prints what was found, then the health report.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::Value;
use tokio::sync::watch;

use super::{CliError, connect_migrated};
use crate::app::{detailed_reports, pipeline_checker, tools, worker_config};
use crate::cache::Redis;
use crate::config::Settings;
use crate::db::files::Source;
use crate::db::jobs;
use crate::health::resources::spawn_cpu_sampler;
use crate::health::{Limits, Probes};
use crate::ingest::Registrar;
use crate::integrations::qdrant::Qdrant;
use crate::pipeline::{registry, worker};

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// A video under one of the media roots.
    path: PathBuf,
    /// Only these processors (and what they depend on); default: every one that can run here.
    #[arg(long, value_delimiter = ',')]
    processors: Vec<String>,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
}

pub async fn run(settings: &Settings, args: AnalyzeArgs) -> Result<ExitCode, CliError> {
    let db = connect_migrated(settings).await?;
    let registrar = Registrar::new(db.clone(), &settings.media_roots, settings.ffprobe.clone());
    let path = std::path::absolute(&args.path)
        .map_err(|e| CliError::Usage(format!("{}: {e}", args.path.display())))?;
    let registered = registrar
        .register(&path.to_string_lossy(), Source::Cli)
        .await
        .map_err(|error| CliError::Usage(format!("{}: {error}", path.display())))?;
    let file = &registered.record;
    println!(
        "{} {} ({}, {:.1} s, {}x{}, {} fps): {}",
        file.file_uuid,
        file.file_name,
        file.container,
        file.duration.unwrap_or(0.0),
        file.width.unwrap_or(0),
        file.height.unwrap_or(0),
        file.fps
            .map(|f| format!("{f:.2}"))
            .unwrap_or_else(|| "-".into()),
        registered.message()
    );

    let checker = Arc::new(pipeline_checker(settings));
    let check = checker.clone();
    let report = tokio::task::spawn_blocking(move || check.check())
        .await
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let ready: Vec<&str> = registry::BUILT
        .iter()
        .copied()
        .filter(|name| report.processors.get(name) == Some(&true))
        .collect();
    let wanted: Vec<&str> = if args.processors.is_empty() {
        registry::applicable(&ready, &file.file_type)
    } else {
        args.processors.iter().map(String::as_str).collect()
    };
    let plan = registry::plan(&wanted);
    let missing: Vec<&str> = plan
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !ready.contains(n))
        .collect();
    if plan.is_empty() || !missing.is_empty() {
        return Err(CliError::Usage(format!(
            "cannot run here: {}; ready here: {}",
            if missing.is_empty() {
                "nothing was asked".to_owned()
            } else {
                missing
                    .iter()
                    .map(|name| match report.processor_problems.get(name) {
                        Some(why) => format!("{name} ({why})"),
                        None => (*name).to_owned(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            ready.join(", ")
        )));
    }
    let job = jobs::create(&db.pool, &file.file_uuid, &plan).await?;
    println!("job {}: {}", job.id, job.processors.join(", "));

    let (stop, stopped) = watch::channel(false);
    let mut config = worker_config(settings);
    config.poll = Duration::from_millis(200);
    let task = worker::spawn(
        db.clone(),
        tools(settings, &db.pool),
        checker.clone(),
        config,
        stopped.clone(),
    );
    let status = follow(&db.pool, job.id, Duration::from_secs(args.timeout)).await;
    let _ = stop.send(true);
    let _ = task.await;
    let status = status?;

    print!("{}", findings(&db.pool, &file.file_uuid).await?);

    let redis = Arc::new(
        Redis::connect_lazy(&settings.redis_url, settings.health_timeout)
            .map_err(|e| CliError::Usage(e.to_string()))?,
    );
    let qdrant = settings.qdrant_url.clone().map(|url| {
        Arc::new(Qdrant::new(
            url,
            settings.qdrant_api_key.clone(),
            settings.health_timeout,
        ))
    });
    let probes = Probes {
        db: db.clone(),
        redis,
        qdrant,
        limits: Limits {
            timeout: settings.health_timeout,
            slow: settings.health_slow,
        },
    };
    let (cpu, sampler) = spawn_cpu_sampler(stopped);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let health = detailed_reports(settings, probes, cpu, checker).get().await;
    sampler.abort();
    print!("\n{}", super::health::render("this machine", &health));
    Ok(if status == "completed" {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Prints each step as it ends; returns the job's final status.
async fn follow(pool: &sqlx::PgPool, job: i64, limit: Duration) -> Result<String, CliError> {
    let deadline = Instant::now() + limit;
    let mut reported: Vec<String> = Vec::new();
    loop {
        for step in jobs::steps(pool, job).await? {
            let ended = matches!(step.status.as_str(), "completed" | "failed" | "skipped");
            if ended && !reported.contains(&step.processor) {
                let took = step
                    .duration_ms
                    .map(|ms| format!(" in {:.1} s", ms as f64 / 1000.0));
                let why = step.reason.map(|r| format!(": {r}")).unwrap_or_default();
                println!(
                    "  {:<6} {}{}{why}",
                    step.processor,
                    step.status,
                    took.unwrap_or_default()
                );
                reported.push(step.processor);
            }
        }
        let status = jobs::get(pool, job)
            .await?
            .map(|j| j.status)
            .unwrap_or_default();
        if matches!(status.as_str(), "completed" | "failed") {
            println!("job {job} {status}");
            return Ok(status);
        }
        if Instant::now() > deadline {
            return Err(CliError::Usage(format!("job {job} did not finish in time")));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Shots, scenes, text, speech and speakers, for a person.
async fn findings(pool: &sqlx::PgPool, file_uuid: &str) -> Result<String, CliError> {
    let mut out = String::new();
    let results: Vec<(String, Value)> =
        sqlx::query_as("SELECT processor, document FROM results WHERE file_uuid = $1")
            .bind(file_uuid)
            .fetch_all(pool)
            .await?;
    let get = |name: &str| {
        results
            .iter()
            .find(|(p, _)| p == name)
            .map(|(_, d)| &d["result"])
    };
    if let Some(cut) = get("cut") {
        let shots = cut["shots"].as_array().cloned().unwrap_or_default();
        let _ = writeln!(out, "\nshots: {}", shots.len());
        for shot in &shots {
            let _ = writeln!(
                out,
                "  #{:<3} {:>8.2}-{:<8.2} s  frames {}-{}  after a {}",
                shot["index"],
                shot["start_time"].as_f64().unwrap_or(0.0),
                shot["end_time"].as_f64().unwrap_or(0.0),
                shot["start_frame"],
                shot["end_frame"],
                shot["transition"].as_str().unwrap_or("?"),
            );
        }
    }
    if let Some(scene) = get("scene") {
        let scenes = scene["scenes"].as_array().cloned().unwrap_or_default();
        let _ = writeln!(out, "scenes: {}", scenes.len());
        for s in &scenes {
            let _ = writeln!(
                out,
                "  #{:<3} {:>8.2}-{:<8.2} s  shots {}-{}",
                s["index"],
                s["start_time"].as_f64().unwrap_or(0.0),
                s["end_time"].as_f64().unwrap_or(0.0),
                s["first_shot"],
                s["last_shot"]
            );
        }
    }
    if let Some(ocr) = get("ocr") {
        let texts = ocr["texts"].as_array().cloned().unwrap_or_default();
        let _ = writeln!(out, "text on screen: {}", texts.len());
        for t in &texts {
            let _ = writeln!(
                out,
                "  {:>8.2}-{:<8.2} s  {:?} ({:.0}%)",
                t["start_time"].as_f64().unwrap_or(0.0),
                t["end_time"].as_f64().unwrap_or(0.0),
                t["text"].as_str().unwrap_or(""),
                t["confidence"].as_f64().unwrap_or(0.0)
            );
        }
    }
    if let Some(asr) = get("asr") {
        // With speakers when asrx ran: its segments are the transcript's, labelled.
        let labelled = get("asrx").and_then(|x| x["segments"].as_array());
        let segments = labelled
            .or_else(|| asr["segments"].as_array())
            .cloned()
            .unwrap_or_default();
        let language = asr["language"].as_str().unwrap_or("none");
        let _ = writeln!(
            out,
            "speech: {} segments (language {language})",
            segments.len()
        );
        for s in &segments {
            let speaker = s["speaker"]
                .as_str()
                .map(|l| format!("{l}: "))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:>8.2}-{:<8.2} s  {speaker}{}",
                s["start"].as_f64().unwrap_or(0.0),
                s["end"].as_f64().unwrap_or(0.0),
                s["text"].as_str().unwrap_or("")
            );
        }
    }
    if let Some(asrx) = get("asrx") {
        let speakers = asrx["speakers"].as_array().map_or(0, Vec::len);
        let turns = asrx["turns"].as_array().map_or(0, Vec::len);
        let _ = writeln!(out, "speakers: {speakers} in {turns} turns");
    }
    if let Some(face) = get("face") {
        let tracks = face["tracks"].as_array().map_or(0, Vec::len);
        let _ = writeln!(out, "faces: {tracks} tracks");
        for track in face["tracks"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "  {:>8.2}-{:<8.2} s  {}",
                track["start_time"].as_f64().unwrap_or(0.0),
                track["end_time"].as_f64().unwrap_or(0.0),
                track["label"].as_str().unwrap_or("?")
            );
        }
    }
    if let Some(yolo) = get("yolo") {
        let labels = yolo["labels"].as_object().cloned().unwrap_or_default();
        let _ = writeln!(
            out,
            "objects: {} detections on {} samples",
            yolo["detections"].as_array().map_or(0, Vec::len),
            yolo["frames"].as_u64().unwrap_or(0)
        );
        for (label, summary) in &labels {
            let _ = writeln!(
                out,
                "  {:>8.2}-{:<8.2} s  {label}: {} detections, up to {} at once, best {:.2}",
                summary["first_seen"].as_f64().unwrap_or(0.0),
                summary["last_seen"].as_f64().unwrap_or(0.0),
                summary["detections"].as_u64().unwrap_or(0),
                summary["most_at_once"].as_u64().unwrap_or(0),
                summary["best_score"].as_f64().unwrap_or(0.0)
            );
        }
    }
    if let Some(pose) = get("pose") {
        let _ = writeln!(
            out,
            "poses: {} people on {} samples, up to {} at once",
            pose["poses"].as_array().map_or(0, Vec::len),
            pose["frames"].as_u64().unwrap_or(0),
            pose["people_most_at_once"].as_u64().unwrap_or(0)
        );
    }
    if let Some(chunks) = get("visual_chunk") {
        let list = chunks["chunks"].as_array().cloned().unwrap_or_default();
        let _ = writeln!(out, "visual chunks: {}", list.len());
        for chunk in &list {
            let _ = writeln!(
                out,
                "  {:>8.2}-{:<8.2} s  {}",
                chunk["start_time"].as_f64().unwrap_or(0.0),
                chunk["end_time"].as_f64().unwrap_or(0.0),
                chunk["description"].as_str().unwrap_or("?")
            );
        }
    }
    Ok(out)
}
