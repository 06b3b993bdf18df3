"""The one exception base of the package and its few subclasses.

Domain code raises these; only the web layer turns them into HTTP answers and
only the CLI turns them into exit codes.
"""


class FeedsError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(FeedsError):
    """A setting is missing or invalid; the message names the variable."""


class NotFoundError(FeedsError):
    """A feed, agency or release that does not exist (and never did)."""


class SyncBusyError(FeedsError):
    """Another process holds the sync lock; this sync did not run."""


class BadRequestError(FeedsError):
    """A request parameter is malformed or out of range; the message names it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"invalid {parameter}: {message}")
        self.parameter = parameter
