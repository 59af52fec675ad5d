"""Starting agents as separate OS processes (for devnets, tests and benchmarks)."""

import hashlib
import json
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class AgentExited(RuntimeError):
    """An agent process ended before it was ready."""


@dataclass
class AgentProcess:
    """A running agent process, its ready file and its log."""

    name: str
    argv: list[str]
    ready_file: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    # In a session of its own, a terminal's Ctrl-C reaches only the parent, which then stops
    # the agent with one SIGTERM (two signals could kill it halfway through its shutdown).
    own_session: bool = False

    def start(self) -> "AgentProcess":
        """Launch the process, logging to ``log_path``."""
        self.ready_file.unlink(missing_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=self.own_session,
            )
        return self

    @property
    def pid(self) -> int:
        """Return the process id."""
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        """Return whether the process is still running."""
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout_s: float = 90.0) -> dict[str, Any]:
        """Return the agent's ready-file contents once written; raise if it dies or times out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.ready_file.exists():
                self.info = json.loads(self.ready_file.read_text())
                return self.info
            if not self.alive():
                raise AgentExited(f"{self.name} exited early:\n{self.log_tail()}")
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} not ready after {timeout_s}s:\n{self.log_tail()}")

    def log_text(self) -> str:
        """Return everything the process has logged so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 20) -> str:
        """Return the last ``lines`` lines of the log."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def kill(self) -> None:
        """Kill the process at once (SIGKILL), as a crash would."""
        if self.alive():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """Stop the process with SIGTERM, then SIGKILL after ``timeout_s``; return its status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                logger.warning("%s ignored SIGTERM; killing it", self.name)
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode


def _python() -> list[str]:
    return [sys.executable, "-m"]


def router_process(
    workdir: Path, name: str, args: Sequence[str] = (), module: str = "offchain.routers"
) -> AgentProcess:
    """Return (not yet started) a router process that writes ``<name>.json`` when ready."""
    ready = workdir / f"{name}.json"
    argv = [*_python(), module, "--ready-file", str(ready), *args]
    return AgentProcess(name, argv, ready, workdir / f"{name}.log")


def worker_process(
    workdir: Path, name: str, routers: Sequence[str], args: Sequence[str] = ()
) -> AgentProcess:
    """Return (not yet started) a compute-node process linked to ``routers``."""
    ready = workdir / f"{name}.json"
    argv = [*_python(), "offchain.workers", "--ready-file", str(ready)]
    for addr in routers:
        argv += ["--router", addr]
    return AgentProcess(name, [*argv, *args], ready, workdir / f"{name}.log")


def stop_all(processes: Sequence[AgentProcess], timeout_s: float = 15.0) -> None:
    """Stop every process in ``processes`` (SIGTERM, then SIGKILL), ignoring ones not started.

    Each process gets one SIGTERM: a second one could reach it after its handler is gone,
    while it closes down, and kill it halfway.
    """
    for process in processes:
        if process.alive():
            assert process.proc is not None
            process.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for process in processes:
        if process.proc is None:
            continue
        try:
            process.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logger.warning("%s ignored SIGTERM; killing it", process.name)
            process.kill()


def seed_hex(label: str) -> str:
    """Return a deterministic 64-hex-digit seed for ``label`` (tests, devnets)."""
    return hashlib.sha256(b"emc-seed:" + label.encode()).hexdigest()
