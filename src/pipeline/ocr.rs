//! `ocr`: on-screen text. Frames are sampled once a second (and at the middle of every shot
//! when `cut` has run, so a short shot is not missed), read by tesseract, grouped into lines,
//! and a line seen on neighbouring samples becomes one span of time.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::context::{StepContext, StepError};
use crate::db::results;

/// Seconds between regular samples.
const EVERY: f64 = 1.0;
/// Clips shorter than this (seconds) are read at their first frame only.
const SHORT_CLIP: f64 = 0.25;
/// Lines tesseract is less sure of than this (0..100) are dropped.
const MIN_CONFIDENCE: f64 = 60.0;
/// Most samples read in one run, so an hour of footage stays bounded.
const MAX_SAMPLES: usize = 3600;

/// One line of text on one sampled frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub text: String,
    pub confidence: f64,
    /// x, y, width, height in pixels of the frame.
    pub bbox: [i32; 4],
}

/// A line of text over a span of time.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub text: String,
    pub start: f64,
    pub end: f64,
    pub confidence: f64,
    pub bbox: [i32; 4],
}

pub async fn run(ctx: &StepContext<'_>) -> Result<Value, StepError> {
    let duration = ctx.duration()?;
    if ctx.file.file_type != "video" {
        return Ok(json!({"texts": [], "samples": 0, "note": "no picture to read"}));
    }
    let times = sample_times(duration, &shot_middles(ctx).await?);
    let scratch = ctx.scratch()?;
    let mut samples = Vec::with_capacity(times.len());
    // A clip of a few frames may have none at its sample times (a seek past its only
    // frame finds nothing): read its first frame instead.
    let times = if duration < SHORT_CLIP {
        vec![0.0]
    } else {
        times
    };
    for (i, time) in times.iter().enumerate() {
        let image = scratch.path().join(format!("{i:06}.png"));
        let at = format!("{time:.3}");
        let input = ctx.input();
        let args: Vec<&std::ffi::OsStr> = vec![
            "-v".as_ref(),
            "error".as_ref(),
            "-nostdin".as_ref(),
            "-ss".as_ref(),
            at.as_ref(),
            "-i".as_ref(),
            input.as_os_str(),
            "-map".as_ref(),
            "0:v:0".as_ref(),
            "-frames:v".as_ref(),
            "1".as_ref(),
            image.as_os_str(),
        ];
        ctx.runner.run(ctx.ffmpeg(), args, ctx.timeout()).await?;
        if !image.exists() {
            continue;
        }
        let tsv = ctx
            .runner
            .run(
                ctx.tools.tesseract.as_os_str(),
                [
                    image.as_os_str(),
                    "stdout".as_ref(),
                    "-l".as_ref(),
                    "eng".as_ref(),
                    "--psm".as_ref(),
                    "11".as_ref(),
                    "tsv".as_ref(),
                ],
                ctx.timeout(),
            )
            .await?;
        let _ = std::fs::remove_file(&image);
        samples.push((*time, lines(&String::from_utf8_lossy(&tsv.stdout))));
    }
    let spans = spans(&samples, &times, duration);
    store(ctx, &spans).await?;
    let texts: Vec<Value> = spans
        .iter()
        .map(|s| {
            json!({"text": s.text, "start_time": s.start, "end_time": s.end,
                "confidence": (s.confidence * 10.0).round() / 10.0, "box": s.bbox})
        })
        .collect();
    Ok(json!({"samples": samples.len(), "text_count": texts.len(), "texts": texts}))
}

/// Regular samples plus shot middles, in order, each at least a tenth of a second apart.
pub fn sample_times(duration: f64, extra: &[f64]) -> Vec<f64> {
    let mut times: BTreeSet<u64> = BTreeSet::new();
    let mut t = EVERY / 2.0;
    while t < duration {
        times.insert((t * 1000.0) as u64);
        t += EVERY;
    }
    for &m in extra.iter().filter(|m| **m >= 0.0 && **m < duration) {
        times.insert((m * 1000.0) as u64);
    }
    let mut out: Vec<f64> = Vec::new();
    for ms in times {
        let t = ms as f64 / 1000.0;
        if out.last().is_none_or(|last| t - last >= 0.1) {
            out.push(t);
        }
    }
    out.truncate(MAX_SAMPLES);
    out
}

async fn shot_middles(ctx: &StepContext<'_>) -> Result<Vec<f64>, StepError> {
    let cut = results::document(ctx.pool, &ctx.file.file_uuid, "cut").await?;
    Ok(cut
        .and_then(|doc| doc["result"]["shots"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|s| Some((s["start_time"].as_f64()? + s["end_time"].as_f64()?) / 2.0))
        .collect())
}

/// Lines from tesseract's TSV: words grouped by block, paragraph and line, with the union of
/// their boxes and their mean confidence.
pub fn lines(tsv: &str) -> Vec<Line> {
    // (block, paragraph, line) -> its words as (text, confidence, box).
    type Words = Vec<(String, f64, [i32; 4])>;
    let mut grouped: Vec<((i64, i64, i64), Words)> = Vec::new();
    for row in tsv.lines().skip(1) {
        let cols: Vec<&str> = row.split('\t').collect();
        if cols.len() < 12 || cols[0] != "5" {
            continue;
        }
        let text = cols[11].trim();
        let confidence: f64 = cols[10].parse().unwrap_or(-1.0);
        if text.is_empty() || confidence < 0.0 {
            continue;
        }
        let num = |i: usize| cols[i].parse::<i64>().unwrap_or(0);
        let key = (num(2), num(3), num(4));
        let bbox = [num(6) as i32, num(7) as i32, num(8) as i32, num(9) as i32];
        match grouped.iter_mut().find(|(k, _)| *k == key) {
            Some((_, words)) => words.push((text.to_owned(), confidence, bbox)),
            None => grouped.push((key, vec![(text.to_owned(), confidence, bbox)])),
        }
    }
    grouped
        .into_iter()
        .map(|(_, words)| {
            let text = words
                .iter()
                .map(|w| w.0.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            let confidence = words.iter().map(|w| w.1).sum::<f64>() / words.len() as f64;
            let x0 = words.iter().map(|w| w.2[0]).min().unwrap_or(0);
            let y0 = words.iter().map(|w| w.2[1]).min().unwrap_or(0);
            let x1 = words.iter().map(|w| w.2[0] + w.2[2]).max().unwrap_or(0);
            let y1 = words.iter().map(|w| w.2[1] + w.2[3]).max().unwrap_or(0);
            Line {
                text,
                confidence,
                bbox: [x0, y0, x1 - x0, y1 - y0],
            }
        })
        .filter(|line| {
            line.confidence >= MIN_CONFIDENCE && line.text.chars().any(char::is_alphanumeric)
        })
        .collect()
}

/// Joins a line seen on consecutive samples into one span. It starts half-way between the
/// sample before its first and its first, and ends half-way between its last and the next
/// (the best guess between two looks), within the video.
pub fn spans(samples: &[(f64, Vec<Line>)], times: &[f64], duration: f64) -> Vec<Span> {
    let normal = |text: &str| {
        text.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    let mut open: Vec<(Span, usize)> = Vec::new();
    let mut done: Vec<Span> = Vec::new();
    for (index, (time, lines)) in samples.iter().enumerate() {
        let next = times
            .iter()
            .copied()
            .find(|t| t > time)
            .unwrap_or(time + EVERY);
        let next = ((time + next) / 2.0).min(duration);
        let previous = times.iter().copied().rev().find(|t| t < time);
        let begins = previous.map_or(0.0, |p| (p + time) / 2.0);
        let mut still_open = Vec::new();
        for line in lines {
            let found = open.iter().position(|(span, last)| {
                *last + 1 == index && normal(&span.text) == normal(&line.text)
            });
            match found {
                Some(position) => {
                    let (mut span, _) = open.remove(position);
                    span.end = next;
                    span.confidence = span.confidence.max(line.confidence);
                    still_open.push((span, index));
                }
                None => still_open.push((
                    Span {
                        text: line.text.clone(),
                        start: begins,
                        end: next,
                        confidence: line.confidence,
                        bbox: line.bbox,
                    },
                    index,
                )),
            }
        }
        done.extend(open.drain(..).map(|(span, _)| span));
        open = still_open;
    }
    done.extend(open.into_iter().map(|(span, _)| span));
    done.sort_by(|a, b| a.start.total_cmp(&b.start));
    done
}

async fn store(ctx: &StepContext<'_>, spans: &[Span]) -> Result<(), StepError> {
    let mut tx = ctx.pool.begin().await?;
    sqlx::query("DELETE FROM text_spans WHERE file_uuid = $1 AND source = 'ocr'")
        .bind(&ctx.file.file_uuid)
        .execute(&mut *tx)
        .await?;
    for span in spans {
        sqlx::query(
            "INSERT INTO text_spans (file_uuid, source, start_time, end_time, text, confidence, box) \
             VALUES ($1, 'ocr', $2, $3, $4, $5, $6)",
        )
        .bind(&ctx.file.file_uuid)
        .bind(span.start)
        .bind(span.end)
        .bind(&span.text)
        .bind(span.confidence)
        .bind(span.bbox.to_vec())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TSV: &str = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext
1\t1\t0\t0\t0\t0\t0\t0\t640\t360\t-1\t
5\t1\t1\t1\t1\t1\t100\t50\t80\t30\t95.1\tBREAKING
5\t1\t1\t1\t1\t2\t190\t52\t60\t28\t91.0\tNEWS
5\t1\t2\t1\t1\t1\t10\t300\t20\t10\t12.0\t~
";

    #[test]
    fn words_become_lines_with_their_box() {
        let lines = lines(TSV);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0].text, "BREAKING NEWS");
        assert_eq!(lines[0].bbox, [100, 50, 150, 30]);
        assert!((lines[0].confidence - 93.05).abs() < 0.01);
    }

    #[test]
    fn a_line_on_neighbouring_samples_is_one_span() {
        let line = |text: &str| Line {
            text: text.into(),
            confidence: 90.0,
            bbox: [0, 0, 1, 1],
        };
        let times = [0.5, 1.5, 2.5, 3.5];
        let samples = vec![
            (0.5, vec![line("Hello")]),
            (1.5, vec![line("hello ")]),
            (2.5, vec![]),
            (3.5, vec![line("Hello")]),
        ];
        let spans = spans(&samples, &times, 3.8);
        let got: Vec<(f64, f64)> = spans.iter().map(|s| (s.start, s.end)).collect();
        assert_eq!(got, [(0.0, 2.0), (3.0, 3.8)]);
    }

    #[test]
    fn samples_cover_every_second_and_each_shot() {
        let times = sample_times(3.0, &[0.55, 2.9, 7.0]);
        assert_eq!(times, [0.5, 1.5, 2.5, 2.9]);
    }
}
