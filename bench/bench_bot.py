"""Start one paper bot as a subprocess; print time to READY=1, steady RSS and idle CPU. Asserts nothing.

Usage: python bench/bench_bot.py [CONFIG.json]   (default: config/bp_sol_01.json, 1 s price interval)
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "config" / "bp_sol_01.json"
    tmp = Path(tempfile.mkdtemp(prefix="gridbot-bench-"))
    try:
        (tmp / "cfg").mkdir()
        shutil.copy(src, tmp / "cfg" / "bench.json")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(tmp / "notify"))
        sock.settimeout(10)
        env = dict(os.environ, GRIDBOT_CONFIG_DIR=str(tmp / "cfg"), STATE_DIRECTORY=str(tmp / "state"),
                   NOTIFY_SOCKET=str(tmp / "notify"), WATCHDOG_USEC="30000000")
        t0 = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "gridbot.runner", "bench"], cwd=ROOT, env=env,
                                stderr=open(tmp / "stderr.log", "wb"))
        while True:
            msg = sock.recv(65536).decode()
            if "READY=1" in msg:
                break
        ready = time.monotonic() - t0
        print(f"config: {src.name}")
        print(f"time to READY=1:     {ready * 1000:8.0f} ms  (process start, imports, state, reconcile, grid)")
        time.sleep(5)
        rss = rss_kb(proc.pid)
        c0, w0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(5)
        cpu = (cpu_seconds(proc.pid) - c0) / (time.monotonic() - w0) * 100
        print(f"steady RSS (VmRSS):  {rss / 1024:8.1f} MB  (after ~5 s)")
        print(f"CPU over 5 s:        {cpu:8.2f} %  of one core (clock tick {1000 / TICK:.0f} ms)")
        proc.send_signal(signal.SIGTERM)
        t1 = time.monotonic()
        rc = proc.wait(30)
        print(f"SIGTERM to exit:     {(time.monotonic() - t1) * 1000:8.0f} ms  (exit code {rc})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
