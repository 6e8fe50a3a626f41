"""fluxseg/runtime/cpu_process.py: when the malloc settings apply, the re-execution, and their effect."""
import os
import subprocess
import sys

import pytest

from fluxseg.runtime import cpu_process

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _env(**overrides):
    env = {k: v for k, v in os.environ.items() if k != cpu_process.TUNABLES_ENV}
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def _python(code: str, env: dict) -> str:
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("mode, platforms, expected", [
    ("on", "cpu", True), ("auto", "cpu", True), ("off", "cpu", False),
    ("auto", "cuda", False), ("on", "cuda", True), ("auto", "tpu,cpu", False),
])
def test_applies_follows_the_fast_forms_switch_and_the_platform(monkeypatch, mode, platforms, expected):
    monkeypatch.setenv(cpu_process.FAST_FORMS_ENV, mode)
    monkeypatch.setenv("JAX_PLATFORMS", platforms)
    assert cpu_process.applies() is (expected and sys.platform.startswith("linux"))


def test_a_bad_switch_value_is_an_error_naming_the_choices(monkeypatch):
    monkeypatch.setenv(cpu_process.FAST_FORMS_ENV, "fast")
    with pytest.raises(ValueError, match="auto, on, off.*'fast'"):
        cpu_process.applies()


def test_environ_adds_the_tunables_but_keeps_a_users_own(monkeypatch):
    monkeypatch.setenv(cpu_process.FAST_FORMS_ENV, "on")
    assert cpu_process.environ({"A": "1"}) == {"A": "1", cpu_process.TUNABLES_ENV: cpu_process.tunables()}
    mine = {cpu_process.TUNABLES_ENV: "glibc.malloc.arena_max=1"}
    assert cpu_process.environ(mine) == mine
    monkeypatch.setenv(cpu_process.FAST_FORMS_ENV, "off")
    assert cpu_process.environ({"A": "1"}) == {"A": "1"}


_REEXEC = """
import os, sys
print("start", os.environ.get("GLIBC_TUNABLES"), flush=True)
from fluxseg.runtime import cpu_process
cpu_process.reexec()
print("after", os.environ.get("GLIBC_TUNABLES"), sys.argv[1:], flush=True)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc tunables are Linux-only")
def test_reexec_replaces_the_process_once_with_the_same_command():
    out = _python(_REEXEC, _env(**{cpu_process.FAST_FORMS_ENV: "on"}))
    tun = cpu_process.tunables()
    # The first process stops at reexec(); the second starts over with the setting and goes on.
    assert out.splitlines() == ["start None", f"start {tun}", f"after {tun} []"]


@pytest.mark.parametrize("overrides, expected", [
    ({cpu_process.FAST_FORMS_ENV: "off"}, "None"),
    ({cpu_process.FAST_FORMS_ENV: "on", cpu_process.TUNABLES_ENV: "glibc.malloc.arena_max=2"}, "glibc.malloc.arena_max=2"),
])
def test_reexec_does_nothing_when_off_or_when_the_user_set_tunables(overrides, expected):
    out = _python(_REEXEC, _env(**overrides))
    assert out.splitlines() == [f"start {expected}", f"after {expected} []"]


# A worker thread allocates, touches and frees 96 MiB five times, as XLA's
# runtime does with a step's temporary buffer; the page faults it costs.
_FAULTS = """
import ctypes, resource, threading
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
size = 96 << 20
def work():
    for _ in range(5):
        p = libc.malloc(size)
        ctypes.memset(p, 1, size)
        libc.free(p)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
t = threading.Thread(target=work); t.start(); t.join()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _thp_available() -> bool:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return "[never]" not in f.read()
    except OSError:
        return False


@pytest.mark.skipif(not (sys.platform.startswith("linux") and _thp_available()),
                    reason="needs Linux with transparent huge pages (madvise or always)")
def test_the_tunables_cut_the_page_faults_of_large_buffers_freed_and_reallocated():
    plain = int(_python(_FAULTS, _env()))
    tuned = int(_python(_FAULTS, _env(**{cpu_process.TUNABLES_ENV: cpu_process.tunables()})))
    # Plain glibc maps each 96 MiB block afresh: 5 x 24,576 pages of 4 KiB fault in.
    assert plain > 5 * 20_000
    assert tuned < plain / 20, (plain, tuned)


class _Exec(Exception):
    pass


@pytest.mark.parametrize("entry", ["launch.py", "fluxseg command"])
def test_the_entry_points_reexecute_before_running(monkeypatch, entry):
    monkeypatch.delenv(cpu_process.TUNABLES_ENV, raising=False)
    monkeypatch.setenv(cpu_process.FAST_FORMS_ENV, "on")
    calls = []

    def fake_execve(path, argv, env):
        calls.append((path, list(argv), env.get(cpu_process.TUNABLES_ENV)))
        raise _Exec

    monkeypatch.setattr(os, "execve", fake_execve)
    monkeypatch.setattr(sys, "argv", ["x", "models"])
    with pytest.raises(_Exec):
        if entry == "launch.py":
            import runpy
            runpy.run_path(os.path.join(REPO, "launch.py"), run_name="__main__")
        else:
            from fluxseg import cli
            cli.main()
    assert calls == [(sys.executable, list(sys.orig_argv), cpu_process.tunables())]
