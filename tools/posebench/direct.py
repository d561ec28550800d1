#!/usr/bin/env python3
"""The benchmark anchor of the pose processor: the same BlazePose models that
scripts/pose.py uses, called straight through MediaPipe's Tasks PoseLandmarker
on whole frames (no request, no tiles, no merging), and how fast that goes.

  direct.py FRAMES_DIR   prints {"frames": N, "seconds": s, "fps": f, "poses": P}

Every *.jpg in FRAMES_DIR is one frame, read with MediaPipe's own decoder.
The seconds cover decoding and detection, not the one-off model load. The
loose models lack the input-scaling metadata the Tasks graph needs, so it is
written in first, as scripts/pose.py does ([-1, 1] detector, [0, 1] landmarks).
"""
import importlib.util
import io
import json
import os
import sys
import time
import types
import zipfile

NUM_POSES = 5
CONFIDENCE = 0.5


def load_mediapipe():
    """Only the Tasks pieces: `import mediapipe` would pull in OpenCV and
    matplotlib, which the environment does not have."""
    spec = importlib.util.find_spec("mediapipe")
    package = types.ModuleType("mediapipe")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    sys.modules["mediapipe"] = package
    return package.__path__[0]


def with_scaling(writer_module, path, mean, std):
    with open(path, "rb") as handle:
        writer = writer_module.MetadataWriter.create(bytearray(handle.read()))
    writer.add_image_input(norm_mean=[mean], norm_std=[std])
    return bytes(writer.populate()[0])


def main(argv):
    if len(argv) != 1 or not os.path.isdir(argv[0]):
        sys.exit("usage: direct.py FRAMES_DIR")
    frames = sorted(os.path.join(argv[0], n) for n in os.listdir(argv[0]) if n.endswith(".jpg"))
    root = load_mediapipe()
    from mediapipe.python._framework_bindings import image as mp_image
    from mediapipe.tasks.python.core import base_options
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer
    from mediapipe.tasks.python.vision import pose_landmarker

    bundle = io.BytesIO()
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("pose_detector.tflite", with_scaling(
            metadata_writer, os.path.join(root, "modules/pose_detection/pose_detection.tflite"),
            127.5, 127.5))
        archive.writestr("pose_landmarks_detector.tflite", with_scaling(
            metadata_writer, os.path.join(root, "modules/pose_landmark/pose_landmark_full.tflite"),
            0.0, 255.0))
    options = pose_landmarker.PoseLandmarkerOptions(
        base_options=base_options.BaseOptions(model_asset_buffer=bundle.getvalue()),
        num_poses=NUM_POSES,
        min_pose_detection_confidence=CONFIDENCE,
        min_pose_presence_confidence=CONFIDENCE,
    )
    poses = 0
    with pose_landmarker.PoseLandmarker.create_from_options(options) as landmarker:
        start = time.perf_counter()
        for path in frames:
            poses += len(landmarker.detect(mp_image.Image.create_from_file(path)).pose_landmarks)
        seconds = time.perf_counter() - start
    print(json.dumps({"frames": len(frames), "seconds": round(seconds, 3),
                      "fps": round(len(frames) / seconds, 2) if seconds > 0 else None,
                      "poses": poses}))


if __name__ == "__main__":
    main(sys.argv[1:])
