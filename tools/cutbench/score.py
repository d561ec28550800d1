"""Scoring found boundaries against the truth.

A hard cut is found when a boundary lies within one frame of it; a fade or a dissolve when a
boundary lies within its span, one frame of slack on each side. Each true boundary takes at most
one found boundary (the nearest still free), so a transition reported twice counts once as found
and once as invented. The kind a detector names is not scored (PySceneDetect names none).
"""

from dataclasses import dataclass, field

TOLERANCE = 1


@dataclass
class Tally:
    found: int = 0  # true boundaries matched
    missed: list = field(default_factory=list)  # true boundaries not matched
    invented: list = field(default_factory=list)  # found boundaries matching nothing
    by_kind: dict = field(default_factory=dict)  # kind -> [matched, total]

    def add(self, other):
        self.found += other.found
        self.missed += other.missed
        self.invented += other.invented
        for kind, (hit, total) in other.by_kind.items():
            mine = self.by_kind.setdefault(kind, [0, 0])
            mine[0] += hit
            mine[1] += total

    @property
    def precision(self):
        reported = self.found + len(self.invented)
        return self.found / reported if reported else 1.0

    @property
    def recall(self):
        total = self.found + len(self.missed)
        return self.found / total if total else 1.0

    @property
    def f1(self):
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def kind_recall(self, kind):
        hit, total = self.by_kind.get(kind, [0, 0])
        return f"{hit}/{total}" if total else "-"


def match(truth, detected):
    """Scores one video: `truth` as in the truth file, `detected` a list of {frame, kind}."""
    free = sorted(detected, key=lambda b: b["frame"])
    tally = Tally()
    for true in truth:
        low, high = true["span"][0] - TOLERANCE, true["span"][1] + TOLERANCE
        candidates = [b for b in free if low <= b["frame"] <= high]
        counts = tally.by_kind.setdefault(true["kind"], [0, 0])
        counts[1] += 1
        if not candidates:
            tally.missed.append(true)
            continue
        best = min(candidates, key=lambda b: abs(b["frame"] - true["frame"]))
        free.remove(best)
        tally.found += 1
        counts[0] += 1
    tally.invented = free
    return tally
