"""The views' reads refuse answers of the wrong shape from a hostile JSON-RPC endpoint."""

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from eth_account import Account

from offchain.chain.chain_client import ChainError
from offchain.chain.rpc import Call, Rpc
from offchain.chain.stake_view import IS_ACTIVE

TRUE = "0x" + "00" * 31 + "01"


@contextmanager
def endpoint(answer: Callable[[list], object]) -> Iterator[str]:
    """An HTTP JSON-RPC endpoint on loopback whose reply to each batch is ``answer(batch)``."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            batch = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            body = json.dumps(answer(batch)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def calls(count: int) -> list[Call]:
    staking = Account.create().address
    return [Call(staking, IS_ACTIVE, (Account.create().address, 4)) for _ in range(count)]


def reply(request: dict, **fields) -> dict:
    return {"jsonrpc": "2.0", "id": request["id"], **fields}


def test_calls__replies_out_of_order__matched_to_their_calls_by_id():
    def answer(batch):
        replies = [
            reply(r, result=TRUE if i == 0 else "0x" + "00" * 32) for i, r in enumerate(batch)
        ]
        return replies[::-1]

    with endpoint(answer) as url:
        assert Rpc(url).calls(calls(3)) == [(True,), (False,), (False,)]


def test_calls__revert__answers_none_other_errors_refused():
    with endpoint(
        lambda b: [reply(r, error={"code": 3, "message": "execution reverted"}) for r in b]
    ) as url:
        assert Rpc(url).calls(calls(2)) == [None, None]
    with endpoint(
        lambda b: [reply(r, error={"code": -32005, "message": "limit"}) for r in b]
    ) as url:
        with pytest.raises(ChainError, match="is_active answered"):
            Rpc(url).calls(calls(2))


@pytest.mark.parametrize(
    "answer, reason",
    [
        (lambda b: [reply(b[0], result=TRUE)] * len(b), "distinct ids"),
        (lambda b: [{"jsonrpc": "2.0", "result": TRUE} for _ in b], "distinct ids"),
        (lambda b: [reply(r, result=TRUE) for r in b[:-1]], "answered with"),
        (lambda b: [reply(r, result="0x" + "00" * 31 + "02") for r in b], "is_active answered"),
        (lambda b: [reply(r, result=TRUE + "00") for r in b], "is_active answered"),
        (lambda b: [reply(r, result="0xzz") for r in b], "is_active answered"),
        (lambda b: {"jsonrpc": "2.0", "id": None, "error": {"code": -32600}}, "answered with"),
    ],
)
def test_calls__malformed_batch__refused_with_a_reason(answer, reason):
    with endpoint(answer) as url, pytest.raises(ChainError, match=reason):
        Rpc(url).calls(calls(3))
