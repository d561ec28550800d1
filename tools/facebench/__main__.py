"""Prints the face processor through reelbase's pipeline side by side with the same detector
and embedder called directly (MediaPipe's BlazeFace on the whole frame, dlib's 5-point
alignment and ResNet vectors, nearest known face within dlib's usual 0.6): faces per second
and how many faces were named right, on a generated video whose people are known."""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
import types
from pathlib import Path

PHOTOS = Path("target/fixtures/faces")
# (photo, seconds on screen): the library knows Obama (from obama.jpg); Biden is a stranger.
SCENES = [("obama2.jpg", 6), ("biden.jpg", 6), ("obama3.jpg", 6), ("obama_partial_face.jpg", 6),
          ("biden.jpg", 6), ("obama2.jpg", 6), ("obama3.jpg", 6), ("biden.jpg", 6),
          ("obama_partial_face2.jpg", 6), ("obama2.jpg", 6)]
RATE = 2.0


def person(photo):
    return "Barack Obama" if photo.startswith("obama") else None


def make_video(path):
    """Each photo (scaled to 220 px high) on a grey 640x360 background, one after another."""
    if path.exists():
        return
    inputs, graph = [], ""
    for i, (photo, seconds) in enumerate(SCENES):
        inputs += ["-f", "lavfi", "-i", f"color=c=0x506070:s=640x360:r=25:d={seconds}",
                   "-loop", "1", "-t", str(seconds), "-i", str(PHOTOS / photo)]
        graph += f"[{2 * i + 1}]scale=-2:220[p{i}];[{2 * i}][p{i}]overlay=x=200:y=70[v{i}];"
    graph += "".join(f"[v{i}]" for i in range(len(SCENES))) + f"concat=n={len(SCENES)}:v=1:a=0,format=yuv420p[out]"
    subprocess.run(["ffmpeg", "-v", "error", "-y", *inputs, "-filter_complex", graph, "-map", "[out]",
                    "-c:v", "libx264", "-preset", "veryfast", str(path)], check=True)


def truth_at(t):
    start = 0.0
    for photo, seconds in SCENES:
        if start <= t < start + seconds:
            return person(photo)
        start += seconds
    return None


def pipeline(reelbase, video):
    subprocess.run([reelbase, "identities", "add", "Barack Obama", str(PHOTOS / "obama.jpg")],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run([reelbase, "analyze", str(video), "--processors", "face"], check=True,
                   stdout=subprocess.DEVNULL)
    seconds = int(subprocess.run(
        ["psql", "-d", os.environ["BENCH_DB"], "-tAc",
         "SELECT duration_ms FROM job_steps WHERE processor = 'face'"],
        check=True, capture_output=True, text=True).stdout.split()[0]) / 1000
    output = Path(os.environ["REELBASE_DATA_DIR"]) / "output"
    result = json.loads(next(output.glob("*.face.json")).read_text())["result"]
    right = total = 0
    for track in result["tracks"]:
        for b in track["boxes"]:
            total += 1
            right += (track["name"] == truth_at(b["time"]))
    return seconds, result["faces"], right, total, len(result["tracks"])


def direct(video, site):
    """The same models on the same samples, called straight, whole frames only."""
    spec = importlib.util.find_spec("mediapipe")
    package = types.ModuleType("mediapipe")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["mediapipe"] = package
    from mediapipe.python._framework_bindings import image as mp_image
    from mediapipe.python._framework_bindings import image_frame as mp_frame
    from mediapipe.tasks.python.core import base_options
    from mediapipe.tasks.python.vision import face_detector
    import dlib
    import numpy as np

    frames = Path(os.environ["REELBASE_DATA_DIR"]) / "direct-frames"
    frames.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(video), "-vf", f"fps={RATE}", "-q:v", "3",
                    str(frames / "%06d.jpg")], check=True)
    started = time.monotonic()
    model = site / "mediapipe/modules/face_detection/face_detection_short_range.tflite"
    detector = face_detector.FaceDetector.create_from_options(face_detector.FaceDetectorOptions(
        base_options=base_options.BaseOptions(model_asset_path=str(model)), min_detection_confidence=0.5))
    models = site / "face_recognition_models/models"
    shape = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    net = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))

    def vectors(rgb):
        image = mp_image.Image(image_format=mp_frame.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        out = []
        for d in detector.detect(image).detections:
            b = d.bounding_box
            rect = dlib.rectangle(b.origin_x, b.origin_y, b.origin_x + b.width - 1, b.origin_y + b.height - 1)
            out.append(np.array(net.compute_face_descriptor(rgb, shape(rgb, rect))))
        return out

    known = vectors(dlib.load_rgb_image(str(PHOTOS / "obama.jpg")))[0]
    faces = right = 0
    for i, path in enumerate(sorted(frames.glob("*.jpg"))):
        for v in vectors(dlib.load_rgb_image(str(path))):
            faces += 1
            named = "Barack Obama" if np.linalg.norm(v - known) < 0.6 else None
            right += (named == truth_at(i / RATE))
    return time.monotonic() - started, faces, right


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--reelbase", required=True)
    args = parser.parse_args()
    video = args.dir / "media" / "faces.mp4"
    video.parent.mkdir(parents=True, exist_ok=True)
    make_video(video)
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    length = sum(s for _, s in SCENES)
    print(f"material: {length} s of 640x360 video, {len(SCENES)} shots of one face each "
          f"(Obama known from another photo, Biden a stranger), sampled at {RATE:g}/s; {os.cpu_count()} cores")
    p_seconds, p_faces, p_right, p_total, p_tracks = pipeline(args.reelbase, video)
    d_seconds, d_faces, d_right = direct(video, site)
    print(f"\n{'':36}{'reelbase pipeline':>20}{'models directly':>18}")
    print(f"{'faces found':36}{p_faces:>20}{d_faces:>18}")
    print(f"{'faces per second (detect + vector)':36}{p_faces / p_seconds:>20.1f}{d_faces / d_seconds:>18.1f}")
    print(f"{'seconds':36}{p_seconds:>20.1f}{d_seconds:>18.1f}")
    print(f"{'faces named right':36}{p_right / max(p_total, 1):>20.1%}{d_right / max(d_faces, 1):>18.1%}")
    print(f"{'tracks':36}{p_tracks:>20}{'-':>18}")
    print("\npipeline: the face step's own duration (frame sampling, model load, tiles and second looks, "
          "tracks, matching); directly: BlazeFace on whole frames + dlib, per-face nearest within 0.6.")


if __name__ == "__main__":
    main()
