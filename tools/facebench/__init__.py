"""Face benchmark for reelbase's face processor (tools/bench-faces)."""
