"""Speech benchmark for reelbase's asr and asrx processors (tools/bench-speech)."""
