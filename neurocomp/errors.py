"""Error classes. Every UserError becomes one line on stderr and exit code 2 in the CLI."""
from __future__ import annotations


class UserError(Exception):
    """A mistake in what the user handed us (file, model, option); never a bug."""


class FormatError(UserError):
    """A file is missing, corrupt, unsafe or of the wrong format."""


class GraphError(UserError):
    """The network is malformed or uses something we do not support."""


class TargetError(UserError):
    """A target spec is unknown or invalid."""


class QuantizeError(UserError):
    """A parameter cannot be represented on the target."""


class ResourceError(UserError):
    """Something does not fit: names the layer or core, the resource, used vs allowed."""

    def __init__(self, where: str, resource: str, used: float, allowed: float, hint: str = "") -> None:
        self.where, self.resource, self.used, self.allowed, self.hint = where, resource, used, allowed, hint
        msg = f"{where}: {resource} {used:g} exceeds the allowed {allowed:g}"
        super().__init__(msg + (f"; {hint}" if hint else ""))

    def __reduce__(self):
        """Rebuilt from its fields where it is unpickled (a census worker's process hands it back)."""
        return type(self), (self.where, self.resource, self.used, self.allowed, self.hint)


class MemoryLimitError(ResourceError):
    """Work refused before allocating it: its memory estimate exceeds what the machine has available."""

    def __init__(self, where: str, needed: float, available: float, hint: str = "") -> None:
        self.where, self.resource, self.used, self.allowed, self.hint = where, "memory (bytes)", needed, available, hint
        UserError.__init__(self, f"{where}: needs about {needed / 1e9:.3g} GB of memory, more than the "
                                 f"{available / 1e9:.3g} GB available on this machine" + (f"; {hint}" if hint else ""))

    def __reduce__(self):
        return type(self), (self.where, self.used, self.allowed, self.hint)


class VerifyError(Exception):
    """A stage produced output that breaks its own contract: a compiler bug, not a user error."""
