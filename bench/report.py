"""Turn the benchmark results JSON into bench/RESULTS.md and PNG charts.

bench/run.py measures and writes bench/results.json; this module only renders.
Keeping the two apart means the report can be regenerated (e.g. after a
layout tweak) without rerunning the (slow) benchmark.

Usage:
    python bench/report.py [RESULTS_JSON [OUT_DIR]]

RESULTS_JSON defaults to bench/results.json and OUT_DIR to the folder that
holds RESULTS_JSON. From code: ``write_report(results, Path("bench"))``.
"""

import argparse
import json
import math
import re
import sys
from pathlib import Path

import matplotlib

# Render to files only: there is no display on the bench machine or in CI.
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (must follow matplotlib.use)
from matplotlib.ticker import NullLocator  # noqa: E402

# The server whose runs the per-scale charts follow: one server keeps the
# lines few enough to read, and it is the configuration we actually deploy.
MAIN_SERVER = "myapp-uwsgi"
DASH = "—"
FIGSIZE = (8, 4.5)
DPI = 100


# --- formatting -------------------------------------------------------------


def fmt_scale(scale):
    """1000 -> "1k", 100000 -> "100k", 1000000 -> "1M", None -> "—"."""
    if scale is None:
        return DASH
    if scale >= 1_000_000 and scale % 1_000_000 == 0:
        return f"{scale // 1_000_000}M"
    if scale >= 1000 and scale % 1000 == 0:
        return f"{scale // 1000}k"
    return str(scale)


def fmt_rps(value):
    return DASH if value is None else f"{value:,.0f}"


def fmt_ms(value):
    """Two decimals, but keep 3 significant digits for sub-0.1 ms values."""
    if value is None:
        return DASH
    return f"{value:.3g}" if abs(value) < 0.1 else f"{value:.2f}"


def fmt_value(value):
    """Generic cell formatting for the free-form tables (data, machine...)."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def fmt_duration(seconds):
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds:02d} s"


def md(text):
    """Escape free text for Markdown.

    Labels such as "GET /books/<id>" would otherwise be swallowed as HTML
    tags, and a "|" would split a table cell. A "<" that cannot start a tag
    (as in "<= 50 ms") is left alone so the raw file stays readable.
    """
    text = str(text).replace("\n", " ").replace("|", "\\|")
    return re.sub(r"<(?=[A-Za-z/!?])", r"\\<", text)


def table(headers, rows):
    """Return a Markdown table as a list of lines."""
    lines = ["| " + " | ".join(headers) + " |"]
    lines.append("|" + "|".join("---" for _ in headers) + "|")
    for row in rows:
        lines.append("| " + " | ".join(str(cell) for cell in row) + " |")
    return lines


def key_value_table(mapping, key_header, value_header):
    rows = [(md(key), md(fmt_value(value))) for key, value in mapping.items()]
    return table([key_header, value_header], rows)


# --- run selection ----------------------------------------------------------


def server_rank(results):
    """Sort key for server ids: the order of results["servers"], unknowns last."""
    order = {server: i for i, server in enumerate(results["servers"])}
    return lambda server: (order.get(server, len(order)), server)


def run_sort_key(results):
    rank = server_rank(results)
    # Scale-independent runs (scale null) come first, then ascending scale.
    return lambda run: (
        run["scale"] is not None,
        run["scale"] or 0,
        rank(run["server"]),
    )


def scenario_label(results, scenario):
    return results["scenarios"].get(scenario, {}).get("label", scenario)


def runs_of(results, scenario):
    return [run for run in results["runs"] if run["scenario"] == scenario]


def scaling_series(results):
    """Main-server runs of each scenario measured at >= 2 scales.

    Returns {scenario: [runs sorted by scale]} in scenario display order.
    """
    series = {}
    for scenario in results["scenarios"]:
        runs = [
            run
            for run in runs_of(results, scenario)
            if run["server"] == MAIN_SERVER and run["scale"] is not None
        ]
        if len({run["scale"] for run in runs}) >= 2:
            series[scenario] = sorted(runs, key=lambda run: run["scale"])
    return series


def largest_scale(results):
    scales = results["scales"] or [
        run["scale"] for run in results["runs"] if run["scale"] is not None
    ]
    return max(scales, default=None)


def overview_runs(results):
    """Runs for the all-scenarios chart: one or more bars per scenario.

    Takes runs at the largest scale or with no scale; per scenario the main
    server's run, or every server's run if the main server did not run it
    (e.g. a baseline-only scenario).
    """
    top = largest_scale(results)
    picked = []
    for scenario in results["scenarios"]:
        runs = [
            run
            for run in runs_of(results, scenario)
            if run["scale"] is None or run["scale"] == top
        ]
        main = [run for run in runs if run["server"] == MAIN_SERVER]
        picked.extend(sorted(main or runs, key=run_sort_key(results)))
    return picked


# --- charts -----------------------------------------------------------------


def save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def label_scale_axis(ax, series):
    """Log x axis with ticks only at the scales `series` measured, labelled 1k/1M."""
    scales = sorted({run["scale"] for runs in series.values() for run in runs})
    ax.set_xscale("log")
    ax.set_xticks(scales, [fmt_scale(scale) for scale in scales])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("rows in the database (scale)")


def chart_throughput_book(results, path):
    runs = runs_of(results, "book")
    if not runs:
        return None
    servers = sorted({run["server"] for run in runs}, key=server_rank(results))
    scales = sorted({run["scale"] for run in runs}, key=lambda s: (s is not None, s))
    rps = {(run["server"], run["scale"]): run["rps"] for run in runs}
    width = 0.8 / len(servers)

    fig, ax = plt.subplots(figsize=FIGSIZE)
    for i, server in enumerate(servers):
        xs = [g + (i - (len(servers) - 1) / 2) * width for g in range(len(scales))]
        heights = [rps.get((server, scale)) or 0 for scale in scales]
        ax.bar(xs, heights, width, label=server)
    # Headroom above the tallest bar so the legend does not cover any bars.
    ax.set_ylim(top=max(run["rps"] for run in runs) * 1.3)
    ax.set_xticks(range(len(scales)), [fmt_scale(scale) for scale in scales])
    ax.set_xlabel("rows in the database (scale)")
    ax.set_ylabel("requests per second")
    title = f"Throughput of {scenario_label(results, 'book')} by server"
    ax.set_title(title)
    ax.legend(fontsize="small", ncols=3, loc="upper center")
    ax.grid(axis="y", alpha=0.3)
    save(fig, path)
    return title


def plot_series(ax, results, series, key):
    """One line per scenario: `key` of its runs against their scale."""
    for scenario, runs in series.items():
        ax.plot(
            [run["scale"] for run in runs],
            [run[key] for run in runs],
            marker="o",
            label=scenario_label(results, scenario),
        )


def chart_latency_vs_scale(results, path):
    series = scaling_series(results)
    if not series:
        return None

    fig, axes = plt.subplots(1, 2, figsize=FIGSIZE, sharey=True)
    for ax, key, name in zip(axes, ("p50_ms", "p99_ms"), ("p50", "p99")):
        plot_series(ax, results, series, key)
        label_scale_axis(ax, series)
        ax.set_yscale("log")
        ax.set_title(f"{name} latency")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("milliseconds (log)")
    axes[1].legend(fontsize="small")
    title = f"Latency vs scale ({MAIN_SERVER})"
    fig.suptitle(title)
    save(fig, path)
    return title


def chart_throughput_vs_scale(results, path):
    series = scaling_series(results)
    if not series:
        return None

    fig, ax = plt.subplots(figsize=FIGSIZE)
    plot_series(ax, results, series, "rps")
    label_scale_axis(ax, series)
    # Log y too: deep pagination and search fall by orders of magnitude, and
    # on a linear axis they would sit flat on zero next to the fast scenarios.
    ax.set_yscale("log")
    ax.set_ylabel("requests per second (log)")
    title = f"Throughput vs scale ({MAIN_SERVER})"
    ax.set_title(title)
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3, which="both")
    save(fig, path)
    return title


def chart_scenarios(results, path):
    runs = overview_runs(results)
    if not runs:
        return None
    labels = [
        f"{scenario_label(results, run['scenario'])} ({run['server']})" for run in runs
    ]
    slowest = min((run["rps"] for run in runs if run["rps"] > 0), default=1)

    fig, ax = plt.subplots(figsize=FIGSIZE)
    bars = ax.barh(range(len(runs)), [run["rps"] for run in runs])
    ax.bar_label(bars, [fmt_rps(run["rps"]) for run in runs], padding=3)
    ax.set_yticks(range(len(runs)), labels)
    ax.invert_yaxis()  # first scenario on top, as in RESULTS.md
    ax.set_xscale("log")
    # Start at a round power of ten below the slowest run so every bar has a
    # visible length; end well past the fastest to leave room for the labels.
    fastest = max(run["rps"] for run in runs)
    ax.set_xlim(10 ** math.floor(math.log10(slowest)), max(fastest, 1) * 4)
    ax.set_xlabel("requests per second (log)")
    top = fmt_scale(largest_scale(results))
    title = f"Throughput per scenario at {top} rows (or scale-independent)"
    # Figure-level title: the long tick labels push the axes right, and an
    # axes title centred over them would be cut off at the right edge.
    fig.suptitle(title)
    ax.grid(axis="x", alpha=0.3)
    save(fig, path)
    return title


CHARTS = [
    ("throughput_book.png", chart_throughput_book),
    ("latency_vs_scale.png", chart_latency_vs_scale),
    ("throughput_vs_scale.png", chart_throughput_vs_scale),
    ("scenarios.png", chart_scenarios),
]


def write_charts(results, charts_dir):
    """Draw every chart; return [(file name, title)] of those not skipped."""
    charts_dir.mkdir(parents=True, exist_ok=True)
    # A chart skipped this time must not linger from an earlier run.
    for stale in charts_dir.glob("*.png"):
        stale.unlink()
    written = []
    for name, draw in CHARTS:
        title = draw(results, charts_dir / name)
        if title:
            written.append((name, title))
    return written


# --- Markdown sections ------------------------------------------------------


def header_section(results, out_dir):
    lines = [
        "# Benchmark results",
        "",
        f"Regenerated by `{results['command']}` on {results['generated_at']} in "
        f"{fmt_duration(results['elapsed_s'])} "
        "(do not edit by hand: edit bench/ and rerun).",
    ]
    if (out_dir / "ANALYSIS.md").exists():
        lines += [
            "",
            "Why the numbers are what they are, and the misses: "
            "[ANALYSIS.md](ANALYSIS.md)",
        ]
    return lines


def targets_section(results):
    rows = [
        (
            md(check["target"]),
            md(check["limit"]),
            md(check["measured"]),
            "✅" if check["met"] else "❌ **missed**",
            md(check["note"] or ""),
        )
        for check in results["checks"]
    ]
    return ["## Targets", ""] + table(
        ["target", "limit", "measured", "met", "note"], rows
    )


def charts_section(charts):
    lines = ["## Charts"]
    for name, title in charts:
        lines += ["", f"![{md(title)}](charts/{name})"]
    return lines


def fmt_ratio(run):
    if run["ratio"] is None:
        return DASH
    text = f"{run['ratio']:.2f}x"
    if run["baseline"]:
        text += f" of {run['baseline']['server']}"
    return text


def scenario_section(results, scenario, info):
    runs = sorted(runs_of(results, scenario), key=run_sort_key(results))
    lines = [f"### {md(info.get('label', scenario))}", ""]
    if info.get("description"):
        lines += [md(info["description"]), ""]
    if not runs:
        return lines + ["No runs."]
    headers = ["server", "scale", "req/s", "p50 ms", "p99 ms", "vs baseline"]
    headers += ["non-2xx", "socket errors"]
    rows = [
        (
            run["server"],
            fmt_scale(run["scale"]),
            fmt_rps(run["rps"]),
            fmt_ms(run["p50_ms"]),
            fmt_ms(run["p99_ms"]),
            fmt_ratio(run),
            fmt_value(run["non_2xx"]),
            fmt_value(run["socket_errors"]),
        )
        for run in runs
    ]
    lines += table(headers, rows)
    extras = [run for run in runs if run.get("extra")]
    if extras:
        lines.append("")
    for run in extras:
        facts = ", ".join(f"{k}={fmt_value(v)}" for k, v in run["extra"].items())
        lines.append(f"- {run['server']}, {fmt_scale(run['scale'])}: {md(facts)}")
    return lines


def results_section(results):
    # The tables name servers by id; say once what each id is.
    lines = ["## Results", ""]
    lines += key_value_table(results["servers"], "server", "what it is")
    for scenario, info in results["scenarios"].items():
        lines += [""] + scenario_section(results, scenario, info)
    return lines


def rss_section(results):
    rows = [
        (
            entry["server"],
            ", ".join(f"{mib:.1f}" for mib in entry["workers_mib"]),
            f"{entry['max_mib']:.1f}",
        )
        for entry in results["rss"]
    ]
    return ["## Worker memory (RSS)", ""] + table(
        ["server", "workers MiB", "max MiB"], rows
    )


def data_table(data):
    # Columns are the union of keys, first-seen order, so new facts that
    # run.py records show up without touching this file.
    columns = list(dict.fromkeys(key for row in data for key in row))
    rows = [
        [fmt_scale(v) if k == "scale" else fmt_value(v) for k, v in row.items()]
        for row in ({k: r.get(k) for k in columns} for r in data)
    ]
    return table([md(column) for column in columns], rows)


def machine_section(results):
    lines = ["## Machine and versions", "", "### Machine", ""]
    lines += key_value_table(results["machine"], "fact", "value")
    lines += ["", "### Versions", ""]
    lines += key_value_table(results["versions"], "component", "version")
    lines += ["", "### Settings", ""]
    lines += key_value_table(results["settings"], "setting", "value")
    if results["data"]:
        lines += ["", "### Data load", ""] + data_table(results["data"])
    return lines


# --- entry points -----------------------------------------------------------


def write_report(results: dict, out_dir: Path) -> None:
    """Write out_dir/RESULTS.md and out_dir/charts/*.png from results."""
    out_dir = Path(out_dir)
    charts = write_charts(results, out_dir / "charts")
    sections = [
        header_section(results, out_dir),
        targets_section(results),
        charts_section(charts) if charts else [],
        results_section(results),
        rss_section(results),
        machine_section(results),
    ]
    text = "\n\n".join("\n".join(lines) for lines in sections if lines) + "\n"
    (out_dir / "RESULTS.md").write_text(text, encoding="utf-8")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "results",
        nargs="?",
        type=Path,
        default=Path(__file__).resolve().parent / "results.json",
        help="results JSON written by bench/run.py (default: bench/results.json)",
    )
    parser.add_argument(
        "out_dir",
        nargs="?",
        type=Path,
        help="where to write RESULTS.md and charts/ (default: the JSON's folder)",
    )
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text(encoding="utf-8"))
    out_dir = args.out_dir or args.results.parent
    write_report(results, out_dir)
    print(f"wrote {out_dir / 'RESULTS.md'}")


if __name__ == "__main__":
    sys.exit(main())
