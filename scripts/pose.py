#!/usr/bin/env python3
"""pose: body keypoints per person per frame for reelbase's `pose` processor.

Runs BlazePose (the pose detector and 33-keypoint landmark models that
mediapipe==0.10.21 bundles under modules/pose_detection and modules/pose_landmark)
through the MediaPipe Tasks PoseLandmarker.

  pose.py --check          prints {"ok": true} when mediapipe, dlib and numpy import
                           and the bundled models make a working PoseLandmarker
  pose.py < request.json   request:  {"frames": [{"index", "time", "path"}...],
                                      "detector": path, "landmarks": path,
                                      "max_people": 5, "min_confidence": 0.5}
                           response: {"poses": [{"frame", "time", "person", "score",
                                      "box": [x, y, w, h], "keypoints": 33 x
                                      [x, y, visibility, presence]}...],
                                      "keypoint_names": [33], "frames": N, "width",
                                      "height", "model": {"detector", "landmarks"}}

On bad input or any failure: one line on stderr, exit status 1.

The PoseLandmarker takes a zip of pose_detector.tflite and pose_landmarks_detector.tflite,
built here in memory, but refuses the loose models ("Input tensor has type float32: it
requires specifying NormalizationOptions metadata"): the legacy graphs scale the input in
their own config. So that metadata is written into each model first, with the legacy
scaling: [-1, 1] for the detector, [0, 1] for the landmarks.

num_poses > 1 alone finds few people: the detector (224x224, made for one person near the
camera) scores a second person of the same size at 0.1-0.4 and misses small ones. So, as
in face.py, the landmarker also looks at overlapping square tiles (the frame's short side,
and half of it on large frames), and poses whose keypoints coincide are merged. The Python
result has no scores, so the graph's DETECTIONS stream is read too: a pose's score is its
best detector score; min_confidence gates that and the landmark model's presence flag.

Keypoints are in frame pixels and may lie outside the frame: the model places all 33 even
on a cut body, then with low visibility (the chance the point is in view and not occluded)
and presence (the chance it lies in the region looked at). The box encloses the keypoints
with visibility >= VISIBLE, clipped to the frame.
"""
import importlib.util
import io
import math
import os
import sys
import types
import zipfile

KEYPOINT_NAMES = [
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
    "right_heel", "left_foot_index", "right_foot_index",
]
LEFT_HIP, RIGHT_HIP = 23, 24
# Per model: its role in messages, the legacy graphs' input scaling (mean, std), the input
# shape and the leading output shapes the Tasks graph assumes (2254 SSD anchors; 39 x 5 values).
DETECTOR = ("pose detector", (127.5, 127.5), [1, 224, 224, 3], [[1, 2254, 12], [1, 2254, 1]])
LANDMARKS = ("pose landmark", (0.0, 255.0), [1, 256, 256, 3], [[1, 195]])
BUNDLED = {"detector": "modules/pose_detection/pose_detection.tflite",
           "landmarks": "modules/pose_landmark/pose_landmark_full.tflite"}
MIN_TILE_PX = 320         # half-side tiles only when this big (smaller ones found mostly scraps)
TILE_OVERLAP = 0.25       # fraction of a tile's side shared with its neighbour
EDGE_PX = 4               # a keypoint this far past a tile edge inside the frame is cut off
VISIBLE = 0.5             # visibility from which a keypoint counts as seen (box, matching)
SAME_PERSON = 0.15        # median keypoint distance, in body sizes, below which two poses are one
CUT_COVER = 0.5           # a cut pose this much inside a kept pose's box is that person
MIN_POSE_PX = 24          # poses whose seen keypoints span less than this are dropped


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
    solutions' drawing helpers and with them OpenCV and matplotlib (not
    installed). A bare package module is registered in its place so that only
    the Tasks pose landmarker, the metadata writer and the bindings load.
    """
    shared.bare_mediapipe()
    from mediapipe.framework.formats import detection_pb2, landmark_pb2
    from mediapipe.python import packet_creator, packet_getter
    from mediapipe.python._framework_bindings import image, image_frame
    from mediapipe.tasks.metadata import schema_py_generated as schema
    from mediapipe.tasks.python.core import base_options, task_info
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer
    from mediapipe.tasks.python.vision import pose_landmarker
    return types.SimpleNamespace(
        detection_pb2=detection_pb2, landmark_pb2=landmark_pb2, packet_creator=packet_creator,
        packet_getter=packet_getter, image=image, image_frame=image_frame, schema=schema,
        base_options=base_options, task_info=task_info, metadata_writer=metadata_writer,
        pose_landmarker=pose_landmarker)


# ------------------------------------------------------------ request
def parse_request(text):
    request, checked = shared.request_with_frames(text)
    people = request.get("max_people")
    people = 5 if people is None else people
    if isinstance(people, bool) or not isinstance(people, int) or not 0 < people <= 50:
        raise Fail("request.max_people must be an integer from 1 to 50")
    confidence = request.get("min_confidence")
    confidence = 0.5 if confidence is None else shared.number(confidence, "request.min_confidence")
    if not 0.0 < confidence <= 1.0:
        raise Fail("request.min_confidence must be above 0 and at most 1")
    return {"frames": checked, "detector": shared.model_file(request, "detector"),
            "landmarks": shared.model_file(request, "landmarks"), "max_people": people,
            "min_confidence": float(confidence)}


# ------------------------------------------------------------ model
def _prepared(mp, path, model):
    """The tflite model at `path`, checked to have the layout the graph
    expects, with image-input NormalizationOptions metadata written in."""
    role, (mean, std), input_shape, output_shapes = model
    with open(path, "rb") as handle:
        content = bytearray(handle.read())
    if content[4:8] != b"TFL3":
        raise Fail(f"the {role} model {path} is not a TFLite model")
    try:
        graph = mp.schema.Model.GetRootAsModel(content, 0).Subgraphs(0)
        shapes = [[graph.Tensors(get(i)).ShapeAsNumpy().tolist() for i in range(count)]
                  for get, count in ((graph.Inputs, graph.InputsLength()),
                                     (graph.Outputs, graph.OutputsLength()))]
        if shapes[0] != [input_shape] or shapes[1][:len(output_shapes)] != output_shapes:
            raise Fail(f"{path} is not a BlazePose {role} model: inputs {shapes[0]}, outputs "
                       f"{shapes[1]}, expected {[input_shape]} and {output_shapes}")
        writer = mp.metadata_writer.MetadataWriter.create(content)
        writer.add_general_info(os.path.splitext(os.path.basename(path))[0])
        writer.add_image_input(norm_mean=[mean], norm_std=[std])
        return bytes(writer.populate()[0])
    except Fail:
        raise
    except Exception as exc:  # a damaged flatbuffer, metadata errors of several kinds
        raise Fail(f"cannot prepare the {role} model {path}: {shared.one_line(exc)}") from None


class Landmarker:
    """The Tasks PoseLandmarker graph, reading its DETECTIONS stream as well.
    PoseLandmarker.detect returns only the landmarks, so the graph is set up with
    that stream added and run through the class's own (private) _process_image_data,
    as in mediapipe 0.10.21."""

    def __init__(self, mp, detector_path, landmarks_path, people, threshold):
        self._mp = mp
        bundle = io.BytesIO()
        with zipfile.ZipFile(bundle, "w") as archive:
            archive.writestr("pose_detector.tflite", _prepared(mp, detector_path, DETECTOR))
            archive.writestr("pose_landmarks_detector.tflite",
                             _prepared(mp, landmarks_path, LANDMARKS))
        options = mp.pose_landmarker.PoseLandmarkerOptions(
            base_options=mp.base_options.BaseOptions(model_asset_buffer=bundle.getvalue()),
            num_poses=people, min_pose_detection_confidence=threshold,
            min_pose_presence_confidence=threshold)
        info = mp.task_info.TaskInfo(
            task_graph="mediapipe.tasks.vision.pose_landmarker.PoseLandmarkerGraph",
            input_streams=["IMAGE:image_in", "NORM_RECT:norm_rect_in"],
            output_streams=["NORM_LANDMARKS:landmarks", "DETECTIONS:detections", "IMAGE:image_out"],
            task_options=options)
        try:
            self._task = mp.pose_landmarker.PoseLandmarker(
                info.generate_graph_config(), options.running_mode, None)
        except Exception as exc:  # mediapipe raises RuntimeError/ValueError/TypeError
            raise Fail(f"cannot load the pose models: {shared.one_line(exc)}") from None

    def _protos(self, packet, cls):
        items = []
        for proto in [] if packet.is_empty() else self._mp.packet_getter.get_proto_list(packet):
            items.append(cls())
            items[-1].MergeFrom(proto)
        return items

    def run(self, pixels):
        """Poses on an RGB array as (score, [(x, y, visibility, presence)...]),
        x and y in that array's pixels."""
        import numpy as np
        mp, (height, width) = self._mp, pixels.shape[:2]
        image = mp.image.Image(image_format=mp.image_frame.ImageFormat.SRGB,
                               data=np.ascontiguousarray(pixels))
        rect = self._task.convert_to_normalized_rect(None, image, roi_allowed=False)
        packets = self._task._process_image_data({
            "image_in": mp.packet_creator.create_image(image),
            "norm_rect_in": mp.packet_creator.create_proto(rect.to_pb2())})
        # A detection's first keypoint is the hip centre: each pose takes the nearest one's score.
        centres = [(d.location_data.relative_keypoints[0], d.score[0] if d.score else 0.0)
                   for d in self._protos(packets["detections"], mp.detection_pb2.Detection)
                   if d.location_data.relative_keypoints]
        poses = []
        for landmarks in self._protos(packets["landmarks"], mp.landmark_pb2.NormalizedLandmarkList):
            points = landmarks.landmark  # 33: the layout check fixed the model's outputs
            hx = (points[LEFT_HIP].x + points[RIGHT_HIP].x) / 2.0
            hy = (points[LEFT_HIP].y + points[RIGHT_HIP].y) / 2.0
            near = min(centres, key=lambda c: (c[0].x - hx) ** 2 + (c[0].y - hy) ** 2, default=None)
            if near is not None:
                centres.remove(near)
            poses.append((near[1] if near else 0.0,
                          [(p.x * width, p.y * height, p.visibility, p.presence) for p in points]))
        return poses

    def close(self):
        self._task.close()


# ------------------------------------------------------------ regions and merging
def regions(width, height):
    """Regions (x, y, w, h) to look at: the whole frame, then square tiles of
    the frame's short side and, when at least MIN_TILE_PX, of half of it."""
    short, long_side = min(width, height), max(width, height)
    sides = [short] if long_side >= short * 1.2 else []  # else such a tile is about the frame
    sides += [short // 2] if short // 2 >= MIN_TILE_PX else []
    return [(0, 0, width, height)] + [(x, y, side, side) for side in sides
                                      for y in shared.tile_starts(height, side, TILE_OVERLAP)
                                      for x in shared.tile_starts(width, side, TILE_OVERLAP)]


def _cut(points, region, width, height):
    """Whether a keypoint lies past an edge of the tile that is inside the
    frame (so the model only guessed where it is)."""
    x, y, w, h = region
    return any((x > 0 and px < x - EDGE_PX) or (y > 0 and py < y - EDGE_PX)
               or (x + w < width and px > x + w + EDGE_PX)
               or (y + h < height and py > y + h + EDGE_PX) for px, py, _, _ in points)


def _box(points, width, height):
    """(x0, y0, x1, y1) around the keypoints seen, clipped to the frame, or None
    when none are seen or they span less than MIN_POSE_PX."""
    xs = [min(max(px, 0.0), width) for px, _, vis, _ in points if vis >= VISIBLE]
    ys = [min(max(py, 0.0), height) for _, py, vis, _ in points if vis >= VISIBLE]
    if not xs or max(max(xs) - min(xs), max(ys) - min(ys)) < MIN_POSE_PX:
        return None
    return min(xs), min(ys), max(xs), max(ys)


def _same_person(a, b):
    """Whether two poses put their keypoints in the same places: the median
    distance between keypoints seen in both (all 33 if fewer than 4 are) is
    under SAME_PERSON of the smaller body's size."""
    size = min(max(p["box"][2] - p["box"][0], p["box"][3] - p["box"][1]) for p in (a, b))
    pairs = [(p, q) for p, q in zip(a["points"], b["points"]) if min(p[2], q[2]) >= VISIBLE]
    pairs = pairs if len(pairs) >= 4 else list(zip(a["points"], b["points"]))
    distances = sorted(math.hypot(p[0] - q[0], p[1] - q[1]) for p, q in pairs)
    return distances[len(distances) // 2] < SAME_PERSON * size


def _cover(a, b):
    """The fraction of box a inside box b."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return ix * iy / max((a[2] - a[0]) * (a[3] - a[1]), 1e-9)


def merge(candidates):
    """One pose per person: candidates whose keypoints coincide are one, with
    the keypoints of the best one not cut by a tile and the highest score. A
    cut pose mostly inside a kept one is also that person: the keypoints the
    model guessed past the tile edge throw the median distance off."""
    people = []
    for cand in sorted(candidates, key=lambda c: (c["cut"], -c["score"])):
        twin = next((p for p in people if _same_person(p, cand) or (
            cand["cut"] and _cover(cand["box"], p["box"]) >= CUT_COVER)), None)
        if twin is None:
            people.append(dict(cand))
        else:
            twin["score"] = max(twin["score"], cand["score"])
    return sorted(people, key=lambda p: -p["score"])


def detect(landmarker, rgb, people):
    height, width = rgb.shape[:2]
    candidates = []
    for region in regions(width, height):
        x, y, w, h = region
        whole = (w, h) == (width, height)
        for score, points in landmarker.run(rgb if whole else rgb[y:y + h, x:x + w]):
            points = [(px + x, py + y, vis, pres) for px, py, vis, pres in points]
            box = _box(points, width, height)
            if box is not None:
                cut = not whole and _cut(points, region, width, height)
                candidates.append({"score": score, "points": points, "box": box, "cut": cut})
    return merge(candidates)[:people]


def run(request):
    landmarker = Landmarker(_import_mediapipe(), request["detector"], request["landmarks"],
                            request["max_people"], request["min_confidence"])
    poses, width, height = [], None, None  # all frames of a video share one size
    try:
        for index, time, path in request["frames"]:
            rgb = shared.load_rgb(path)
            height, width = rgb.shape[:2]
            try:
                found = detect(landmarker, rgb, request["max_people"])
            except RuntimeError as exc:
                raise Fail(f"pose detection failed on {path}: {shared.one_line(exc)}") from None
            for person, pose in enumerate(found):
                x0, y0, x1, y1 = pose["box"]
                poses.append({
                    "frame": index, "time": time, "person": person,
                    "score": round(float(pose["score"]), 3),
                    "box": [round(x0, 1), round(y0, 1), round(x1 - x0, 1), round(y1 - y0, 1)],
                    "keypoints": [[round(px, 1), round(py, 1), round(vis, 3), round(pres, 3)]
                                  for px, py, vis, pres in pose["points"]],
                })
    finally:
        landmarker.close()
    names = {key: "mediapipe:" + os.path.splitext(os.path.basename(request[key]))[0]
             for key in ("detector", "landmarks")}
    return {"poses": poses, "keypoint_names": KEYPOINT_NAMES, "frames": len(request["frames"]),
            "width": width, "height": height, "model": names}


def check():
    """The imports, and a PoseLandmarker from mediapipe's bundled models."""
    mp = _import_mediapipe()
    import dlib  # noqa: F401
    import numpy  # noqa: F401
    paths = {key: os.path.join(shared.mediapipe_dir(), rel) for key, rel in BUNDLED.items()}
    for key, path in paths.items():
        if not os.path.isfile(path):
            raise Fail(f"mediapipe's bundled {key} model is missing: {path}")
    Landmarker(mp, paths["detector"], paths["landmarks"], 1, 0.5).close()
    return {"ok": True}


def main(argv):
    return shared.main("pose", argv, check, run, parse_request, "poses")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
