"""What every hostile case checks, whatever the front door: the folder tree before and after,
leftover partial files, the error line, and the peak memory of a child process.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ERROR_LINE = re.compile(r"^mattekit: error: (?P<name>.+?): (?P<problem>.+)$")
# a click usage error for an option value: "Error: Invalid value for '--x': ..." after Usage/Try lines
USAGE_ERROR = re.compile(r"^Error: .+")
# "ZeroDivisionError: ..." passed through as the problem is not a clear error
RAW_EXCEPTION = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception)\b|\[ONNXRuntimeError\]|\bErrno\b")
USAGE_NOISE = re.compile(r"^(Usage: |Try '|\s*$)")
TRACEBACK_MARKERS = (
    "Traceback (most recent call last)",
    "Exception in thread",
    "Fatal Python error",
    "Segmentation fault",
    "std::bad_alloc",
    "core dumped",
)
# a child whose resident memory crosses this is killed (it protects the shared machine; the
# per-case bound checked afterwards is lower)
KILL_RSS_MB = 4096


# -- the folder tree ------------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` (not following symlinks): relative path -> (kind, content hash
    or link target, permission bits)."""
    tree: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = os.fsdecode(p.relative_to(root).as_posix())
            st = p.lstat()
            if p.is_symlink():
                tree[rel] = ("link", os.readlink(p), 0)
            elif p.is_dir():
                tree[rel] = ("dir", "", st.st_mode & 0o7777)
            elif not stat.S_ISREG(st.st_mode):  # a FIFO or device: never opened (a FIFO blocks)
                tree[rel] = ("special", stat.S_IFMT(st.st_mode), st.st_mode & 0o7777)
            else:
                h = hashlib.sha256()
                with open(p, "rb") as fh:
                    for block in iter(lambda: fh.read(1 << 20), b""):
                        h.update(block)
                tree[rel] = ("file", h.hexdigest(), st.st_mode & 0o7777)
    return tree


@dataclass
class TreeDiff:
    created: list[str]
    changed: list[str]
    removed: list[str]

    @property
    def all(self) -> list[str]:
        return self.created + self.changed + self.removed


def diff(before: dict, after: dict) -> TreeDiff:
    created = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(
        k for k in set(before) & set(after) if before[k] != after[k] and not (before[k][0] == after[k][0] == "dir")
    )
    return TreeDiff(created, changed, removed)


def under(rel: str, declared: str) -> bool:
    declared = declared.rstrip("/")
    return rel == declared or rel.startswith(declared + "/")


def assert_only_declared_changes(before: dict, after: dict, outputs: list[str], removable: list[str] = ()) -> None:
    """Nothing outside the declared outputs was created or changed, and nothing but the
    declared outputs (replaced) and ``removable`` (e.g. stale partials) was removed."""
    d = diff(before, after)
    stray = [p for p in d.created + d.changed if not any(under(p, o) for o in outputs)]
    lost = [p for p in d.removed if not any(under(p, o) for o in [*outputs, *removable])]
    assert not stray, f"created or changed outside the declared outputs {outputs}: {stray}"
    assert not lost, f"removed although mattekit did not write it: {lost}"


def partials(root: Path) -> list[str]:
    """Hidden temporaries left anywhere under ``root`` (``.name.partial-xxxxxxxx.ext``, lock files
    of a derived model)."""
    return [
        os.fsdecode(Path(dirpath, name).relative_to(root))
        for dirpath, dirnames, filenames in os.walk(root)
        for name in dirnames + filenames
        if ".partial-" in name or ".old-" in name
    ]


# -- the error text -------------------------------------------------------------------------------


def assert_no_traceback(text: str) -> None:
    for marker in TRACEBACK_MARKERS:
        if marker in text:
            tail = [line for line in text[text.index(marker) :].splitlines()[1:] if line.strip()]
            # the exception is the first unindented line after the frames
            last = next((line for line in tail if not line.startswith(" ")), marker)
            raise AssertionError(f"traceback: {last.strip()[:300]}")


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def assert_one_error_line(stderr: str, names: tuple[str, ...], usage_ok: bool = False) -> str:
    """stderr is one line ``mattekit: error: <name>: <problem>`` whose name or problem holds one
    of ``names``. With ``usage_ok``, click's usage error for a bad option value is also accepted
    (``Usage:``/``Try`` lines then one ``Error: ...`` line naming the option)."""
    lines = error_lines(stderr)
    if usage_ok and any(USAGE_ERROR.match(line) for line in lines):
        errors = [line for line in lines if not USAGE_NOISE.match(line)]
        assert len(errors) == 1 and USAGE_ERROR.match(errors[0]), f"not one usage error line: {lines}"
        line = errors[0]
    else:
        assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {lines}"
        line = lines[0]
        assert ERROR_LINE.match(line), f"not 'mattekit: error: <name>: <problem>': {line!r}"
    assert any(n in line for n in names), f"the line names none of {names}: {line!r}"
    assert not RAW_EXCEPTION.search(line), f"a raw exception, not a clear problem: {line!r}"
    return line


# -- child processes ------------------------------------------------------------------------------


@dataclass
class ChildResult:
    code: int | None  # exit code; -N when killed by signal N; None on timeout
    stdout: str
    stderr: str
    peak_rss_mb: float  # VmHWM of the child (ru_maxrss)
    seconds: float
    killed_for: str = ""  # "timeout" or "memory" when the harness killed it


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def vm_hwm_mb(pid: int) -> float:
    """The peak resident memory (``VmHWM``) of a running process in MB, or 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def mattekit_argv(*args: str) -> list[str]:
    """The installed ``mattekit`` console script of this interpreter (what a user runs)."""
    script = Path(sys.executable).with_name("mattekit")
    return [str(script) if script.exists() else sys.executable, *([] if script.exists() else ["-m", "mattekit"]), *args]


def run_child(
    argv: list[str], cwd: Path, env: dict[str, str], timeout: float, logs: Path, preexec=None, on_start=None
) -> ChildResult:
    """Run ``argv`` with stdout/stderr in files under ``logs`` (outside the hashed tree); poll its
    resident memory and kill it past :data:`KILL_RSS_MB` or ``timeout``; return its exit code,
    output and peak resident memory. ``on_start(proc)`` is called once the child runs (e.g. to
    send it a signal later).

    The peak is the child's own ``VmHWM`` polled every 20 ms once it has exec'd (exec starts a
    new address space, so the mark counts only mattekit's memory; a rise in the last 20 ms before
    exit can be missed). ``ru_maxrss`` from ``wait4`` is not used: Linux records the high-water
    mark of the forked copy of this test process in it at exec, so it reads as at least the size
    of the pytest process (1.4 GB once the suite has loaded torch)."""
    logs.mkdir(parents=True, exist_ok=True)
    out_path, err_path = logs / "stdout.txt", logs / "stderr.txt"
    started = time.monotonic()
    killed_for = ""
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL, preexec_fn=preexec
        )
        if on_start is not None:
            on_start(proc)
        own_cmdline = Path("/proc/self/cmdline").read_bytes()
        peak = 0.0
        while True:
            if _cmdline(proc.pid) not in (own_cmdline, b""):  # exec'd: the mark is the child's own
                peak = max(peak, vm_hwm_mb(proc.pid))
            pid, status, _usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if not killed_for and time.monotonic() - started > timeout:
                killed_for = "timeout"
                proc.kill()
            elif not killed_for and rss_mb(proc.pid) > KILL_RSS_MB:
                killed_for = "memory"
                proc.kill()
            time.sleep(0.02)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return ChildResult(
        code=None if killed_for == "timeout" else proc.returncode,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
        peak_rss_mb=peak,
        seconds=time.monotonic() - started,
        killed_for=killed_for,
    )


def terminate_when(
    path_glob: tuple[Path, str], delay_after: float = 0.3, sig: int = signal.SIGTERM, give_up: float = 20.0
):
    """An ``on_start`` callback: a thread that sends ``sig`` once ``folder.glob(pattern)`` matches."""
    import threading

    folder, pattern = path_glob

    def start(proc):
        def watch():
            deadline = time.monotonic() + give_up
            # os.kill, not proc.send_signal: the latter polls and could reap the child under wait4
            while os.path.exists(f"/proc/{proc.pid}") and time.monotonic() < deadline:
                if any(folder.rglob(pattern)):
                    time.sleep(delay_after)
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(proc.pid, sig)
                    return
                time.sleep(0.02)

        threading.Thread(target=watch, daemon=True).start()

    return start


def killed_run_partials(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 30.0) -> list[Path]:
    """Start ``argv``, SIGKILL it as soon as a ``.partial-*`` file appears under ``cwd`` (what a
    power cut or ``kill -9`` leaves) and return the partial files it left."""
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
    )
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            found = [p for p in cwd.rglob("*") if ".partial-" in p.name]
            if found:
                proc.kill()
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    return [p for p in cwd.rglob("*") if ".partial-" in p.name]


def case_registry(cases: dict) -> Callable:
    """The decorator ``@case(case_id, issue_item, *marks)`` of a front door's corpus: it files the
    decorated builder in ``cases`` as ``{case_id: (issue item, builder, marks)}``, what
    :func:`case_params` reads."""

    def case(case_id: str, item: str, *marks):
        def register(fn):
            cases[case_id] = (item, fn, marks)
            return fn

        return register

    return case


def case_params(cases: dict, xfail: dict[str, str]) -> list:
    """pytest params of a front door's cases (``{case_id: (issue item, build, marks)}``), a case in
    ``xfail`` marked ``xfail(strict=True)`` with its reason unless ``HOSTILE_NO_XFAIL=1`` (to see
    every case's real result)."""
    import pytest

    params = []
    for case_id, (item, _build, marks) in cases.items():
        all_marks = list(marks)
        if case_id in xfail and not os.environ.get("HOSTILE_NO_XFAIL"):
            all_marks.append(pytest.mark.xfail(strict=True, reason=xfail[case_id]))
        params.append(pytest.param(case_id, id=f"{case_id}[#{item}]", marks=all_marks))
    return params
