"""Every error a cafstore user can see, in one tree.

Catch ``CafstoreError`` to catch them all. The classes are grouped by the
layer that raises them, and a wrapped low-level failure keeps its cause
(``raise ... from exc``) so a bug report still shows where it came from::

    CafstoreError (alias: MetaflowException)
    ├── StoreError                    the content-addressed store
    │   ├── StoreNotFound             no store at the given path
    │   ├── ObjectNotFound            no object with that id
    │   ├── CorruptObject             bytes on disk do not hash to their id
    │   ├── IndexDamaged              the LMDB index cannot be read (truncated, a damaged page)
    │   ├── StoreReadOnly             a write to a store this process can only read
    │   ├── RefConflict               compare-and-swap of a ref lost the race
    │   ├── DamagedRef                a ref whose value does not fit the data model (fsck --repair sets it aside)
    │   ├── InvalidRecord             a record that cannot be encoded canonically
    │   ├── ArtifactSerializationError  a value that neither pickle nor cloudpickle can store
    │   ├── ArtifactLoadError         a stored value that cannot be unpickled here
    │   ├── StorageFull               the disk (or the store's quota) is full
    │   ├── RemoteStoreError          the object store holding the blobs refused or cannot be reached
    │   ├── RemoteError               a remote (push/pull/clone) unknown, unusable or in a state that is refused
    │   │   └── RemoteObjectCorrupt   an object fetched from a remote does not hash to its id (also a CorruptObject)
    │   ├── GcRefused                 gc cannot compute the live set completely: it deleted nothing
    │   ├── IndexLost                 the index is not the store's own or is older than it (fsck --repair)
    │   └── MaintenanceArgumentError  a run name or duration given to gc/retention that cannot be parsed
    ├── FlowError                     authoring and running flows
    │   ├── GraphError                the DAG breaks a rule (file:line, step)
    │   ├── ParameterError            a parameter is missing, malformed or assigned
    │   │   └── ParameterAssignmentError  a step assigned to a parameter (also an AttributeError)
    │   ├── CommandLineError          a bad option on a flow's or cafstore's command line (exit 2)
    │   │   └── ParameterValueError   a parameter's value on the command line its type refuses (also a ParameterError)
    │   ├── MergeArtifactsError       merge_artifacts used wrongly
    │   │   ├── UnhandledInMergeArtifactsException
    │   │   └── MissingInMergeArtifactsException
    │   ├── ReadOnlyAttributeError    a step assigned a class constant or reserved name (also an AttributeError)
    │   ├── UnmergedArtifactError     read of an artifact a join did not pass on (also an AttributeError)
    │   ├── TransitionError           a step's self.next(...) at run time disagrees with the graph
    │   │   └── SwitchError           a switch's condition value matches none of its cases
    │   ├── ForeachError              foreach over a non-list, or wider than allowed
    │   ├── TaskFailed                a step raised (after its retries)
    │   ├── TaskTimeout               a step ran past its @timeout
    │   │   └── TimeoutException      what @timeout raises inside the step (Metaflow's name)
    │   ├── FailureHandledByCatch     @catch's fallback attempt after the task's process kept dying
    │   ├── ExternalCommandFailed     a command a step ran failed (Metaflow's class, for flows that raise it)
    │   ├── InvalidDecoratorAttribute a decorator option that does not exist or has a bad value
    │   ├── RunClosed                 a task's run ended, crashed or was removed before the task committed
    │   └── ResumeError               resume cannot reuse the origin run
    └── ClientError                   reading past runs
        ├── NotFound (alias: MetaflowNotFound)  no such flow, run, step, task or artifact
        ├── NamespaceMismatch (alias: MetaflowNamespaceMismatch)
        ├── TaggingError (alias: TaggingException)  a bad tag, or removing a system tag
        └── ProductionTokenError (alias: IncorrectProductionToken)  not authorized for a production namespace

``MetaflowExceptionWrapper`` (not a ``CafstoreError``) is the picklable record of
a caught exception that ``@catch(var=...)`` stores and ``Task.exception`` shows.

``DamagedRefWarning`` (a ``UserWarning``, not an error) is what the client
warns with when it skips a damaged run ref while listing runs.

The Metaflow names exist so that a ported flow's ``except`` clauses keep
working after changing only the import line.
"""

from __future__ import annotations

from typing import Any, Iterable


class CafstoreError(Exception):
    """Base of every error cafstore raises on purpose.

    ``headline`` is a short name shown before the message by the command
    line (``Error in step 'train': ...``); messages themselves are written
    for the user, one paragraph, naming what is at fault and how to fix it.
    """

    headline = "cafstore error"
    exit_code = 1  # what a command line exits with after printing it

    def __init__(self, msg: str = "", *args: object) -> None:
        super().__init__(msg, *args)
        self.message = msg

    def __str__(self) -> str:
        return self.message or self.__class__.__name__


# --- store -----------------------------------------------------------------
class StoreError(CafstoreError):
    headline = "store error"


class StoreNotFound(StoreError):
    headline = "no store"


class ObjectNotFound(StoreError, KeyError):
    headline = "object not found"

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class CorruptObject(StoreError):
    """``oid``: the damaged object; ``runs``: the runs that use it, once a layer that knows
    about runs has looked them up (the store itself knows nothing about runs)."""

    headline = "corrupt object"

    def __init__(self, msg: str, oid: str = "", runs: Iterable[str] = ()) -> None:
        super().__init__(msg)
        self.oid = oid
        self.runs = list(runs)

    def with_runs(self, runs: Iterable[str]) -> "CorruptObject":
        """The same error with the runs that use the object named at the end of its message."""
        runs = list(runs)
        if not runs:
            return self
        return CorruptObject(f"{self.message} Runs that use it: {', '.join(runs)}.", self.oid, runs)


class IndexDamaged(StoreError):
    """The index (``index/data.mdb``) is truncated or has a damaged page: nothing can be trusted."""

    headline = "store index is damaged"


class StoreReadOnly(StoreError):
    """A write to a store this process may only read (a read-only mount, or no write permission)."""

    headline = "store is read-only"


class RefConflict(StoreError):
    headline = "ref changed concurrently"


class DamagedRef(StoreError):
    """A ref whose value cannot be read as docs/datamodel.md says (bad JSON, a run ref naming
    another run, an unknown status...). ``name``: the ref; ``fsck --repair`` moves it aside."""

    headline = "damaged ref"

    def __init__(self, msg: str, name: str = "") -> None:
        super().__init__(msg)
        self.name = name


class DamagedRefWarning(UserWarning):
    """A listing skipped a damaged ref (one line naming it); the listing goes on without it."""


class InvalidRecord(StoreError, TypeError):
    headline = "invalid record"


class ArtifactSerializationError(StoreError, TypeError):
    headline = "cannot store artifact"


class ArtifactLoadError(StoreError):
    headline = "cannot load artifact"


class RemoteStoreError(StoreError):
    """The object store (S3 or compatible) holding a store's blobs cannot be used: no
    credentials, access denied, bucket missing, or endpoint unreachable. The message says which and how to fix it."""

    headline = "object store error"


class RemoteUnreachable(RemoteStoreError):
    """A remote's server is down or stopped mid-transfer: stops the command (a RemoteError refuses only one run)."""

    headline = "remote unreachable"


class RemoteError(StoreError):
    """A remote (``cafstore remote``, ``push``, ``pull``, ``clone``) cannot be used: an unknown name, a
    URL of no known form, a layout this cafstore does not read, or a run that cannot travel."""

    headline = "remote error"


class RemoteObjectCorrupt(RemoteError, CorruptObject):
    """An object fetched from a remote does not hash to its id: the pull refuses it and stores
    nothing of the run it belongs to. The message names the object, where it was read, and the run."""

    headline = "corrupt object on remote"

    def __init__(self, msg: str, oid: str = "", runs: Iterable[str] = ()) -> None:
        CorruptObject.__init__(self, msg, oid, runs)


class StorageFull(StoreError, OSError):
    headline = "store is full"

    @classmethod
    def disk_full(cls, action: str, reason: str) -> "StorageFull":
        """The one message for a full disk, whether a large object's file or the index hit it."""
        return cls(
            f"Could not {action}: the disk holding the store is full ({reason}). Nothing was half-written; "
            "free some space (`cafstore gc` removes unreferenced data) and retry."
        )


class GcRefused(StoreError):
    """gc fails closed: ``problems`` lists every ref or record it could not resolve."""

    headline = "gc deleted nothing"

    def __init__(self, msg: str, problems: "list | None" = None) -> None:
        super().__init__(msg)
        self.problems = list(problems or [])


class IndexLost(StoreError):
    """The index was emptied, replaced or rolled back (store/identity.py): every command refuses
    to use it, gc above all, until ``cafstore fsck --repair`` rebuilds it."""

    headline = "index lost"


class MaintenanceArgumentError(StoreError, ValueError):
    """A run (``Flow/N``) or a duration (``30d``) handed to maintenance that it cannot parse.

    Maintenance sits beside the store and knows nothing of command lines; the
    CLI turns this into its own usage error.
    """

    headline = "bad argument"


# --- flows -----------------------------------------------------------------
class FlowError(CafstoreError):
    headline = "flow error"


class GraphError(FlowError):
    headline = "invalid flow graph"

    def __init__(self, msg: str, file: str = "", line: int = 0, step: str = "") -> None:
        super().__init__(msg)
        self.file = file
        self.line = line
        self.step = step


class ParameterError(FlowError):
    headline = "bad parameter"


class ParameterAssignmentError(ParameterError, AttributeError):
    headline = "parameters are immutable"


class CommandLineError(FlowError):
    """A bad option or argument: both command lines exit 2 for it, as click does for its own usage errors."""

    headline = "bad command line"
    exit_code = 2


class ParameterValueError(ParameterError, CommandLineError):
    """A flow parameter's value on the command line that its type refuses (exit 2, a usage error)."""

    headline = "bad parameter"


class ConfigError(ParameterError, CommandLineError):
    """A configuration (``Config``) that cannot be read, parsed or evaluated; names the config and file.

    Exit 2, as Metaflow's usage error for bad ``--config``/``--config-value`` values.
    """

    headline = "bad configuration"


class MergeArtifactsError(FlowError):
    """``artifact_names``: the artifacts at fault, for code that catches and inspects it."""

    headline = "merge_artifacts failed"

    def __init__(self, msg: str, unhandled: Iterable[str] = ()) -> None:
        super().__init__(msg)
        self.artifact_names = list(unhandled)


class UnhandledInMergeArtifactsException(MergeArtifactsError):
    headline = "unhandled artifacts in merge"


class MissingInMergeArtifactsException(MergeArtifactsError):
    headline = "missing artifacts in merge"


class ReadOnlyAttributeError(FlowError, AttributeError):
    headline = "read-only attribute"


class UnmergedArtifactError(FlowError, AttributeError):
    headline = "artifact not merged at join"


class TransitionError(FlowError):
    headline = "bad self.next"


class SwitchError(TransitionError):
    headline = "bad switch"


class ForeachError(FlowError):
    headline = "bad foreach"


class TaskFailed(FlowError):
    headline = "task failed"


class TaskTimeout(FlowError):
    headline = "task timed out"


class TimeoutException(TaskTimeout):
    """Raised inside a step when its ``@timeout`` expires (so ``@retry`` and ``@catch`` see it)."""

    headline = "@timeout"
    metaflow_path = "metaflow.plugins.timeout_decorator.TimeoutException"


class FailureHandledByCatch(FlowError):
    """What ``@catch`` stores when the step's code raised nothing: its process kept dying
    (killed, a segfault, ``os._exit``, out of memory), so a fallback attempt stood in for it."""

    headline = "Task execution failed but @catch handled it"
    metaflow_path = "metaflow.plugins.catch_decorator.FailureHandledByCatch"

    def __init__(self, retry_count: int) -> None:
        super().__init__(
            f"Task execution kept failing over {retry_count} attempts. Your code did not raise an "
            "exception. Something in the execution environment caused the failure."
        )
        self.retry_count = retry_count

    def __reduce__(self) -> Any:
        return FailureHandledByCatch, (self.retry_count,)


class ExternalCommandFailed(FlowError):
    """Metaflow's error for a failed external command; flows raise and catch it by this name."""

    headline = "External command failed"
    metaflow_path = "metaflow.exception.ExternalCommandFailed"

    def __init__(self, msg: str) -> None:
        super().__init__(msg)

    def __reduce__(self) -> Any:
        return ExternalCommandFailed, (self.message,)


class InvalidDecoratorAttribute(FlowError):
    headline = "Unknown decorator attribute"


class ResumeError(FlowError):
    headline = "cannot resume"


class RunClosed(FlowError):
    """A task finished after its run stopped taking tasks; it committed nothing."""

    headline = "run closed"


# --- client ----------------------------------------------------------------
class ClusterError(FlowError):
    """A compute cluster (``--executor dask``) cannot be used: not installed, unreachable, lost mid-run,
    or unable to reach the store's blobs (docs/scale-out.md)."""


class ClientError(CafstoreError):
    headline = "client error"


class NotFound(ClientError, KeyError):
    headline = "not found"

    def __str__(self) -> str:
        return self.message


class NamespaceMismatch(ClientError):
    headline = "not in the current namespace"


class TaggingError(ClientError):
    headline = "cannot change tags"


class ProductionTokenError(ClientError):
    headline = "not authorized for production"


class MetaflowInvalidPathspec(ClientError, ValueError):
    headline = "Invalid pathspec"


class MetaflowDataMissing(ClientError):
    headline = "Data missing"


# --- ui ----------------------------------------------------------------------
class UIError(CafstoreError):
    """The web UI, the report or a DAG picture cannot be made (a missing optional dependency, a bad
    address to serve on)."""

    headline = "ui error"


class MissingExtra(UIError):
    headline = "optional dependency missing"


class MetaflowInternalError(CafstoreError):
    headline = "Internal error"


# Metaflow's names for the errors its users catch.
MetaflowException = CafstoreError
MetaflowNamespaceMismatch = NamespaceMismatch
MetaflowNotFound = NotFound
TaggingException = TaggingError
MetaflowTaggingError = TaggingError
IncorrectProductionToken = ProductionTokenError
CommandException = CommandLineError


# The record of a caught exception (@catch's ``var``): its own module, re-exported here.
from cafstore.exception.caught import MetaflowExceptionWrapper as MetaflowExceptionWrapper  # noqa: E402
from cafstore.exception.caught import exception_type_name as exception_type_name  # noqa: E402

__all__ = [
    name
    for name, value in list(globals().items())
    if name[0].isupper() and getattr(value, "__module__", "") in (__name__, "cafstore.exception.caught")
]
