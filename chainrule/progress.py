"""A small progress bar on stderr for long work (training, grading, benchmarks).

It draws only when stderr is a terminal (or when forced), so logs and CI stay clean.

>>> with Progress(3, "demo", enabled=False) as bar:
...     for _ in range(3):
...         bar.advance(loss=0.5)
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class Progress:
    def __init__(
        self,
        total: int,
        label: str = "",
        enabled: bool | None = None,
        stream: TextIO | None = None,
        width: int = 28,
    ) -> None:
        self.total = max(int(total), 1)
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.width = width
        self.done = 0
        self.start = time.perf_counter()
        self._last = 0.0

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def advance(self, n: int = 1, **metrics: Any) -> None:
        self.done = min(self.done + n, self.total)
        now = time.perf_counter()
        if self.enabled and (now - self._last > 0.1 or self.done == self.total):
            self._last = now
            self._draw(metrics)

    def _draw(self, metrics: dict[str, Any]) -> None:
        frac = self.done / self.total
        filled = int(frac * self.width)
        bar = "█" * filled + "·" * (self.width - filled)
        elapsed = time.perf_counter() - self.start
        eta = elapsed / frac - elapsed if frac else 0.0
        extra = "  ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()
        )
        self.stream.write(
            f"\r{self.label} {bar} {self.done}/{self.total} "
            f"[{elapsed:.1f}s<{eta:.1f}s] {extra}\033[K"
        )
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
