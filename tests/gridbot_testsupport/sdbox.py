"""A throw-away real systemd: the host's /usr booted in systemd-nspawn (see shared/systemd-container.md).

Used by the e2e tests, ``make demo`` and the benchmarks. Nothing on the host changes: the
container's / is a tmpfs, /etc and /opt are throw-away, /usr/local is an overlay. Only processes
this module started are ever signalled.
"""
from __future__ import annotations

import atexit
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence, Union

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache"
WHEELS = CACHE / "wheels"
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8", "COLUMNS": "200",
       "HOME": "/root", "TERM": "dumb"}


class BootError(RuntimeError):
    pass


def build_wheels() -> Path:
    """A wheel directory of this run's own: gridbot built fresh, its dependencies hard-linked from
    the cache (see scripts/setup.sh), so concurrent runs never see each other's half-built wheel."""
    WHEELS.mkdir(parents=True, exist_ok=True)
    run_dir = CACHE / f"wheels-run-{os.getpid()}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir()
    for whl in WHEELS.glob("*.whl"):
        if not whl.name.startswith("gridbot-"):
            os.link(whl, run_dir / whl.name)
    py = ROOT / ".venv" / "bin" / "python"
    with tempfile.TemporaryDirectory() as tmp:  # build from a copy: the checkout may be read-only
        src = Path(tmp) / "src"
        shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".cache", ".git", "build", "*.egg-info",
                                                                  "__pycache__", ".hypothesis", ".pytest_cache"))
        subprocess.run([str(py), "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(run_dir),
                        str(src)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    atexit.register(shutil.rmtree, run_dir, True)
    return run_dir


class Box:
    """One booted container. ``run()`` executes inside it as root (or ``user``)."""

    _count = 0

    def __init__(self, binds: Sequence[tuple[str, str]] = (), ro_binds: Sequence[tuple[str, str]] = (),
                 name: Optional[str] = None, accounting: bool = True) -> None:
        Box._count += 1
        self.name = name or f"gb{os.getpid()}n{Box._count}"
        self.binds = list(binds)
        self.ro_binds = list(ro_binds)
        self.accounting = accounting
        self.proc: Optional[subprocess.Popen] = None
        self.leader = 0
        self.log = CACHE / f"{self.name}.nspawn.log"

    # -- lifecycle ------------------------------------------------------------------------------
    def boot(self, timeout: float = 60) -> "Box":
        if not shutil.which("systemd-nspawn"):
            raise BootError("systemd-nspawn not found: apt-get install systemd-container")
        CACHE.mkdir(exist_ok=True)
        cmd = ["systemd-nspawn", "--directory=/", "--volatile=yes", "--register=no", "--keep-unit",
               "-M", self.name, f"--bind-ro={ROOT}", "--overlay=/usr/local::/usr/local",
               "--bind-ro=/etc/alternatives", "--bind-ro=/etc/pam.d", "--bind-ro=/etc/security"]
        pyhome = Path(sys.base_prefix)
        if not str(pyhome).startswith("/usr"):
            cmd.append(f"--bind-ro={pyhome}")
        cmd += [f"--bind={src}:{dst}" for src, dst in self.binds]
        cmd += [f"--bind-ro={src}:{dst}" for src, dst in self.ro_binds]
        cmd += ["-b", "systemd.firstboot=off"]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self.leader:
            if self.proc.poll() is not None:
                raise BootError(f"systemd-nspawn exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                self.kill()
                raise BootError("container did not start (no systemd child)")
            out = subprocess.run(["ps", "-o", "pid=,comm=", "--ppid", str(self.proc.pid)],
                                 capture_output=True, text=True).stdout
            for line in out.splitlines():
                pid, _, comm = line.strip().partition(" ")
                if comm.strip() == "systemd":
                    self.leader = int(pid)
            time.sleep(0.05)
        state = ""
        while time.monotonic() < deadline:
            state = self.run(["systemctl", "is-system-running"], timeout=10).stdout.strip()
            if state in ("running", "degraded"):
                break
            time.sleep(0.1)
        else:
            self.kill()
            raise BootError(f"container did not finish booting (state {state!r})")
        if self.accounting:
            self.enable_accounting()
        return self

    def enable_accounting(self) -> None:
        """cgroup v1 hosts: nspawn mounts the controllers read-only, so systemd has no memory, tasks
        or CPU figures (CPUUsageNSec "[not set]", shown as n/a). Make memory, pids, cpu and cpuacct
        writable. systemd (v1) creates a unit's CPU cgroup only under /sys/fs/cgroup/cpu and reads
        cpuacct.usage under /sys/fs/cgroup/cpuacct, assuming the usual co-mounted "cpu,cpuacct"
        hierarchy; where the kernel has them as two hierarchies (this host), put cpuacct's in both
        places so the cgroup it creates is the one it reads. Units started after this have real CPU."""
        script = ("for c in memory pids cpu cpuacct; do mountpoint -q /sys/fs/cgroup/$c && "
                  "mount -o remount,bind,rw /sys/fs/cgroup/$c; done; "
                  "if grep -q ' /sys/fs/cgroup/cpuacct cgroup ' /proc/mounts && "
                  "grep -q ' /sys/fs/cgroup/cpu cgroup ' /proc/mounts && "
                  "! grep -q ' /sys/fs/cgroup/cpu cgroup [^ ]*cpuacct' /proc/mounts; then "
                  "mount --bind /sys/fs/cgroup/cpuacct /sys/fs/cgroup/cpu; fi; systemctl daemon-reexec")
        self.sh(script, timeout=30)

    def poweroff(self, timeout: float = 30) -> None:
        if not self.proc or self.proc.poll() is not None:
            return
        self.run(["systemctl", "poweroff", "--no-block"], timeout=10)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return
        self.log.unlink(missing_ok=True)  # kept only when something went wrong

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # nspawn powers the container off
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self) -> "Box":
        return self.boot()

    def __exit__(self, *exc: object) -> None:
        self.poweroff()

    # -- commands -------------------------------------------------------------------------------
    def run(self, cmd: Union[Sequence[str], str], user: Optional[str] = None, timeout: float = 120,
            input: Optional[str] = None, check: bool = False, env: Optional[dict] = None) -> subprocess.CompletedProcess:
        argv = ["bash", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        if user:  # setpriv wants numeric ids for the group
            argv = ["bash", "-c", 'exec setpriv --reuid="$(id -u "$0")" --regid="$(id -g "$0")" --init-groups -- "$@"',
                    user] + argv
        full = ["nsenter", "-t", str(self.leader), "-a", "env", "-i"] + [f"{k}={v}" for k, v in {**ENV, **(env or {})}.items()] + argv
        res = subprocess.run(full, capture_output=True, text=True, timeout=timeout, input=input,
                             stdin=None if input is not None else subprocess.DEVNULL)
        if check and res.returncode != 0:
            raise AssertionError(f"{shlex.join(argv)} -> {res.returncode}\n{res.stdout}\n{res.stderr}")
        return res

    def sh(self, script: str, **kw) -> subprocess.CompletedProcess:
        return self.run(["bash", "-c", script], **kw)

    def gridbot(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run(["/usr/local/bin/gridbot", *args], **kw)

    def install(self, wheels: Path) -> None:
        self.run([str(ROOT / "packaging" / "install.sh"), "--wheels", str(wheels)], check=True, timeout=300)

    def put(self, path: str, text: str, mode: str = "0644") -> None:
        self.run(["bash", "-c", f"mkdir -p \"$(dirname {shlex.quote(path)})\" && cat > {shlex.quote(path)} && chmod {mode} {shlex.quote(path)}"],
                 input=text, check=True)

    def show(self, unit: str, *props: str) -> dict[str, str]:
        out = self.run(["systemctl", "show", unit, *[f"-p{p}" for p in props]], check=True).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


if __name__ == "__main__":  # a quick manual check: boot, print state, power off
    with Box() as b:
        print(b.run(["systemctl", "is-system-running"]).stdout.strip(), b.run(["systemctl", "--version"]).stdout.splitlines()[0])
