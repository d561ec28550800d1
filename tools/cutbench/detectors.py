"""The detectors under test, each run on one video and timed the same way: frames analysed per
second of wall time, decoding included.

Each returns {"boundaries": [{"frame", "kind"}], "frames": n, "fps": frames per second}.
"""

import json
import subprocess
import time


def reelbase(binary, video):
    """Our detector, through `examples/cut_detect`, which times itself from the start of decoding
    to the last boundary (the process start and the ffprobe call are left out)."""
    out = subprocess.run([binary, str(video)], check=True, capture_output=True, text=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "boundaries": [{"frame": b["frame"], "kind": b["kind"]} for b in found["boundaries"]],
        "frames": found["frames"],
        "fps": found["speed_fps"],
    }


def decode_only(video, frames):
    """ffmpeg decoding every frame and discarding it, timed from the process start."""
    started = time.perf_counter()
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", str(video), "-map", "0:v:0"]
        + ["-f", "null", "-"],
        check=True,
    )
    elapsed = time.perf_counter() - started
    return {"boundaries": None, "frames": frames, "fps": frames / elapsed}


def _pyscenedetect(make_detector, video):
    from scenedetect import SceneManager, open_video

    started = time.perf_counter()
    stream = open_video(str(video))
    manager = SceneManager()
    manager.add_detector(make_detector())
    frames = manager.detect_scenes(stream, show_progress=False)
    scenes = manager.get_scene_list()
    elapsed = time.perf_counter() - started
    # It reports cuts only; each scene after the first begins at one.
    return {
        "boundaries": [{"frame": start.frame_num, "kind": "cut"} for start, _ in scenes[1:]],
        "frames": frames,
        "fps": frames / max(elapsed, 1e-6),
    }


def content(video):
    from scenedetect import ContentDetector

    return _pyscenedetect(ContentDetector, video)


def adaptive(video):
    from scenedetect import AdaptiveDetector

    return _pyscenedetect(AdaptiveDetector, video)


def pyscenedetect_setup(video):
    """How PySceneDetect reads a video here: version, backend and the resolution it analyses
    (it shrinks frames by a factor picked from the width, unless told otherwise)."""
    import cv2
    import scenedetect
    from scenedetect import open_video
    from scenedetect.scene_manager import compute_downscale_factor

    stream = open_video(str(video))
    width, height = stream.frame_size
    factor = compute_downscale_factor(width)
    return (
        f"PySceneDetect {scenedetect.__version__}, backend {stream.BACKEND_NAME} "
        f"(OpenCV {cv2.__version__}, {cv2.getNumThreads()} threads), default parameters, "
        f"auto downscale {factor:g}: {width}x{height} analysed at "
        f"{round(width / factor)}x{round(height / factor)}"
    )
