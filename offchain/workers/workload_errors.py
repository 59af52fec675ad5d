"""Errors raised by workloads, their encodings and their verifiers."""

from offchain.protocol.errors import InputRejected


class WorkloadError(InputRejected):
    """Base class: a request for work that is refused before any work starts."""

    reason = "workload-refused"


class UnknownWorkload(WorkloadError):
    """The workload id (or id and version) is not in the registry."""

    reason = "unknown-workload"


class InvalidInput(WorkloadError):
    """Inputs or outputs do not match a workload's schema or value rules."""

    reason = "invalid-input"


class EncodingError(WorkloadError):
    """Bytes are not a canonical tensor encoding, or exceed the size limits."""

    reason = "bad-tensor-encoding"


class DeviceUnavailable(WorkloadError):
    """A device was asked for that this machine does not have."""

    reason = "device-unavailable"
