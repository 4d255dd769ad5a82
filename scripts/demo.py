"""`make demo`: a throw-away systemd container running two paper bots from config/.

    up     boot, install gridbot with packaging/install.sh, start the example configs, show
           `gridbot list` and their logs; the container keeps running
    shell  a root shell inside it
    down   power it off (nothing on the host changed)
"""
from __future__ import annotations

import json
import os
import sys
import time

from gridbot_testsupport import sdbox

STATE = sdbox.CACHE / "demo.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def _box() -> sdbox.Box:
    if not STATE.exists():
        sys.exit("no demo container: run `make demo` first")
    st = json.loads(STATE.read_text())
    if not _alive(st["nspawn"]):
        STATE.unlink()
        sys.exit("the demo container is gone: run `make demo` again")
    box = sdbox.Box(name=st["name"])
    box.leader = st["leader"]
    return box


def up() -> None:
    if STATE.exists() and _alive(json.loads(STATE.read_text())["nspawn"]):
        print("a demo container is already running: `make demo-shell` or `make demo-stop`")
        return
    print("== building the gridbot wheel", flush=True)
    wheels = sdbox.build_wheels()
    print("== booting a throw-away systemd container", flush=True)
    box = sdbox.Box(name="gridbot-demo").boot()
    STATE.write_text(json.dumps({"nspawn": box.proc.pid, "leader": box.leader, "name": box.name}))
    print("== sudo ./packaging/install.sh (inside)", flush=True)
    box.install(wheels)
    examples = sorted((sdbox.ROOT / "config").glob("*.json"))[:2]
    for cfg in examples:
        print(f"$ gridbot start -c config/{cfg.name}")
        r = box.gridbot("start", "-c", str(cfg))
        print(r.stdout + r.stderr, end="")
    time.sleep(3)  # let the bots trade a little
    for cmd in (["list"], ["stats"], ["logs", "-n", "8"]):
        print(f"\n$ gridbot {' '.join(cmd)}")
        r = box.gridbot(*cmd)
        print(r.stdout + r.stderr, end="")
    print(f"""
The container keeps running. Next:
  make demo-shell          # a root shell inside: try `gridbot list`, `gridbot status {examples[0].stem}`,
                           #   `gridbot logs -f`, `systemctl status gridbot@{examples[0].stem}`
  make demo-stop           # power it off (nothing on the host was changed)""")


def shell() -> None:
    box = _box()
    env = [f"{k}={v}" for k, v in sdbox.ENV.items() if k != "COLUMNS"] + [f"TERM={os.environ.get('TERM', 'xterm')}"]
    os.execvp("nsenter", ["nsenter", "-t", str(box.leader), "-a", "env", "-i", *env, "bash", "-l"])


def down() -> None:
    if not STATE.exists():
        print("no demo container running")
        return
    st = json.loads(STATE.read_text())
    if _alive(st["nspawn"]):
        box = _box()
        box.run(["systemctl", "poweroff", "--no-block"], timeout=10)
        for _ in range(150):
            if not _alive(st["nspawn"]):
                break
            time.sleep(0.1)
        else:
            os.kill(st["nspawn"], 15)
    STATE.unlink()
    print("demo container powered off")


if __name__ == "__main__":
    {"up": up, "shell": shell, "down": down}[sys.argv[1] if len(sys.argv) > 1 else "up"]()
