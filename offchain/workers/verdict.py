"""The answer every verifier gives."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """A verifier's answer: accepted or not, and why."""

    accepted: bool
    reason: str
