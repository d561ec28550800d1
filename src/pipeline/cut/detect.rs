//! Shot boundaries from a stream of small grey frames.
//!
//! Three tests, each adaptive to the footage around it:
//! - a hard cut is a frame whose change from the previous one (pixel difference and the distance
//!   between the two frames' luma distributions) stands out against its neighbours' changes by a
//!   ratio, and above a floor, unless the picture comes back within a few frames (a flash);
//! - a fade through black is a run of near-black frames between brighter footage; the boundary
//!   is the middle of the run;
//! - a dissolve is a span where each frame is the average of the frames a few frames before and
//!   after it (a linear blend) while those two differ clearly; motion rarely blends that way.
//!   It is tested at three distances, for short and long dissolves; the boundary is the middle
//!   of the span.
//!
//! Known limits: a dissolve between shots that both move a lot is missed (the blend test fails
//! on the motion), and a slow, smooth change of a whole picture (a morphing gradient, lighting)
//! can pass for a dissolve.

/// Grey levels, one histogram bin each.
const LEVELS: usize = 256;
/// A step must change at least this much (0..1) to be a cut...
const CUT_FLOOR: f32 = 0.05;
/// ...and this many times more than the steps around it.
const CUT_RATIO: f32 = 3.0;
/// Steps on each side that a cut is compared with.
const NEIGHBOURS: usize = 3;
/// Mean luma (0..1) under which a frame counts as black.
const BLACK: f32 = 0.06;
/// A flash: within this many frames after a jump, the picture comes back to within
/// `FLASH_RETURN` of the jump to what it was before.
const FLASH_FRAMES: usize = 3;
const FLASH_RETURN: f32 = 0.25;
/// Frames a dissolve blend test looks apart must differ at least this much (0..1)...
const DISSOLVE_FLOOR: f32 = 0.05;
/// ...and the middle frame may stray from their average by at most this part of their
/// difference (0 is a perfect blend, 1 is a cut between them).
const BLEND_ERROR: f32 = 0.35;

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

/// Takes frames one by one (each `width * height * 3` bytes of planar YUV 4:4:4: luma, then the
/// two chroma planes, so that a change of colour at equal brightness is seen too) and keeps only a few numbers per
/// frame, plus the last second of frames, so memory does not grow with the length of the video.
pub struct Detector {
    frame_len: usize,
    /// Half the distances of the blend test, shortest first.
    halves: [usize; 3],
    /// Minimum frames between two boundaries, and between a boundary and either end.
    min_shot: usize,
    recent: std::collections::VecDeque<Vec<u8>>,
    previous_cdf: Option<Vec<u32>>,
    /// Per frame: change from the previous frame (`step` mixes in the luma distributions,
    /// `jump` is pixels alone), mean luma, change from 2, 3 and 4 frames back (for flashes),
    /// and how well it is a blend of its neighbours (0 when it is none).
    step: Vec<f32>,
    jump: Vec<f32>,
    luma: Vec<f32>,
    back: Vec<[f32; FLASH_FRAMES]>,
    blend: Vec<f32>,
}

impl Detector {
    /// `fps` sets the blend test's distances (up to a second apart) and the shortest shot (a
    /// third of a second).
    pub fn new(width: usize, height: usize, fps: f64) -> Self {
        let fps = if fps.is_finite() && fps > 0.0 {
            fps
        } else {
            25.0
        };
        let window = (fps.round() as usize).max(6);
        Self {
            frame_len: width * height * 3,
            halves: [window / 6, window / 3, window / 2],
            min_shot: ((fps / 3.0).round() as usize).max(2),
            recent: std::collections::VecDeque::new(),
            previous_cdf: None,
            step: Vec::new(),
            jump: Vec::new(),
            luma: Vec::new(),
            back: Vec::new(),
            blend: Vec::new(),
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
        let luma = &frame[..frame.len() / 3];
        let cdf = cumulative_histogram(luma);
        let mean = luma.iter().map(|&p| u32::from(p)).sum::<u32>() as f32
            / (255.0 * luma.len().max(1) as f32);
        let (step, jump) = match (self.recent.back(), &self.previous_cdf) {
            (Some(previous), Some(previous_cdf)) => {
                let jump = difference(previous, frame);
                (
                    0.5 * jump + 0.5 * distribution_distance(previous_cdf, &cdf),
                    jump,
                )
            }
            _ => (0.0, 0.0),
        };
        let mut back = [1.0; FLASH_FRAMES];
        for (k, slot) in back.iter_mut().enumerate() {
            if let Some(earlier) = self.nth_back(k + 2) {
                *slot = difference(earlier, frame);
            }
        }
        self.step.push(step);
        self.jump.push(jump);
        self.luma.push(mean);
        self.back.push(back);
        self.blend.push(0.0);
        self.previous_cdf = Some(cdf);
        self.test_blends(frame);
        self.remember(frame);
    }

    /// The frame `n` before the one being pushed (1 is the previous one).
    fn nth_back(&self, n: usize) -> Option<&Vec<u8>> {
        self.recent.len().checked_sub(n).map(|i| &self.recent[i])
    }

    /// Scores, for each distance, the frame halfway back to the one that far behind `frame`:
    /// in a dissolve it is their average.
    fn test_blends(&mut self, frame: &[u8]) {
        let now = self.step.len() - 1;
        for half in self.halves {
            let (Some(start), Some(middle)) = (self.nth_back(2 * half), self.nth_back(half)) else {
                continue;
            };
            // The blend test is on luma alone, its gate too: judged on colour, moving colour
            // patterns would pass for dissolves.
            let plane = frame.len() / 3;
            let apart = mean_difference(&start[..plane], &frame[..plane]);
            if apart < DISSOLVE_FLOOR {
                continue;
            }
            let error = blend_error(start, middle, frame) / apart;
            if error <= BLEND_ERROR {
                let score = &mut self.blend[now - half];
                *score = score.max(1.0 - error);
            }
        }
    }

    /// Keeps the frames the tests look back at: the longest blend distance.
    fn remember(&mut self, frame: &[u8]) {
        let keep = 2 * self.halves[2] + 1;
        if self.recent.len() >= keep {
            let mut oldest = self.recent.pop_front().unwrap_or_default();
            oldest.clear();
            oldest.extend_from_slice(frame);
            self.recent.push_back(oldest);
        } else {
            self.recent.push_back(frame.to_vec());
        }
    }

    /// The boundaries found, in order.
    pub fn finish(&self) -> Vec<Boundary> {
        let n = self.step.len() as u64;
        let near_an_end =
            |b: &Boundary| b.frame < self.min_shot as u64 || n - b.frame < self.min_shot as u64;
        let mut found = self.cuts();
        found.extend(self.fades());
        found.retain(|b| !near_an_end(b));
        found.sort_by_key(|b| b.frame);
        let dissolves = self.dissolves(&found);
        found.extend(dissolves.into_iter().filter(|b| !near_an_end(b)));
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
            if s >= CUT_RATIO * mean.max(0.005) && !dark && !self.flash_at(i) {
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

    /// Whether the jump into frame `i` is undone within a few frames: a flash, or the end of
    /// one, when some frame just after it is close to some frame just before it.
    fn flash_at(&self, i: usize) -> bool {
        let n = self.back.len();
        let closest = (0..FLASH_FRAMES)
            .flat_map(|k| (i..(i + k + 1).min(n)).map(move |after| self.back[after][k]))
            .fold(f32::MAX, f32::min);
        closest < FLASH_RETURN * self.jump[i]
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

    /// Runs of frames that are blends of their neighbours, away from cuts and fades.
    fn dissolves(&self, known: &[Boundary]) -> Vec<Boundary> {
        let n = self.blend.len();
        let reach = self.halves[2];
        let mut dissolves = Vec::new();
        let mut i = 0;
        while i < n {
            if self.blend[i] <= 0.0 {
                i += 1;
                continue;
            }
            let start = i;
            while i < n && self.blend[i] > 0.0 {
                i += 1;
            }
            let middle = (start + i - 1) / 2;
            // Fading to black is a blend too, however long: the fade test has that boundary.
            let lo = start.saturating_sub(reach);
            let hi = (i + reach).min(n);
            let dark = self.luma[lo..hi].iter().any(|&l| l < BLACK);
            let explained = known
                .iter()
                .any(|b| (b.frame as usize).abs_diff(middle) <= reach);
            if dark || explained {
                continue;
            }
            dissolves.push(Boundary {
                frame: middle as u64,
                kind: Kind::Dissolve,
                score: self.blend[start..i].iter().copied().fold(0.0, f32::max),
            });
        }
        dissolves
    }
}

/// Pixels at or below each grey level.
fn cumulative_histogram(frame: &[u8]) -> Vec<u32> {
    let mut bins = vec![0u32; LEVELS];
    for &p in frame {
        bins[usize::from(p)] += 1;
    }
    let mut total = 0;
    for bin in &mut bins {
        total += *bin;
        *bin = total;
    }
    bins
}

/// How far the grey levels moved between two frames, matching pixels by rank (the earth
/// mover's distance of the two luma histograms), 0..1. Unlike comparing histogram bins, a small
/// change of brightness gives a small distance, so fades and flat pictures do not look like
/// cuts.
fn distribution_distance(a: &[u32], b: &[u32]) -> f32 {
    let pixels = a.last().copied().unwrap_or(0).max(1);
    let moved: u64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    moved as f32 / (255.0 * pixels as f32)
}

/// How different two YUV 4:4:4 frames look, 0..1: the mean pixel difference of the luma
/// plane, or of the chroma planes (doubled: colours span a narrower range) when that is larger.
fn difference(a: &[u8], b: &[u8]) -> f32 {
    let plane = a.len() / 3;
    let luma = mean_difference(&a[..plane], &b[..plane]);
    let chroma = mean_difference(&a[plane..], &b[plane..]);
    luma.max((2.0 * chroma).min(1.0))
}

/// Mean absolute byte difference, 0..1.
fn mean_difference(a: &[u8], b: &[u8]) -> f32 {
    let total: u32 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| u32::from(x.abs_diff(y)))
        .sum();
    total as f32 / (255.0 * a.len().max(1) as f32)
}

/// How far `middle` is from the average of `start` and `end`, as a part of their mean absolute
/// difference: twice the mean |middle - (start + end) / 2|, 0..1 like `difference`.
fn blend_error(start: &[u8], middle: &[u8], end: &[u8]) -> f32 {
    // Every plane blends in a dissolve; the luma plane says it well enough.
    let plane = start.len() / 3;
    let (start, middle, end) = (&start[..plane], &middle[..plane], &end[..plane]);
    let total: u32 = start
        .iter()
        .zip(middle)
        .zip(end)
        .map(|((&a, &m), &b)| (2 * i32::from(m) - i32::from(a) - i32::from(b)).unsigned_abs())
        .sum();
    total as f32 / (255.0 * start.len().max(1) as f32)
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
                // A multiplicative hash: wrapping is the point (plain `*` panics in debug builds).
                let x = i.wrapping_mul(2654435761u32.wrapping_add(seed * 97));
                let x = x.rotate_left(seed % 31) >> 24;
                ((x + t) % 200 + 40) as u8
            })
            .collect();
        frame.resize(W * H * 3, 128);
        frame
    }

    /// A flat frame: luma `y`, chroma `u` and `v`.
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
    fn the_same_brightness_in_another_colour_is_a_cut() {
        let mut detector = Detector::new(W, H, 25.0);
        for _ in 0..40 {
            detector.push(&flat(100, 90, 170));
        }
        for _ in 0..40 {
            detector.push(&flat(100, 170, 90));
        }
        let found = detector.finish();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].frame, found[0].kind), (40, Kind::Cut));
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

        let mut still = Detector::new(W, H, 25.0);
        for t in 0..200 {
            still.push(&pattern(8, t / 25));
        }
        assert!(still.finish().is_empty());
    }

    #[test]
    fn a_flash_of_two_frames_is_not_a_cut() {
        let mut detector = Detector::new(W, H, 25.0);
        let shot = pattern(9, 0);
        let flash: Vec<u8> = shot.iter().map(|&p| p.saturating_add(120)).collect();
        for _ in 0..40 {
            detector.push(&shot);
        }
        detector.push(&flash);
        detector.push(&flash);
        for _ in 0..40 {
            detector.push(&shot);
        }
        assert!(detector.finish().is_empty(), "{:?}", detector.finish());
    }

    #[test]
    fn a_flat_picture_fading_slowly_through_black_gives_one_fade_and_no_cut() {
        // Every pixel alike: a histogram of bins would jump each time the level crossed a bin,
        // and a slow fade is a long blend with black.
        let mut detector = Detector::new(W, H, 25.0);
        let level = |v: f32| flat(v.round() as u8, 128, 128);
        for _ in 0..40 {
            detector.push(&level(100.0));
        }
        for k in 0..50 {
            detector.push(&level(100.0 * (49 - k) as f32 / 50.0));
        }
        for k in 0..50 {
            detector.push(&level(100.0 * k as f32 / 49.0));
        }
        for _ in 0..40 {
            detector.push(&level(100.0));
        }
        let found = detector.finish();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].kind, Kind::Fade);
    }

    #[test]
    fn a_change_in_the_first_frames_is_no_boundary() {
        // Shorter than the shortest shot: the start of the video, not a shot of its own.
        let mut detector = Detector::new(W, H, 25.0);
        detector.push(&pattern(10, 0));
        detector.push(&pattern(10, 0));
        for _ in 0..60 {
            detector.push(&pattern(11, 0));
        }
        assert!(detector.finish().is_empty(), "{:?}", detector.finish());
    }
}
