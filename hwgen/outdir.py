"""The output folder of ``hwgen build``: checked, locked, built in a scratch folder beside it and
moved into place only when every step succeeded.

:class:`OutFolder` is a context manager. On entry it creates the missing parent folders,
takes an exclusive lock on ``.<name>.lock`` beside ``out`` (a second build into the same
folder fails at once; the kernel drops the lock of a killed process, so a stale lock file
blocks nothing), refuses an ``out`` that exists and is not an earlier hwgen build, and creates
the scratch folder ``.<name>.<random>.tmp`` beside it. Folders are made with ``os.mkdir``, so
they honour the umask. On exit it removes the scratch folder, the lock file and, unless
:meth:`OutFolder.commit` moved the scratch folder into place, the parent folders it created:
a failed or interrupted build leaves nothing behind. Every failure to create these is a
:class:`UsageError` naming ``out``.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
from pathlib import Path

__all__ = ["MARKER", "OutFolder", "UsageError"]

#: The file that marks a folder as hwgen's own output, which a later build may replace.
MARKER = ".hwgen-build"


class UsageError(ValueError):
    """Bad input from the user (a file, a flag): reported as one line, exit code 2."""


class OutFolder:
    """The output folder ``out`` of one build, with its scratch folder :attr:`work` (module
    docs)."""

    def __init__(self, out):
        out = Path(out)
        self.out = out.resolve() if out.name in ("", ".", "..") else out
        self.shown = Path(out)            # the folder as the user named it, for messages
        self.work: Path | None = None
        self.lock_path = self.out.with_name(f".{self.out.name}.lock")
        self._lock_fd: int | None = None
        self._made: list[Path] = []       # parent folders this build created, outermost first
        self._committed = False

    def __enter__(self) -> "OutFolder":
        try:
            self._make_parents()
            self._lock()
            self._check()
            self._remove_stale_scratch()
            self.work = self._make_scratch()
        except BaseException:
            self._cleanup()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._cleanup()

    def _error(self, e: OSError) -> UsageError:
        return UsageError(f"{self.shown}: cannot create the output folder "
                          f"({e.strerror or type(e).__name__}); choose another --out")

    def _check(self) -> None:
        out = self.out
        try:
            mine = out.is_dir() and (not any(out.iterdir()) or (out / MARKER).exists())
        except OSError as e:
            raise self._error(e) from None
        if out.exists() and not mine:
            raise UsageError(f"{self.shown}: exists and is not an earlier hwgen build; choose "
                             "another --out")
        if out.is_symlink():
            # a build replaces the folder whole, which would turn the link into a folder
            raise UsageError(f"{self.shown}: is a symbolic link; give the folder it points to "
                             "as --out")

    def _make_parents(self) -> None:
        missing = []
        parent = self.out.parent
        while not parent.is_dir() and parent != parent.parent:
            missing.append(parent)
            parent = parent.parent
        for folder in reversed(missing):
            if folder.exists() or folder.is_symlink():
                raise UsageError(f"{self.shown}: {folder} is not a folder; choose another --out")
            try:
                os.mkdir(folder)
            except OSError as e:
                raise self._error(e) from None
            self._made.append(folder)

    def _lock(self) -> None:
        while True:
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            except OSError as e:
                raise self._error(e) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise UsageError(f"{self.shown}: another hwgen build is writing this folder "
                                 f"(it holds {self.lock_path.name}); wait for it or choose "
                                 "another --out") from None
            # the build before may have removed the file between our open and our lock: then
            # the lock is on a file no one else will see, so take it again on the new one
            try:
                same = os.stat(self.lock_path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._lock_fd = fd
                return
            os.close(fd)

    def _remove_stale_scratch(self) -> None:
        """Scratch folders of this ``out`` left by builds that were killed: with the lock
        held, no live build owns one."""
        for p in self.out.parent.glob(f".{self.out.name}.*.tmp"):
            if p.is_dir() and (p / MARKER).is_file():
                shutil.rmtree(p, ignore_errors=True)

    def _make_scratch(self) -> Path:
        for _ in range(100):
            work = self.out.with_name(f".{self.out.name}.{secrets.token_hex(4)}.tmp")
            try:
                os.mkdir(work)
            except FileExistsError:
                continue
            except OSError as e:
                raise self._error(e) from None
            (work / MARKER).write_text("hwgen build output\n")
            return work
        raise UsageError(f"{self.shown}: no free name for a scratch folder beside it")

    def keep(self, name: str) -> Path:
        """Move the scratch folder to ``name`` beside ``out`` (replacing an older one) as
        evidence of a failed build; returns its path."""
        kept = self.out.with_name(name)
        shutil.rmtree(kept, ignore_errors=True)
        self.work.rename(kept)
        self._committed = True            # the parent folders now hold it
        return kept

    def commit(self) -> None:
        """Replace ``out`` with the scratch folder."""
        if self.out.exists():
            shutil.rmtree(self.out)
        self.work.rename(self.out)
        self._committed = True

    def _cleanup(self) -> None:
        if self.work is not None and self.work.exists():
            shutil.rmtree(self.work, ignore_errors=True)
        if self._lock_fd is not None:
            # unlinked while still held, so that no later build locks the old file
            self.lock_path.unlink(missing_ok=True)
            os.close(self._lock_fd)
            self._lock_fd = None
        if not self._committed:
            for folder in reversed(self._made):
                try:
                    folder.rmdir()
                except OSError:
                    break
            self._made = []
