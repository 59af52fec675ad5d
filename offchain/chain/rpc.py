"""Reads for the chain views: batched contract calls and event logs, through web3's provider.

The views read thousands of keys per sweep from a router's worker thread, so the calls are
encoded with eth_abi from the exported ABIs and sent as JSON-RPC batches through web3's HTTP
provider (``make_batch_request``), not through web3 contract objects, whose per-call CPU cost
(about a millisecond, batched or not) would hold the router's CPU and the GIL for seconds
(docs/decisions.md). Every answer is checked: a reply that is not the call's ABI type, a log
that was not asked for, or a log without the field it should name is a ``ChainError``.
"""

import functools
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import encode
from eth_abi.decoding import ContextFramesBytesIO
from eth_abi.exceptions import DecodingError
from eth_abi.registry import registry
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from eth_utils.abi import collapse_if_tuple
from web3 import Web3
from web3.exceptions import Web3Exception

from offchain.chain.cached_view import EVERYONE, Block, Changes
from offchain.chain.chain_client import ChainError
from offchain.crypto.hashing import keccak

# Calls per JSON-RPC batch: public endpoints commonly cap batches at 100.
RPC_BATCH = 100
WORD = 32


@dataclass(frozen=True)
class AbiFunction:
    """A view function of an ABI: encodes its calls and decodes its answers with eth_abi."""

    name: str
    selector: bytes
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    @classmethod
    def of(cls, abi: Sequence[Mapping], name: str, inputs: Sequence[str]) -> "AbiFunction":
        """Return ``name`` from ``abi``; raise ``ChainError`` unless its inputs are ``inputs``."""
        for entry in abi:
            if entry.get("type") == "function" and entry.get("name") == name:
                types = tuple(collapse_if_tuple(i) for i in entry["inputs"])
                if types != tuple(inputs):
                    continue
                signature = f"{name}({','.join(types)})"
                return cls(
                    name,
                    function_signature_to_4byte_selector(signature),
                    types,
                    tuple(collapse_if_tuple(o) for o in entry["outputs"]),
                )
        raise ChainError(f"the ABI has no {name}({','.join(inputs)})")

    def data(self, *args: object) -> str:
        """Return the call's calldata as 0x hex."""
        return _calldata(self, args)

    def answer(self, result: bytes) -> tuple:
        """Return the decoded outputs, or raise ``ChainError`` for a reply of another shape."""
        try:
            return _decoder(self.outputs)(ContextFramesBytesIO(result))
        except (DecodingError, ValueError, OverflowError) as exc:
            raise ChainError(f"{self.name} answered {result[:64].hex()!r}: {exc}") from exc


# A sweep encodes the same calls every period, and eth_abi's encoders check each address's
# checksum (a keccak); remembered, a call is encoded once while its key is tracked.
@functools.lru_cache(maxsize=1 << 16)
def _calldata(function: AbiFunction, args: tuple) -> str:
    return "0x" + (function.selector + encode(function.inputs, args)).hex()


@functools.cache
def _decoder(outputs: tuple[str, ...]) -> Callable[[ContextFramesBytesIO], tuple]:
    # eth_abi's decoder for the outputs, strict (no short or padded words), without
    # ``decode``'s per-call type validation and lookup. One static output (a sweep's bool) is
    # decoded alone: the tuple decoder's pointer checks would double its cost.
    if len(outputs) == 1:
        single = registry.get_decoder(outputs[0], strict=True)
        if not getattr(single, "is_dynamic", True):
            return lambda stream: (_whole(single, stream),)
    return registry.get_decoder(f"({','.join(outputs)})", strict=True)


def _whole(decoder: Callable[[ContextFramesBytesIO], Any], stream: ContextFramesBytesIO) -> Any:
    """Return ``decoder``'s value, refusing bytes left over (a reply longer than the type)."""
    value = decoder(stream)
    if stream.read(1):
        raise DecodingError("more bytes than the output type")
    return value


@dataclass(frozen=True)
class Call:
    """One ``eth_call``: a function of the contract at ``to`` with its arguments."""

    to: str
    function: AbiFunction
    args: tuple


class Rpc:
    """One JSON-RPC endpoint through web3's HTTP provider; blocking, safe across threads.

    web3's provider keeps an HTTP session per thread, so worker threads do not share one.
    """

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        # No retries: a view keeps its last answers while the chain is away, and tries again
        # on its own schedule.
        provider = Web3.HTTPProvider(
            url, request_kwargs={"timeout": timeout_s}, exception_retry_configuration=None
        )
        self.w3 = Web3(provider)

    def _request(self, method: str, params: list) -> Any:
        try:
            reply = self.w3.provider.make_request(method, params)
        except (OSError, ValueError, Web3Exception) as exc:
            raise ChainError(f"no answer from {self.url}: {type(exc).__name__}") from exc
        if not isinstance(reply, dict) or "result" not in reply:
            raise ChainError(f"{method} from {self.url}: {reply!r:.200}")
        return reply["result"]

    def chain_id(self) -> int:
        """Return the endpoint's chain id."""
        return _quantity(self._request("eth_chainId", []))

    def head(self) -> int:
        """Return the number of the newest block."""
        return _quantity(self._request("eth_blockNumber", []))

    def block(self, number: int | None = None) -> Block:
        """Return the number and hash of block ``number`` (None: the newest)."""
        tag = "latest" if number is None else hex(number)
        block = self._request("eth_getBlockByNumber", [tag, False])
        if not isinstance(block, dict) or not isinstance(block.get("hash"), str):
            raise ChainError(f"eth_getBlockByNumber({tag}) answered {block!r:.200}")
        return _quantity(block.get("number")), block["hash"]

    def logs(self, addresses: Sequence[str], topics: Sequence[str], first: int, last: int) -> list:
        """Return the logs of ``addresses`` with a first topic in ``topics``, blocks first..last."""
        logs = self._request(
            "eth_getLogs",
            [
                {
                    "address": list(addresses),
                    "fromBlock": hex(first),
                    "toBlock": hex(last),
                    "topics": [sorted(topics)],
                }
            ],
        )
        if not isinstance(logs, list):
            raise ChainError(f"eth_getLogs answered {logs!r:.200}")
        return logs

    def calls(self, calls: Sequence[Call], block: int | None = None) -> list[tuple | None]:
        """Return each call's decoded answer at ``block`` (None: the newest), in batches.

        A call that reverted answers None; any other failure is a ``ChainError``.
        """
        at = "latest" if block is None else hex(block)
        out: list[tuple | None] = []
        for start in range(0, len(calls), RPC_BATCH):
            chunk = calls[start : start + RPC_BATCH]
            batch = [
                ("eth_call", [{"to": c.to, "data": c.function.data(*c.args)}, at]) for c in chunk
            ]
            try:
                replies = self.w3.provider.make_batch_request(batch)
            except (OSError, ValueError, Web3Exception) as exc:
                raise ChainError(f"no answer from {self.url}: {type(exc).__name__}") from exc
            if not isinstance(replies, list) or len(replies) != len(chunk):
                raise ChainError(f"batch of {len(chunk)} calls answered with {replies!r:.200}")
            for call, reply in zip(chunk, _in_order(replies), strict=True):
                out.append(_answer(call, reply))
        return out


def _in_order(replies: list) -> list:
    """Return batch replies in the order of their requests, or raise ``ChainError``.

    web3 numbers a batch's requests in increasing order and sorts the replies by id, but passes
    replies without ids on in the order they came; a reply without an id, or two with one id,
    could answer any call, so the batch is refused.
    """
    try:
        ids = [reply["id"] for reply in replies]
        if len(set(ids)) != len(ids):
            raise ValueError("ids repeated")
        return sorted(replies, key=lambda reply: reply["id"])
    except (TypeError, KeyError, ValueError) as exc:
        raise ChainError(f"a batch answered without distinct ids: {replies!r:.200}") from exc


def _answer(call: Call, reply: object) -> tuple | None:
    if not isinstance(reply, dict):
        raise ChainError(f"{call.function.name} answered {reply!r:.200}")
    if "error" in reply:
        error = reply["error"]
        # A revert (code 3, or a message saying so) is the contract's answer; the rest is not.
        if isinstance(error, dict) and (
            error.get("code") == 3 or "revert" in str(error.get("message", ""))
        ):
            return None
        raise ChainError(f"{call.function.name} answered {error!r:.200}")
    result = reply.get("result")
    if not isinstance(result, str) or not result.startswith("0x"):
        raise ChainError(f"{call.function.name} answered {reply!r:.200}")
    try:
        raw = bytes.fromhex(result[2:])
    except ValueError as exc:
        raise ChainError(f"{call.function.name} answered {result[:80]!r}") from exc
    return call.function.answer(raw)


def _quantity(value: object) -> int:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ChainError(f"expected a hex quantity, got {value!r:.100}")
    try:
        return int(value, 16)
    except ValueError as exc:
        raise ChainError(f"expected a hex quantity, got {value!r:.100}") from exc


# What an event's field becomes: the key of the view it changes (the field's value given).
Subject = Callable[[Any], Hashable]


@dataclass(frozen=True)
class Watch:
    """An event to follow: which field names the key it changes, or None for every key."""

    contract: str  # the emitting contract's address, checksummed
    event: str
    field: str | None
    subject: Subject = lambda value: value


class EventKeys:
    """Turns the logs of the watched events into the ``Changes`` a view re-reads.

    Built from the ABIs; refuses at construction an event the ABI lacks or a field that is
    neither indexed nor at a fixed place in the data, so a wrong ABI fails at start, not later.
    """

    def __init__(self, watches: Sequence[Watch], abis: Mapping[str, Sequence[Mapping]]) -> None:
        # (contract, topic0) -> (where the field is: ("topic", i) | ("data", i) | None, its
        # type, the subject maker)
        self._by_topic: dict[tuple[str, str], tuple[tuple[str, int] | None, str, Subject]] = {}
        for watch in watches:
            events = {e["name"]: e for e in abis[watch.contract] if e.get("type") == "event"}
            inputs = events.get(watch.event, {}).get("inputs")
            if inputs is None:
                raise ChainError(f"the ABI of {watch.contract} has no event {watch.event}")
            types = [collapse_if_tuple(i) for i in inputs]
            topic = "0x" + keccak(f"{watch.event}({','.join(types)})".encode()).hex()
            where, kind = None, ""
            if watch.field is not None:
                where, kind = _place(inputs, watch.field, watch.event)
            self._by_topic[(watch.contract.lower(), topic)] = (where, kind, watch.subject)
        self.addresses = sorted({contract for contract, _ in self._by_topic})
        self.topics = sorted({topic for _, topic in self._by_topic})

    def changes(self, logs: Sequence[object]) -> Changes:
        """Return what ``logs`` say to re-read."""
        subjects: set[Hashable] = set()
        for log in logs:
            topics = log.get("topics") if isinstance(log, dict) else None
            address = log.get("address") if isinstance(log, dict) else None
            watched = (
                self._by_topic.get((address.lower(), topics[0]))
                if isinstance(address, str) and isinstance(topics, list) and topics
                else None
            )
            if watched is None:
                raise ChainError(f"eth_getLogs answered a log not asked for: {log!r:.200}")
            where, kind, subject = watched
            if where is None:
                return EVERYONE
            subjects.add(subject(_field(log, where, kind)))
        return Changes(frozenset(subjects))


def _place(inputs: Sequence[Mapping], field: str, event: str) -> tuple[tuple[str, int], str]:
    """Return where ``field`` of ``event`` lies in a log: its topic, or its word of the data."""
    topic, word = 1, 0
    for entry in inputs:
        if entry.get("indexed"):
            if entry["name"] == field:
                return ("topic", topic), entry["type"]
            topic += 1
        else:
            if entry["name"] == field:
                if entry["type"] not in ("address", "uint256", "bytes32"):
                    break
                return ("data", word), entry["type"]
            if entry["type"] in ("string", "bytes") or entry["type"].endswith("]"):
                word += 1  # a dynamic field is an offset word here
            elif entry["type"].startswith("tuple"):
                break  # not needed by any watch: refuse rather than guess its size
            else:
                word += 1
    raise ChainError(f"event {event} has no field {field} at a fixed place")


def _field(log: dict, where: tuple[str, int], kind: str) -> object:
    place, index = where
    try:
        if place == "topic":
            word = bytes.fromhex(log["topics"][index][2:])
        else:
            data = bytes.fromhex(log["data"][2:])
            word = data[index * WORD : (index + 1) * WORD]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ChainError(f"a log without its {kind} field: {log!r:.200}") from exc
    if len(word) != WORD:
        raise ChainError(f"a log without its {kind} field: {log!r:.200}")
    if kind == "address":
        return to_checksum_address(word[-20:])
    return int.from_bytes(word, "big") if kind == "uint256" else word
