"""Structured logging for agents: one JSON object a line, stamped with role and peer id."""

import json
import logging
import sys
import time


class JsonFormatter(logging.Formatter):
    """Formats records as JSON lines carrying the agent's role and libp2p peer id."""

    def __init__(self, role: str, peer_id: str) -> None:
        super().__init__()
        self.role = role
        self.peer_id = peer_id

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as one JSON line."""
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "role": self.role,
            "peer": self.peer_id,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, sort_keys=True)


def configure_logging(role: str, peer_id: str, level: str = "INFO") -> None:
    """Send the process's logs to stderr as JSON lines; libp2p's own chatter at WARNING+."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(role, peer_id))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("libp2p").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("multiaddr").setLevel(logging.WARNING)
