"""Errors raised by workloads, their encodings and their verifiers."""


class WorkloadError(ValueError):
    """Base class: a request for work that is refused before any work starts."""


class UnknownWorkload(WorkloadError):
    """The workload id (or id and version) is not in the registry."""


class InvalidInput(WorkloadError):
    """Inputs or outputs do not match a workload's schema or value rules."""


class EncodingError(WorkloadError):
    """Bytes are not a canonical tensor encoding, or exceed the size limits."""


class DeviceUnavailable(WorkloadError):
    """A device was asked for that this machine does not have."""
