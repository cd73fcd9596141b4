"""Tables and the latency plot from bench/results/*.json."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from bench import flood, restart


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def one_line(result: dict[str, Any]) -> str:
    if result["scenario"] == "storm":
        return _storm_line(result)
    d = result.get("deliveries", {})
    lat = result.get("latency_ms", {})
    size = result.get("subscribers", "")
    extra = result.get("posters") or result.get("clickers") or ""
    return (
        f"{result['scenario']:<11} {result['target']:<6} n={size} {extra and f'c={extra} '}"
        f"expected={d.get('expected')} received={d.get('received')} lost={d.get('lost')} "
        f"dup={d.get('duplicates')} p50={_ms(lat.get('p50'))} p99={_ms(lat.get('p99'))} ms "
        f"({result.get('wall_seconds')} s)"
    )


def _storm_line(result: dict[str, Any]) -> str:
    parts = []
    for label in ("at_rest", "during_burst"):
        phase = result[label]
        opened = phase["to_stream_open_ms"]
        parts.append(
            f"{label}: {phase['reconnected']['opened']} reopened in {phase['storm_seconds']} s, "
            f"open p50={_ms(opened['p50'])} p99={_ms(opened['p99'])} ms, "
            f"lock waiters max={phase['lock_waits']['max_waiting']}"
        )
    return (
        f"storm       app    n={result['subscribers']} c={result['clickers']} "
        + "; ".join(parts)
        + f"; score {result['final_score']}/{result['expected_score']} "
        f"({result.get('wall_seconds')} s)"
    )


def _load(out: Path, name: str) -> list[dict[str, Any]]:
    path = out / f"{name}.json"
    return json.loads(path.read_text())["results"] if path.exists() else []


def _cpu(result: dict[str, Any], label: str) -> str:
    entry = result.get("processes", {}).get(label)
    return "-" if entry is None else f"{entry['cpu_s']:g} s / {entry['peak_rss_mb']:.0f} MB"


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = [_row(header), _row(["---"] * len(header))]
    lines += [_row(r) for r in rows]
    return "\n".join(lines) + "\n"


def _pair_key(result: dict[str, Any]) -> tuple[int, float, int]:
    return (result["subscribers"], result["rate_per_s"], result.get("repeat", 0))


def fanout_table(results: list[dict[str, Any]]) -> str:
    bare = {_pair_key(r): r["latency_ms"] for r in results if r["target"] == "bare"}
    rows = []
    for r in results:
        lat, d = r["latency_ms"], r["deliveries"]
        base = bare.get(_pair_key(r))
        ratio = (
            f"{lat['p99'] / base['p99']:.2f}x"
            if r["target"] != "bare" and base and base.get("p99") and lat.get("p99")
            else ""
        )
        rows.append(
            [
                r["target"],
                r["subscribers"],
                r["rate_per_s"],
                r.get("repeat", 0) + 1,
                d["expected"],
                d["received"],
                d["lost"],
                d["duplicates"],
                _ms(lat["p50"]),
                _ms(lat["p90"]),
                _ms(lat["p99"]),
                _ms(lat["max"]),
                ratio,
                _cpu(r, "pushpin-handler"),
                _cpu(r, "condure"),
                _cpu(r, "app"),
                "/".join(f"{x:g}" for x in r.get("load_average", [])),
            ]
        )
    return _table(
        [
            "target",
            "subscribers",
            "msg/s",
            "run",
            "expected",
            "received",
            "lost",
            "dup",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "p99 vs bare",
            "handler CPU / RSS",
            "condure CPU / RSS",
            "app CPU / RSS",
            "box load before/after",
        ],
        rows,
    )


def fanout_summary(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per size: the median p50/p99 of each target and the median of the per-run p99 ratios."""
    sizes = sorted({(r["subscribers"], r["rate_per_s"]) for r in results})
    bare = {_pair_key(r): r for r in results if r["target"] == "bare"}
    out = []
    for subscribers, rate in sizes:
        runs = [r for r in results if (r["subscribers"], r["rate_per_s"]) == (subscribers, rate)]
        row: dict[str, Any] = {"subscribers": subscribers, "rate_per_s": rate}
        for target in ("bare", "app", "direct"):
            mine = [r for r in runs if r["target"] == target and r["latency_ms"]["count"]]
            if mine:
                row[target] = {
                    "runs": len(mine),
                    "p50": statistics.median([r["latency_ms"]["p50"] for r in mine]),
                    "p99": statistics.median([r["latency_ms"]["p99"] for r in mine]),
                    "lost": sum(r["deliveries"]["lost"] for r in mine),
                    "duplicates": sum(r["deliveries"]["duplicates"] for r in mine),
                }
        ratios = [
            r["latency_ms"]["p99"] / bare[_pair_key(r)]["latency_ms"]["p99"]
            for r in runs
            if r["target"] == "app" and _pair_key(r) in bare and r["latency_ms"]["count"]
        ]
        if ratios:
            row["p99_ratio_median"] = round(statistics.median(ratios), 2)
            row["p99_ratios"] = [round(x, 2) for x in ratios]
        out.append(row)
    return out


def fanout_summary_table(results: list[dict[str, Any]]) -> str:
    rows = []
    for row in fanout_summary(results):
        bare, app = row.get("bare", {}), row.get("app", {})
        rows.append(
            [
                row["subscribers"],
                row["rate_per_s"],
                bare.get("runs", "-"),
                _ms(bare.get("p50")),
                _ms(bare.get("p99")),
                _ms(app.get("p50")),
                _ms(app.get("p99")),
                f"{row['p99_ratio_median']:.2f}x" if "p99_ratio_median" in row else "-",
                ", ".join(f"{x:.2f}" for x in row.get("p99_ratios", [])),
                f"{bare.get('lost', '-')} / {app.get('lost', '-')}",
                f"{bare.get('duplicates', '-')} / {app.get('duplicates', '-')}",
            ]
        )
    return _table(
        [
            "subscribers",
            "msg/s",
            "runs",
            "bare p50 ms",
            "bare p99 ms",
            "app p50 ms",
            "app p99 ms",
            "app/bare p99 (median)",
            "per-run ratios",
            "lost bare / app",
            "dup bare / app",
        ],
        rows,
    )


def ingest_table(results: list[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        p, d = r["publish"], r["deliveries"]
        rows.append(
            [
                r.get("target", "app"),
                r.get("post_via", "pushpin"),
                r["posters"],
                r["subscribers"],
                p["accepted"],
                p["accepted_per_s"],
                _ms(p["latency_ms"]["p50"]),
                _ms(p["latency_ms"]["p99"]),
                d["expected"],
                d["received"],
                d["lost"],
                d["duplicates"],
                _ms(r["latency_ms"]["p99"]),
                _cpu(r, "app"),
                _cpu(r, "pushpin-handler"),
            ]
        )
    return _table(
        [
            "target",
            "writes via",
            "posters",
            "subscribers",
            "posts",
            "posts/s",
            "POST p50 ms",
            "POST p99 ms",
            "expected",
            "received",
            "lost",
            "dup",
            "delivery p99 ms",
            "app CPU / RSS",
            "handler CPU / RSS",
        ],
        rows,
    )


def leaderboard_table(results: list[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        p = r["publish"]
        rows.append(
            [
                r.get("post_via", "pushpin"),
                r["clickers"],
                r["subscribers"],
                p["accepted"],
                p["accepted_per_s"],
                _ms(p["latency_ms"]["p99"]),
                r["final_score"],
                r["expected_score"],
                r["subscribers_with_final_score"],
                f"{r['score_went_down']} / {r.get('score_went_down_on_page', '-')}",
                f"{r.get('update_ids_repeated', '-')} / {r.get('update_ids_older_than_seen', '-')}",
                r["updates_per_subscriber"],
                _ms(r["latency_ms"]["p50"]),
                _ms(r["latency_ms"]["p99"]),
                _cpu(r, "app"),
            ]
        )
    return _table(
        [
            "clicks via",
            "clickers",
            "subscribers",
            "clicks",
            "clicks/s",
            "POST p99 ms",
            "final score",
            "expected",
            "subs at final",
            "score went down: in the stream / on the page",
            "update ids repeated / older",
            "updates per sub (min/median/max)",
            "click-to-update p50 ms",
            "p99 ms",
            "app CPU / RSS",
        ],
        rows,
    )


def idle_table(results: list[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        d = r["deliveries"]
        rows.append(
            [
                r["subscribers"],
                r["connect_spread_s"],
                r["hold_s"],
                r.get("connect_phase_app_requests", "-"),
                r["app_requests"],
                r["app_recovery_requests"],
                r["app_requests_per_s"],
                r["requests_per_subscriber_per_10_min"],
                _cpu(r, "app"),
                _cpu(r, "pushpin-handler"),
                f"{d['received']}/{d['expected']}",
            ]
        )
    return _table(
        [
            "subscribers",
            "connects spread (s)",
            "held (s)",
            "app requests while connecting",
            "app requests while held",
            "of them recovery",
            "req/s",
            "req per sub per 10 min",
            "app CPU / RSS",
            "handler CPU / RSS",
            "final message delivered",
        ],
        rows,
    )


def storm_table(results: list[dict[str, Any]]) -> str:
    """One row per phase of each run: the storm at rest, then during the burst of clicks."""
    rows = []
    for r in results:
        burst = r["burst"]
        for label, phase in (("at rest", r["at_rest"]), ("during clicks", r["during_burst"])):
            opened, locks = phase["to_stream_open_ms"], phase["lock_waits"]
            update = phase["to_first_update_ms"]
            requests = phase["app_requests"]
            stream, clicks = requests["stream_get"], requests["click"]
            during = label == "during clicks"
            rows.append(
                [
                    r.get("git_commit", "-"),
                    label,
                    r["subscribers"],
                    r["clickers"] if during else 0,
                    "{opened}/{failed}/{retries}".format(**phase["reconnected"]),
                    phase["storm_seconds"],
                    f"{_ms(opened['p50'])} / {_ms(opened['p99'])}",
                    f"{_ms(update['p50'])} / {_ms(update['p99'])} ({update['count']})",
                    f"{stream['answered']} ({_statuses(stream['statuses'])})",
                    phase["pushpin_recovery_requests"],
                    f"{_ms(stream['app_ms']['p50'])} / {_ms(stream['app_ms']['p99'])}",
                    clicks["answered"],
                    _ms(phase["app_cpu_ms_per_request"]),
                    f"{locks['max_waiting']} / {locks['mean_waiting']:g} / "
                    f"{locks['waiting_session_s']:g}",
                    (
                        f"{burst['before_storm']['per_s']} / {burst['during_storm']['per_s']}"
                        if during
                        else "-"
                    ),
                    f"{r['final_score']}/{r['expected_score']}" if during else "-",
                    f"{r['update_ids_repeated']} / {r['update_ids_older_than_seen']}"
                    if during
                    else "-",
                ]
            )
    return _table(
        [
            "code",
            "storm",
            "subscribers",
            "clickers",
            "reopened/failed/retries",
            "storm s",
            "to stream-open p50 / p99 ms",
            "to first update p50 / p99 ms (n)",
            "stream GETs answered (status)",
            "Pushpin recoveries",
            "app ms p50 / p99",
            "clicks answered",
            "app CPU ms/request",
            "lock waiters max / mean / session-s",
            "clicks/s before / during storm",
            "final/expected score",
            "update ids repeated / older",
        ],
        rows,
    )


def cpu_table(results: list[dict[str, Any]]) -> str:
    """CPU per accepted request, the app's and the publisher's apart."""
    rows = []
    for r in results:
        accepted = r["publish"]["accepted"]
        rows.append(
            [
                r.get("git_commit", "-"),
                "click" if r["scenario"] == "leaderboard" else "post",
                accepted,
                r["subscribers"],
                *(
                    f"{r['processes'].get(label, {}).get('cpu_s', 0.0) * 1000 / accepted:.2f}"
                    for label in ("app", "publisher")
                ),
            ]
        )
    return _table(
        ["code", "request", "accepted", "subscribers", "app CPU ms", "publisher CPU ms"], rows
    )


def _statuses(statuses: dict[str, int]) -> str:
    return ", ".join(f"{count}x{status}" for status, count in sorted(statuses.items())) or "-"


def tables(out: Path) -> str:
    parts = []
    for name, title, render in (
        ("fanout", "Fan-out summary (medians over runs)", fanout_summary_table),
        ("fanout", "Fan-out, every run (chat through Pushpin vs bare Pushpin)", fanout_table),
        ("direct", "Direct mode (no proxy)", fanout_table),
        ("overload", "Overload", fanout_table),
        ("proxies", "Fan-out through two Pushpins behind HAProxy against one", fanout_table),
        ("ingest", "Ingest", ingest_table),
        ("leaderboard", "Leaderboard clicks", leaderboard_table),
        ("idle", "Idle cost", idle_table),
        ("storm", "Reconnect storm", storm_table),
        ("flood", "Flood", flood.table),
        ("restart", "Pushpin restart under a busy room", restart.table),
        ("cpu", "CPU per request", cpu_table),
    ):
        results = _load(out, name)
        if results:
            parts.append(f"### {title}\n\n{render(results)}")
    return "\n".join(parts)


def plot(source: Path, destination: Path) -> None:
    """p50 and p99 latency against subscribers, app against bare Pushpin (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = fanout_summary(json.loads(source.read_text())["results"])
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    styles = {"bare": ("tab:gray", "bare Pushpin"), "app": ("tab:blue", "chat app via Pushpin")}
    for target, (color, label) in styles.items():
        points = [
            (row["subscribers"], row[target], row["rate_per_s"]) for row in summary if target in row
        ]
        if not points:
            continue
        xs = [p[0] for p in points]
        ax.plot(xs, [p[1]["p99"] for p in points], "o-", color=color, label=f"{label}, p99")
        ax.plot(xs, [p[1]["p50"] for p in points], "s--", color=color, label=f"{label}, p50")
        for x, lat, rate in points:
            ax.annotate(f"{rate:g}/s", (x, lat["p99"]), textcoords="offset points", xytext=(4, 4))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("subscribers (one channel)")
    ax.set_ylabel("publish-to-receive latency (ms)")
    ax.set_title("Fan-out latency: chat app vs bare Pushpin, same box, same pushpin.conf")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(destination)
    plt.close(fig)
