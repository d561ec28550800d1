#!/usr/bin/env python3
"""face: face boxes and 128-d face vectors for reelbase's `face` processor.

Detection runs MediaPipe's BlazeFace short-range model through the MediaPipe
Tasks FaceDetector (mediapipe==0.10.21, which bundles the model as
mediapipe/modules/face_detection/face_detection_short_range.tflite). Each face
is then aligned with dlib's 5-point landmark model and embedded with dlib's
ResNet face recognition model (both from PyPI face_recognition_models).

  face.py --check          prints {"ok": true} when mediapipe, dlib and numpy import
  face.py < request.json   request:  {"frames": [{"index", "time", "path"}...],
                                      "detector": tflite path or null (bundled),
                                      "landmarks": path, "encoder": path,
                                      "min_confidence": 0.5}
                           response: {"faces": [{"frame", "time", "box": [x, y, w, h],
                                      "confidence", "vector": [128 floats]}...],
                                      "frames": N, "model": {"detector", "encoder"}}

On bad input or any failure: one line on stderr, exit status 1.

The short-range model sees the image shrunk to 128x128 and misses faces under
about a tenth of the frame's long side, which is most faces in wide shots. So
besides the whole frame, the detector also looks at overlapping square tiles
(side = the frame's short side, then half of it) and merges what it finds.
Tiles also turn up face-like clothing and objects, so every candidate gets a
second look on crops centred on it, and its confidence is the mean score there.
Only BlazeFace short-range models (128x128 input, 896 anchors) can be used: the
Tasks detector fixes that layout, so the bundled full-range model fails.
"""
import importlib.util
import math
import os
import sys

ENCODER_NAME = "dlib_face_recognition_resnet_model_v1"
MIN_FACE_PX = 20          # faces narrower or lower than this are not embedded
MIN_TILE_PX = 160         # smaller tiles would only find faces under MIN_FACE_PX
TILE_OVERLAP = 0.25       # fraction of a tile's side shared with its neighbour
EDGE_PX = 2               # a tile box this close to a cut tile edge is partial
NMS_IOU = 0.3             # boxes overlapping more than this are one face
NMS_COVER = 0.6           # ... or when this much of the smaller box is covered
DETECTOR_FLOOR = 0.2      # the detector's own threshold; min_confidence filters after
VERIFY_FROM = 0.4         # first-pass score from which a candidate gets a second look
VERIFY_CROPS = (1.6, 2.2, 3.0)  # second-look crop sides, in multiples of the face box
MAX_CANDIDATES = 32       # second looks per frame at most (best first-pass scores first)
BUNDLED_DETECTOR = os.path.join("modules", "face_detection", "face_detection_short_range.tflite")


def _load_shared():
    """scripts/_frames.py, beside this file (the scripts folder is not on the import path)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_frames.py")
    spec = importlib.util.spec_from_file_location("reelbase_frames", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


shared = _load_shared()
Fail = shared.Fail


def _import_mediapipe():
    """The MediaPipe pieces this script uses.

    `import mediapipe` runs mediapipe/__init__.py, which imports the legacy
    solutions' drawing helpers and with them OpenCV and matplotlib (about 150 MB
    that face detection never calls). A bare package module is registered in
    its place so that only the Tasks detector and the image bindings load.
    """
    shared.bare_mediapipe()
    from mediapipe.python._framework_bindings import image as mp_image
    from mediapipe.python._framework_bindings import image_frame as mp_image_frame
    from mediapipe.tasks.python.core import base_options as mp_base_options
    from mediapipe.tasks.python.vision import face_detector as mp_face_detector
    return mp_image, mp_image_frame, mp_base_options, mp_face_detector


# ------------------------------------------------------------ request
def parse_request(text):
    request, checked = shared.request_with_frames(text)
    confidence = request.get("min_confidence", 0.5)
    if confidence is None:
        confidence = 0.5
    confidence = shared.number(confidence, "request.min_confidence")
    if not 0.0 <= confidence <= 1.0:
        raise Fail("request.min_confidence must lie between 0 and 1")
    return {
        "frames": checked,
        "detector": shared.model_file(request, "detector", required=False),
        "landmarks": shared.model_file(request, "landmarks"),
        "encoder": shared.model_file(request, "encoder"),
        "min_confidence": float(confidence),
    }


# ------------------------------------------------------------ detection
def tiles(width, height):
    """Regions (x, y, w, h) to run the detector on: the whole frame, then
    square tiles with the frame's short side and with half of it."""
    regions = [(0, 0, width, height)]
    short, long_side = min(width, height), max(width, height)
    side = short
    if long_side < short * 1.2:  # tiles of the short side would repeat the frame
        side = short // 2
    while side >= MIN_TILE_PX and side >= short // 2:
        for y in shared.tile_starts(height, side, TILE_OVERLAP):
            for x in shared.tile_starts(width, side, TILE_OVERLAP):
                regions.append((x, y, side, side))
        side //= 2
    return regions


def _overlap(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    union = area_a + area_b - inter
    iou = inter / union if union > 0 else 0.0
    cover = inter / min(area_a, area_b) if min(area_a, area_b) > 0 else 0.0
    return iou, cover


def merge(candidates):
    """Greedy non-maximum suppression over (x0, y0, x1, y1, score) boxes."""
    kept = []
    for cand in sorted(candidates, key=lambda c: -c[4]):
        overlaps = (_overlap(cand, k) for k in kept)
        if all(iou <= NMS_IOU and cover <= NMS_COVER for iou, cover in overlaps):
            kept.append(cand)
    return kept


class Detector:
    def __init__(self, model_path, floor):
        mp_image, mp_image_frame, mp_base_options, mp_face_detector = _import_mediapipe()
        self._image, self._format = mp_image.Image, mp_image_frame.ImageFormat.SRGB
        options = mp_face_detector.FaceDetectorOptions(
            base_options=mp_base_options.BaseOptions(model_asset_path=model_path),
            min_detection_confidence=floor,
        )
        try:
            self._detector = mp_face_detector.FaceDetector.create_from_options(options)
        except Exception as exc:  # mediapipe raises RuntimeError/ValueError/TypeError
            why = shared.one_line(exc)
            raise Fail(f"cannot load the face detector {model_path}: {why}") from None

    def _run(self, pixels):
        import numpy as np
        image = self._image(image_format=self._format, data=np.ascontiguousarray(pixels))
        return self._detector.detect(image).detections

    def _scan(self, rgb):
        """First pass: (x0, y0, x1, y1, score) boxes in frame pixels from the
        whole frame and its tiles, merged."""
        height, width = rgb.shape[:2]
        found = []
        for x, y, w, h in tiles(width, height):
            whole = (w, h) == (width, height)
            for det in self._run(rgb if whole else rgb[y:y + h, x:x + w]):
                box = det.bounding_box
                if not det.categories:
                    continue
                score = float(det.categories[0].score)
                x0, y0 = box.origin_x, box.origin_y
                x1, y1 = x0 + box.width, y0 + box.height
                if not whole and (
                    (x > 0 and x0 <= EDGE_PX) or (y > 0 and y0 <= EDGE_PX)
                    or (x + w < width and x1 >= w - EDGE_PX)
                    or (y + h < height and y1 >= h - EDGE_PX)
                ):
                    continue  # cut by a tile edge inside the frame: another region sees it whole
                found.append((x0 + x, y0 + y, x1 + x, y1 + y, score))
        return merge(found)

    def _verify(self, rgb, cand):
        """Second look: the detector's mean score on square crops centred on
        the candidate at a few sizes, and the box it scored best. A face stays
        a face when it is centred and framed differently; the dark sleeves,
        microphones and cups that tiles sometimes report at 0.55-0.75 do not
        (measured: faces 0.75-0.95, such look-alikes 0.50-0.60)."""
        height, width = rgb.shape[:2]
        x0, y0, x1, y1, _ = cand
        cx, cy, size = (x0 + x1) / 2.0, (y0 + y1) / 2.0, max(x1 - x0, y1 - y0)
        scores, best = [], None
        for factor in VERIFY_CROPS:
            half = size * factor / 2.0
            left, top = int(max(0, cx - half)), int(max(0, cy - half))
            right, bottom = int(min(width, cx + half)), int(min(height, cy + half))
            top_score = 0.0
            if right - left >= 8 and bottom - top >= 8:
                for det in self._run(rgb[top:bottom, left:right]):
                    if not det.categories:
                        continue
                    b = det.bounding_box
                    box = (b.origin_x + left, b.origin_y + top,
                           b.origin_x + left + b.width, b.origin_y + top + b.height)
                    score = float(det.categories[0].score)
                    if _overlap(box, cand)[0] > NMS_IOU and score > top_score:
                        top_score = score
                        if best is None or score > best[4]:
                            best = box + (score,)
            scores.append(top_score)
        if best is None:
            return None
        return best[:4] + (sum(scores) / len(scores),)

    def detect(self, rgb, threshold):
        """Faces as (x0, y0, x1, y1, confidence) in frame pixels, confidence
        being the mean score of the second look."""
        candidates = [c for c in self._scan(rgb) if c[4] >= min(VERIFY_FROM, threshold)]
        verified = []
        for cand in candidates[:MAX_CANDIDATES]:
            face = self._verify(rgb, cand)
            if face is not None and face[4] >= threshold:
                verified.append(face)
        return merge(verified)

    def close(self):
        self._detector.close()


# ------------------------------------------------------------ embedding
class Encoder:
    def __init__(self, landmarks_path, encoder_path):
        import dlib
        self._dlib = dlib
        try:
            self._shape = dlib.shape_predictor(landmarks_path)
        except Exception as exc:
            why = shared.one_line(exc)
            raise Fail(f"cannot load the landmark model {landmarks_path}: {why}") from None
        try:
            self._net = dlib.face_recognition_model_v1(encoder_path)
        except Exception as exc:
            why = shared.one_line(exc)
            raise Fail(f"cannot load the face encoder {encoder_path}: {why}") from None

    def vector(self, rgb, box):
        x, y, w, h = box
        shape = self._shape(rgb, self._dlib.rectangle(x, y, x + w - 1, y + h - 1))
        return list(self._net.compute_face_descriptor(rgb, shape))


def clamp_box(x0, y0, x1, y1, width, height):
    left, top = max(0, int(math.floor(x0))), max(0, int(math.floor(y0)))
    right, bottom = min(width, int(math.ceil(x1))), min(height, int(math.ceil(y1)))
    return [left, top, right - left, bottom - top]


def run(request):
    detector_path = request["detector"] or os.path.join(shared.mediapipe_dir(), BUNDLED_DETECTOR)
    if not os.path.isfile(detector_path):
        raise Fail(f"mediapipe's bundled face detector is missing: {detector_path}")
    threshold = request["min_confidence"]
    detector = Detector(detector_path, min(DETECTOR_FLOOR, threshold))
    encoder = Encoder(request["landmarks"], request["encoder"])
    faces = []
    try:
        for index, time, path in request["frames"]:
            rgb = shared.load_rgb(path)
            height, width = rgb.shape[:2]
            try:
                found = detector.detect(rgb, threshold)
            except RuntimeError as exc:  # e.g. a model with another input size or anchor layout
                raise Fail(f"face detection failed on {path} (the detector must be a BlazeFace "
                           f"short-range model): {shared.one_line(exc)}") from None
            for x0, y0, x1, y1, score in found:
                box = clamp_box(x0, y0, x1, y1, width, height)
                if box[2] < MIN_FACE_PX or box[3] < MIN_FACE_PX:
                    continue
                vector = encoder.vector(rgb, box)
                faces.append({
                    "frame": index,
                    "time": time,
                    "box": box,
                    "confidence": round(score, 4),
                    "vector": [round(float(v), 6) for v in vector],
                })
            del rgb
    finally:
        detector.close()
    name = os.path.splitext(os.path.basename(detector_path))[0]
    return {
        "faces": faces,
        "frames": len(request["frames"]),
        "model": {"detector": f"mediapipe:{name}", "encoder": ENCODER_NAME},
    }


def check():
    _import_mediapipe()
    import dlib  # noqa: F401
    import numpy  # noqa: F401
    return {"ok": True}


def main(argv):
    return shared.main("face", argv, check, run, parse_request, "faces")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
