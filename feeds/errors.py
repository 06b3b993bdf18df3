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


class SeedDirError(FeedsError):
    """The seed directory cannot be listed (missing, not a directory, no permission).

    A sync that meets it changes nothing: the last good state keeps being served.
    """

    hint = "check FEEDS_SEED_DIR; the next sync retries"

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"seed directory unavailable: {path}: {reason}")
        self.path = path
        self.reason = reason


class StoreError(FeedsError):
    """The store cannot be used; ``reason`` says why in a few words, ``hint`` what to do.

    The store raises these at its edge, each translated once from the driver's or the
    operating system's error, which stays chained as ``__cause__``. Only
    :class:`StoreCorrupt` ever justifies moving the database aside.
    """

    hint = "see the log for details"

    def __init__(self, reason: str, path: object, detail: str) -> None:
        super().__init__(f"{reason}: {path}: {detail}")
        self.reason = reason
        self.path = path
        self.detail = detail


class StoreCorrupt(StoreError):
    """Not a database, malformed, or failing its integrity check: moved aside and rebuilt."""

    hint = "the store is moved aside and rebuilt from the seeds"


class StoreUnavailable(StoreError):
    """Cannot be opened or written: permission, read-only, a directory, no parent directory."""

    hint = "make FEEDS_DATABASE name a file in a directory this user can write"


class StoreFull(StoreError):
    """The disk (or quota) is full; SQLite has rolled the transaction back."""

    hint = "free disk space; the next sync retries and nothing is lost"


class StoreBusy(StoreError):
    """Another connection held the database longer than the busy timeout."""

    hint = "another program holds the database; the next sync retries"


class StoreIOError(StoreError):
    """A read or write failed at the operating system (possibly transient)."""

    hint = "check the disk and the system log; the next sync retries"
