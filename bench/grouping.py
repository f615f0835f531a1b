"""Grouping accuracy and throughput of logwatch's templating stage on loghub samples.

Usage: python bench/grouping.py [DIR] [--content] [--sim-th 0.4] [--depth 4] [--repeat 3]

DIR holds loghub-format samples, ``<Sys>/<Sys>_2k.log`` and ``<Sys>/<Sys>_2k.log_structured.csv``
(default ``../shared/data/loghub``). A line is grouped correctly when the set of lines sharing its
logwatch template equals the set of lines sharing its true template (loghub's grouping accuracy).
Also times Drain3's own TemplateMiner, with the masking of drain3's examples, on the same messages.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from logwatch.templates import Masker, StreamTemplates  # noqa: E402

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "loghub"

# drain3's example masking (drain3/masking.py and examples/drain3.ini), applied one regex at a time.
DRAIN3_MASKS = [
    (r"((?<=[^A-Za-z0-9])|^)(([0-9a-f]{2,}:){3,}([0-9a-f]{2,}))((?=[^A-Za-z0-9])|$)", "ID"),
    (r"((?<=[^A-Za-z0-9])|^)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})((?=[^A-Za-z0-9])|$)", "IP"),
    (r"((?<=[^A-Za-z0-9])|^)([0-9a-f]{6,} ?){3,}((?=[^A-Za-z0-9])|$)", "SEQ"),
    (r"((?<=[^A-Za-z0-9])|^)([0-9A-F]{4} ?){4,}((?=[^A-Za-z0-9])|$)", "SEQ"),
    (r"((?<=[^A-Za-z0-9])|^)(0x[a-f0-9A-F]+)((?=[^A-Za-z0-9])|$)", "HEX"),
    (r"((?<=[^A-Za-z0-9])|^)([\-\+]?\d+)((?=[^A-Za-z0-9])|$)", "NUM"),
    (r"(?<=executed cmd )(\".+?\")", "CMD"),
]


def load_system(folder: Path, use_content: bool) -> tuple[list[str], list[str], str]:
    """Return (messages, true event ids, source) for one loghub sample folder."""
    name = folder.name
    with open(folder / f"{name}_2k.log_structured.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    truth = [r["EventId"] for r in rows]
    parse_line = None if use_content else _parser()
    if parse_line is None:
        return [r["Content"] for r in rows], truth, "Content column"
    raw = (folder / f"{name}_2k.log").read_text(encoding="utf-8", errors="replace").splitlines()
    if len(raw) != len(rows):
        raise SystemExit(f"{name}: {len(raw)} raw lines but {len(rows)} structured rows")
    return [parse_line(line).message for line in raw], truth, "logwatch.parser"


def _parser() -> Callable[[str], object] | None:
    try:
        from logwatch.parser import parse_line
    except ImportError:
        return None
    return parse_line  # type: ignore[no-any-return]


def grouping_accuracy(truth: Sequence[str], found: Sequence[object]) -> float:
    """Share of lines whose found group is exactly their true group."""
    true_groups: dict[str, set[int]] = defaultdict(set)
    found_groups: dict[object, set[int]] = defaultdict(set)
    for i, (t, f) in enumerate(zip(truth, found, strict=True)):
        true_groups[t].add(i)
        found_groups[f].add(i)
    correct = 0
    for members in found_groups.values():
        t = truth[next(iter(members))]
        if true_groups[t] == members:
            correct += len(members)
    return correct / len(truth)


def group(messages: Sequence[str], **params: float) -> list[int]:
    """Template id of each message, read after all messages were added (final templates count)."""
    st = StreamTemplates(**params)  # type: ignore[arg-type]
    return [st.add(m).template_id for m in messages]


def time_ours(messages: Sequence[str], repeat: int, **params: float) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        group(messages, **params)
        best = min(best, time.perf_counter() - start)
    return best


def time_masker(messages: Sequence[str], repeat: int) -> float:
    masker = Masker()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for m in messages:
            masker.tokenize(m)
        best = min(best, time.perf_counter() - start)
    return best


def drain3_miner(sim_th: float, depth: int) -> object:
    from drain3.masking import MaskingInstruction
    from drain3.template_miner import TemplateMiner
    from drain3.template_miner_config import TemplateMinerConfig

    config = TemplateMinerConfig()
    config.masking_instructions = [MaskingInstruction(p, name) for p, name in DRAIN3_MASKS]
    config.drain_sim_th = sim_th
    config.drain_depth = depth
    config.profiling_enabled = False
    return TemplateMiner(config=config)


def time_drain3(messages: Sequence[str], repeat: int, sim_th: float, depth: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        miner = drain3_miner(sim_th, depth)
        start = time.perf_counter()
        for m in messages:
            miner.add_log_message(m)  # type: ignore[attr-defined]
        best = min(best, time.perf_counter() - start)
    return best


def time_drain3_masking(messages: Sequence[str], repeat: int) -> float:
    from drain3.masking import LogMasker, MaskingInstruction

    masker = LogMasker([MaskingInstruction(p, name) for p, name in DRAIN3_MASKS], "<", ">")
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for m in messages:
            masker.mask(m).split()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", nargs="?", type=Path, default=DEFAULT_DIR)
    ap.add_argument("--content", action="store_true", help="use the CSV Content column")
    ap.add_argument("--sim-th", type=float, default=StreamTemplates().sim_th)
    ap.add_argument("--depth", type=int, default=StreamTemplates().depth)
    ap.add_argument("--repeat", type=int, default=3, help="timing runs; the best counts")
    args = ap.parse_args(argv)
    folders = sorted(p for p in args.dir.iterdir() if (p / f"{p.name}_2k.log").exists())
    if not folders:
        print(f"no loghub samples (<Sys>/<Sys>_2k.log) in {args.dir}", file=sys.stderr)
        return 1
    params = {"sim_th": args.sim_th, "depth": args.depth}
    print(f"sim_th={args.sim_th} depth={args.depth}\n")
    print("| system | lines | true templates | found templates | grouping accuracy |")
    print("|---|---:|---:|---:|---:|")
    all_messages: list[str] = []
    sources = set()
    accuracies = []
    for folder in folders:
        messages, truth, source = load_system(folder, args.content)
        sources.add(source)
        found = group(messages, **params)
        acc = grouping_accuracy(truth, found)
        accuracies.append(acc)
        all_messages.extend(messages)
        n_true, n_found = len(set(truth)), len(set(found))
        print(f"| {folder.name} | {len(messages)} | {n_true} | {n_found} | {acc:.3f} |")
    avg = sum(accuracies) / len(accuracies)
    print(f"| **average** | | | | **{avg:.3f}** |  (min {min(accuracies):.3f})")
    print(f"\nmessage source: {', '.join(sorted(sources))}")

    # Throughput: one stream per system (as the daemon would), timed over all systems together.
    n = len(all_messages)
    by_system = [all_messages[i : i + 2000] for i in range(0, n, 2000)]

    def per_system(fn: Callable[[Sequence[str]], float]) -> float:
        return sum(fn(ms) for ms in by_system)

    ours = per_system(lambda ms: time_ours(ms, args.repeat, **params))
    theirs = per_system(lambda ms: time_drain3(ms, args.repeat, args.sim_th, args.depth))
    mask_ours = time_masker(all_messages, args.repeat)
    mask_theirs = time_drain3_masking(all_messages, args.repeat)
    print(f"\nthroughput over {n} lines (best of {args.repeat}):")
    print("| what | lines/s |")
    print("|---|---:|")
    print(f"| logwatch Masker+Drain (StreamTemplates.add) | {n / ours:,.0f} |")
    print(f"| drain3 TemplateMiner with example masks | {n / theirs:,.0f} |")
    print(f"| logwatch Masker.tokenize alone | {n / mask_ours:,.0f} |")
    print(f"| drain3 LogMasker.mask alone (7 sequential re.sub) | {n / mask_theirs:,.0f} |")
    print(f"\nend to end {theirs / ours:.1f}x drain3; masking {mask_theirs / mask_ours:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
