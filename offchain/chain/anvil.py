"""Start and stop a local anvil (the npm build in node_modules/.bin) for the devnet and tests."""

import functools
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEVNET_MNEMONIC = "test test test test test test test test test test test junk"


class AnvilError(RuntimeError):
    """anvil could not be found or did not come up."""


def anvil_binary() -> str:
    """Return the anvil executable: the repo's npm build first, then PATH."""
    local = REPO_ROOT / "node_modules" / ".bin" / "anvil"
    if local.exists():
        return str(local)
    found = shutil.which("anvil")
    if not found:
        raise AnvilError("anvil not found: run `make env` (it installs @foundry-rs/anvil from npm)")
    return found


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@functools.cache
def _provider(url: str, timeout: float):  # type: ignore[no-untyped-def]
    # Imported here: web3 adds half a second to the start of what needs only REPO_ROOT.
    from web3 import HTTPProvider

    # No retries: a caller polling for a starting anvil paces itself.
    return HTTPProvider(
        url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None
    )


def rpc(url: str, method: str, params: list | None = None, timeout: float = 5.0):
    """Return the result of one JSON-RPC call (through web3's provider), raising on an error.

    Raises ``AnvilError`` for an error response or no answer.
    """
    from web3.exceptions import Web3Exception

    try:
        body = _provider(url, timeout).make_request(method, params or [])
    except (OSError, ValueError, Web3Exception) as exc:
        raise AnvilError(f"{method}: no answer from {url}: {type(exc).__name__}") from exc
    if "error" in body:
        raise AnvilError(f"{method}: {body['error']}")
    return body["result"]


@dataclass
class Anvil:
    """A running anvil process on loopback."""

    port: int
    process: subprocess.Popen
    args: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Return the JSON-RPC URL."""
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop the process and wait for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __enter__(self) -> "Anvil":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_anvil(
    port: int | None = None,
    fork_url: str | None = None,
    chain_id: int | None = None,
    block_time: float | None = None,
    accounts: int = 20,
    timeout: float = 30.0,
) -> Anvil:
    """Start anvil with the devnet mnemonic and return once it answers JSON-RPC."""
    port = port or free_port()
    args = [
        anvil_binary(),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--mnemonic", DEVNET_MNEMONIC,
        "--accounts", str(accounts),
        "--balance", "100000",
    ]  # fmt: skip
    if fork_url:
        args += ["--fork-url", fork_url]
    if chain_id is not None:
        args += ["--chain-id", str(chain_id)]
    if block_time is not None:
        args += ["--block-time", str(block_time)]
    # stderr goes to an unnamed file, not a pipe: nothing reads a pipe while anvil runs, and
    # anvil would block on its first write once the pipe's buffer filled.
    errors = tempfile.TemporaryFile()
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=errors, env=dict(os.environ))
    anvil = Anvil(port=port, process=process, args=args)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            errors.seek(0)
            raise AnvilError(
                f"anvil exited with {process.returncode}: {errors.read().decode(errors='replace')}"
            )
        try:
            rpc(anvil.url, "eth_chainId", timeout=1.0)
            log.info("anvil ready at %s", anvil.url)
            return anvil
        except AnvilError:
            time.sleep(0.1)
    anvil.stop()
    raise AnvilError(f"anvil did not answer on {anvil.url} within {timeout} s")
