"""A child process started with ``posix_spawn`` and watched through a pidfd: the runtime's spawn
path, a handful of system calls per child.

Why not ``asyncio.create_subprocess_exec``: on Python 3.11 its ``Process.wait()`` returns only
once every pipe has closed, so a background process that keeps the child's stdout open hides the
exit until the timeout; and its default child watcher starts a thread per child. Here the exit is
seen from the process itself: the kernel makes a pidfd readable when the child exits, and the
event loop watches it like a socket (no thread, no SIGCHLD handler, no polling). Where pidfds are
missing (Linux before 5.3) one thread per child blocks in ``waitid(WNOWAIT)`` instead.

Guarantees:
- ``exited`` is set while the child is still an unreaped zombie, so its pid — and the id of its
  process group — cannot be reused until ``reap()``: signalling the group in between is safe;
- the child leads a new session (its own process group, pgid == pid), starts with SIGPIPE and
  SIGXFSZ at their defaults (Python ignores SIGPIPE; a child must not inherit that) and no blocked
  signal, and inherits only fds 0-2 (every fd Python opens is close-on-exec);
- the input is written without blocking the loop. The runtime keeps the read end of the child's
  stdin open, so a write never fails with EPIPE and ``finish_input()`` can count exactly the bytes
  the child left unread, whatever the timing;
- output goes to ``on_output`` chunk by chunk as it arrives.
Must not: decide about outcomes, timeouts or leftovers (``child.py`` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import shutil
import signal
import sys
import termios
import threading
from collections.abc import Callable, Mapping, Sequence

READ_CHUNK = 64 * 1024
# After the child's group is gone, a process outside it may still hold the output and keep
# writing: read at most this much more before closing the pipe on it.
MAX_FINAL_DRAIN_BYTES = 1024 * 1024
RESTORED_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)

OnOutput = Callable[[bytes], None]


def resolve_executable(name: str, search_path: str) -> str:
    """``name`` itself when it has a slash, else its first match on ``search_path``.

    Resolved here, against the child's own ``PATH``: ``posix_spawnp`` would search the runtime's.
    """
    if os.sep in name:
        return name
    found = shutil.which(name, path=search_path)
    if found is None:
        raise FileNotFoundError(errno.ENOENT, "not found on PATH", name)
    return found


def signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone's, not ours to judge: treat as alive
    return True


class ChildProcess:
    """One spawned child. Build it with ``spawn``; ``close()`` releases every fd it still holds."""

    def __init__(self, pid: int, stdin_r: int, stdin_w: int, out_r: int, on_output: OnOutput,
                 input_data: bytes) -> None:
        self.pid = pid
        self.exited = asyncio.Event()
        self.output_closed = False
        self._loop = asyncio.get_running_loop()
        self._stdin_r: int | None = stdin_r
        self._stdin_w: int | None = stdin_w
        self._out_r: int | None = out_r
        self._pidfd: int | None = None
        self._on_output = on_output
        self._input = memoryview(input_data)
        self._written = 0
        self._writer_armed = False

    @classmethod
    def spawn(cls, argv: Sequence[str], env: Mapping[str, str], input_data: bytes,
              on_output: OnOutput) -> ChildProcess:
        """Start ``argv``; ``OSError`` when it cannot be started (nothing is left open then)."""
        path = resolve_executable(argv[0], env.get("PATH", os.defpath))
        stdin_r, stdin_w = map(_above_stdio, os.pipe())
        out_r, out_w = map(_above_stdio, os.pipe())
        try:
            pid = os.posix_spawn(
                path, list(argv), env,
                file_actions=[(os.POSIX_SPAWN_DUP2, stdin_r, 0), (os.POSIX_SPAWN_DUP2, out_w, 1),
                              (os.POSIX_SPAWN_DUP2, out_w, 2)],
                setsid=True, setsigdef=RESTORED_SIGNALS, setsigmask=(),
            )
        except BaseException:
            for fd in (stdin_r, stdin_w, out_r):
                os.close(fd)
            raise
        finally:
            os.close(out_w)  # else the runtime itself would keep the output from ever closing
        os.set_blocking(stdin_w, False)
        os.set_blocking(out_r, False)
        child = cls(pid, stdin_r, stdin_w, out_r, on_output, input_data)
        child._watch()
        return child

    def _watch(self) -> None:
        assert self._out_r is not None
        self._loop.add_reader(self._out_r, self._read_output)
        self._write_input()
        try:
            self._pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):  # no pidfds on this kernel: one waiting thread instead
            threading.Thread(target=self._wait_in_thread, name=f"wait:{self.pid}",
                             daemon=True).start()
            return
        self._loop.add_reader(self._pidfd, self._on_exit)

    def _on_exit(self) -> None:
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
        self.exited.set()

    def _wait_in_thread(self) -> None:
        with contextlib.suppress(ChildProcessError):
            # WNOWAIT: see the exit, leave the zombie (and its pid) in place until reap().
            os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            self._loop.call_soon_threadsafe(self.exited.set)

    # -- input ------------------------------------------------------------------------------

    def _write_input(self) -> None:
        fd = self._stdin_w
        if fd is None:
            return
        try:
            self._written += os.write(fd, self._input[self._written:]) if self._input else 0
        except BlockingIOError:
            pass
        except OSError:
            self._close_writer()  # nothing more can be written; finish_input() counts the rest
            return
        if self._written >= len(self._input):
            self._close_writer()  # end of file for the child
        elif not self._writer_armed:
            self._loop.add_writer(fd, self._write_input)
            self._writer_armed = True

    def _close_writer(self) -> None:
        if self._stdin_w is None:
            return
        if self._writer_armed:
            self._loop.remove_writer(self._stdin_w)
            self._writer_armed = False
        os.close(self._stdin_w)
        self._stdin_w = None

    def finish_input(self) -> int:
        """Stop feeding; the number of input bytes the child never read (0 when it read all)."""
        self._close_writer()
        unread = len(self._input) - self._written
        if self._stdin_r is not None:
            unread += _bytes_in_pipe(self._stdin_r)
            os.close(self._stdin_r)
            self._stdin_r = None
        return unread

    # -- output -----------------------------------------------------------------------------

    def _read_output(self) -> None:
        if self._out_r is None:
            return
        try:
            chunk = os.read(self._out_r, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if chunk:
            self._on_output(chunk)
        else:
            self._loop.remove_reader(self._out_r)
            self.output_closed = True

    def drain_output(self) -> bool:
        """Read what is buffered now; True when the output reached end of file (nobody holds
        it any more), False when a live process still holds its write end."""
        fd = self._out_r
        if self.output_closed or fd is None:
            return True
        self._loop.remove_reader(fd)
        total = 0
        while total < MAX_FINAL_DRAIN_BYTES:
            try:
                chunk = os.read(fd, READ_CHUNK)
            except BlockingIOError:
                return False
            except OSError:
                chunk = b""
            if not chunk:
                self.output_closed = True
                return True
            self._on_output(chunk)
            total += len(chunk)
        return False

    def output_inode(self) -> int | None:
        """The output pipe's inode (``pipe:[N]`` in ``/proc/*/fd``), while it is open."""
        return os.fstat(self._out_r).st_ino if self._out_r is not None else None

    # -- exit -------------------------------------------------------------------------------

    def signal_group(self, sig: signal.Signals) -> None:
        signal_group(self.pid, sig)

    def reap(self) -> int | None:
        """Collect the exited child: its exit code, or minus the signal that killed it."""
        try:
            _, status = os.waitpid(self.pid, 0)
        except ChildProcessError:
            return None
        finally:
            self._close_pidfd()
        return os.waitstatus_to_exitcode(status)

    def _close_pidfd(self) -> None:
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None

    def close(self) -> None:
        """Release every fd still held (idempotent); the child itself is reaped by ``reap``."""
        self._close_writer()
        if self._stdin_r is not None:
            os.close(self._stdin_r)
            self._stdin_r = None
        if self._out_r is not None:
            self._loop.remove_reader(self._out_r)
            os.close(self._out_r)
            self._out_r = None
        self._close_pidfd()


def _above_stdio(fd: int) -> int:
    """Move ``fd`` above 2, so the dup2 onto 0-2 in the child never clobbers another pipe end
    (possible only when the runtime itself runs with a closed stdin, stdout or stderr)."""
    if fd > 2:
        return fd
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    os.close(fd)
    return moved


def _bytes_in_pipe(fd: int) -> int:
    return int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, bytes(4)), sys.byteorder)
