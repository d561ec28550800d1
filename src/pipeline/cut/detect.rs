//! Shot boundaries from a stream of small grey frames.
//!
//! Three tests, each adaptive to the footage around it:
//! - a hard cut is a frame whose change from the previous one (pixel difference and luma
//!   histogram distance) stands out against its neighbours' changes by a ratio, and above a
//!   floor;
//! - a fade through black is a run of near-black frames between brighter footage; the boundary
//!   is the middle of the run;
//! - a dissolve is a span where frames one window apart differ as much as a cut would, while no
//!   single step does; the boundary is the middle of the transition.

/// Bins of the luma histogram.
const BINS: usize = 32;
/// A step must change at least this much (0..1) to be a cut...
const CUT_FLOOR: f32 = 0.08;
/// ...and this many times more than the steps around it.
const CUT_RATIO: f32 = 3.0;
/// Steps on each side that a cut is compared with.
const NEIGHBOURS: usize = 3;
/// Mean luma (0..1) under which a frame counts as black.
const BLACK: f32 = 0.06;
/// Change between frames a window apart that a dissolve must reach.
const DISSOLVE_FLOOR: f32 = 0.2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Cut,
    Fade,
    Dissolve,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Cut => "cut",
            Kind::Fade => "fade",
            Kind::Dissolve => "dissolve",
        }
    }
}

/// A boundary: the first frame of the new shot, what kind, and how sure (0..1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Boundary {
    pub frame: u64,
    pub kind: Kind,
    pub score: f32,
}

/// Takes frames one by one (each `width * height` grey bytes) and keeps only a few numbers per
/// frame, plus one window of frames, so memory does not grow with the length of the video.
pub struct Detector {
    frame_len: usize,
    /// Pixels per plane.
    plane: usize,
    /// Frames one window apart are compared for dissolves.
    window: usize,
    /// Minimum frames between two boundaries.
    min_shot: usize,
    recent: std::collections::VecDeque<Vec<u8>>,
    previous_hist: Option<[f32; BINS]>,
    /// Per frame: change from the previous frame, mean luma, change from a window back.
    step: Vec<f32>,
    luma: Vec<f32>,
    far: Vec<f32>,
}

impl Detector {
    /// `fps` sets the dissolve window (one second) and the shortest shot (a third of one).
    pub fn new(width: usize, height: usize, fps: f64) -> Self {
        let fps = if fps.is_finite() && fps > 0.0 {
            fps
        } else {
            25.0
        };
        Self {
            frame_len: width * height * 3,
            plane: width * height,
            window: (fps.round() as usize).max(4),
            min_shot: ((fps / 3.0).round() as usize).max(2),
            recent: std::collections::VecDeque::new(),
            previous_hist: None,
            step: Vec::new(),
            luma: Vec::new(),
            far: Vec::new(),
        }
    }

    pub fn frame_len(&self) -> usize {
        self.frame_len
    }

    pub fn frames(&self) -> u64 {
        self.step.len() as u64
    }

    pub fn push(&mut self, frame: &[u8]) {
        debug_assert_eq!(frame.len(), self.frame_len);
        let luma = &frame[..self.plane];
        let hist = histogram(luma);
        let mean = luma.iter().map(|&p| u32::from(p)).sum::<u32>() as f32
            / (255.0 * luma.len().max(1) as f32);
        let step = match (self.recent.back(), &self.previous_hist) {
            (Some(previous), Some(previous_hist)) => {
                0.5 * self.difference(previous, frame) + 0.5 * hist_distance(previous_hist, &hist)
            }
            _ => 0.0,
        };
        let far = if self.recent.len() >= self.window {
            self.difference(&self.recent[self.recent.len() - self.window], frame)
        } else {
            0.0
        };
        self.step.push(step);
        self.luma.push(mean);
        self.far.push(far);
        self.previous_hist = Some(hist);
        if self.recent.len() > self.window {
            let mut oldest = self.recent.pop_front().unwrap_or_default();
            oldest.clear();
            oldest.extend_from_slice(frame);
            self.recent.push_back(oldest);
        } else {
            self.recent.push_back(frame.to_vec());
        }
    }

    /// How different two frames look, 0..1: the mean pixel difference of the luma plane, or
    /// of the chroma planes (doubled: colours span a narrower range) when that is larger.
    fn difference(&self, a: &[u8], b: &[u8]) -> f32 {
        let luma = difference(&a[..self.plane], &b[..self.plane]);
        let chroma = difference(&a[self.plane..], &b[self.plane..]);
        luma.max((2.0 * chroma).min(1.0))
    }

    /// The boundaries found, in order.
    pub fn finish(&self) -> Vec<Boundary> {
        let mut found = self.cuts();
        found.extend(self.fades());
        found.sort_by_key(|b| b.frame);
        let dissolves = self.dissolves(&found);
        found.extend(dissolves);
        found.sort_by_key(|b| b.frame);
        // Two boundaries closer than the shortest shot are one: keep the surer.
        let mut kept: Vec<Boundary> = Vec::new();
        for boundary in found {
            match kept.last_mut() {
                Some(last) if boundary.frame - last.frame < self.min_shot as u64 => {
                    if boundary.score > last.score {
                        *last = boundary;
                    }
                }
                _ => kept.push(boundary),
            }
        }
        kept
    }

    fn cuts(&self) -> Vec<Boundary> {
        let n = self.step.len();
        let mut cuts = Vec::new();
        for i in 1..n {
            let s = self.step[i];
            if s < CUT_FLOOR {
                continue;
            }
            let lo = i.saturating_sub(NEIGHBOURS).max(1);
            let hi = (i + NEIGHBOURS).min(n - 1);
            let around: Vec<f32> = (lo..=hi)
                .filter(|&j| j != i)
                .map(|j| self.step[j])
                .collect();
            let mean = around.iter().sum::<f32>() / around.len().max(1) as f32;
            // A cut inside a fade's dark run is not a shot change of its own.
            let dark = self.luma[i] < BLACK && self.luma[i - 1] < BLACK;
            if s >= CUT_RATIO * mean.max(0.005) && !dark {
                let score = (s / (s + mean)).clamp(0.0, 1.0);
                cuts.push(Boundary {
                    frame: i as u64,
                    kind: Kind::Cut,
                    score,
                });
            }
        }
        cuts
    }

    fn fades(&self) -> Vec<Boundary> {
        let n = self.luma.len();
        let mut fades = Vec::new();
        let mut i = 0;
        while i < n {
            if self.luma[i] >= BLACK {
                i += 1;
                continue;
            }
            let start = i;
            while i < n && self.luma[i] < BLACK {
                i += 1;
            }
            // A dark run at the very start or end is a fade in or out of the video, not a
            // boundary between two shots.
            if start == 0 || i == n {
                continue;
            }
            let middle = (start + i) / 2;
            let depth = 1.0 - self.luma[start..i].iter().copied().fold(1.0, f32::min) / BLACK;
            fades.push(Boundary {
                frame: middle as u64,
                kind: Kind::Fade,
                score: (0.5 + 0.5 * depth).clamp(0.0, 1.0),
            });
        }
        fades
    }

    /// Spans where frames a window apart differ like a cut while no single step carries the
    /// change. The transition runs from where that difference starts to rise to where it
    /// peaks; the boundary is its middle.
    fn dissolves(&self, known: &[Boundary]) -> Vec<Boundary> {
        let n = self.far.len();
        let w = self.window;
        let mut dissolves = Vec::new();
        let mut i = 0;
        while i < n {
            if self.far[i] < DISSOLVE_FLOOR {
                i += 1;
                continue;
            }
            let start = i;
            while i < n && self.far[i] >= DISSOLVE_FLOOR {
                i += 1;
            }
            let end = i; // exclusive
            // Frames a window apart differ for a window after any boundary.
            let explained = known
                .iter()
                .any(|b| b.frame as usize + w >= start && (b.frame as usize) < end);
            // Motion keeps frames far apart for long stretches; a dissolve lasts a few seconds
            // at most.
            let length = end - start;
            if explained || length > w * 4 || length < w / 2 {
                continue;
            }
            // Where the difference peaks (within a window of the crossing) ends the transition;
            // walking back down to where it stops falling finds where it began.
            let search_end = (start + w).min(end);
            let (peak_at, peak) =
                (start..search_end)
                    .map(|j| (j, self.far[j]))
                    .fold(
                        (start, 0.0),
                        |best, (j, v)| if v > best.1 { (j, v) } else { best },
                    );
            let last = (start..=peak_at)
                .find(|&j| self.far[j] >= 0.95 * peak)
                .unwrap_or(peak_at);
            let mut first = start;
            while first > 0 && self.far[first - 1] < self.far[first] && self.far[first - 1] > 0.02 {
                first -= 1;
            }
            let largest = self.step[first..=last].iter().copied().fold(0.0, f32::max);
            if largest > 0.5 * peak {
                continue;
            }
            dissolves.push(Boundary {
                frame: ((first + last) as f64 / 2.0).round() as u64,
                kind: Kind::Dissolve,
                score: (peak / (2.0 * DISSOLVE_FLOOR)).clamp(0.0, 1.0),
            });
        }
        dissolves
    }
}

fn histogram(frame: &[u8]) -> [f32; BINS] {
    let mut bins = [0u32; BINS];
    for &p in frame {
        bins[usize::from(p) * BINS / 256] += 1;
    }
    let total = frame.len().max(1) as f32;
    bins.map(|b| b as f32 / total)
}

/// The earth mover's distance of two luma histograms, 0..1: how far the brightness of the
/// pixels moved. Unlike a bin-by-bin distance it barely changes when a flat picture brightens
/// by one bin (a fade), yet is large between different pictures.
fn hist_distance(a: &[f32; BINS], b: &[f32; BINS]) -> f32 {
    let (mut ca, mut cb, mut moved) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        ca += x;
        cb += y;
        moved += (ca - cb).abs();
    }
    moved / (BINS - 1) as f32
}

/// Mean absolute pixel difference, 0..1.
fn difference(a: &[u8], b: &[u8]) -> f32 {
    let total: u32 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| u32::from(x.abs_diff(y)))
        .sum();
    total as f32 / (255.0 * a.len().max(1) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: usize = 16;
    const H: usize = 9;

    /// A grey frame (neutral chroma) with a pattern unique to `seed`, moving slowly with `t`.
    fn pattern(seed: u32, t: u32) -> Vec<u8> {
        let mut frame: Vec<u8> = (0..(W * H) as u32)
            .map(|i| {
                let x = i
                    .wrapping_mul(2654435761u32.wrapping_add(seed * 97))
                    .rotate_left(seed % 31)
                    >> 24;
                ((x + t) % 200 + 40) as u8
            })
            .collect();
        frame.resize(W * H * 3, 128);
        frame
    }

    /// A flat frame of one colour: luma `y`, chroma `u` and `v`.
    fn flat(y: u8, u: u8, v: u8) -> Vec<u8> {
        [vec![y; W * H], vec![u; W * H], vec![v; W * H]].concat()
    }

    fn blend(a: &[u8], b: &[u8], alpha: f32) -> Vec<u8> {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| (f32::from(x) * (1.0 - alpha) + f32::from(y) * alpha) as u8)
            .collect()
    }

    #[test]
    fn hard_cuts_are_found_on_their_frame() {
        let mut detector = Detector::new(W, H, 25.0);
        for t in 0..50 {
            detector.push(&pattern(1, t / 10));
        }
        for t in 0..40 {
            detector.push(&pattern(2, t / 10));
        }
        for t in 0..30 {
            detector.push(&pattern(3, t / 10));
        }
        let found = detector.finish();
        let frames: Vec<(u64, Kind)> = found.iter().map(|b| (b.frame, b.kind)).collect();
        assert_eq!(frames, [(50, Kind::Cut), (90, Kind::Cut)]);
    }

    #[test]
    fn a_fade_through_black_is_one_boundary_in_its_middle() {
        let mut detector = Detector::new(W, H, 25.0);
        let a = pattern(4, 0);
        let b = pattern(5, 0);
        let black = flat(0, 128, 128);
        for _ in 0..40 {
            detector.push(&a);
        }
        for k in 0..12 {
            detector.push(&blend(&a, &black, (k + 1) as f32 / 12.0));
        }
        for k in 0..12 {
            detector.push(&blend(&black, &b, k as f32 / 12.0));
        }
        for _ in 0..40 {
            detector.push(&b);
        }
        let found = detector.finish();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].kind, Kind::Fade);
        assert!((found[0].frame as i64 - 52).abs() <= 1, "{found:?}");
    }

    #[test]
    fn a_dissolve_is_found_near_its_middle_and_slow_motion_is_not() {
        let mut detector = Detector::new(W, H, 25.0);
        let a = pattern(6, 0);
        let b = pattern(7, 0);
        for _ in 0..50 {
            detector.push(&a);
        }
        for k in 0..20 {
            detector.push(&blend(&a, &b, (k + 1) as f32 / 21.0));
        }
        for _ in 0..50 {
            detector.push(&b);
        }
        let found = detector.finish();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].kind, Kind::Dissolve);
        assert!((found[0].frame as i64 - 60).abs() <= 3, "{found:?}");

        // The same brightness in another colour is a different shot too.
        let mut colours = Detector::new(W, H, 25.0);
        for _ in 0..40 {
            colours.push(&flat(100, 90, 170));
        }
        for _ in 0..40 {
            colours.push(&flat(100, 170, 90));
        }
        let found = colours.finish();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].frame, found[0].kind), (40, Kind::Cut));

        let mut still = Detector::new(W, H, 25.0);
        for t in 0..200 {
            still.push(&pattern(8, t / 25));
        }
        assert!(still.finish().is_empty());
    }
}
