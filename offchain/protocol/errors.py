"""The one error type for input that is refused: what every decoder and check raises.

Bytes from a peer, a user or the chain pass through many decoders (frames, bindings, summaries,
gossip, consensus messages, tensors). Each raises its own subclass, but all of them are
``InputRejected``, so an agent's fault boundary needs one ``except`` to tell refused input (a
reason to log, count and hold against the sender) from a bug.
"""


class InputRejected(ValueError):
    """Input that must be dropped; ``reason`` is a short tag for logs and metrics."""

    reason = "malformed"

    def __init__(self, detail: str = "", reason: str | None = None) -> None:
        super().__init__(detail or reason or self.reason)
        if reason is not None:
            self.reason = reason
