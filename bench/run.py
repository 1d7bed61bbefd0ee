#!/usr/bin/env python3
"""Hearth's benchmarks: one command, each figure with a baseline measured in the same run.

    .venv/bin/python bench/run.py [--quick] [--only statement,start,...]

Runs after `scripts/setup.sh build` (it uses build/bin/hearth-server, the agent jar and the
.venv). Starts what it needs itself: redis-server, hearth-server, real Spark drivers (and, for
the capacity benchmark only, fake drivers that run no Spark). Writes into bench/results/:
  <date>-<cores>core[-<only>][-quick].json   every figure, the raw samples and the machine;
  <date>-<cores>core[-<only>][-quick].md     the same as tables, with the goals;
  latest.json   one flat key per figure, for comparing runs; with --only, the figures of the
                other benchmarks stay from earlier runs ("runs" names each one's file).
See bench/README.md for what each benchmark measures and how to read it. Not a test: nothing
here asserts a time.
"""
import argparse
import importlib
import json
import os
import sys
import time
import traceback

import benchlib

BENCHMARKS = ("statement", "start", "concurrency", "capacity", "recovery")

# (figure, comparison, goal, unit): the goals of the benchmark issue, reported, never asserted.
GOALS = (
    ("statement_zmq_overhead_p50_ms", "<=", 1.0, "ms over the floor, p50, ZeroMQ"),
    ("statement_rest_longpoll_overhead_p50_ms", "<=", 2.0, "ms over the floor, p50, REST long-poll"),
    ("start_cold_ratio", "<=", 1.1, "x a bare Spark start (cold)"),
    ("start_pool_ms", "<=", 100.0, "ms from the warm pool"),
    ("start_attach_ms", "<=", 50.0, "ms attaching to a running driver"),
    ("concurrency_of_ideal", ">=", 0.9, "of the ideal speed-up"),
    ("statements_per_s", ">=", 5000.0, "statements/s at p99 < 10 ms"),
    ("server_rss_mb_1000_sessions", "<=", 50.0, "MB RSS at 1,000 sessions"),
    ("recovery_s", "<=", 2.0, "s from SIGKILL + restart to all sessions usable"),
)


def fmt_number(value):
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def goal_rows(figures):
    rows = []
    for key, op, goal, what in GOALS:
        value = figures.get(key)
        if value is None:
            met = "not measured"
        else:
            met = "met" if (value <= goal if op == "<=" else value >= goal) else "missed"
        rows.append((key, fmt_number(value), f"{op} {goal:g} {what}", met))
    return rows


def markdown(machine, reports, figures, quick, seconds):
    lines = [f"# Hearth benchmarks, {machine['date']}{' (quick)' if quick else ''}", ""]
    lines.append(f"Machine: {machine['cores']} cores, {machine['cpu']}, {machine['memory_gib']} GiB, "
                 f"{machine['os']}; Python {machine['python']}, pyspark {machine['pyspark']}, "
                 f"{machine['java']}, {machine['redis']}; hearth {machine['hearth_commit']}. "
                 f"Run took {seconds / 60:.1f} min.")
    lines.append("")
    for report in reports:
        lines += [f"## {report.title}", ""]
        if report.rows:
            lines += ["| measure | value | baseline (same run) | ratio |", "| --- | --- | --- | --- |"]
            for row in report.rows:
                lines.append(f"| {row.measure} | {row.value} | {row.baseline} | "
                             f"{'' if row.ratio is None else f'{row.ratio:.3g}'} |")
            lines.append("")
        for note in report.notes:
            lines.append(f"- {note}")
        if report.notes:
            lines.append("")
    lines += ["## Against the goals", "", "| figure | value | goal | |", "| --- | --- | --- | --- |"]
    for key, value, goal, met in goal_rows(figures):
        lines.append(f"| `{key}` | {value} | {goal} | {met} |")
    lines.append("")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions: a few minutes in all")
    parser.add_argument("--only", default=",".join(BENCHMARKS),
                        help="comma-separated subset of " + ", ".join(BENCHMARKS))
    parser.add_argument("--out", default=os.path.join(benchlib.HERE, "results"))
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        parser.error("unknown benchmark(s): " + ", ".join(unknown))
    if not os.access(os.environ["HEARTH_SERVER"], os.X_OK):
        parser.error(f"{os.environ['HEARTH_SERVER']} is missing: run `scripts/setup.sh build` first")

    started = time.monotonic()
    machine = benchlib.machine()
    reports, failures = [], {}
    for name in chosen:
        benchlib.log(f"{name}: running{' (quick)' if args.quick else ''}")
        t0 = time.monotonic()
        try:
            report = importlib.import_module(name).run(args.quick)
        except Exception:  # one broken benchmark must not lose the others' figures
            failures[name] = traceback.format_exc()
            benchlib.log(f"{name}: FAILED\n{failures[name]}")
            continue
        benchlib.log(f"{name}: done in {time.monotonic() - t0:.0f} s")
        reports.append(report)
    seconds = time.monotonic() - started

    figures = {}
    for report in reports:
        figures.update(report.figures)
    os.makedirs(args.out, exist_ok=True)
    subset = "" if chosen == list(BENCHMARKS) else "-" + "-".join(chosen)
    stem = f"{machine['date']}-{machine['cores']}core{subset}{'-quick' if args.quick else ''}"
    full = {"machine": machine, "quick": args.quick, "seconds": round(seconds, 1), "figures": figures,
            "benchmarks": {r.name: {"title": r.title, "figures": r.figures, "notes": r.notes,
                                    "details": r.details} for r in reports},
            "failures": failures}
    with open(os.path.join(args.out, stem + ".json"), "w") as out:
        json.dump(full, out, indent=1, sort_keys=True)
    text = markdown(machine, reports, figures, args.quick, seconds)
    with open(os.path.join(args.out, stem + ".md"), "w") as out:
        out.write(text)
    # Figures of benchmarks this run left out (--only) stay from the run that measured them;
    # "runs" names, per benchmark, the result file its figures come from.
    latest_path = os.path.join(args.out, "latest.json")
    latest = {"runs": {}}
    if os.path.exists(latest_path):
        with open(latest_path) as previous:
            latest = json.load(previous)
        latest.setdefault("runs", {})
        for key in ("date", "cores", "quick"):
            latest.pop(key, None)
    latest.update(figures)
    for report in reports:
        latest["runs"][report.name] = stem
    with open(latest_path, "w") as out:
        json.dump(latest, out, indent=1, sort_keys=True)
    print(text)
    benchlib.log(f"results: {os.path.join(args.out, stem)}.{{json,md}} and latest.json")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
