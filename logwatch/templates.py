"""Templating stage: mask variable values, then cluster messages into templates with Drain.

One ``StreamTemplates`` per stream wraps a bare ``drain3.drain.Drain`` (not ``TemplateMiner``, whose
state only persists through jsonpickle, which can run code on load). Its state is kept as plain
``TemplateRow`` records that ``from_rows`` turns back into an identical Drain.
"""

from __future__ import annotations

import copy
import re
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from drain3.drain import Drain, LogCluster

from logwatch.records import TemplateChange, TemplateMatch, TemplateRow

# The masking kinds, tried in this order at each position (the first that matches wins, so the
# specific kinds come before NUM and HEX). Speed comes from how the branches are written, measured
# on the loghub samples (one 12-kind fused regex written naively ran 2x slower than drain3's 7
# sequential re.sub calls; written like this it runs several times faster):
#   * every branch starts with a plain character class, so sre's BRANCH op rejects it by looking
#     at one character instead of entering it (a leading lookbehind or {n} repeat defeats that);
#   * one shared lookbehind, not one per branch: a value never starts right after a letter or digit,
#     so positions inside words fail after a single check;
#   * possessive quantifiers where a failed branch would otherwise backtrack through a word;
#   * the capturing group is an empty ``()`` at the end of each branch, so ``m.lastindex`` names
#     the kind; a group wrapping the branch would hide its first character from sre.
# Only the few branches listed in _SPANNING may match whitespace: one value that a program prints
# as several words ("1190 bytes (1.16 KB)", "<1 sec", "Fri Jul  1 07:57:30 2005"). Otherwise the
# same template would have a different number of tokens from line to line, and Drain only ever
# compares messages of equal length. ``Masker.tokenize`` keeps such a value as one original token.
_H = "[0-9A-Fa-f]"
_PATH_CHARS = r"[\w.@%+~$-]"
_TLD_NAMES = "com net org edu gov mil info biz io cn hk uk de jp ru fr br in au ca nl kr tw us eu"
_TLDS = "|".join(f"(?<=\\.{tld})" for tld in _TLD_NAMES.split())
_DAY = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_MON = "(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_CLOCK = r"\d\d:\d\d:\d\d(?:[.,]\d{1,9})?"
# A number and its unit written apart; the unit list is short and unambiguous on purpose, so that
# "5 s" or "3 m" (often not units) stay a number and a word.
_SIZE_UNIT = r"(?:[KMGTP]i?B|bytes?)"
_DUR_UNIT = r"(?:ms|us|µs|ns|secs?|seconds?|mins?|minutes?|hours?|hrs?|days?)"
_NUMBER = r"\d\d*+(?:\.\d+)?+"
_KINDS: tuple[tuple[str, str], ...] = (
    ("URL", r"[A-Za-z][A-Za-z0-9+.-]*+://[^\s\"'<>]+"),
    # ASCII classes, not \w: these branches scan every word, and \w's Unicode test costs 2x.
    (
        "EMAIL",
        r"[A-Za-z0-9._%+-][A-Za-z0-9._%+-]*+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b",
    ),
    ("UUID", rf"{_H}{_H}{{7}}-{_H}{{4}}-{_H}{{4}}-{_H}{{4}}-{_H}{{12}}(?![\w-])"),
    # Dates and times; a date, a space and a time become two <TIME> tokens (masks keep whitespace).
    (
        "TIME",
        r"\d\d\d\d[-/]\d\d?[-/]\d\d?(?:[T:]\d\d?:\d\d(?::\d\d)?)?"
        r"(?:[.,]\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?(?![\w:])",
    ),
    ("TIME", r"\d\d?/\d\d?/\d\d(?:\d\d)?(?![\w:/])"),
    ("TIME", r"\d\d?:\d\d(?::\d\d)?(?:[.,]\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?(?![\w:])"),
    # ctime/syslog style dates inside a message ("at Fri Jul  1 07:57:30 2005", "since Jun 14
    # 15:16:01"): one value, whose words would otherwise read as constants (Jul vs Jun).
    ("TIME_SPAN", rf"[MTWFS][a-z][a-z](?<={_DAY}),? {_MON} +\d\d? {_CLOCK}(?: \d{{4}})?(?![\w:])"),
    ("TIME_SPAN", rf"[JFMASOND][a-z][a-z](?<={_MON}) +\d\d? {_CLOCK}(?: \d{{4}})?(?![\w:])"),
    ("MAC", rf"{_H}{_H}(?::{_H}{_H}){{5}}(?![\w:-])"),
    ("MAC", rf"{_H}{_H}(?:-{_H}{_H}){{5}}(?![\w:-])"),
    # IPv6 (full, '::'-compressed), then IPv4 with an optional :port.
    ("IP", rf"{_H}{_H}{{0,3}}(?::{_H}{{1,4}}){{7}}(?![\w:])"),
    (
        "IP",
        rf"{_H}{_H}{{0,3}}(?::{_H}{{1,4}}){{0,6}}::(?:{_H}{{1,4}}(?::{_H}{{1,4}}){{0,6}})?(?![\w:])",
    ),
    ("IP", rf"::{_H}{{1,4}}(?::{_H}{{1,4}}){{0,6}}(?![\w:])"),
    ("IP", r"\d\d?\d?\.\d\d?\d?\.\d\d?\d?\.\d\d?\d?(?::\d{1,5})?(?!\w|\.\d)"),
    # Host names: a dotted name with a port, or ending in a common top-level domain. Source file
    # names in stack traces (Foo.java:42) are not hosts, and neither are camelCase dotted
    # identifiers (state.clipTopAmount:180 is a field and its value): DNS names are written in
    # lower case.
    (
        "HOST",
        r"[A-Za-z0-9][A-Za-z0-9_-]*+(?:\.[A-Za-z0-9_-]++)++(?:"
        rf"(?:{_TLDS})(?::\d{{1,5}})?(?![\w.:-])"
        r"|(?<!\.java)(?<!\.py)(?<!\.scala)(?<!\.go)(?<!\.rs)(?<!\.js)(?<!\.c)(?<!\.cc)"
        r"(?<!\.cpp)(?<!\.h)(?<!\.kt)(?<!\.rb):\d{1,5}(?![\w.:]))",
    ),
    ("PATH", r"[A-Za-z]:\\[^\s\"'<>|:*?]+"),
    ("PATH", r"\\\\[^\s\"'<>|:*?]+"),
    ("PATH", rf"/{_PATH_CHARS}+(?:/{_PATH_CHARS}+)+/?"),
    ("PATH", rf"~(?:/{_PATH_CHARS}+)+/?"),
    ("ID", r"blk_-?\d+\b"),  # HDFS block ids
    # A byte count, also with its human-readable form in parentheses as ifconfig, curl, rsync or
    # Proxifier print it ("1190 bytes (1.16 KB)"), and a duration, also as an upper bound
    # ("<1 sec"); before NUM, which would take the number alone.
    (
        "SIZE_SPAN",
        rf"{_NUMBER} {_SIZE_UNIT}(?: \({_NUMBER} ?[KMGTP]?i?B?\))?(?![A-Za-z0-9])",
    ),
    ("DUR_SPAN", rf"{_NUMBER} {_DUR_UNIT}(?![A-Za-z0-9])"),
    ("DUR_SPAN", rf"[<>]=?{_NUMBER} ?{_DUR_UNIT}(?![A-Za-z0-9])"),
    # Plain numbers before HEX: NUM cannot match a hex string (it must not be followed by a
    # letter), and a long decimal number reads better as <NUM>.
    # (possessive, so that "3.5KB" is not masked as "<NUM>.5KB" by giving back ".5")
    ("NUM", r"\d\d*(?:\.\d+)*+(?![A-Za-z0-9]|\.\d)"),
    ("NUM", r"[-+]\d\d*(?:\.\d+)*+(?![A-Za-z0-9]|\.\d)"),
    ("SIZE", r"\d\d*(?:\.\d+)?(?:[KMGTP]i?B|[kKMGT]|B|bytes?)(?![A-Za-z0-9])"),
    ("DUR", r"\d\d*(?:\.\d+)?(?:ns|us|µs|ms|s|sec|secs|min|mins|h|hrs)(?![A-Za-z0-9])"),
    ("HEX", r"0[xX][0-9A-Fa-f]+\b"),
    # Long hex strings without 0x need a digit, so that words such as "defaced" stay words. They
    # are <NUM>, not <HEX>: the same slot prints "40000500" one time and "c0000700" the next
    # (flags, ids, counters), and two kinds in one slot would split its template.
    ("NUM", rf"\d{_H}{{6,}}(?![\w-])"),
    ("NUM", rf"[A-Fa-f](?=[A-Fa-f]*\d){_H}{{6,}}(?![\w-])"),
)
# Kinds whose values may hold whitespace; they share the placeholder of their plain kind.
_SPANNING = frozenset(i for i, (name, _) in enumerate(_KINDS, 1) if name.endswith("_SPAN"))
_HOST = next(i for i, (name, _) in enumerate(_KINDS, 1) if name == "HOST")
_TLD_SET = frozenset(_TLD_NAMES.split())
_NAMES = tuple(name.removesuffix("_SPAN") for name, _ in _KINDS)
PLACEHOLDER_NAMES: frozenset[str] = frozenset(_NAMES)
_PLACEHOLDERS: tuple[str, ...] = ("",) + tuple(f"<{name}>" for name in _NAMES)
_FUSED = re.compile(
    r"(?<![A-Za-z0-9])(?:" + "|".join(f"{pattern}()" for _, pattern in _KINDS) + ")"
)
assert _FUSED.groups == len(_KINDS), "a masking pattern has a capturing group; use (?:...)"

# A template token holds a variable when it is Drain's wildcard or contains one of our placeholders.
_DIGIT = re.compile(r"\d")
_VARIABLE_TOKEN = re.compile(r"<(?:\*|" + "|".join(sorted(PLACEHOLDER_NAMES)) + r")>")
_WHITESPACE = re.compile(r"\s+")


def _is_value(token: str) -> bool:
    if "<" in token and _VARIABLE_TOKEN.search(token) is not None:
        return True
    return _DIGIT.search(token) is not None


def _replacement(m: re.Match[str]) -> str:
    kind = m.lastindex or 0
    if kind == _HOST:
        # Checked here, not in the regex: a second host branch would scan every word again.
        name, colon, port = m[0].rpartition(":")
        if colon and name.lower() != name and name.rpartition(".")[2].lower() not in _TLD_SET:
            return f"{name}:<NUM>"
    return _PLACEHOLDERS[kind]


def _original_tokens(message: str, spans: list[tuple[int, int]] | None = None) -> list[str]:
    """Whitespace-split ``message``, except inside values that span whitespace (one token each).

    ``spans``: where those values are, when the caller already knows (``Masker.mask_spans``)."""
    if spans is None:
        spans = [m.span() for m in _FUSED.finditer(message) if m.lastindex in _SPANNING]
    tokens: list[str] = []
    start = 0
    j, n = 0, len(spans)  # spans come in order and do not overlap: one pointer walks them
    for ws in _WHITESPACE.finditer(message):
        at = ws.start()
        while j < n and spans[j][1] <= at:
            j += 1
        if j < n and spans[j][0] < at:  # inside a value: not a token boundary
            continue
        if at > start:
            tokens.append(message[start:at])
        start = ws.end()
    if start < len(message):
        tokens.append(message[start:])
    return tokens


class Masker:
    """Replace variable values in a message with placeholders, in one fused regex pass.

    Masks never span whitespace, so ``tokenize`` returns masked and original tokens that align 1:1.
    """

    def __init__(self) -> None:
        self._regex = _FUSED
        self._repl = _replacement

    def __deepcopy__(self, memo: dict[int, Any]) -> Masker:
        return self  # stateless: a copied StreamTemplates can share it

    def mask(self, message: str) -> str:
        """Return ``message`` with every variable value replaced by its placeholder."""
        return self._regex.sub(self._repl, message)

    def mask_spans(self, message: str) -> tuple[str, list[tuple[int, int]]]:
        """``mask(message)``, and where the values that span whitespace were, in the same pass."""
        spans: list[tuple[int, int]] = []
        if self._repl is not _replacement:  # a subclass's own replacement: two passes
            spans = [m.span() for m in self._regex.finditer(message) if m.lastindex in _SPANNING]
            return self.mask(message), spans

        def replace(m: re.Match[str]) -> str:
            kind = m.lastindex or 0
            if kind in _SPANNING:
                spans.append(m.span())
            elif kind == _HOST:
                return _replacement(m)
            return _PLACEHOLDERS[kind]

        return self._regex.sub(replace, message), spans

    def tokenize(self, message: str) -> tuple[list[str], list[str]]:
        """Return (masked tokens, original tokens): whitespace-split, same length.

        A value that spans whitespace ("1190 bytes") is one masked and one original token.
        """
        original = message.split()
        masked = self._regex.sub(self._repl, message).split()
        if len(masked) != len(original):  # only then did a spanning value swallow whitespace
            original = _original_tokens(message)
        return masked, original


_DEFAULT_MASKER = Masker()

# Chosen by bench/grouping.py on the twelve loghub 2k samples: average grouping accuracy 0.910 on
# the plateau 0.72-0.75 at depth 5 (0.904 at 0.7, where Linux's "session opened ... by (uid=0)"
# absorbs "by LOGIN(uid=0)"; 0.877 at 0.76, where Proxifier's "close" template splits on <IP> vs
# <HOST>). Re-measure before moving either.
SIM_TH = 0.75
DEPTH = 5

# Fast paths of ``StreamTemplates.add`` (the exact-repeat cache and the replay of a learning pass).
# They never change a result: tests/test_equivalence.py turns them off and compares.
FAST_PATHS = True
# Masked messages remembered by the exact-repeat cache of one stream (least recently used go).
# On the generated loghub inputs (bench/generate.py) a stream has 6-800 distinct masked messages
# (Windows: ~4,400, hit rate 0.73 with 1,024 entries or 50,000); a full cache costs ~0.5 MB.
REPEAT_CACHE_SIZE = 2048
# Events of one stream a recording keeps (12 bytes each); events beyond are templated again.
RECORDING_MAX_EVENTS = 2_000_000

# Drain's string result codes, mapped once to our enum.
_CHANGE = {
    "cluster_created": TemplateChange.CREATED,
    "cluster_template_changed": TemplateChange.CHANGED,
    "none": TemplateChange.NONE,
}


# A cluster this large has shown which of its words are constants: one message differing in such
# a word is another event ("... by client SPP." beside 600 "... by client WindowsUpdateAgent."),
# not proof that the word was a variable all along. Below this size Drain generalises as usual,
# which is how "Invalid user admin" and "Invalid user test" become "Invalid user <*>".
STEADY_CLUSTER_SIZE = 50
_WORD = re.compile(r"[A-Za-z][A-Za-z.]*[A-Za-z]\.?$")


class _SteadyDrain(Drain):  # type: ignore[misc]
    """Drain that will not turn an established cluster's constant word into a variable."""

    def fast_match(
        self, cluster_ids: Any, tokens: list[str], sim_th: float, include_params: bool
    ) -> LogCluster | None:
        match: LogCluster | None = super().fast_match(cluster_ids, tokens, sim_th, include_params)
        if match is None or match.size < STEADY_CLUSTER_SIZE:
            return match
        param = self.param_str
        for constant, token in zip(match.log_template_tokens, tokens, strict=False):
            if constant != token and constant != param and _WORD.match(constant):
                if _WORD.match(token):
                    return None  # Drain creates a new cluster for it
        return match


class StreamTemplates:
    """The templates of one stream: learn (``add``), look up (``match``), persist (``rows``)."""

    def __init__(
        self,
        *,
        sim_th: float = SIM_TH,
        depth: int = DEPTH,
        max_children: int = 100,
        max_clusters: int | None = None,
        masker: Masker | None = None,
    ) -> None:
        self.sim_th = sim_th
        self.depth = depth
        self.max_children = max_children
        self.max_clusters = max_clusters
        self.masker = masker if masker is not None else _DEFAULT_MASKER
        self._drain: Any = _SteadyDrain(
            depth=depth, sim_th=sim_th, max_children=max_children, max_clusters=max_clusters
        )
        # Drain files a token containing a digit under the tree's <*> branch instead of its own
        # (it is probably a value); a token holding a placeholder is a value too. Otherwise the
        # first word of "<IP> open through ..." and "<HOST> open through ..." would send two
        # forms of one template down different tree paths, where they can never merge.
        self._drain.has_numbers = _is_value
        self._dirty: set[int] = set()
        # Drain forgets the tokens a cluster was created from; persistence needs them.
        self._creation: dict[int, tuple[str, ...]] = {}
        self._total = 0
        # template tokens -> (positions of its variable tokens, template text); templates change
        # rarely, so this saves a regex search per token and a join per message.
        self._slots: dict[tuple[str, ...], tuple[tuple[int, ...], str]] = {}
        self._init_fast_paths()

    def _init_fast_paths(self) -> None:
        # The exact-repeat cache: masked message -> (cluster, its token count, the version of
        # that token count's subtree when Drain last put this message in this cluster unchanged).
        # Drain's choice for a message depends only on the message and on the subtree of the
        # prefix tree for its token count (every cluster there has that many tokens; sizes do
        # not matter). Every creation or template change in a subtree bumps its version, so an
        # entry whose version is current would get the same cluster and no change from Drain.
        self._repeat: OrderedDict[str, tuple[Any, int, int]] = OrderedDict()
        self._versions: dict[int, int] = {}
        self._recording: _Recording | None = None
        self._replay: _Recording | None = None
        self._replay_at = 0

    @classmethod
    def from_rows(cls, rows: Iterable[TemplateRow], **params: Any) -> StreamTemplates:
        """Rebuild the templates saved by ``rows()``: same ids, same prefix tree, same behaviour."""
        self = cls(**params)
        drain = self._drain
        # The prefix-tree path of a cluster depends on its creation tokens and on what was in the
        # tree when it was created (max_children turns late siblings into <*>), so replay creation
        # in id order, exactly as Drain did, and only then install the evolved template.
        ordered = sorted(rows, key=lambda r: r.template_id)
        for row in ordered:
            cluster = LogCluster(list(row.creation_tokens), row.template_id)
            drain.id_to_cluster[row.template_id] = cluster
            drain.add_seq_to_prefix_tree(drain.root_node, cluster)
            cluster.log_template_tokens = tuple(row.template_tokens)
            cluster.size = row.size
            self._creation[row.template_id] = tuple(row.creation_tokens)
            self._total += row.size
        drain.clusters_counter = ordered[-1].template_id if ordered else 0
        return self

    def add(self, message: str) -> TemplateMatch:
        """Learn from ``message`` and return the template it now belongs to."""
        if not FAST_PATHS or self.max_clusters is not None:  # LRU eviction: Drain's own way
            return self._add_slow(message)
        replay = self._replay
        if replay is not None:
            at = self._replay_at
            if at < len(replay.hashes) and replay.hashes[at] == hash(message):
                self._replay_at = at + 1
                if at + 1 == len(replay.hashes):  # all used: its memory goes now
                    self._replay = None
                cid = replay.clusters[at]
                if cid:  # Drain put it there unchanged; same state, same message, same cluster
                    # (negative: a value in it spans whitespace, so its tokens need the regex)
                    original = message.split() if cid > 0 else _original_tokens(message)
                    cid = abs(cid)
                    cluster = self._drain.id_to_cluster[cid]
                    cluster.size += 1
                    self._dirty.add(cid)
                    self._total += 1
                    return self._match_of(cluster, TemplateChange.NONE, original)
            else:  # another sequence of messages than the one recorded: template them anew
                self._replay = None
        masked_text, spans = self.masker.mask_spans(message)
        repeat = self._repeat
        hit = repeat.get(masked_text)
        if hit is not None:
            cluster, n, version = hit
            if self._versions.get(n, 0) == version:
                repeat.move_to_end(masked_text)
                original = message.split()
                spanning = len(original) != n
                if spanning:  # a value spanning whitespace is one token
                    original = _original_tokens(message, spans)
                cluster.size += 1
                cid = cluster.cluster_id
                self._dirty.add(cid)
                self._total += 1
                if self._recording is not None:
                    self._recording.add(message, -cid if spanning else cid)
                return self._match_of(cluster, TemplateChange.NONE, original)
            del repeat[masked_text]
        masked = masked_text.split()
        original = message.split()
        spanning = len(masked) != len(original)
        if spanning:
            original = _original_tokens(message, spans)
        cluster, change_type = self._drain.add_log_message(" ".join(masked))
        change = _CHANGE[change_type]
        cid = cluster.cluster_id
        n = len(masked)
        if change is TemplateChange.NONE:
            repeat[masked_text] = (cluster, n, self._versions.get(n, 0))
            if len(repeat) > REPEAT_CACHE_SIZE:
                repeat.popitem(last=False)
        else:
            self._versions[n] = self._versions.get(n, 0) + 1
            if change is TemplateChange.CREATED:
                self._creation[cid] = tuple(masked)
        if self._recording is not None:
            code = 0 if change is not TemplateChange.NONE else -cid if spanning else cid
            self._recording.add(message, code)
        self._dirty.add(cid)  # the size changed even when the template did not
        self._total += 1
        return self._match_of(cluster, change, original)

    def _add_slow(self, message: str) -> TemplateMatch:
        """``add`` without the fast paths: mask, tokenize, Drain."""
        masked, original = self.masker.tokenize(message)
        cluster, change_type = self._drain.add_log_message(" ".join(masked))
        change = _CHANGE[change_type]
        cid: int = cluster.cluster_id
        if change is TemplateChange.CREATED:
            self._creation[cid] = tuple(masked)
        self._dirty.add(cid)  # the size changed even when the template did not
        self._total += 1
        return self._match_of(cluster, change, original)

    def record(self, max_events: int = RECORDING_MAX_EVENTS) -> None:
        """Start remembering, compactly, where each message ``add`` sees goes (see ``replay``)."""
        self._recording = _Recording(max_events) if FAST_PATHS else None

    def recording(self) -> _Recording | None:
        """What was recorded since ``record()``; recording stops."""
        rec, self._recording = self._recording, None
        return rec

    def replay(self, recording: _Recording | None) -> None:
        """Let ``add`` reuse ``recording``, made by a copy of these templates in the state they are
        in now: while the messages come in the same order, each one Drain left unchanged goes
        straight to its recorded cluster (no masking, no tree search); every other message, and
        any message once the order differs, is templated as usual. The result is the same."""
        self._replay = recording if recording is not None and recording.hashes else None
        self._replay_at = 0

    def match(self, message: str) -> TemplateMatch | None:
        """Return the template that fits ``message`` exactly (wildcards aside), learning nothing."""
        masked, original = self.masker.tokenize(message)
        drain = self._drain
        cluster = drain.tree_search(drain.root_node, masked, 1.0, True)
        if cluster is None:
            # The tree search can miss a fitting cluster filed under another path (Drain's
            # "fallback" strategy); a linear scan of clusters with this many tokens settles it.
            ids = drain.get_clusters_ids_for_seq_len(len(masked))
            cluster = drain.fast_match(ids, masked, 1.0, True)
        if cluster is None:
            return None
        return self._match_of(cluster, TemplateChange.NONE, original)

    def _facts(self, tokens: tuple[str, ...]) -> tuple[tuple[int, ...], str]:
        """(positions of the variable tokens, template text) of a template's tokens, cached."""
        known = self._slots.get(tokens)
        if known is None:
            if len(self._slots) > 4096:  # old templates of changed clusters pile up otherwise
                self._slots.clear()
            positions = tuple(i for i, t in enumerate(tokens) if _VARIABLE_TOKEN.search(t))
            known = self._slots[tokens] = (positions, " ".join(tokens))
        return known

    def _match_of(self, cluster: Any, change: TemplateChange, original: list[str]) -> TemplateMatch:
        positions, text = self._facts(cluster.log_template_tokens)
        return TemplateMatch(
            template_id=cluster.cluster_id,
            template=text,
            change=change,
            slot_values=tuple([original[i] for i in positions]),
        )

    def _row(self, cluster: Any, size: int | None = None) -> TemplateRow:
        cid: int = cluster.cluster_id
        return TemplateRow(
            template_id=cid,
            template_tokens=tuple(cluster.log_template_tokens),
            creation_tokens=self._creation[cid],
            size=cluster.size if size is None else size,
        )

    def rows(self) -> list[TemplateRow]:
        """All current templates, in id order."""
        clusters = sorted(self._drain.id_to_cluster.values(), key=lambda c: c.cluster_id)
        return [self._row(c) for c in clusters]

    def dirty_rows(self, sizes: Mapping[int, int] | None = None) -> list[TemplateRow]:
        """Templates created or changed (size included) since the last ``mark_clean()``.

        ``sizes``: template id -> the size to record instead of Drain's count, where it has one."""
        id_to_cluster = self._drain.id_to_cluster
        # An LRU-evicted cluster (max_clusters) has nothing left to save.
        clusters = [id_to_cluster.get(cid) for cid in sorted(self._dirty)]
        known = sizes or {}
        return [self._row(c, known.get(c.cluster_id)) for c in clusters if c is not None]

    def mark_clean(self) -> None:
        """Forget what changed: the caller has saved ``dirty_rows()``."""
        self._dirty.clear()

    def _cluster(self, template_id: int) -> Any:
        cluster = self._drain.id_to_cluster.get(template_id)
        if cluster is None:
            raise KeyError(f"no template {template_id} in this stream")
        return cluster

    def size(self, template_id: int) -> int:
        """How many events this template has matched."""
        size: int = self._cluster(template_id).size
        return size

    def template(self, template_id: int) -> str:
        """The template text, variables shown as placeholders and <*>."""
        return self._facts(self._cluster(template_id).log_template_tokens)[1]

    @property
    def total(self) -> int:
        """Events added so far (including those restored by ``from_rows``)."""
        return self._total

    def __len__(self) -> int:
        return len(self._drain.id_to_cluster)

    def copy(self) -> StreamTemplates:
        """An independent deep copy, e.g. for a learning pass that may be thrown away."""
        saved = (self._repeat, self._recording, self._replay)
        self._repeat, self._recording, self._replay = OrderedDict(), None, None
        try:
            clone = copy.deepcopy(self)  # without the caches: they hold clusters of this copy
        finally:
            self._repeat, self._recording, self._replay = saved
        clone._init_fast_paths()
        return clone


class _Recording:
    """Per message added: its hash, and the id of the cluster Drain put it in unchanged (negated
    when the message holds a value spanning whitespace; 0 when it created or changed a cluster).
    12 bytes a message."""

    __slots__ = ("clusters", "hashes", "max_events")

    def __init__(self, max_events: int) -> None:
        self.hashes = array("q")
        self.clusters = array("i")
        self.max_events = max_events

    def add(self, message: str, cluster_id: int) -> None:
        if len(self.hashes) < self.max_events:
            self.hashes.append(hash(message))
            self.clusters.append(cluster_id)
