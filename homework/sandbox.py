"""Run untrusted work in worker processes with CPU, memory and wall-clock limits.

In-process timeouts are not enough: SymPy can spend minutes inside one big-integer
operation that no signal interrupts. So each task (one student answer) runs in its own
forked process with

* ``RLIMIT_CPU`` — CPU seconds (default: the wall-clock limit, rounded up),
* ``RLIMIT_AS`` — address space (default 2 GiB),

and the parent kills it (``SIGKILL``) when the wall-clock limit (default 10 s, like
Moodle STACK's CAS timeout) runs out. The task streams messages to the parent as it
goes, so whatever finished before a kill is kept. :class:`SandboxPool` runs many tasks,
``jobs`` at a time; forking shares whatever the parent prepared (the compiled truth).

>>> def work(n, send):
...     send(n * n)
>>> outcomes = dict(SandboxPool(work, jobs=2).map([2, 3]))
>>> [(outcomes[i].status, outcomes[i].messages) for i in (0, 1)]
[('ok', [4]), ('ok', [9])]
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import resource
import signal
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

DEFAULT_WALL_SECONDS = 10.0
DEFAULT_MEMORY_BYTES = 2 * 1024**3

Send = Callable[[Any], None]
Task = Callable[[Any, Send], None]


@dataclass(frozen=True)
class SandboxLimits:
    """Per-task limits: wall clock (parent kills), CPU and memory (kernel enforces)."""

    wall_seconds: float = DEFAULT_WALL_SECONDS
    memory_bytes: int = DEFAULT_MEMORY_BYTES
    cpu_seconds: float | None = None  # default: the wall-clock limit

    @property
    def cpu(self) -> int:
        return max(1, math.ceil(self.cpu_seconds or self.wall_seconds))


@dataclass
class Outcome:
    """What came back from one task: its messages and how it ended."""

    status: str  # ok | timeout | cpu | memory | crashed | error
    messages: list[Any] = field(default_factory=list)
    detail: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def describe(self, limits: SandboxLimits) -> str:
        return {
            "ok": "finished",
            "timeout": f"stopped at the wall-clock limit of {limits.wall_seconds:g} s",
            "cpu": f"stopped at the CPU-time limit of {limits.cpu} s",
            "memory": f"stopped at the memory limit of {limits.memory_bytes / 2**30:g} GiB",
            "crashed": f"the worker process died ({self.detail})",
            "error": f"internal error: {self.detail}",
        }.get(self.status, self.status)


_DONE = "__sandbox_done__"
_FAIL = "__sandbox_fail__"


def _child(task: Task, item: Any, conn: Connection, limits: SandboxLimits) -> None:
    """Worker body: set limits, run the task, report how it ended."""
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu, limits.cpu + 1))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles ^C
    try:
        task(item, conn.send)
        conn.send((_DONE, ""))
    except MemoryError:
        _send_quietly(conn, (_FAIL, "memory"))
    except BaseException as exc:  # noqa: BLE001 - report anything, never hang the parent
        tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
        _send_quietly(conn, (_FAIL, tb[:500]))
    finally:
        conn.close()


def _send_quietly(conn: Connection, msg: Any) -> None:
    try:
        conn.send(msg)
    except Exception:  # noqa: BLE001 - the pipe may be gone or memory exhausted
        pass


@dataclass
class _Running:
    index: int
    proc: Any
    conn: Connection
    deadline: float
    start: float
    messages: list[Any] = field(default_factory=list)
    ended: tuple[str, str] | None = None


class SandboxPool:
    """Run ``task(item, send)`` for many items, each in a fresh limited process.

    ``map`` yields ``(index, Outcome)`` as tasks finish (completion order); callers that
    need determinism sort by index.
    """

    def __init__(
        self,
        task: Task,
        jobs: int = 1,
        limits: SandboxLimits | None = None,
        on_done: Callable[[int, Outcome], None] | None = None,
    ) -> None:
        self.task = task
        self.jobs = max(1, int(jobs))
        self.limits = limits or SandboxLimits()
        self.ctx = mp.get_context("fork")
        self.on_done = on_done

    def map(self, items: Iterable[Any]) -> Iterator[tuple[int, Outcome]]:
        pending = list(enumerate(items))
        pending.reverse()
        running: dict[Connection, _Running] = {}
        try:
            while pending or running:
                while pending and len(running) < self.jobs:
                    index, item = pending.pop()
                    r = self._start(index, item)
                    running[r.conn] = r
                yield from self._collect(running)
        finally:
            for r in running.values():
                _kill(r.proc)

    def _start(self, index: int, item: Any) -> _Running:
        recv, send = self.ctx.Pipe(duplex=False)
        proc = self.ctx.Process(
            target=_child, args=(self.task, item, send, self.limits), daemon=True
        )
        proc.start()
        send.close()
        now = time.monotonic()
        return _Running(index, proc, recv, now + self.limits.wall_seconds, now)

    def _collect(self, running: dict[Connection, _Running]) -> Iterator[tuple[int, Outcome]]:
        now = time.monotonic()
        timeout = max(0.0, min(r.deadline for r in running.values()) - now)
        for conn in wait(list(running), timeout=timeout):
            r = running[conn]  # type: ignore[index]
            if self._drain(r):
                del running[conn]  # type: ignore[arg-type]
                yield r.index, self._finish(r)
        now = time.monotonic()
        for conn, r in list(running.items()):
            if now >= r.deadline:
                _kill(r.proc)
                del running[conn]
                r.ended = ("timeout", "")
                yield r.index, self._finish(r)

    def _drain(self, r: _Running) -> bool:
        """Read what is ready; True when the task has ended."""
        try:
            while r.conn.poll():
                msg = r.conn.recv()
                if isinstance(msg, tuple) and len(msg) == 2 and msg[0] in (_DONE, _FAIL):
                    r.ended = ("ok", "") if msg[0] == _DONE else _failure(msg[1])
                    return True
                r.messages.append(msg)
        except (EOFError, OSError):
            return True
        return False

    def _finish(self, r: _Running) -> Outcome:
        if r.ended is not None:  # the result is in: no need to wait for a clean exit
            _kill(r.proc)
        r.proc.join(timeout=5)
        if r.proc.is_alive():
            _kill(r.proc)
        r.conn.close()
        status, detail = r.ended or _from_exitcode(r.proc.exitcode)
        out = Outcome(status, r.messages, detail, round(time.monotonic() - r.start, 3))
        if self.on_done is not None:
            self.on_done(r.index, out)
        return out


def _failure(detail: str) -> tuple[str, str]:
    return ("memory", "") if detail == "memory" or "MemoryError" in detail else ("error", detail)


def _from_exitcode(code: int | None) -> tuple[str, str]:
    if code in (-signal.SIGXCPU, -signal.SIGKILL):
        return "cpu", ""
    if code == 0:
        return "error", "the worker ended without a result"
    return "crashed", f"exit status {code}"


def _kill(proc: Any) -> None:
    if proc.is_alive():
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.join(timeout=5)


def run_sandboxed(task: Task, item: Any, limits: SandboxLimits | None = None) -> Outcome:
    """Run one task in a limited worker process and wait for it."""
    ((_, outcome),) = list(SandboxPool(task, 1, limits).map([item]))
    return outcome
