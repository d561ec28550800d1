//! From detections to chunks: objects are followed from sample to sample within a shot
//! (same label, overlapping boxes), and each shot is cut where what is visible changes
//! ("a person" becomes "2 people and a bicycle"), so that one chunk is one stretch of
//! footage with one description.

use std::collections::BTreeMap;

use crate::pipeline::yolo::Detection;

/// A detection continues a track when its box overlaps the track's last box this much
/// (intersection over union) ...
const LINK_IOU: f64 = 0.2;
/// ... and the track was last seen at most this many samples before (one or two misses).
const MAX_GAP: usize = 3;
/// A track seen on one sample only is kept when the detector was at least this sure.
const LONE_SCORE: f64 = 0.5;
/// Stretches shorter than this are folded into a neighbour: a flicker of the detector does
/// not make a chunk of its own.
const MIN_CHUNK_SECONDS: f64 = 1.0;

/// One object followed through part of a shot.
#[derive(Debug, Clone)]
pub struct Track {
    pub label: String,
    pub shot: usize,
    /// (sample, time, score, box), in time order.
    pub boxes: Vec<(usize, f64, f64, [f64; 4])>,
}

impl Track {
    pub fn first(&self) -> usize {
        self.boxes[0].0
    }

    pub fn last(&self) -> usize {
        self.boxes[self.boxes.len() - 1].0
    }

    pub fn mean_score(&self) -> f64 {
        self.boxes.iter().map(|b| b.2).sum::<f64>() / self.boxes.len() as f64
    }
}

/// A stretch of one shot with what is visible in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub shot: usize,
    pub start: f64,
    pub end: f64,
    /// Label -> how many at once (the most seen together within the chunk).
    pub counts: BTreeMap<String, usize>,
    /// Indexes into the track list of the objects visible in the chunk.
    pub tracks: Vec<usize>,
    /// The sample time with the most objects (ties: the highest total score).
    pub frame_time: f64,
}

/// The shot a time falls in (the last shot when past its end); 0 without shots.
fn shot_of(shots: &[(f64, f64)], time: f64) -> usize {
    shots
        .iter()
        .position(|(start, end)| time >= *start && time < *end)
        .unwrap_or_else(|| {
            shots
                .iter()
                .rposition(|(start, _)| time >= *start)
                .unwrap_or(0)
        })
}

fn iou(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let ix = (a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0]);
    let iy = (a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1]);
    if ix <= 0.0 || iy <= 0.0 {
        return 0.0;
    }
    let inter = ix * iy;
    inter / (a[2] * a[3] + b[2] * b[3] - inter)
}

/// Links detections of one label into tracks within shots.
pub fn follow(detections: &[Detection], shots: &[(f64, f64)]) -> Vec<Track> {
    let mut order: Vec<&Detection> = detections.iter().collect();
    order.sort_by(|a, b| a.sample.cmp(&b.sample).then(b.score.total_cmp(&a.score)));
    let mut tracks: Vec<Track> = Vec::new();
    for d in order {
        let shot = shot_of(shots, d.time);
        let best = tracks
            .iter()
            .enumerate()
            .filter(|(_, t)| {
                t.label == d.label
                    && t.shot == shot
                    && t.last() < d.sample
                    && d.sample - t.last() <= MAX_GAP
            })
            .map(|(i, t)| (i, iou(&t.boxes[t.boxes.len() - 1].3, &d.bbox)))
            .filter(|(_, overlap)| *overlap >= LINK_IOU)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        match best {
            Some((i, _)) => tracks[i].boxes.push((d.sample, d.time, d.score, d.bbox)),
            None => tracks.push(Track {
                label: d.label.clone(),
                shot,
                boxes: vec![(d.sample, d.time, d.score, d.bbox)],
            }),
        }
    }
    tracks.retain(|t| t.boxes.len() > 1 || t.boxes[0].2 >= LONE_SCORE);
    tracks
}

/// Cuts each shot where the set of visible objects changes; stretches with nothing on them
/// are left out.
pub fn chunks(tracks: &[Track], shots: &[(f64, f64)], rate: f64) -> Vec<Chunk> {
    let mut by_shot: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, t) in tracks.iter().enumerate() {
        by_shot.entry(t.shot).or_default().push(i);
    }
    let mut out = Vec::new();
    for (shot, members) in by_shot {
        let first = members
            .iter()
            .map(|&i| tracks[i].first())
            .min()
            .unwrap_or(0);
        let last = members.iter().map(|&i| tracks[i].last()).max().unwrap_or(0);
        // What is visible at each sample: a track counts from its first to its last sample.
        let mut runs: Vec<(usize, usize, BTreeMap<String, usize>)> = Vec::new();
        for sample in first..=last {
            let mut counts = BTreeMap::new();
            for &i in &members {
                if tracks[i].first() <= sample && sample <= tracks[i].last() {
                    *counts.entry(tracks[i].label.clone()).or_insert(0) += 1;
                }
            }
            match runs.last_mut() {
                Some(run) if run.2 == counts => run.1 = sample,
                _ => runs.push((sample, sample, counts)),
            }
        }
        let min_samples = (MIN_CHUNK_SECONDS * rate).ceil().max(1.0) as usize;
        let runs = fold_short(runs, min_samples);
        let shot_end = shots.get(shot).map(|s| s.1).unwrap_or(f64::INFINITY);
        for (from, to, counts) in runs.into_iter().filter(|r| !r.2.is_empty()) {
            let start = from as f64 / rate;
            let end = ((to + 1) as f64 / rate).min(shot_end).max(start);
            let visible: Vec<usize> = members
                .iter()
                .copied()
                .filter(|&i| tracks[i].first() <= to && tracks[i].last() >= from)
                .collect();
            let frame_time = busiest_sample(tracks, &visible, from, to) as f64 / rate;
            out.push(Chunk {
                shot,
                start,
                end,
                counts,
                tracks: visible,
                frame_time,
            });
        }
    }
    out
}

/// Folds runs shorter than `min` samples into the neighbour before (or after, for the
/// first), taking the larger count of each label, then joins equal neighbours.
fn fold_short(
    runs: Vec<(usize, usize, BTreeMap<String, usize>)>,
    min: usize,
) -> Vec<(usize, usize, BTreeMap<String, usize>)> {
    let mut out: Vec<(usize, usize, BTreeMap<String, usize>)> = Vec::new();
    let mut pending: Option<(usize, usize, BTreeMap<String, usize>)> = None;
    for run in runs {
        let run = match pending.take() {
            Some(short) => (short.0, run.1, union(&short.2, &run.2)),
            None => run,
        };
        let short = run.1 - run.0 + 1 < min;
        match out.last_mut() {
            Some(prev) if short => {
                prev.1 = run.1;
                prev.2 = union(&prev.2, &run.2);
            }
            None if short => pending = Some(run),
            _ => out.push(run),
        }
    }
    if let Some(short) = pending {
        out.push(short);
    }
    let mut joined: Vec<(usize, usize, BTreeMap<String, usize>)> = Vec::new();
    for run in out {
        match joined.last_mut() {
            Some(prev) if prev.2 == run.2 => prev.1 = run.1,
            _ => joined.push(run),
        }
    }
    joined
}

fn union(a: &BTreeMap<String, usize>, b: &BTreeMap<String, usize>) -> BTreeMap<String, usize> {
    let mut out = a.clone();
    for (label, n) in b {
        let e = out.entry(label.clone()).or_insert(0);
        *e = (*e).max(*n);
    }
    out
}

/// The sample in `from..=to` where the visible tracks have the most boxes (then the most
/// total score).
fn busiest_sample(tracks: &[Track], visible: &[usize], from: usize, to: usize) -> usize {
    let mut best = (from, 0usize, 0.0f64);
    for sample in from..=to {
        let mut n = 0;
        let mut score = 0.0;
        for &i in visible {
            if let Some(b) = tracks[i].boxes.iter().find(|b| b.0 == sample) {
                n += 1;
                score += b.2;
            }
        }
        if n > best.1 || (n == best.1 && score > best.2) {
            best = (sample, n, score);
        }
    }
    best.0
}

/// "2 people, a bicycle and a car": most numerous first, then by name.
pub fn describe(counts: &BTreeMap<String, usize>) -> String {
    let mut items: Vec<(&String, &usize)> = counts.iter().collect();
    items.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let parts: Vec<String> = items
        .into_iter()
        .map(|(label, &n)| match n {
            1 => format!("{} {label}", article(label)),
            _ => format!("{n} {}", plural(label)),
        })
        .collect();
    match parts.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

fn article(label: &str) -> &'static str {
    if label.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

fn plural(label: &str) -> String {
    let (head, last) = match label.rsplit_once(' ') {
        Some((head, last)) => (format!("{head} "), last),
        None => (String::new(), label),
    };
    let word = match last {
        "person" => "people".to_owned(),
        "mouse" => "mice".to_owned(),
        "knife" => "knives".to_owned(),
        "sheep" | "skis" | "scissors" => last.to_owned(),
        w if w.ends_with('s') || w.ends_with('x') || w.ends_with("ch") || w.ends_with("sh") => {
            format!("{w}es")
        }
        w => format!("{w}s"),
    };
    format!("{head}{word}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(sample: usize, label: &str, x: f64, score: f64) -> Detection {
        Detection {
            sample,
            time: sample as f64 / 2.0,
            label: label.into(),
            score,
            bbox: [x, 0.2, 0.2, 0.5],
        }
    }

    #[test]
    fn descriptions_count_and_pluralise() {
        let counts = |pairs: &[(&str, usize)]| {
            pairs
                .iter()
                .map(|(l, n)| (l.to_string(), *n))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(
            describe(&counts(&[("person", 2), ("bicycle", 1)])),
            "2 people and a bicycle"
        );
        assert_eq!(
            describe(&counts(&[("cup", 1), ("orange", 1), ("bus", 3)])),
            "3 buses, a cup and an orange"
        );
        assert_eq!(describe(&counts(&[("wine glass", 2)])), "2 wine glasses");
        assert_eq!(describe(&BTreeMap::new()), "");
    }

    #[test]
    fn tracks_follow_overlapping_boxes_and_split_at_shots() {
        // A person moving slowly across samples 0-5, a cut at 1.5 s (sample 3), and a cat
        // seen once with low confidence (dropped).
        let mut found: Vec<Detection> = (0..6)
            .map(|s| det(s, "person", 0.1 + 0.02 * s as f64, 0.7))
            .collect();
        found.push(det(4, "cat", 0.7, 0.3));
        let shots = [(0.0, 1.5), (1.5, 3.0)];
        let tracks = follow(&found, &shots);
        assert_eq!(tracks.len(), 2, "{tracks:?}");
        assert_eq!(
            (tracks[0].first(), tracks[0].last(), tracks[0].shot),
            (0, 2, 0)
        );
        assert_eq!(
            (tracks[1].first(), tracks[1].last(), tracks[1].shot),
            (3, 5, 1)
        );
    }

    #[test]
    fn chunks_change_with_what_is_visible() {
        // One shot of 10 s at 2 samples/s: a person throughout, a second person and a
        // bicycle from 4 s, and a one-sample unsure "dog" at 2 s that is dropped.
        let mut found: Vec<Detection> = (0..20).map(|s| det(s, "person", 0.05, 0.8)).collect();
        found.extend((8..20).map(|s| det(s, "person", 0.5, 0.7)));
        found.extend((8..20).map(|s| det(s, "bicycle", 0.75, 0.6)));
        found.push(det(4, "dog", 0.3, 0.4));
        let shots = [(0.0, 10.0)];
        let tracks = follow(&found, &shots);
        let chunks = chunks(&tracks, &shots, 2.0);
        let described: Vec<(String, f64, f64)> = chunks
            .iter()
            .map(|c| (describe(&c.counts), c.start, c.end))
            .collect();
        assert_eq!(
            described,
            [
                ("a person".to_owned(), 0.0, 4.0),
                ("2 people and a bicycle".to_owned(), 4.0, 10.0),
            ]
        );
        assert!((4.0..10.0).contains(&chunks[1].frame_time));
        assert_eq!(chunks[1].tracks.len(), 3);
    }

    #[test]
    fn short_stretches_fold_into_their_neighbour() {
        let counts = |pairs: &[(&str, usize)]| {
            pairs
                .iter()
                .map(|(l, n)| (l.to_string(), *n))
                .collect::<BTreeMap<_, _>>()
        };
        let runs = vec![
            (0, 0, counts(&[("cat", 1)])),
            (1, 5, counts(&[("person", 1)])),
            (6, 6, counts(&[("person", 2)])),
            (7, 9, counts(&[("person", 1)])),
        ];
        let folded = fold_short(runs, 2);
        assert_eq!(
            folded,
            vec![
                (0, 6, counts(&[("cat", 1), ("person", 2)])),
                (7, 9, counts(&[("person", 1)])),
            ]
        );
    }
}
