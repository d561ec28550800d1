//! Faces over time: detections on sampled frames linked into tracks within a shot, the
//! tracks' mean vectors, and the clustering that gives one label to one stranger across a
//! file. Pure functions over vectors and boxes, so they are tested without a model.

/// Cosine distance at or under which two face vectors are the same person. dlib's vectors of
/// one person measured 0.002-0.051 apart (mean 0.017) on the test photos (flipped, scaled,
/// lit differently), different people 0.108-0.210: 0.08 lies in the gap, a little nearer the
/// same-person side because real footage varies more than photos.
pub const SAME_PERSON: f64 = 0.08;
/// Linking neighbouring samples of one shot also has the position to go by, so it may be a
/// little looser than naming.
const LINK: f64 = 0.10;

/// One face on one sampled frame.
#[derive(Debug, Clone)]
pub struct Detection {
    pub sample: usize,
    pub time: f64,
    /// x, y, width, height in pixels.
    pub bbox: [f64; 4],
    pub confidence: f64,
    pub vector: Vec<f32>,
}

/// One face followed through a shot.
#[derive(Debug, Clone)]
pub struct Track {
    pub shot: Option<usize>,
    pub detections: Vec<Detection>,
}

impl Track {
    pub fn start(&self) -> f64 {
        self.detections.first().map_or(0.0, |d| d.time)
    }

    pub fn end(&self) -> f64 {
        self.detections.last().map_or(0.0, |d| d.time)
    }

    /// The mean of the detections' vectors, unit length.
    pub fn vector(&self) -> Vec<f32> {
        mean(self.detections.iter().map(|d| d.vector.as_slice()))
    }
}

pub fn cosine_distance(a: &[f32], b: &[f32]) -> f64 {
    let (mut dot, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        return 1.0;
    }
    1.0 - dot / (aa.sqrt() * bb.sqrt())
}

/// The unit-length mean of unit-length copies of `vectors`.
pub fn mean<'a>(vectors: impl Iterator<Item = &'a [f32]>) -> Vec<f32> {
    let mut sum: Vec<f64> = Vec::new();
    for v in vectors {
        let norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        if sum.is_empty() {
            sum = vec![0.0; v.len()];
        }
        for (s, x) in sum.iter_mut().zip(v) {
            *s += f64::from(*x) / norm.max(1e-12);
        }
    }
    let norm = sum.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
    sum.iter().map(|x| (x / norm) as f32).collect()
}

/// Links detections (in any order) into tracks. A detection continues a track of the same
/// shot whose last face was at most `max_gap` seconds before, on an earlier sample, with a
/// vector within `LINK` and a box that overlaps or lies within a box's width of it; the
/// closest such pairs are linked first.
pub fn link(
    mut detections: Vec<Detection>,
    shot_of: impl Fn(f64) -> Option<usize>,
    max_gap: f64,
) -> Vec<Track> {
    detections.sort_by(|a, b| {
        a.sample
            .cmp(&b.sample)
            .then(a.bbox[0].total_cmp(&b.bbox[0]))
    });
    let mut tracks: Vec<Track> = Vec::new();
    let mut i = 0;
    while i < detections.len() {
        let sample = detections[i].sample;
        let end = detections[i..]
            .iter()
            .position(|d| d.sample != sample)
            .map_or(detections.len(), |n| i + n);
        let group = &detections[i..end];
        let shot = shot_of(group[0].time);
        let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
        for (g, face) in group.iter().enumerate() {
            for (t, track) in tracks.iter().enumerate() {
                let last = track.detections.last().expect("tracks are never empty");
                if track.shot != shot || last.sample >= sample || face.time - last.time > max_gap {
                    continue;
                }
                let distance = cosine_distance(&face.vector, &last.vector);
                if distance <= LINK && near(&face.bbox, &last.bbox) {
                    pairs.push((distance, g, t));
                }
            }
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut face_taken = vec![false; group.len()];
        let mut track_taken = vec![false; tracks.len()];
        for (_, g, t) in pairs {
            if !face_taken[g] && !track_taken[t] {
                face_taken[g] = true;
                track_taken[t] = true;
                tracks[t].detections.push(group[g].clone());
            }
        }
        for (g, face) in group.iter().enumerate() {
            if !face_taken[g] {
                tracks.push(Track {
                    shot,
                    detections: vec![face.clone()],
                });
            }
        }
        i = end;
    }
    tracks.sort_by(|a, b| a.start().total_cmp(&b.start()));
    tracks
}

/// Boxes that overlap, or whose centres are within the larger box's width.
fn near(a: &[f64; 4], b: &[f64; 4]) -> bool {
    let centre = |r: &[f64; 4]| (r[0] + r[2] / 2.0, r[1] + r[3] / 2.0);
    let ((ax, ay), (bx, by)) = (centre(a), centre(b));
    let reach = a[2].max(b[2]).max(a[3]).max(b[3]);
    ((ax - bx).powi(2) + (ay - by).powi(2)).sqrt() <= reach
}

/// Groups vectors into people: average linkage on cosine distance, merging while the closest
/// pair of groups is within `SAME_PERSON`. Returns a group number per vector, numbered in
/// input order of first member (0, 1, ...). Deterministic.
pub fn cluster(vectors: &[Vec<f32>]) -> Vec<usize> {
    let n = vectors.len();
    let mut groups: Vec<Vec<usize>> = (0..n).map(|i| vec![i]).collect();
    let distance: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| cosine_distance(&vectors[i], &vectors[j]))
                .collect()
        })
        .collect();
    loop {
        let mut best: Option<(f64, usize, usize)> = None;
        for a in 0..groups.len() {
            for b in a + 1..groups.len() {
                let pairs = (groups[a].len() * groups[b].len()) as f64;
                let total: f64 = groups[a]
                    .iter()
                    .flat_map(|&i| groups[b].iter().map(move |&j| (i, j)))
                    .map(|(i, j)| distance[i][j])
                    .sum();
                let average = total / pairs;
                if best.is_none_or(|(d, _, _)| average < d) {
                    best = Some((average, a, b));
                }
            }
        }
        match best {
            Some((d, a, b)) if d <= SAME_PERSON => {
                let merged = groups.remove(b);
                groups[a].extend(merged);
            }
            _ => break,
        }
    }
    groups.sort_by_key(|g| *g.iter().min().expect("groups are never empty"));
    let mut label = vec![0; n];
    for (number, group) in groups.iter().enumerate() {
        for &member in group {
            label[member] = number;
        }
    }
    label
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unit vector pointing mostly along `axis`, nudged by `wobble`.
    fn person(axis: usize, wobble: f32) -> Vec<f32> {
        let mut v = vec![0.05f32; 128];
        v[axis] = 1.0;
        v[(axis + 1) % 128] += wobble;
        v
    }

    fn face(sample: usize, x: f64, vector: Vec<f32>) -> Detection {
        Detection {
            sample,
            time: sample as f64 * 0.5,
            bbox: [x, 100.0, 80.0, 80.0],
            confidence: 0.9,
            vector,
        }
    }

    #[test]
    fn two_people_side_by_side_make_two_tracks_per_shot() {
        let mut faces = Vec::new();
        for s in 0..6 {
            faces.push(face(s, 100.0 + s as f64 * 5.0, person(0, 0.01 * s as f32)));
            faces.push(face(s, 400.0, person(7, 0.0)));
        }
        // A cut at 1.5 s: the same people after it are new tracks.
        let tracks = link(faces, |t| Some(usize::from(t >= 1.5)), 1.25);
        assert_eq!(tracks.len(), 4, "{tracks:?}");
        for track in &tracks {
            let first = &track.detections[0].vector;
            assert!(
                track
                    .detections
                    .iter()
                    .all(|d| &d.vector == first || cosine_distance(first, &d.vector) < LINK)
            );
            assert_eq!(track.detections.len(), 3);
        }
        let labels = cluster(&tracks.iter().map(Track::vector).collect::<Vec<_>>());
        assert_eq!(labels.iter().max(), Some(&1), "two people: {labels:?}");
        assert_eq!(labels[0], labels[2]);
        assert_ne!(labels[0], labels[1]);
    }

    #[test]
    fn a_face_that_jumps_across_the_frame_or_a_long_gap_starts_a_new_track() {
        let faces = vec![
            face(0, 100.0, person(0, 0.0)),
            face(1, 900.0, person(0, 0.0)),
            face(9, 900.0, person(0, 0.0)),
        ];
        let tracks = link(faces, |_| Some(0), 1.25);
        assert_eq!(tracks.len(), 3);
    }

    #[test]
    fn distances_of_alike_and_different_vectors() {
        assert!(cosine_distance(&person(3, 0.0), &person(3, 0.05)) < SAME_PERSON);
        assert!(cosine_distance(&person(3, 0.0), &person(9, 0.0)) > SAME_PERSON);
        assert_eq!(cosine_distance(&[0.0; 4], &[1.0; 4]), 1.0);
        let m = mean([person(1, 0.0), person(1, 0.0)].iter().map(Vec::as_slice));
        let norm: f32 = m.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }
}
