#!/usr/bin/env python3
"""asrx: speaker turns for reelbase (numpy + stdlib only, no torch).

Embeds each speech segment with the resemblyzer voice encoder, re-implemented
here (power mel spectrogram -> 3-layer LSTM -> linear -> ReLU -> L2 norm),
then clusters the segment vectors into speakers.
  asrx.py --check [--model PATH]   prints {"ok": true}
  asrx.py < request.json           request/response JSON as in reelbase's asrx
"""
import collections
import json
import os
import pickle
import struct
import sys
import traceback
import wave

# The LSTM does ~1000 small matmuls per chunk. OpenBLAS threads spin-wait, and
# on a busy 2-core host they made it 3-5x slower than one thread, which alone
# runs >100x faster than real time. The caller may still override this.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402  (must follow the thread setting)

SR, N_FFT, HOP, N_MELS = 16000, 400, 160, 40   # 25 ms window, 10 ms hop
PARTIAL = 160                     # frames per partial window (1.6 s)
PARTIAL_STEP = round(SR / 1.3 / HOP)  # resemblyzer: 1.3 partials/s -> 77 frames
MIN_COVERAGE = 0.75               # keep a padded last partial if >= 75% audio
TARGET_DBFS = -30.0
HIDDEN, LAYERS = 256, 3
MIN_AUDIO = 0.1                   # s; less than this gets speaker null
RELIABLE = 1.0                    # s; shorter segments are attached, not clustered
# Stop merging when the best average-linkage cosine falls below this. Measured
# on 12 espeak-ng voices x 8 sentences (~3 s each): one voice's sentences all
# merge at >= 0.815 (usually >= 0.85); distinct voices link at <= 0.777
# (median 0.64); only pitch-shifted variants of one base voice link at
# 0.80-0.87. 0.78 sits in the gap, leaning low as real speakers vary more.
DEFAULT_THRESHOLD = 0.78
# Shorter clips score lower against every voice. Measured midpoints between
# the same-voice and different-voice mean cosines fall from 0.78 (3 s) to 0.74
# (2 s), 0.70 (1.5 s), 0.66 (1 s), 0.64 (0.8 s) and 0.58 (0.5 s), so the
# clustering credits each pair with the average of these drops.
SHORT_S, SHORT_BONUS = [0.5, 1.0, 1.5, 2.0, 3.0], [0.2, 0.12, 0.076, 0.04, 0.0]
MODEL_NAME = "resemblyzer-voice-encoder"


class Fail(Exception):
    """An expected failure: bad input, unreadable file, bad checkpoint."""


# ------------------------------------------------------------ checkpoint
_DTYPES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2",
           "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2",
           "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?"}


class _Tensor:
    """Stands in for torch._utils._rebuild_tensor_v2; resolved once the
    storages are read (the legacy format stores them after the pickle)."""

    def __init__(self, storage, offset, size, stride, *_ignored):
        self.storage, self.offset = storage, int(offset)
        self.size, self.stride = tuple(size), tuple(stride)

    def resolve(self, storages):
        # explicit indices rather than as_strided: a corrupt offset or stride
        # raises IndexError instead of reading memory outside the storage
        nd = len(self.size)
        idx = self.offset + sum(np.arange(n).reshape((-1,) + (1,) * (nd - k - 1)) * s
                                for k, (n, s) in enumerate(zip(self.size, self.stride)))
        return np.asarray(storages[self.storage][idx])


class _SafeUnpickler(pickle.Unpickler):
    """Resolves only the few globals a torch state dict needs, never others."""

    def __init__(self, fh):
        super().__init__(fh)
        self.wanted = {}   # storage key -> dtype

    def find_class(self, module, name):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _Tensor
        if module == "torch" and name in _DTYPES:
            return _DTYPES[name]          # stands in for the storage class
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        raise Fail("checkpoint refers to forbidden global %s.%s" % (module, name))

    def persistent_load(self, pid):
        # ('storage', type, key, location, numel[, view_metadata (legacy)])
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and pid[1] in _DTYPES.values()) or (len(pid) > 5 and pid[5] is not None):
            raise Fail("unsupported storage reference in checkpoint")
        self.wanted[str(pid[2])] = pid[1]
        return str(pid[2])


def _read_checkpoint(fh):
    # The legacy torch format resemblyzer 0.1.4 ships (its hash is pinned in
    # models/resemblyzer-encoder.json): pickles of the magic number, protocol
    # version, sys_info, the object and its storage keys, then per key an
    # int64 element count and the raw data.
    storages = {}
    magic, _, info = [_SafeUnpickler(fh).load() for _ in range(3)]
    if magic != 0x1950A86A20F9469CFC6C or not (
            isinstance(info, dict) and info.get("little_endian")):
        raise Fail("model is not a little-endian torch checkpoint")
    up = _SafeUnpickler(fh)
    obj = up.load()
    for key in _SafeUnpickler(fh).load():
        dtype = np.dtype(up.wanted[str(key)])
        (numel,) = struct.unpack("<q", fh.read(8))
        raw = fh.read(numel * dtype.itemsize)
        if len(raw) != numel * dtype.itemsize:
            raise Fail("model file is truncated")
        storages[str(key)] = np.frombuffer(raw, dtype)
    state = obj.get("model_state") if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        raise Fail("checkpoint has no model_state")
    return {k: v.resolve(storages).astype(np.float32) for k, v in state.items()
            if isinstance(v, _Tensor)}


def load_state(path):
    """The checkpoint's model_state as {name: float32 ndarray}."""
    try:
        with open(path, "rb") as fh:
            return _read_checkpoint(fh)
    except OSError as e:
        raise Fail("cannot read model %s: %s" % (path, e.strerror or e))
    except (pickle.UnpicklingError, EOFError, struct.error,
            KeyError, IndexError, ValueError, TypeError, AttributeError) as e:
        raise Fail("model %s is not a usable torch checkpoint (%s: %s)"
                   % (path, type(e).__name__, e))


# ------------------------------------------------------------ encoder
class Encoder:
    def __init__(self, path):
        st = load_state(path)
        try:
            self.layers = []
            for l in range(LAYERS):
                w_ih, w_hh = st["lstm.weight_ih_l%d" % l], st["lstm.weight_hh_l%d" % l]
                if w_ih.shape != (4 * HIDDEN, N_MELS if l == 0 else HIDDEN) \
                        or w_hh.shape != (4 * HIDDEN, HIDDEN):
                    raise Fail("unexpected LSTM weight shapes in model")
                bias = st["lstm.bias_ih_l%d" % l] + st["lstm.bias_hh_l%d" % l]
                self.layers.append((w_ih.T.copy(), w_hh.T.copy(), bias))
            self.lin_w, self.lin_b = st["linear.weight"].T.copy(), st["linear.bias"]
        except KeyError as e:
            raise Fail("model lacks weight %s" % e)

    def embed_partials(self, mels, chunk=128):
        """mels (P, 160, 40) -> (P, 256) unit, non-negative embeddings. Chunks
        bound memory (the input projections take ~0.7 MB per partial)."""
        out = []
        for c in range(0, len(mels), chunk):
            x = mels[c:c + chunk]
            for w_ih, w_hh, bias in self.layers:
                x = _lstm_layer(x, w_ih, w_hh, bias)
            e = np.maximum(x[:, -1] @ self.lin_w + self.lin_b, 0.0)
            out.append(e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12))
        return np.concatenate(out)


def _lstm_layer(x, w_ih, w_hh, bias):
    """One torch-style LSTM layer over a batch: (B, T, in) -> (B, T, 256)."""
    b, t, _ = x.shape
    xp = x.reshape(b * t, -1) @ w_ih   # input projections of all steps at once
    xp += bias
    xp = xp.reshape(b, t, 4 * HIDDEN)
    h = np.zeros((b, HIDDEN), np.float32)
    cell = np.zeros((b, HIDDEN), np.float32)
    seq = np.empty((b, t, HIDDEN), np.float32)
    for s in range(t):
        i, f, g, o = np.split(xp[:, s] + h @ w_hh, 4, axis=1)   # torch order
        cell = _sigmoid(f) * cell + _sigmoid(i) * np.tanh(g)
        h = seq[:, s] = _sigmoid(o) * np.tanh(cell)
    return seq


def _sigmoid(x):
    return 0.5 * (np.tanh(0.5 * x) + 1.0)   # same value, cannot overflow


# ------------------------------------------------------------ features
def _mel_filters():
    """Same as librosa.filters.mel(sr=16000, n_fft=400, n_mels=40): Slaney
    mel scale (linear below 1 kHz, logarithmic above), Slaney area norm."""
    step = np.log(6.4) / 27.0
    def hz2mel(f):
        return f / (200 / 3) if f < 1000 else 15.0 + np.log(f / 1000.0) / step
    mels = np.linspace(hz2mel(0.0), hz2mel(SR / 2), N_MELS + 2)
    hz = np.where(mels < 15.0, mels * (200 / 3), 1000.0 * np.exp(step * (mels - 15.0)))
    fft_hz = np.linspace(0, SR / 2, N_FFT // 2 + 1)
    rise = (fft_hz - hz[:-2, None]) / np.diff(hz)[:-1, None]
    fall = (hz[2:, None] - fft_hz) / np.diff(hz)[1:, None]
    w = np.maximum(0.0, np.minimum(rise, fall)) * (2.0 / (hz[2:] - hz[:-2]))[:, None]
    return w.T.astype(np.float32)   # (201, 40)


MEL = _mel_filters()
# periodic Hann, i.e. scipy.signal.get_window("hann", 400) as librosa uses it
WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def mel_spectrogram(wav):
    """Power (not log) mel spectrogram, (frames, 40): centred frames with zero
    padding, as librosa.feature.melspectrogram with resemblyzer's settings."""
    y = np.pad(wav, N_FFT // 2)
    spec = np.fft.rfft(np.lib.stride_tricks.sliding_window_view(y, N_FFT)[::HOP] * WINDOW)
    return (spec.real ** 2 + spec.imag ** 2).astype(np.float32) @ MEL


def partial_mels(wav):
    """Cuts one utterance into 160-frame partials as resemblyzer's
    compute_partial_slices/embed_utterance do: (n_partials, 160, 40)."""
    if len(wav) < PARTIAL * HOP:
        # Deviation from resemblyzer, which zero-pads: repeating a short clip
        # to fill one window measured clearly better (cosine to the speaker's
        # centroid, 0.5 s clips: 0.67 -> 0.81; 1.0 s clips: 0.80 -> 0.87).
        wav = np.tile(wav, -(-PARTIAL * HOP // len(wav)))[:PARTIAL * HOP]
    n = len(wav)
    n_frames = -(-(n + 1) // HOP)
    starts = list(range(0, max(1, n_frames - PARTIAL + PARTIAL_STEP + 1), PARTIAL_STEP))
    if len(starts) > 1 and (n - starts[-1] * HOP) / (PARTIAL * HOP) < MIN_COVERAGE:
        starts.pop()
    mel = mel_spectrogram(np.pad(wav, (0, max(0, (starts[-1] + PARTIAL) * HOP - n))))
    return np.stack([mel[s:s + PARTIAL] for s in starts])


def normalize_volume(wav):
    """Raises (never lowers) the level to -30 dBFS, as resemblyzer does."""
    rms = np.sqrt(np.mean(np.square(wav, dtype=np.float64)))
    gain_db = TARGET_DBFS - 20 * np.log10(rms)
    return wav * np.float32(10 ** (gain_db / 20)) if gain_db > 0 else wav


def read_wav(path):
    try:
        with wave.open(path, "rb") as w:
            if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, SR):
                raise Fail("audio must be 16-bit PCM, 16 kHz mono: %s" % path)
            return np.frombuffer(w.readframes(w.getnframes()), "<i2")
    except (OSError, EOFError, wave.Error) as e:
        raise Fail("cannot read audio %s: %s" % (path, e))


# ------------------------------------------------------------ clustering
def agglomerate(vecs, seconds, threshold):
    """Average-linkage agglomerative clustering on (duration-corrected) cosine
    similarity: merge the most similar pair until the best average is below
    threshold. Ties go to the lowest indices (np.argmax): deterministic."""
    n = len(vecs)
    bonus = np.interp(seconds, SHORT_S, SHORT_BONUS)
    sim = (vecs @ vecs.T).astype(np.float64) + (bonus[:, None] + bonus[None, :]) / 2
    np.fill_diagonal(sim, -np.inf)
    size, label = np.ones(n), np.arange(n)
    for _ in range(n - 1):
        a, b = sorted(divmod(int(np.argmax(sim)), n))
        if sim[a, b] < threshold:
            break
        # Lance-Williams update: average linkage of the merged cluster
        sim[a] = sim[:, a] = (size[a] * sim[a] + size[b] * sim[b]) / (size[a] + size[b])
        sim[a, a] = sim[b] = sim[:, b] = -np.inf
        size[a] += size[b]
        label[label == b] = a
    return label


def unit(v):
    return v / max(float(np.linalg.norm(v)), 1e-12)


# ------------------------------------------------------------ request
def parse(req):
    if not isinstance(req, dict):
        raise Fail("request must be a JSON object")
    audio, model, segs = req.get("audio"), req.get("model"), req.get("segments")
    thr = DEFAULT_THRESHOLD if req.get("threshold") is None else req["threshold"]
    if not (isinstance(audio, str) and isinstance(model, str) and isinstance(segs, list)):
        raise Fail('"audio" and "model" must be path strings, "segments" a list')
    if isinstance(thr, bool) or not isinstance(thr, (int, float)) or not 0 <= thr <= 1:
        raise Fail('"threshold" must be a number in [0, 1]')
    spans = []
    for i, s in enumerate(segs):
        try:
            spans.append((float(s["start"]), float(s["end"])))
        except (TypeError, KeyError, ValueError):
            raise Fail("segment %d needs numeric start and end" % i)
        if not np.all(np.isfinite(spans[-1])) or spans[-1][1] < spans[-1][0]:
            raise Fail("segment %d has invalid times" % i)
    return audio, model, spans, float(thr)


def run(req):
    audio, model, spans, threshold = parse(req)
    wav, enc = read_wav(audio), Encoder(model)
    seconds, owner, batches = [], [], []
    for i, (start, end) in enumerate(spans):   # clamp to the audio
        a = min(max(int(round(start * SR)), 0), len(wav))
        b = min(max(int(round(end * SR)), a), len(wav))
        seconds.append((b - a) / SR)
        piece = wav[a:b].astype(np.float32) / 32768.0
        if b - a >= MIN_AUDIO * SR and np.any(piece):
            batches.append(partial_mels(normalize_volume(piece)))
            owner.append(i)
    vec, k = {}, 0
    if batches:   # one batched LSTM pass over the partials of all segments
        parts = enc.embed_partials(np.concatenate(batches))
        for i, m in zip(owner, batches):   # utterance = mean of its partials
            vec[i] = unit(parts[k:k + len(m)].mean(axis=0))
            k += len(m)

    # cluster the reliable (long) segments, then attach the short ones
    core = [i for i in owner if seconds[i] >= RELIABLE] or owner
    labels = agglomerate(np.array([vec[i] for i in core]), [seconds[i] for i in core],
                         threshold) if core else []
    cluster = dict(zip(core, [int(c) for c in labels]))
    cents = {c: unit(np.mean([vec[i] for i in core if cluster[i] == c], axis=0))
             for c in sorted(set(cluster.values()))}
    for i in owner:
        if i not in cluster:
            cluster[i] = max(cents, key=lambda c: float(cents[c] @ vec[i]))

    # speakers are numbered by first appearance in time (ties: input order)
    names = {}
    for i in sorted(owner, key=lambda i: (spans[i][0], i)):
        names.setdefault(cluster[i], "SPEAKER_%d" % (len(names) + 1))
    speaker = {i: names[cluster[i]] for i in owner}
    out = [{"index": i, "speaker": speaker.get(i), "similarity": round(float(
            cents[cluster[i]] @ vec[i]), 4) if i in speaker else None}
           for i in range(len(spans))]
    speakers = [{"label": name,
                 "segments": sum(1 for i in owner if speaker[i] == name),
                 "seconds": round(sum(seconds[i] for i in owner if speaker[i] == name), 2)}
                for name in names.values()]
    return {"speakers": speakers, "segments": out, "model": MODEL_NAME,
            "threshold": threshold}


def main(argv):
    try:
        if argv[:1] == ["--check"]:
            if argv[1:2] == ["--model"] and len(argv) == 3:
                Encoder(argv[2])
            elif len(argv) != 1:
                raise Fail("usage: asrx.py --check [--model PATH]")
            print(json.dumps({"ok": True}))
            return 0
        if argv:
            raise Fail("usage: asrx.py [--check [--model PATH]] < request.json")
        try:
            req = json.load(sys.stdin)
        except ValueError as e:
            raise Fail("invalid request JSON: %s" % e)
        print(json.dumps(run(req)))
        return 0
    except Fail as e:
        print("asrx: %s" % e, file=sys.stderr)
    except Exception as e:   # unexpected: the one-line message first, then details
        print("asrx: internal error: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        traceback.print_exc()
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
