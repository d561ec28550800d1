"""The benchmark's speech: known sentences in three espeak-ng voices with known pauses,
one 16 kHz mono WAV and the truth (who said what, when) beside it. Seeded: always the same."""

import json
import random
import subprocess
import wave
from pathlib import Path

VOICES = ["en-us", "en+f2", "en+m7"]
SENTENCES = [
    "Please send the quarterly report to the finance team before Friday.",
    "The meeting about the new bridge starts at nine in the morning.",
    "Our garden has tall sunflowers and a small wooden bench.",
    "Remember to water the tomatoes every evening.",
    "The train to the coast leaves from platform four.",
    "She painted the kitchen walls a pale shade of green.",
    "We need three more chairs for the dinner on Saturday.",
    "The library closes early during the summer holidays.",
    "His old bicycle still has the original red paint.",
    "The weather report promised sunshine for the whole week.",
    "They opened a small bakery near the river last spring.",
    "Turn left at the church and follow the narrow road.",
    "The children built a tall tower from wooden blocks.",
    "A cup of hot tea helps on a cold winter night.",
    "The museum shows paintings from many different countries.",
    "Our neighbours are moving to a bigger house next month.",
    "The doctor asked him to rest for a few days.",
    "Fresh bread and butter make a simple breakfast.",
    "The concert in the park was cancelled because of rain.",
    "Write your name at the top of every page.",
]
RATE = 16000


def read_samples(path):
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        return w.getframerate(), w.readframes(w.getnframes())


def make(folder: Path, rounds: int):
    """rounds x 20 sentences, voices taking turns, 0.8-1.6 s of silence before each."""
    folder.mkdir(parents=True, exist_ok=True)
    audio, truth_path = folder / "speech.wav", folder / "speech.truth.json"
    if audio.exists() and truth_path.exists():
        return audio, json.loads(truth_path.read_text())
    rng = random.Random(7)
    pcm, lines, at = bytearray(), [], 0.0
    for n in range(rounds * len(SENTENCES)):
        text = SENTENCES[n % len(SENTENCES)]
        voice = VOICES[(n // 2) % len(VOICES)] if n % 5 else VOICES[rng.randrange(len(VOICES))]
        raw, clip = folder / "clip.wav", folder / "clip16.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(raw), text], check=True)
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(raw), "-ar", str(RATE), "-ac", "1",
                        "-c:a", "pcm_s16le", str(clip)], check=True)
        _, samples = read_samples(clip)
        gap = rng.uniform(0.8, 1.6)
        pcm += bytes(2 * int(gap * RATE))
        at += gap
        length = len(samples) / 2 / RATE
        lines.append({"voice": voice, "text": text, "start": round(at, 3), "end": round(at + length, 3)})
        pcm += samples
        at += length
    pcm += bytes(2 * RATE)
    with wave.open(str(audio), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(bytes(pcm))
    for name in ("clip.wav", "clip16.wav"):
        (folder / name).unlink()
    truth_path.write_text(json.dumps(lines, indent=1))
    return audio, lines
