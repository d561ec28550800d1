"""Shot-boundary benchmark: reelbase's `cut` detector against PySceneDetect's ContentDetector
and AdaptiveDetector, on generated videos whose boundaries are known, in one run.

    PYTHONPATH=tools .venv-bench/bin/python -m cutbench --media DIR --ours BINARY [--sets ...]

`tools/bench-cut` sets up the venv, builds the binary and calls this.
"""

import argparse
import json
import time
from pathlib import Path

from . import detectors, sources, testset
from .score import Tally, match

ALL, STRESS = sources.ALL, sources.STRESS
SETS = {
    # Short videos, each stressing one thing; scored together as the "short" set.
    "short": [
        dict(name="cuts", seed=101, kinds={"cut": 1}, lengths=(25, 100), pool=ALL, count=20),
        dict(name="fades", seed=102, kinds={"fade": 1}, lengths=(50, 150), pool=ALL, count=12),
        dict(
            name="dissolves", seed=103, kinds={"dissolve": 1}, lengths=(50, 150), pool=ALL, count=12
        ),
        # Long shots full of motion or flashes, one from each such source, joined by cuts: what
        # a detector invents here is a false alarm.
        dict(name="motion", seed=104, kinds={"cut": 1}, lengths=(125, 300), pool=STRESS, each=True),
        dict(
            name="mixed",
            seed=105,
            kinds={"cut": 2, "fade": 1, "dissolve": 1},
            lengths=(25, 150),
            pool=ALL,
            count=16,
        ),
    ],
    # Ten and a half minutes of shots from 1 to 15 seconds, joined mostly by cuts.
    "long": [
        dict(
            name="long",
            seed=200,
            kinds={"cut": 3, "fade": 1, "dissolve": 1},
            lengths=(25, 375),
            pool=ALL,
            min_frames=int(10.5 * 60 * sources.FPS),
        ),
    ],
}
KINDS = ["cut", "fade", "dissolve"]
# Not a detector: how fast ffmpeg alone decodes the same files, the ceiling for any detector
# that looks at every frame.
DECODE = "ffmpeg decode only"


def main():
    args = parse_args()
    started = time.perf_counter()
    args.media.mkdir(parents=True, exist_ok=True)
    runs = {
        "reelbase": lambda video, _: detectors.reelbase(args.ours, video),
        "pyscenedetect-content": lambda video, _: detectors.content(video),
        "pyscenedetect-adaptive": lambda video, _: detectors.adaptive(video),
        DECODE: detectors.decode_only,
    }

    videos = make_videos(args.media, args.sets)
    print(detectors.pyscenedetect_setup(args.media / videos[args.sets[0]][0]["video"]))
    print(f"speeds: best of {args.rounds} interleaved runs; load average now {load()}")
    found = run_all(args.media, videos, runs, args.rounds)
    results = {}
    for set_name, truths in videos.items():
        for name in runs:
            tally, frames, seconds, pairs = Tally(), 0, 0.0, []
            for truth in truths:
                one = found[(truth["video"], name)]
                frames += one["frames"]
                seconds += one["frames"] / one["fps"]
                if one["boundaries"] is not None:
                    tally.add(match(truth["boundaries"], one["boundaries"]))
                    pairs.append((truth, one))
            results[(set_name, name)] = (tally, frames / seconds, pairs)

    print_table(results, args.sets, list(runs))
    if "short" in args.sets:
        print_errors(results, [n for n in runs if n != DECODE])
    raw = {}
    for (video, name), one in found.items():
        raw.setdefault(video, {})[name] = one
    (args.media / "results.json").write_text(json.dumps(raw, indent=1) + "\n")
    print(f"\nraw detections: {args.media / 'results.json'}")
    print(f"benchmark took {time.perf_counter() - started:.0f} s")


def run_all(folder, videos, runs, rounds):
    """Runs every detector on every video, `rounds` times in turn so that a load passing on the
    machine slows them alike; keeps the best speed. Boundaries must not change between runs."""
    found = {}
    for truths in videos.values():
        for truth in truths:
            path = folder / truth["video"]
            for _ in range(rounds):
                for name, run in runs.items():
                    one = run(path, truth["frames"])
                    kept = found.setdefault((truth["video"], name), one)
                    if one["boundaries"] != kept["boundaries"]:
                        raise RuntimeError(f"{name} found other boundaries in {path} on a rerun")
                    kept["fps"] = max(kept["fps"], one["fps"])
    return found


def load():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def parse_args():
    parser = argparse.ArgumentParser(prog="cutbench")
    parser.add_argument("--media", type=Path, required=True, help="folder for the test set")
    parser.add_argument("--ours", required=True, help="path of the cut_detect example binary")
    parser.add_argument("--sets", nargs="+", choices=list(SETS), default=list(SETS))
    parser.add_argument("--rounds", type=int, default=3, help="runs per detector and video")
    return parser.parse_args()


def make_videos(folder, set_names):
    """Plans every video, makes those missing, returns {set: [truth, ...]}."""
    videos = {}
    for set_name in set_names:
        for spec in SETS[set_name]:
            spec = dict(spec)
            plan = testset.plan_video(spec.pop("name"), spec.pop("seed"), **spec)
            began = time.perf_counter()
            truth = testset.ensure_video(plan, folder)
            took = time.perf_counter() - began
            kinds = ", ".join(
                f"{sum(b['kind'] == k for b in truth['boundaries'])} {k}s" for k in KINDS
            )
            made = f"made in {took:.0f} s" if took > 0.5 else "already made"
            print(f"[bench] {truth['video']}: {truth['frames']} frames, {kinds} ({made})")
            videos.setdefault(set_name, []).append(truth)
    return videos


def print_table(results, set_names, names):
    print()
    head = f"{'set':<6} {'detector':<23} {'P':>6} {'R':>6} {'F1':>6}"
    head += "".join(f" {k + 's':>9}" for k in KINDS) + f" {'frames/s':>9}"
    print(head)
    print("-" * len(head))
    for set_name in set_names:
        for name in names:
            tally, fps, _ = results[(set_name, name)]
            if name == DECODE:
                print(f"{set_name:<6} {name:<23} {'':>6} {'':>6} {'':>6} {'':>29} {fps:9.0f}")
                continue
            line = f"{set_name:<6} {name:<23} {tally.precision:6.3f} {tally.recall:6.3f}"
            line += f" {tally.f1:6.3f}" + "".join(f" {tally.kind_recall(k):>9}" for k in KINDS)
            print(line + f" {fps:9.0f}")
    print("(cuts, fades, dissolves: recall by kind, true boundaries found / present)")
    print()
    for set_name in set_names:
        ours, our_fps, _ = results[(set_name, "reelbase")]
        others = [results[(set_name, n)] for n in names if n.startswith("pyscenedetect")]
        best_f1 = max(t.f1 for t, _, _ in others)
        best_fps = max(fps for _, fps, _ in others)
        f1_ok = "met" if ours.f1 >= best_f1 else "NOT met"
        fps_ok = "met" if our_fps >= 5 * best_fps else "NOT met"
        print(
            f"{set_name}: F1 {ours.f1:.3f} vs PySceneDetect's best {best_f1:.3f} ({f1_ok}); "
            f"speed {our_fps / best_fps:.2f}x PySceneDetect's fastest (target 5x: {fps_ok})"
        )


def print_errors(results, names):
    print("\nshort set: boundaries missed (-) and invented (+), frame and kind")
    for name in names:
        print(f"  {name}")
        for truth, found in results[("short", name)][2]:
            one = match(truth["boundaries"], found["boundaries"])
            items = [f"-{b['frame']} {b['kind']} {b['span']}" for b in one.missed]
            items += [f"+{b['frame']} {b['kind']}" for b in one.invented]
            print(f"    {truth['video']:<14} {', '.join(items) if items else 'none'}")


if __name__ == "__main__":
    main()
