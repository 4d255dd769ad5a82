"""gridbot/figures.py: the published figures, the STATUS= line, the equity history and the writer."""
import json
from decimal import Decimal as D

from gridbot import figures as fg
from gridbot import strategy as st
from gridbot.grid import price_lines, tick_levels


def params(lower=D(90), upper=D(110), levels=4, qty=D(1)) -> st.Params:
    lv = tick_levels(price_lines(lower, upper, levels, False), D("0.01"))
    return st.Params(lv.buy, lv.sell, qty, D("0.01"), D("0.01"), "SOL", "USDC")


def running_with_a_pair():
    """Lines 90 95 100 105 110, base 5 held: buy at 95 fills, its sell at 100 fills: one pair."""
    s = st.init(params(), D(5))
    s, out = st.step(s, st.Tick(D(100)))
    buy95 = next(p for p in out if isinstance(p, st.Place) and p.price == D(95))
    s, _ = st.step(s, st.Tick(D(95)))
    s, out = st.step(s, st.Filled(buy95.client_id, D(1), D(95), D("0.001"), "SOL", "t1"))
    sell100 = next(p for p in out if isinstance(p, st.Place) and p.price == D(100))
    s, _ = st.step(s, st.Tick(D(100)))
    s, _ = st.step(s, st.Filled(sell100.client_id, sell100.qty, D(100), D("0.099"), "USDC", "t2"))
    return s


def test_figures_equal_the_strategy_books():
    s = running_with_a_pair()
    f = fg.compute("a", "paper", s, D("97.5"), 1000.0, [{"side": "sell"}])
    total, unpaired = s.pnl(D("97.5"))
    assert D(f["total_pnl"]) == total and D(f["unrealised_pnl"]) == unpaired
    assert D(f["realised_profit"]) == s.realised and s.realised > 0
    assert D(f["realised_profit"]) + D(f["unrealised_pnl"]) == D(f["total_pnl"])
    assert (f["fills"], f["pairs"], f["orders_open"]) == (2, 1, len(s.by_cid))
    assert f["orders_buy"] + f["orders_sell"] == f["orders_open"]
    assert f["levels"] == 4 and f["levels_missing"] == 4 - len(s.by_cid)
    assert D(f["fees_in_quote"]) == s.fees_quote + s.fees_base * D("97.5")
    assert D(f["base_held"]) == s.inventory
    assert (f["lower"], f["upper"], f["symbol"], f["mode"]) == ("90.00", "110.00", "SOL_USDC", "paper")
    assert [o[1] for o in f["orders"]] == sorted((o[1] for o in f["orders"]), key=D)
    assert f["recent_fills"] == [{"side": "sell"}] and f["time"] == 1000.0
    json.dumps(f)  # every value is JSON as it stands (money as decimal strings)
    assert fg.compute("a", "backpack", s, None, 1.0)["mode"] == "live"
    assert fg.compute("a", "backpack", s, None, 1.0)["total_pnl"] is None


def test_status_line_labels_every_figure():
    s = running_with_a_pair()
    line = fg.status_line(s, D("97.5"))
    total = s.quote_delta + s.base_delta * D("97.5")
    assert line == (f"SOL 97.5 | {len(s.by_cid)}/4 orders | grid {s.realised:+.2f} USDC (1 pairs) | "
                    f"pnl {total:+.2f} USDC | running")
    assert fg.status_line(None, None) == "starting"
    assert "pnl" not in fg.status_line(st.init(params(), D(5)), None)


def test_money_keeps_cents_of_a_young_grid():
    assert fg._money(D("12.404")) == "+12.40" and fg._money(D("-3.1")) == "-3.10"
    assert fg._money(D("0.0042")) == "+0.0042"


def test_downsample_widens_buckets_with_age_and_drops_the_oldest():
    now = 100 * 86400.0
    pts = [[now - a, "1", "0", "0"] for a in range(95 * 86400, -1, -60)]  # one a minute for 95 days
    out = fg.downsample(pts, now)
    assert out == sorted(out) and out[-1] == pts[-1]  # newest kept
    ages = [now - p[0] for p in out]
    assert max(ages) <= fg.HISTORY_MAX_AGE_S
    assert sum(1 for a in ages if a <= 2 * 3600) >= 120  # last two hours at a point a minute
    assert sum(1 for a in ages if 2 * 86400 < a) <= (fg.HISTORY_MAX_AGE_S // (4 * 3600)) + 2
    assert len(out) < 1000  # bounded: 95 days of minutes (136 800) -> a few hundred
    assert fg.downsample(out, now) == out  # stable


class Clock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t


def test_publisher_writes_atomically_only_when_due_and_changed(tmp_path):
    s = running_with_a_pair()
    clock, saved = Clock(), []
    pub = fg.Publisher("a", "paper", tmp_path, lambda: None, saved.append, lambda n: [], clock)
    assert pub.tick(s, D(100)) is True
    f = tmp_path / "a.json"
    assert oct(f.stat().st_mode & 0o777) == "0o644" and json.loads(f.read_text())["price"] == "100"
    clock.t += 0.5
    assert pub.tick(s, D(101)) is False  # not due yet
    clock.t += 2
    assert pub.tick(s, D(100)) is False  # due, nothing changed: no write
    assert pub.tick(s, D(102), force=True) is True
    assert json.loads(f.read_text())["price"] == "102"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no tmp left behind
    # history: a point at the first tick, the next a minute later, saved to the store each time
    hist = json.loads((tmp_path / "a.history.json").read_text())
    assert len(hist["points"]) == 1 and len(saved) == 1
    clock.t += 61
    pub.tick(s, D(103))
    assert len(json.loads((tmp_path / "a.history.json").read_text())["points"]) == 2 and len(saved) == 2


def test_publisher_history_survives_a_restart(tmp_path):
    s = running_with_a_pair()
    clock, store = Clock(), {}
    pub = fg.Publisher("a", "paper", tmp_path, lambda: store.get("h"), lambda h: store.__setitem__("h", h),
                       clock=clock)
    for i in range(3):
        pub.tick(s, D(100 + i), force=True)
        clock.t += 60
    again = fg.Publisher("a", "paper", tmp_path, lambda: store.get("h"), lambda h: store.__setitem__("h", h),
                         clock=clock)
    again.tick(s, D(99), force=True)
    pts = json.loads((tmp_path / "a.history.json").read_text())["points"]
    assert [p[1] for p in pts] == ["100", "101", "102", "99"]


def test_publisher_without_a_directory_warns_once_and_keeps_going(tmp_path):
    warnings = []
    missing = tmp_path / "file"
    missing.write_text("")  # a file where the directory should be
    pub = fg.Publisher("a", "paper", missing / "figures", log=warnings.append, clock=Clock())
    assert pub.tick(running_with_a_pair(), D(100)) is False
    assert pub.tick(running_with_a_pair(), D(101), force=True) is False
    assert len(warnings) == 1 and "figures not published" in warnings[0]


def test_read_all_skips_history_tmp_and_broken_files(tmp_path):
    fg.write_atomic(tmp_path / "a.json", {"name": "a"})
    fg.write_atomic(tmp_path / "a.history.json", {"points": []})
    (tmp_path / "b.json").write_text("{broken")
    (tmp_path / ".c.json.tmp").write_text("{}")
    assert fg.read_all(tmp_path) == {"a": {"name": "a"}}
    assert fg.read_all(tmp_path, ["a", "zz"]) == {"a": {"name": "a"}}
    assert fg.read_all(tmp_path / "nope") == {}
    assert fg.read(tmp_path, "a", history=True) == {"points": []}


def test_figures_dir_system_user_and_override(monkeypatch):
    monkeypatch.delenv("GRIDBOT_FIGURES_DIR", raising=False)
    assert str(fg.figures_dir(False)) == "/run/gridbot/figures"
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert str(fg.figures_dir(True)) == "/run/user/1000/gridbot/figures"
    monkeypatch.setenv("GRIDBOT_FIGURES_DIR", "/x")
    assert str(fg.figures_dir(True)) == "/x"
