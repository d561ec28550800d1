"""reelbase `asr` processor: speech to text with word timings.

Reads one JSON request on stdin:
    {"audio": "/abs/16k-mono.wav", "model": "/abs/model-dir", "threads": 2,
     "language": "en" | null, "beam_size": 1..5}
and writes one JSON result on stdout: the detected language, the speech segments (start, end,
text, confidence) and their words. Voice activity detection is faster-whisper's bundled Silero
model, so silence and music are skipped before decoding.

`asr.py --check` only proves that the environment can import what the processor needs.
Failures print one line to stderr and exit with status 1.
"""

import json
import math
import os
import sys

# Nothing here may reach for the network: the model comes from the request's path.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def fail(message):
    print(f"asr: {message}", file=sys.stderr)
    sys.exit(1)


def confidence(segment):
    """The mean probability of the segment's words; Whisper's mean token log-probability is
    shared by every segment decoded in one 30-second window, so it serves only without words."""
    probabilities = [w.probability for w in (segment.words or [])]
    if probabilities:
        return round(sum(probabilities) / len(probabilities), 4)
    return round(math.exp(max(min(segment.avg_logprob, 0.0), -20.0)), 4)


def transcribe(request):
    from faster_whisper import WhisperModel

    audio = request.get("audio")
    model_dir = request.get("model")
    if not isinstance(audio, str) or not os.path.isfile(audio):
        fail("request.audio must name an existing WAV file")
    if not isinstance(model_dir, str) or not os.path.isfile(os.path.join(model_dir, "model.bin")):
        fail("request.model must name a folder holding model.bin")
    threads = int(request.get("threads") or 2)
    beam_size = int(request.get("beam_size") or 1)
    model = WhisperModel(
        model_dir, device="cpu", compute_type="int8", cpu_threads=max(threads, 1), local_files_only=True
    )
    segments, info = model.transcribe(
        audio,
        language=request.get("language"),
        beam_size=max(1, min(beam_size, 5)),
        vad_filter=True,
        # Half a second of silence ends a stretch of speech (faster-whisper's default is two
        # seconds), so the pause between two speakers usually ends a segment too.
        vad_parameters={"min_silence_duration_ms": 500},
        word_timestamps=True,
        condition_on_previous_text=False,
    )
    out = []
    for segment in segments:
        text = segment.text.strip()
        if not text:
            continue
        out.append(
            {
                "start": round(segment.start, 3),
                "end": round(segment.end, 3),
                "text": text,
                "confidence": confidence(segment),
                "no_speech_prob": round(segment.no_speech_prob, 4),
                "words": [
                    {
                        "start": round(word.start, 3),
                        "end": round(word.end, 3),
                        "word": word.word.strip(),
                        "probability": round(word.probability, 4),
                    }
                    for word in (segment.words or [])
                    if word.word.strip()
                ],
            }
        )
    # A language is only said to be heard when something was.
    return {
        "language": info.language if out else None,
        "language_probability": round(info.language_probability, 4) if out else None,
        "duration": round(info.duration, 3),
        "speech_duration": round(info.duration_after_vad, 3),
        "segments": out,
    }


def main():
    if sys.argv[1:] == ["--check"]:
        import av  # noqa: F401
        import ctranslate2  # noqa: F401
        import faster_whisper  # noqa: F401
        import onnxruntime  # noqa: F401  (voice activity detection loads it only when it runs)

        print(json.dumps({"ok": True}))
        return
    try:
        request = json.load(sys.stdin)
    except ValueError as error:
        fail(f"the request is not JSON: {error}")
    if not isinstance(request, dict):
        fail("the request must be a JSON object")
    print(json.dumps(transcribe(request)))


if __name__ == "__main__":
    main()
