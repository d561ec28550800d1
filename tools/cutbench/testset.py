"""The generated test set: videos whose shot boundaries are known to the frame.

A video is planned as a list of segments (seeded, so every run plans the same ones), each joined
to the previous by a hard cut (concat), a fade through black (fade out, a few black frames, fade
in) or a dissolve (xfade). The plan becomes one ffmpeg filter graph, encoded to H.264, and the
truth is written next to the video as JSON. A video whose truth file records the same graph is
not made again.

Frame numbers follow ffmpeg's filters exactly (checked by decoding the first versions):
- a fade out over n frames starting at s leaves frame s untouched and dims s+1..s+n-1; a fade in
  over n frames starts on a black frame and reaches full level on frame n;
- xfade over d frames at offset o shows pure A on frame o, blends o+1..o+d-1 and pure B on o+d.
"""

import hashlib
import json
import random
import subprocess
from dataclasses import dataclass, field

from .sources import FPS, family

# Every shot keeps at least this many frames clear of any transition, so no detector's
# minimum-shot rule (PySceneDetect's is 15 frames) decides the outcome.
CLEAR = 15
# A bitrate like 360p video on the web: without the cap, the noise sources would take several
# megabits a second and make decoding, not detection, most of every detector's time.
ENCODE = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p"]
ENCODE += ["-maxrate", "1500k", "-bufsize", "3000k"]


@dataclass
class Transition:
    kind: str  # cut, fade or dissolve
    fade_out: int = 0  # fade: frames dimming at the end of the previous shot
    hold: int = 0  # fade: black frames between
    fade_in: int = 0  # fade: frames brightening at the start of the next shot
    overlap: int = 0  # dissolve: frames blending the two shots


@dataclass
class Segment:
    source: str
    length: int
    into: Transition | None = None  # how this segment begins; None for the first


@dataclass
class VideoPlan:
    name: str
    seed: int
    segments: list = field(default_factory=list)


def _transition(rng, kind):
    if kind == "fade":
        hold = 0 if rng.random() < 0.5 else rng.randint(1, 8)
        fade_out, fade_in = rng.randint(6, 25), rng.randint(6, 25)
        return Transition("fade", fade_out=fade_out, hold=hold, fade_in=fade_in)
    if kind == "dissolve":
        return Transition("dissolve", overlap=rng.randint(8, 40))
    return Transition("cut")


def _footprint(t, incoming):
    """Frames of a shot that a transition takes, at its start (incoming) or at its end."""
    if t is None:
        return 0
    if t.kind == "fade":
        return t.fade_in if incoming else t.fade_out
    return t.overlap


def plan_video(name, seed, kinds, lengths, pool, count=None, min_frames=None, each=False):
    """Plans segments until `count` of them, or until the video lasts `min_frames`; with `each`,
    one segment from every source of the pool, in a shuffled order.

    `kinds` weighs the transitions, e.g. {"cut": 3, "fade": 1}; `lengths` is (shortest, longest)
    in frames, drawn log-uniformly (many short shots, a few long ones, as in edited footage).
    """
    rng = random.Random(seed)
    names, weights = zip(*kinds.items())
    plan = VideoPlan(name, seed)
    previous = None
    order = None
    if each:
        order = rng.sample(pool, len(pool))
        while any(family(a) == family(b) for a, b in zip(order, order[1:])):
            order = rng.sample(pool, len(pool))
    count = len(pool) if each else count
    while True:
        if count is not None and len(plan.segments) >= count:
            break
        if min_frames is not None and planned_frames(plan) >= min_frames:
            break
        into = _transition(rng, rng.choices(names, weights)[0]) if plan.segments else None
        if order:
            make = order[len(plan.segments)]
        else:
            make = rng.choice([s for s in pool if not previous or family(s) != family(previous)])
        previous = make
        low, high = lengths
        length = round(low * (high / low) ** rng.random())
        length = max(length, _footprint(into, True) + CLEAR)
        plan.segments.append(Segment(make(rng, len(plan.segments)), length, into))
        if len(plan.segments) > 1:
            _fit_previous(plan.segments)
    return plan


def planned_frames(plan):
    total = 0
    for seg in plan.segments:
        t = seg.into
        total += seg.length + (t.hold if t else 0) - (t.overlap if t else 0)
    return total


def _fit_previous(segments):
    """Lengthens the previous segment if the transition into the new one needs more frames."""
    before, new = segments[-2], segments[-1]
    need = _footprint(before.into, True) + _footprint(new.into, False) + CLEAR
    before.length = max(before.length, need)


def build_graph(plan):
    """Returns (filter graph text, truth boundaries, total frames)."""
    chains = []
    segs = plan.segments
    for i, seg in enumerate(segs):
        # The black frames of a fade belong to the shot after it: under a fade in starting at
        # `hold`, the frames before are black. (A separate one-frame black clip would meet
        # concat's weak spot: it gets no duration and the next frame repeats its timestamp.)
        hold = seg.into.hold if seg.into and seg.into.kind == "fade" else 0
        frames = seg.length + hold
        chain = f"{seg.source},format=yuv420p,trim=end_frame={frames},setpts=PTS-STARTPTS"
        if seg.into and seg.into.kind == "fade":
            chain += f",fade=t=in:start_frame={hold}:nb_frames={seg.into.fade_in}"
        nxt = segs[i + 1].into if i + 1 < len(segs) else None
        if nxt and nxt.kind == "fade":
            chain += f",fade=t=out:start_frame={frames - nxt.fade_out}:nb_frames={nxt.fade_out}"
        chains.append(f"{chain},settb=1/{FPS}[s{i}]")

    truth = []
    current, frames = "s0", segs[0].length
    for i, seg in enumerate(segs[1:], start=1):
        t = seg.into
        joined = f"j{i}"
        if t.kind in ("cut", "fade"):
            chains.append(f"[{current}][s{i}]concat=n=2:v=1:a=0,settb=1/{FPS}[{joined}]")
        if t.kind == "cut":
            truth.append({"frame": frames, "kind": "cut", "span": [frames, frames]})
            frames += seg.length
        elif t.kind == "fade":
            span = [frames - t.fade_out + 1, frames + t.hold + t.fade_in - 1]
            truth.append({"frame": (span[0] + span[1]) // 2, "kind": "fade", "span": span})
            frames += t.hold + seg.length
        else:
            d = t.overlap
            chains.append(
                f"[{current}][s{i}]xfade=transition=fade:duration={d / FPS:.2f}"
                f":offset={(frames - d) / FPS:.2f},settb=1/{FPS}[{joined}]"
            )
            span = [frames - d + 1, frames - 1]
            truth.append({"frame": frames - d + d // 2, "kind": "dissolve", "span": span})
            frames += seg.length - d
        current = joined
    chains.append(f"[{current}]null[out]")
    return ";\n".join(chains), truth, frames


def ensure_video(plan, folder):
    """Makes `folder/NAME.mp4` and `NAME.json` unless they already hold this plan; returns the
    truth."""
    graph, truth, frames = build_graph(plan)
    digest = hashlib.sha256((graph + " ".join(ENCODE)).encode()).hexdigest()
    video, truth_file = folder / f"{plan.name}.mp4", folder / f"{plan.name}.json"
    if video.exists() and truth_file.exists():
        known = json.loads(truth_file.read_text())
        if known.get("graph_sha256") == digest:
            return known

    script = folder / f"{plan.name}.graph"
    script.write_text(graph)
    partial = folder / f"{plan.name}.partial.mp4"
    command = ["ffmpeg", "-v", "error", "-nostdin", "-y", "-filter_complex_script", str(script)]
    command += ["-map", "[out]", *ENCODE, "-threads", "2", "-fps_mode", "passthrough"]
    command += ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1"]
    subprocess.run([*command, str(partial)], check=True)
    check_frames(partial, frames)
    partial.rename(video)

    known = {
        "video": video.name,
        "fps": FPS,
        "frames": frames,
        "seed": plan.seed,
        "graph_sha256": digest,
        "boundaries": truth,
        "segments": [s.source for s in plan.segments],
    }
    truth_file.write_text(json.dumps(known, indent=1) + "\n")
    return known


def check_frames(path, planned):
    """Fails unless the video has the planned frames, one every 1/FPS second: a frame added,
    lost or retimed by a filter would shift the truth."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts"]
        + ["-of", "csv=p=0", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    pts = sorted(int(line) for line in out.stdout.split())
    steps = {b - a for a, b in zip(pts, pts[1:])}
    if len(pts) != planned or len(steps) > 1:
        raise RuntimeError(
            f"{path.name}: planned {planned} frames at a steady rate, ffmpeg made {len(pts)} "
            f"with steps {sorted(steps)[:5]}"
        )
