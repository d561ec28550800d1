"""The shot-boundary benchmark behind tools/bench-cut: see __main__.py."""
