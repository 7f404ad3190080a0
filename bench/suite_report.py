"""Progress lines, tables and the docs section of bench.jobqueue_suite (pure: samples in, text out)."""

from __future__ import annotations

from collections.abc import Sequence

from bench.report import markdown, summarize
from bench.runner import Sample


def describe(sample: Sample) -> str:
    """One progress line."""
    value = "FAILED" if sample.value is None else f"{sample.value:,.0f}/s"
    extra = ""
    if "lost" in sample.detail:
        extra += f" dup={sample.detail['duplicates']} lost={sample.detail['lost']}"
    if "commands" in sample.detail:
        extra += f" cmds/task={sample.detail['commands']:.1f} cpu_us/task={sample.detail['cpu_us']:.0f}"
    return f"  r{sample.rep} {sample.system:52} {sample.metric:14} {value:>12}{extra}"


def _cell(samples: Sequence[Sample], label: str, metric: str, key: str | None = None, digits: int = 0) -> str:
    s = summarize(samples, label, metric, key)
    if s.runs == 0:
        return "n/a"
    if s.median is None:
        return f"FAILED ({s.failed}/{s.runs})"
    text = f"{s.median:,.{digits}f}"
    spread = s.spread_pct()
    if key is None and spread is not None and s.runs > 1:
        text += f" ±{spread / 2:.0f}%"
    return text


def _labels(samples: Sequence[Sample], section_metrics: set[str], prefix: str = "") -> list[str]:
    seen: list[str] = []
    for s in samples:
        if s.metric in section_metrics and s.system.startswith(prefix) and s.system not in seen:
            seen.append(s.system)
    return seen


def tables(samples: Sequence[Sample]) -> list[tuple[str, list[list[str]]]]:
    """(title, rows) per section that has samples; ratios against the section's first row."""
    out: list[tuple[str, list[list[str]]]] = []
    process_labels = [x for x in _labels(samples, {"process"}) if not x.startswith("payload")]
    groups = [
        ("Worker processes", [x for x in process_labels if "worker process" in x]),
        ("Pools", [x for x in process_labels if "pool (" in x]),
        ("Flow control", [x for x in process_labels if "flow control" in x or "rate limit" in x]),
    ]
    for title, labels in groups:
        if not labels:
            continue
        base = summarize(samples, labels[0], "process").median
        rows = [
            [
                "setting",
                "processing /s",
                f"vs {labels[0]}",
                "Redis cmds/task",
                "Redis CPU µs/task",
                "dup / lost",
            ]
        ]
        for label in labels:
            med = summarize(samples, label, "process").median
            runs = [s for s in samples if s.system == label and s.metric == "process"]
            rows.append([
                label, _cell(samples, label, "process"),
                "—" if med is None or not base else f"{med / base:.2f}x",
                _cell(samples, label, "process", "commands", 1), _cell(samples, label, "process", "cpu_us"),
                f"{sum(int(s.detail.get('duplicates', 0)) for s in runs)} / "
                f"{sum(int(s.detail.get('lost', 0)) for s in runs)}",
            ])  # fmt: skip
        out.append((title, rows))
    depth_labels = _labels(samples, {"dequeue"})
    if depth_labels:
        # Ratios against the smallest depth measured in the same turns (not the "alone" row).
        base_label = next((x for x in depth_labels if "alone" not in x), depth_labels[0])
        base_enq = summarize(samples, base_label, "enqueue_one").median
        base_deq = summarize(samples, base_label, "dequeue").median
        vs = f"vs {base_label}"
        rows = [["tasks waiting", "enqueue 1-by-1 /s", vs, "enqueue Redis CPU µs/task", "dequeue /s", vs,
                 "dequeue Redis CPU µs/task", "dequeue cmds/task"]]  # fmt: skip
        for label in depth_labels:
            enq = summarize(samples, label, "enqueue_one").median
            deq = summarize(samples, label, "dequeue").median
            rows.append([
                label, _cell(samples, label, "enqueue_one"),
                "—" if enq is None or not base_enq else f"{enq / base_enq:.2f}x",
                _cell(samples, label, "enqueue_one", "cpu_us"), _cell(samples, label, "dequeue"),
                "—" if deq is None or not base_deq else f"{deq / base_deq:.2f}x",
                _cell(samples, label, "dequeue", "cpu_us"), _cell(samples, label, "dequeue", "commands", 1),
            ])  # fmt: skip
        out.append(("Queue length", rows))
    payload_labels = _labels(samples, {"process", "enqueue_one"}, "payload")
    if payload_labels:
        rows = [["argument size", "enqueue 1-by-1 /s", "batch enqueue /s (100 per call)", "processing /s",
                 "Redis CPU µs/task enq + proc", "dup / lost"]]  # fmt: skip
        for label in payload_labels:
            runs = [s for s in samples if s.system == label and s.metric == "process"]
            rows.append([
                label.removeprefix("payload "), _cell(samples, label, "enqueue_one"),
                _cell(samples, label, "enqueue_batch"), _cell(samples, label, "process"),
                " + ".join(_cell(samples, label, m, "cpu_us") for m in ("enqueue_one", "process")),
                f"{sum(int(s.detail.get('duplicates', 0)) for s in runs)} / "
                f"{sum(int(s.detail.get('lost', 0)) for s in runs)}",
            ])  # fmt: skip
        out.append(("Payload size", rows))
    return out


def docs_section(samples: Sequence[Sample], meta: dict[str, object]) -> str:
    """The generated jobqueue-alone part of docs/benchmarks.md."""
    lines = [f"Measured {meta['date']} with `{meta['command']}` ({meta['tasks']} tasks per processing run, "
             f"{meta['repeats']} repetitions, Redis {meta['redis']}, load average {meta['load']}). "
             "Medians, ± half the min-max range as % of the median.", ""]  # fmt: skip
    for title, rows in tables(samples):
        lines += [f"**{title}**", "", markdown(rows), ""]
    failed = [s for s in samples if not s.ok]
    if failed:
        lines += ["Failed runs (a task lost or run twice):", ""]
        lines += [
            f"- {s.system} {s.metric} r{s.rep}: lost {s.detail.get('lost')}, "
            f"duplicates {s.detail.get('duplicates')}"
            for s in failed
        ]
    return "\n".join(lines).rstrip() + "\n"
