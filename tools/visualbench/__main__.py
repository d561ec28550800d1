"""The picture processors through reelbase's pipeline, side by side with their models called
directly through their own runtimes (issue 9): frames per second for `yolo` (CenterNet on
TensorFlow.js wasm in Node.js) and `pose` (BlazePose through MediaPipe's Tasks API), and the
wall time of all nine processors on one minute of 640x360 video with speech, faces, objects,
people and captions."""

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

OBJECTS = Path("target/fixtures/objects")
FACES = Path("target/fixtures/faces")
# Ten 6-second shots: background, pictures (file, height, x, y), caption.
SCENES = [
    ("0x303850", [(OBJECTS / "camera.png", 300, 20, 30)], "STREET CAMERA"),
    ("0x404040", [(OBJECTS / "camera.png", 300, 20, 30), (OBJECTS / "motorcycle_left.png", 200, 330, 80)], None),
    ("0x806040", [(OBJECTS / "chelsea.png", 260, 40, 50)], None),
    ("0x506070", [(FACES / "obama.jpg", 220, 200, 70)], "INTERVIEW"),
    ("0x705060", [(OBJECTS / "coffee.png", 300, 160, 30)], None),
    ("0x204020", [(OBJECTS / "astronaut.png", 300, 170, 30)], None),
    ("0x303850", [(OBJECTS / "astronaut.png", 280, 10, 40), (OBJECTS / "camera.png", 280, 330, 40)], None),
    ("0x506070", [(FACES / "biden.jpg", 220, 200, 70)], "GUEST"),
    ("0x604030", [(OBJECTS / "motorcycle_left.png", 300, 100, 30)], None),
    ("0x806040", [(OBJECTS / "chelsea.png", 200, 20, 80), (OBJECTS / "coffee.png", 200, 340, 80)], None),
]
SHOT = 6
SPEECH = [
    ("en-us", "Welcome to the street. A cameraman is filming the traffic this morning."),
    ("en+f2", "A motorcycle drives past and the cat on the sofa does not care at all."),
    ("en-us", "In the interview we talk about the city, its people and its history."),
    ("en+f2", "The astronaut waves at the camera before the next launch window opens."),
    ("en-us", "Our guest explains why coffee is the most important meal of the day."),
    ("en+f2", "That is all for today. Thank you for watching and see you next week."),
]
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def make_video(path):
    if path.exists():
        return
    work = path.parent / "parts"
    work.mkdir(parents=True, exist_ok=True)
    inputs, graph = [], ""
    n = 0
    for i, (colour, pictures, caption) in enumerate(SCENES):
        inputs += ["-f", "lavfi", "-i", f"color=c={colour}:s=640x360:r=25:d={SHOT}"]
        base, n = n, n + 1
        last = f"{base}"
        for j, (picture, height, x, y) in enumerate(pictures):
            inputs += ["-loop", "1", "-t", str(SHOT), "-i", str(picture)]
            graph += f"[{n}]scale=-2:{height}[p{i}_{j}];[{last}][p{i}_{j}]overlay=x={x}:y={y}[o{i}_{j}];"
            last, n = f"o{i}_{j}", n + 1
        text = ""
        if caption:
            text = (f"drawtext=fontfile={FONT}:text={caption}:fontsize=34:fontcolor=white:box=1:"
                    f"boxborderw=8:boxcolor=black:x=40:y=300,")
        graph += f"[{last}]{text}format=yuv420p[v{i}];"
    for k, (voice, sentence) in enumerate(SPEECH):
        wav = work / f"speech{k}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(wav), sentence], check=True)
        inputs += ["-i", str(wav)]
        graph += f"[{n}]adelay={k * 10000 + 500}:all=1,aresample=16000[a{k}];"
        n += 1
    graph += "".join(f"[v{i}]" for i in range(len(SCENES))) + f"concat=n={len(SCENES)}:v=1:a=0[out];"
    graph += "".join(f"[a{k}]" for k in range(len(SPEECH))) + f"amix=inputs={len(SPEECH)}:normalize=0,apad[aud]"
    subprocess.run(["ffmpeg", "-v", "error", "-y", *inputs, "-filter_complex", graph, "-map", "[out]",
                    "-map", "[aud]", "-t", str(SHOT * len(SCENES)), "-c:v", "libx264", "-preset", "veryfast",
                    "-c:a", "aac", str(path)], check=True)


def psql(sql):
    out = subprocess.run(["psql", "-d", os.environ["BENCH_DB"], "-tAc", sql], check=True,
                         capture_output=True, text=True).stdout
    return [line.split("|") for line in out.split("\n") if line]


def result(name):
    output = Path(os.environ["REELBASE_DATA_DIR"]) / "output"
    return json.loads(next(output.glob(f"*.{name}.json")).read_text())["result"]


def pipeline(reelbase, video):
    started = time.monotonic()
    subprocess.run([reelbase, "analyze", str(video)], check=True, stdout=subprocess.DEVNULL)
    wall = time.monotonic() - started
    steps = {p: int(ms) / 1000 for p, ms in psql("SELECT processor, duration_ms FROM job_steps")}
    job = float(psql("SELECT extract(epoch FROM finished_at - started_at) FROM jobs")[0][0])
    return wall, job, steps


def direct_yolo(video, frames, node_env):
    """CenterNet straight through TensorFlow.js on the same letterboxed 512x512 samples."""
    raw = Path(os.environ["REELBASE_DATA_DIR"]) / "direct.rgb"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(video), "-vf",
                    "fps=3,scale=512:288,setsar=1,pad=512:512:0:112:black", "-pix_fmt", "rgb24",
                    "-f", "rawvideo", str(raw)], check=True)
    model = Path(node_env) / "node_modules/@vladmandic/human/models/centernet.json"
    out = subprocess.run(["node", "tools/yolobench/direct.js", str(model), str(raw), str(frames)],
                         check=True, capture_output=True, text=True,
                         env={**os.environ, "NODE_PATH": str(Path(node_env) / "node_modules")}).stdout
    return json.loads(out)


def direct_pose(video, python):
    """BlazePose straight through MediaPipe's Tasks API on the same 2/s JPEG samples."""
    frames = Path(os.environ["REELBASE_DATA_DIR"]) / "direct-pose"
    frames.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(video), "-vf", "fps=2", "-q:v", "3",
                    str(frames / "%06d.jpg")], check=True)
    out = subprocess.run([python, "tools/posebench/direct.py", str(frames)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--reelbase", required=True)
    parser.add_argument("--python", required=True)
    parser.add_argument("--node-env", required=True)
    args = parser.parse_args()
    video = args.dir / "media" / "minute.mp4"
    video.parent.mkdir(parents=True, exist_ok=True)
    make_video(video)
    length = SHOT * len(SCENES)
    print(f"material: {length} s of 640x360 H.264 with AAC speech (two espeak-ng voices), "
          f"{len(SCENES)} shots of people, objects, faces and captions; {os.cpu_count()} cores")
    wall, job, steps = pipeline(args.reelbase, video)
    yolo, pose = result("yolo"), result("pose")
    d_yolo = direct_yolo(video, yolo["frames"], args.node_env)
    d_pose = direct_pose(video, args.python)

    print(f"\n{'frames per second':34}{'reelbase pipeline':>20}{'model directly':>18}")
    print(f"{'yolo (CenterNet, TF.js wasm)':34}{yolo['frames'] / steps['yolo']:>20.1f}{d_yolo['fps']:>18.1f}")
    print(f"{'pose (BlazePose, MediaPipe)':34}{pose['frames'] / steps['pose']:>20.1f}{d_pose['fps']:>18.1f}")
    print(f"{'  people found (pose)':34}{len(pose['poses']):>20}{d_pose['poses']:>18}")
    print(f"\nyolo: {yolo['frames']} samples at {yolo['sample_rate']:g}/s, "
          f"{len(yolo['detections'])} detections of {', '.join(sorted(yolo['labels']))}")
    chunks = result("visual_chunk")["chunks"]
    print(f"visual_chunk: {len(chunks)} chunks, e.g. " +
          "; ".join(f"{c['description']} {c['start_time']:.1f}-{c['end_time']:.1f} s" for c in chunks[:4]))
    print(f"\nall nine processors on {length} s of video (2 workers):")
    for name in ["cut", "scene", "ocr", "asr", "asrx", "face", "yolo", "pose", "visual_chunk"]:
        print(f"  {name:14}{steps.get(name, float('nan')):>8.1f} s")
    print(f"  {'sum of steps':14}{sum(steps.values()):>8.1f} s")
    print(f"  {'job wall time':14}{job:>8.1f} s  = {job / (length / 60):.1f} s per minute of video")
    print(f"  {'analyze total':14}{wall:>8.1f} s  (register, hash, job, report)")
    print("\npipeline fps: the step's own duration (sampling with ffmpeg, start-up, model load, "
          "inference, tiles for pose, storing); directly: inference only on the same samples, "
          "model load excluded (pose whole frames, no tiles).")


if __name__ == "__main__":
    main()
