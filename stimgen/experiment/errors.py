"""The two errors of the experiment engine: an invalid experiment, a run that failed."""

from __future__ import annotations

from .._yamlschema import SchemaError


class ExperimentError(SchemaError):
    """An experiment failed validation.

    ``str(error)`` has one ``FILE:LINE: key.path: message`` per line; ``.problems`` holds
    them as :class:`~stimgen._yamlschema.Problem` and ``.lines`` as strings.
    """


class RunFailed(RuntimeError):
    """A run could not complete (a worker died, a disk error, ...); no set was written."""
