"""Pieces the frame scripts (face.py, pose.py) share: MediaPipe without its package
__init__, quiet native output, request checks, frame loading and the one-line failure
convention. Loaded by file path from the scripts folder (the scripts run isolated, `-I`, so
the folder is not on the import path); covered by scripts/MANIFEST.sha256 like them."""
import importlib.util
import json
import math
import os
import sys
import types


class Fail(Exception):
    """An expected failure with a message for the caller."""


def mediapipe_dir():
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise Fail("mediapipe is not installed")
    return list(spec.submodule_search_locations)[0]


def bare_mediapipe():
    """Registers a bare `mediapipe` package module. `import mediapipe` runs its __init__,
    which imports the legacy solutions' drawing helpers and with them OpenCV and matplotlib
    (not installed, and never called here); with the bare module only the Tasks pieces and
    bindings a script imports load."""
    if "mediapipe" not in sys.modules:
        spec = importlib.util.find_spec("mediapipe")
        package = types.ModuleType("mediapipe")
        package.__path__ = [mediapipe_dir()]
        package.__file__, package.__spec__, package.__package__ = spec.origin, spec, "mediapipe"
        sys.modules["mediapipe"] = package


def quiet_native_output():
    """Point fds 1 and 2 at /dev/null (MediaPipe, TFLite and absl log there
    from C++) and return writable files on the original stdout and stderr."""
    out = os.fdopen(os.dup(1), "w")
    err = os.fdopen(os.dup(2), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stdout = open(os.devnull, "w")
    sys.stderr = err
    return out, err


def one_line(exc):
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:500]


# ------------------------------------------------------------ request
def number(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Fail(f"{name} must be a finite number")
    return value


def model_file(request, key, required=True):
    path = request.get(key)
    if path is None and not required:
        return None
    if not isinstance(path, str) or not path:
        raise Fail(f"request.{key} must be a path to a model file")
    if not os.path.isfile(path):
        raise Fail(f"request.{key}: no such file: {path}")
    return path


def request_with_frames(text):
    """The request object and its checked frames: [(index, time, path), ...]."""
    try:
        request = json.loads(text)
    except ValueError as exc:
        raise Fail(f"request is not valid JSON: {exc}") from None
    if not isinstance(request, dict):
        raise Fail("request must be a JSON object")
    frames = request.get("frames")
    if not isinstance(frames, list):
        raise Fail("request.frames must be a list")
    checked = []
    for n, frame in enumerate(frames):
        if not isinstance(frame, dict):
            raise Fail(f"frames[{n}] must be an object")
        index = frame.get("index")
        if isinstance(index, bool) or not isinstance(index, int):
            raise Fail(f"frames[{n}].index must be an integer")
        time = number(frame.get("time"), f"frames[{n}].time")
        path = frame.get("path")
        if not isinstance(path, str) or not path:
            raise Fail(f"frames[{n}].path must be a file path")
        checked.append((index, time, path))
    return request, checked


# ------------------------------------------------------------ frames
def tile_starts(length, side, overlap):
    """Evenly spaced starts of tiles of `side` covering [0, length), with
    neighbours sharing at least `overlap` of a side."""
    if side >= length:
        return [0]
    count = math.ceil((length - side) / (side * (1.0 - overlap))) + 1
    step = (length - side) / (count - 1)
    return [round(i * step) for i in range(count)]


def load_rgb(path):
    import dlib
    import numpy as np
    if not os.path.isfile(path):
        raise Fail(f"frame not found: {path}")
    try:
        rgb = dlib.load_rgb_image(path)  # JPEG and PNG; grey and RGBA become RGB
    except Exception as exc:
        raise Fail(f"cannot read frame {path}: {one_line(exc)}") from None
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or rgb.size == 0:
        raise Fail(f"frame {path} is not an RGB image")
    return rgb


# ------------------------------------------------------------ the command line
def main(name, argv, check, run, parse, listed):
    """`name --check` prints check()'s answer, `name < request` run(parse(request)); one
    JSON object on stdout (compact when it holds the `listed` results), or one line on
    stderr and exit status 1."""
    out, err = quiet_native_output()
    try:
        if argv == ["--check"]:
            result = check()
        elif argv:
            raise Fail(f"usage: {name}.py [--check] < request.json")
        else:
            result = run(parse(sys.stdin.read()))
    except Fail as exc:
        err.write(f"{name}: {exc}\n")
        err.flush()
        return 1
    except Exception as exc:  # anything unexpected still ends as one line
        err.write(f"{name}: {type(exc).__name__}: {one_line(exc)}\n")
        err.flush()
        return 1
    compact = (",", ":") if listed in result else None
    out.write(json.dumps(result, separators=compact) + "\n")
    out.flush()
    return 0
