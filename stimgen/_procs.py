"""Processes: who owns a temporary output, workers that die with their parent, signals.

* :func:`owner_tag` names the running process so that a temporary folder can record its
  owner; :func:`owner_gone` tells later whether that owner has exited. A process is named
  by its PID *and* its start time (``/proc/<pid>/stat`` on Linux), so a PID reused by
  another program is told apart, and by a machine token (host name and boot id), so that
  folders made on another machine sharing the same disk are never judged.
* :func:`die_with_parent` is for worker processes (a pool initializer): the worker is
  terminated when the process that started it exits, however it exits (SIGKILL too).
* :func:`signals_as_interrupt` makes SIGTERM and SIGHUP unwind the main thread like
  Ctrl-C (SIGINT) does, so ``finally`` blocks and context managers clean up;
  :func:`critical` defers those signals during a few lines that must not be cut in two.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator

__all__ = [
    "Terminated",
    "critical",
    "die_with_parent",
    "machine_token",
    "owner_gone",
    "owner_tag",
    "process_start",
    "signals_as_interrupt",
]

_machine: str | None = None


def machine_token() -> str:
    """Eight hex digits naming where PIDs mean the same process.

    The host name, the Linux boot id and the PID namespace: a container sharing a folder
    with its host has other PIDs, and so another token.
    """
    global _machine
    if _machine is None:
        boot = ""
        with contextlib.suppress(OSError):
            with open("/proc/sys/kernel/random/boot_id") as f:
                boot = f.read().strip()
        with contextlib.suppress(OSError):
            boot += f"/{os.stat('/proc/self/ns/pid').st_ino}"
        _machine = hashlib.sha256(f"{socket.gethostname()}\0{boot}".encode()).hexdigest()[:8]
    return _machine


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name, or None if unreadable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # the command name is in parentheses and may itself hold spaces and parentheses
    return text[text.rindex(")") + 2:].split()


def process_start(pid: int | None = None) -> int:
    """Start time of a process in clock ticks after boot (Linux), 0 where unknown.

    Together with the PID it names the process for its whole lifetime: a later process that
    reuses the PID has another start time.
    """
    fields = _stat_fields(os.getpid() if pid is None else pid)
    if fields is None or len(fields) < 20:
        return 0
    return int(fields[19])  # field 22 of stat(5); fields[0] is field 3 (the state)


_own: tuple[int, int] | None = None


def owner_tag() -> str:
    """``MACHINE-PID-START``: the current process, for the name of a temporary output."""
    global _own
    pid = os.getpid()
    if _own is None or _own[0] != pid:  # computed once per process (and again after fork)
        _own = (pid, process_start(pid))
    return f"{machine_token()}-{pid}-{_own[1]}"


def owner_gone(machine: str, pid: int, start: int) -> bool:
    """True only if the process named by an :func:`owner_tag` has certainly exited.

    False whenever in doubt: another machine, no way to tell PID reuse apart, or the
    process still running (a zombie counts as exited).
    """
    if machine != machine_token() or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # exists, owned by another user
    except OSError:
        return False
    fields = _stat_fields(pid)
    if fields is None:
        return False  # no /proc: the PID exists and may be the owner
    if fields[0] == "Z":
        return True
    return start != 0 and int(fields[19]) != start


def die_with_parent(parent_pid: int | None = None, *, poll_s: float = 0.5) -> None:
    """Terminate this process when its parent exits; for a worker pool's ``initializer``.

    On Linux the kernel sends SIGTERM when the parent dies (``prctl(PR_SET_PDEATHSIG)``);
    everywhere a daemon thread also checks every ``poll_s`` seconds that the parent is
    alive (it catches a parent that died before the call, and platforms without prctl).
    SIGTERM and SIGHUP get their default action in this process, so a signal handler
    inherited from the parent cannot turn them into a caught exception.

    Parameters
    ----------
    parent_pid : int, optional
        The process whose exit ends this one (default: the current parent, ``os.getppid()``). Pass
        the main process's PID through ``initargs`` when the pool starts workers via an
        intermediate process (e.g. a fork server).
    poll_s : float
        Seconds between checks of the watcher thread.
    """
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None and threading.current_thread() is threading.main_thread():
            signal.signal(sig, signal.SIG_DFL)
    parent = os.getppid() if parent_pid is None else int(parent_pid)
    start = process_start(parent)
    me = machine_token()
    if sys.platform.startswith("linux") and parent == os.getppid():
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG = 1

    direct = parent == os.getppid()

    def dead() -> bool:
        if direct and os.getppid() != parent:
            return True  # re-parented: the parent has exited
        return owner_gone(me, parent, start)

    if dead():
        os.kill(os.getpid(), signal.SIGTERM)
        return

    def watch() -> None:
        ev = threading.Event()
        while not ev.wait(poll_s):
            if dead():
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="stimgen-parent-watch", daemon=True).start()


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: raised in the main thread, like KeyboardInterrupt for Ctrl-C."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(f"terminated by {signal.Signals(signum).name}")


class _State:
    pid = 0
    depth = 0
    pending: int | None = None
    fired = False


_state = _State()


def _interrupt(signum: int) -> BaseException:
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def _handler(signum: int, frame: object) -> None:
    if os.getpid() != _state.pid:  # a forked child inherited the handler: act as before
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    if _state.fired and signum != signal.SIGINT:
        return  # already unwinding: let the cleanup finish (a second Ctrl-C still raises)
    if _state.depth:
        _state.pending = signum  # raised when the critical section ends
        return
    _state.fired = True
    raise _interrupt(signum)


@contextlib.contextmanager
def critical() -> Iterator[None]:
    """Defer the signals handled by :func:`signals_as_interrupt` for a few lines.

    Use around steps that must not be cut in two (renaming a finished output into place).
    A signal that arrives meanwhile is raised when the outermost block ends.
    """
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1
        pending = _state.pending
        if not _state.depth and pending is not None and not _state.fired:
            _state.pending = None
            _state.fired = True
            raise _interrupt(pending)


@contextlib.contextmanager
def signals_as_interrupt() -> Iterator[None]:
    """Within the block, SIGINT, SIGTERM and SIGHUP raise in the main thread.

    SIGINT raises :class:`KeyboardInterrupt` as usual; SIGTERM and SIGHUP (what ``timeout``,
    ``scancel``, ``docker stop`` and a closed terminal send) raise :class:`Terminated`, a
    KeyboardInterrupt subclass, so the same cleanup runs. Repeated SIGTERM/SIGHUP are
    ignored while that cleanup runs (a second Ctrl-C still interrupts it). The previous handlers are restored on exit.
    Outside the main thread this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = [s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None]
    old = {s: signal.getsignal(s) for s in sigs}
    _state.fired, _state.pending, _state.pid = False, None, os.getpid()
    try:
        for s in sigs:
            if old[s] is not signal.SIG_IGN:  # e.g. nohup: keep ignoring SIGHUP
                signal.signal(s, _handler)
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
        _state.fired, _state.pending = False, None
