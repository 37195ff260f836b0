"""ContentObject -> verified Findings: windowed YARA candidates, Python proof, carving, scoring."""

from __future__ import annotations

import bisect
import hashlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from loguru import logger

from sensor.config import Limits, Settings
from sensor.content import decoders
from sensor.detect import inner, severity
from sensor.detect.content_rules import ContentTimeout, load_user_rules
from sensor.detect.engines import Engine, EngineTimeout, RuleFiles, bundled_rules_dir, engines
from sensor.detect.verifiers import Context, Verified, verifiers
from sensor.errors import RuleError
from sensor.model import (
    Buffer,
    Candidate,
    Container,
    ContentObject,
    FileOrigin,
    Finding,
    Format,
    Inner,
    Kind,
    Limit,
    LimitHit,
    Member,
    Origin,
    StreamSummary,
)
from sensor.names import stable_id
from sensor.policy import SensitiveNames
from sensor.stats import RunStats

# Namespace of `event.id` (UUIDv5); fixed forever so ids stay stable across versions.
EVENT_NS = uuid.UUID("6f2b1d0e-8c1a-5e4b-9a77-3c5d2f1e0b42")
ZLIB_HEADERS = frozenset((b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda"))
CONTAINER_HEAD = inner.MAGIC_BYTES  # bytes libmagic sees of a container
# Candidates at the same offset are tried strongest-proof first.
PRIORITY = {
    f: i
    for i, f in enumerate(
        [
            Format.SEVENZIP,
            Format.RAR,
            Format.CAB,
            Format.XZ,
            Format.ZIP,
            Format.TAR,
            Format.BZIP2,
            Format.SNAPPY,
            Format.LZ4,
            Format.ZSTD,
            Format.GZIP,
            Format.LZMA,
            Format.DEFLATE,
            Format.ZLIB,
        ]
    )
}


@dataclass(frozen=True, slots=True)
class Hint:
    """A wrapped-header hint: which decoder to run, and where."""

    encoding: str
    offset: int


class Root:
    """The outermost object: container hash, size and type, computed once and only if needed."""

    def __init__(self, obj: ContentObject) -> None:
        self.obj = obj
        self._digest: str | None = None
        self._typed = False
        self._mime: str | None = None

    def container(self, typed: bool = True) -> Container:
        """`typed=False` skips libmagic (0.3-1 ms a call) for objects whose findings are events anyway."""
        view = memoryview(self.obj.data)
        if self._digest is None:
            h = hashlib.sha256()
            for i in range(0, len(view), 1 << 22):
                h.update(view[i : i + (1 << 22)])
            self._digest = h.hexdigest()
        if typed and not self._typed:
            self._mime = inner.mime_of(bytes(view[:CONTAINER_HEAD]))
            self._typed = True
        return Container(self._digest, len(view), self._mime)


def sha256_of(data: Buffer, start: int, length: int) -> str:
    h = hashlib.sha256()
    view = memoryview(data)[start : start + length]
    for i in range(0, len(view), 1 << 22):
        h.update(view[i : i + (1 << 22)])
    return h.hexdigest()


def _inside(spans: list[tuple[int, int]], offset: int) -> bool:
    """`spans` are sorted and disjoint: one bisect finds the only span that could hold `offset`."""
    i = bisect.bisect_right(spans, (offset, float("inf"))) - 1
    return i >= 0 and spans[i][0] <= offset < spans[i][1]


MAGICLESS = frozenset({Format.LZNT1, Format.XPRESS, Format.XPRESS_HUFFMAN})  # candidates on no magic: a guess


class Detector:
    """Finds verified compressed members in objects; one instance per process (rules compiled once)."""

    def __init__(
        self,
        settings: Settings,
        stats: RunStats | None = None,
        engine: Engine | None = None,
        keep_member: Callable[[str, Buffer], None] | None = None,
    ) -> None:
        """`keep_member(sha256, bytes)` receives every carved member (--extract)."""
        self.keep_member = keep_member
        self.settings = settings
        self.limits = settings.limits
        self.stats = stats if stats is not None else RunStats()
        self.user, self.content = load_user_rules(self.settings.user_rules, self.settings.limits.yara_timeout)
        self.limits = self._limits()
        self.engine: Engine = engine if engine is not None else self._compile()
        self.verifiers = {fmt: cls() for fmt, cls in verifiers.items()}
        self.sensitive = SensitiveNames(settings.sensitive_names)
        self.object_limits: list[LimitHit] = []  # the bounds the last scan() hit, for its object's record

    def _limits(self) -> Limits:
        lim = self.settings.limits
        # content rules need more of each member than libmagic does
        return replace(lim, inner_head=max(lim.inner_head, lim.content_head)) if self.content is not None else lim

    def _compile(self) -> Engine:
        s = self.settings
        rules = RuleFiles.load(s.rules_dir or bundled_rules_dir(), self.user.detection if self.user else ())
        return engines.get(s.engine)(rules, s.cache_dir, s.limits.yara_timeout)

    def reload(self) -> None:
        """Read and compile the rule files again; open streams go on with the new rules (SIGHUP).

        A rule file that does not compile raises RuleError and the rules in use stay.
        """
        old = self.user, self.content
        try:
            self.user, self.content = load_user_rules(self.settings.user_rules, self.settings.limits.yara_timeout)
            self.engine = self._compile()
            self.limits = self._limits()
        except RuleError:
            self.user, self.content = old
            raise

    def close(self) -> None:
        """Free the rule scanners now, on this thread: a yara-x scanner must not be freed on another one
        (the detector itself may sit in a reference cycle that a collection on any thread ends)."""
        self.__dict__.pop("engine", None)

    # -- public -----------------------------------------------------------------------------
    def scan(self, obj: ContentObject) -> Iterator[Finding]:
        """Every verified member of `obj` (and of base64/hex runs inside it), in offset order.

        When `obj` is a container by design (PDF, PNG, OOXML, JAR...), the members it holds by
        design are folded into one finding with `streams`, given once the object is done; every
        other finding (an alert, an encrypted zip appended to a PNG) comes as it is found.
        """
        self.stats.objects += 1
        self.object_limits = []
        held: list[Finding] = []
        found = obj.found_alike
        for f in self.scan_object(obj, Root(obj), 0):
            if found is not None:
                if f.member.sha256 in found:  # another reading of the same message gave this member
                    self.stats.findings -= 1
                    self.stats.alerts -= f.kind is Kind.ALERT
                    continue
                found.add(f.member.sha256)
            if f.kind is Kind.EVENT and f.reasons in severity.BY_DESIGN:
                held.append(f)
            else:
                yield f
        yield from self.fold(held, obj)

    def _limit(self, hit: LimitHit) -> None:
        """A bound hit while scanning the current object: counted for the run, kept for the object's record."""
        self.stats.limit(hit)
        self.object_limits.append(hit)

    def fold(self, held: list[Finding], obj: ContentObject) -> list[Finding]:
        """One finding for a container's by-design members: the first, with their count, formats and bytes.

        The object is a container by design when one member was judged inside it, or when a
        document zip is the whole object; documents embedded in anything else stay one each.
        """

        def whole(f: Finding) -> bool:  # found in `obj` itself (not a decoded run), from its start to its end
            return f.member.offset == 0 and f.encoding == obj.layers and f.member.length >= len(obj.data)

        if not any(f.reasons == (severity.INSIDE_CONTAINER,) or whole(f) for f in held):
            return held
        formats: dict[Format, int] = {}
        for f in held:
            formats[f.member.format] = formats.get(f.member.format, 0) + 1
        summary = StreamSummary(
            count=len(held),
            formats=tuple(sorted(formats.items())),
            bytes=sum(f.member.length for f in held),
        )
        self.stats.findings -= len(held) - 1
        return [replace(held[0], streams=summary)]

    # -- candidates -------------------------------------------------------------------------
    def _where(self, obj: ContentObject) -> str:
        o = obj.origin
        if isinstance(o, FileOrigin):
            place = o.path
        else:
            place = f"{o.source}: {o.transport} {o.src}:{o.sport} > {o.dst}:{o.dport} object {obj.index}"
        return place + "".join(f" [{layer}@{obj.layer_offset}]" for layer in obj.layers)

    def candidates(self, data: Buffer, where: str, at_start: bool = True) -> tuple[list[Candidate], list[Hint]]:
        """YARA over 1 MiB windows (libyara stops recording a string after 1M hits, SIGNATURES.md §6.2).

        `at_start`: `data` begins at an object's start, so the anchored (object-start) rules apply.
        """
        lim = self.limits
        n = len(data)
        view = memoryview(data)
        seen: set[tuple[object, int]] = set()
        cands: list[Candidate] = []
        hints: list[Hint] = []
        meta = self.engine.meta
        pos = 0
        while pos < n:
            end = min(n, pos + lim.window)
            try:
                hits = self.engine.scan(view[pos:end], head=at_start and pos == 0)
            except EngineTimeout:
                hit = LimitHit(Limit.TIME, f"{where}: window at {pos}", lim.yara_timeout)
                self._limit(hit)
                logger.warning("{}: rule scan of the window at {} stopped after {} s", where, pos, lim.yara_timeout)
                hits = []
            window_cands = runs = 0
            for rule, off in hits:
                m = meta[rule]
                at = pos + off + m.adjust
                if m.role == "anchored":
                    if (m.format, 0) not in seen:
                        seen.add((m.format, 0))
                        cands.append(Candidate(rule, m.format, 0))  # type: ignore[arg-type]
                elif m.role == "candidate":
                    key: tuple[object, int] = (m.format, at)
                    if key in seen or at < 0:
                        continue
                    seen.add(key)
                    if m.format is Format.ZLIB:
                        # a run of repeated headers (78 9C 78 9C ...) is a flood, not a stream start
                        if bytes(view[at + 2 : at + 4]) in ZLIB_HEADERS:
                            runs += 1
                            continue
                        if window_cands > lim.candidate_flood:
                            continue  # a flood of 2-byte headers: rarer formats are still all kept
                    window_cands += 1
                    cands.append(Candidate(rule, m.format, at))  # type: ignore[arg-type]
                elif m.role == "hint" and m.encoding:
                    key = (m.encoding, at)
                    if key not in seen:
                        seen.add(key)
                        hints.append(Hint(m.encoding, at))
            if window_cands + runs > lim.candidate_flood:
                hit = LimitHit(Limit.CANDIDATES, f"{where}: window at {pos}", window_cands + runs)
                self._limit(hit)
                logger.warning(
                    "{}: candidate flood: {} zlib-like headers in the 1 MiB window at {} ({} in repeated runs); "
                    "the first {} others verified",
                    where,
                    window_cands + runs,
                    pos,
                    runs,
                    lim.candidate_flood,
                )
            if end == n:
                break
            pos = end - lim.overlap
        cands.sort(key=lambda c: (c.offset, PRIORITY.get(c.format, 99)))
        hints.sort(key=lambda h: h.offset)
        return cands, hints

    # -- scan -------------------------------------------------------------------------------
    def scan_object(self, obj: ContentObject, root: Root, depth: int) -> Iterator[Finding]:
        """Candidates, verification and hints for one whole object (a file, or a decoded layer)."""
        data = obj.data
        where = self._where(obj)
        cands, hints = self.candidates(data, where)
        spans: list[tuple[int, int]] = []
        covered = 0  # candidates come in offset order, so "inside a member" is "before its end"
        ctx = Context(self.limits, where, at_object_start=True, declared=obj.declared, decoded=obj.decoded, unproven=[])
        raw = Candidate("raw_deflate_at_start", Format.DEFLATE, 0)
        first = self._declared_start(obj, cands)
        tried = first is not None and first.format is Format.DEFLATE
        if first is not None:
            # the body's own member, as its Content-Encoding declares it, is tried first: an archive its stored
            # deflate blocks carry literally is not taken for it
            v = self.verify(data, first, ctx, count=False)
            if v is not None:
                self.tally(first, v)
                covered = max(v.length, 1)
                spans.append((0, covered))
                yield self.finding(obj, root, first, v)
        for cand in cands:
            if cand.offset < covered:
                continue
            v = self.verify(data, cand, ctx)
            if v is not None:
                covered = v.offset + max(v.length, 1)
                spans.append((v.offset, covered))
                yield self.finding(obj, root, cand, v)
        if not spans and len(data) and not tried:
            # raw deflate has no magic: tried at the object's start when nothing else matched
            v = self.verify(data, raw, ctx, count=False)
            if v is not None:
                self.tally(raw, v)
                spans.append((0, v.length))
                yield self.finding(obj, root, raw, v)
        yield from self.hints(obj, root, depth, hints, spans, where)

    @staticmethod
    def _declared_start(obj: ContentObject, cands: list[Candidate]) -> Candidate | None:
        """The member a Content-Encoding declares at the object's start when no rule put a candidate there: raw
        deflate (`deflate` without a zlib header), or gzip whose flags hold reserved bits (YARA's rule wants them
        clear; a declared body is read as browsers read it). A candidate of a format without magic (Windows'
        LZ77 forms, tried at every object's start) is no rule putting one there."""
        data = obj.data
        if obj.declared is None or not len(data) or any(c.offset == 0 and c.format not in MAGICLESS for c in cands):
            return None
        if obj.declared in (Format.ZLIB, Format.DEFLATE):
            return Candidate("raw_deflate_at_start", Format.DEFLATE, 0)
        if obj.declared is Format.GZIP and bytes(data[:3]) == b"\x1f\x8b\x08":
            return Candidate("gzip_declared_at_start", Format.GZIP, 0)
        return None

    def hints(
        self,
        obj: ContentObject,
        root: Root,
        depth: int,
        hints: list[Hint],
        spans: list[tuple[int, int]],
        where: str,
        offset_base: int = 0,
        done: list[tuple[int, int]] | None = None,
    ) -> Iterator[Finding]:
        """Decode the runs around hints not inside a verified member and scan what comes out.

        `done` collects the decoded runs (sorted), so a caller can drop later hints inside them.
        """
        done = [] if done is None else done
        for hint in hints:
            if _inside(spans, hint.offset) or _inside(done, hint.offset):
                continue
            if depth >= self.limits.max_depth:
                hit = LimitHit(Limit.DEPTH, where, depth)
                self._limit(hit)
                logger.warning(
                    "{}: encoding depth limit {} reached; {} run at {} not decoded",
                    where,
                    depth,
                    hint.encoding,
                    hint.offset,
                )
                return
            for peeled in decoders.get(hint.encoding)().peel(obj.data, hint.offset, self.limits.max_encoded):
                bisect.insort(done, (peeled.start, peeled.end))
                if peeled.capped:
                    hit = LimitHit(Limit.ENCODED_BYTES, where, peeled.end - peeled.start)
                    self._limit(hit)
                    logger.warning(
                        "{}: {} run at {} longer than {} bytes; decoded that much",
                        where,
                        peeled.layer,
                        peeled.start,
                        self.limits.max_encoded,
                    )
                child = ContentObject(
                    origin=obj.origin,
                    data=peeled.data,
                    name=obj.name,
                    truncated=obj.truncated or peeled.capped,
                    layers=obj.layers + (peeled.layer,),
                    index=obj.index,
                    layer_offset=offset_base + peeled.start if obj.layer_offset is None else obj.layer_offset,
                )
                found = list(self.scan_object(child, root, depth + 1))
                yield from found
                if found:
                    break

    def verify(self, data: Buffer, cand: Candidate, ctx: Context, count: bool = True) -> Verified | None:
        """Run the candidate's verifier, isolated: a crash is logged with its location and counted.

        `count=False` leaves the statistics alone (a retry, or a speculative raw-deflate try);
        `self.tally` counts the outcome instead.
        """
        try:
            v = self.verifiers[cand.format].verify(data, cand, ctx)
        except Exception as e:  # one broken candidate must not end the object's scan
            self.stats.errors["verifier"] += 1
            logger.error(
                "{}: offset {}: {} verifier failed: {}: {}", ctx.where, cand.offset, cand.format, type(e).__name__, e
            )
            v = None
        if ctx.unproven:
            for hit in ctx.unproven:
                self._limit(hit)
            ctx.unproven.clear()
        if count:
            self.tally(cand, v)
        return v

    def tally(self, cand: Candidate, v: Verified | None) -> None:
        """Count one decided candidate: candidates, verified or rejected, and the limits it hit."""
        fmt = str(cand.format)
        self.stats.candidates[fmt] += 1
        if v is None:
            self.stats.rejected[fmt] += 1
            return
        self.stats.verified[fmt] += 1
        for hit in v.limits:
            self._limit(hit)

    # -- findings ---------------------------------------------------------------------------
    def finding(
        self,
        obj: ContentObject,
        root: Root,
        cand: Candidate,
        v: Verified,
        origin: Origin | None = None,
        offset_base: int = 0,
    ) -> Finding:
        """Hash, type, judge and identify a verified member; `origin` overrides the object's (stream offsets)."""
        names = tuple(v.names)
        member = Member(
            format=v.format,
            offset=v.offset + offset_base,
            length=v.length,
            sha256=sha256_of(obj.data, v.offset, v.length),
            truncated=v.truncated,
            proof=v.proof,
            checksum=v.checksum,
            checksum_failures=v.checksum_failures,
            encrypted=v.encrypted,
            compressed=v.compressed,
            inner=Inner(None, v.inner_size, v.inner_complete, names),
            limits=tuple(v.limits),
            stored_name=v.stored_name,
            header_mtime=v.header_mtime,
            writer=v.writer,
            detail=v.detail,
        )
        o = obj.origin
        # Whether a container holds the member by design needs its type, in every direction. A
        # member that is the whole object does not (a gzip web page coming in, thousands per GB):
        # libmagic costs 0.3-1 ms, so those are typed only where they may alert.
        whole = obj is root.obj and member.offset == 0 and member.length >= len(obj.data)
        typed = isinstance(o, FileOrigin) or o.direction == "outbound" or not whole
        container = root.container(typed)
        if self.keep_member is not None:
            view = memoryview(obj.data)
            try:
                self.keep_member(member.sha256, view[v.offset : v.offset + v.length])
            finally:
                view.release()
        document = inner.zip_document_type(names, v.head) if v.format is Format.ZIP else None
        sensitive = self.sensitive.match(names + ((v.stored_name,) if v.stored_name else ()))
        content = self._content(v.head)
        j = severity.judge(
            obj.origin, member, container.mime_type, document, sensitive, obj.layers, content, container.size
        )
        if isinstance(obj.origin, FileOrigin) or j.kind is Kind.ALERT:
            # libmagic costs 0.3-1 ms a call on text: network events (gzip web pages coming in,
            # thousands per GB) keep their names and sizes but are not typed
            member = replace(member, inner=replace(member.inner, mime_type=inner.mime_of(v.head)))  # type: ignore[arg-type]
        if document:
            container = replace(container, mime_type=document)
        origin = origin or obj.origin
        if isinstance(origin, FileOrigin):
            where = origin.path
        else:
            where = f"{origin.community_id}|{int(origin.flow_start * 1e6)}|{int(origin.client_to_server)}"
        key = "\x1f".join(
            [
                self.settings.observer,
                where,
                str(obj.index),
                ",".join(obj.layers),
                str(obj.layer_offset),
                str(member.offset),
                member.sha256,
                cand.rule,
            ]
        )
        self.stats.findings += 1
        if j.kind.value == "alert":
            self.stats.alerts += 1
        return Finding(
            event_id=stable_id(EVENT_NS, key),
            timestamp=origin.mtime if isinstance(origin, FileOrigin) else origin.ts,
            created=time.time(),
            observer=self.settings.observer,
            origin=origin,
            member=member,
            container=container,
            encoding=obj.layers,
            encoding_offset=obj.layer_offset,
            kind=j.kind,
            severity=j.severity,
            rule=cand.rule,
            sensitive=sensitive,
            reasons=j.reasons,
            object_index=obj.index,
            name=obj.name,
            app=obj.app,
            content_rules=content,
        )

    def _content(self, head: bytes | None) -> tuple[str, ...]:
        """The analyst's content rules over a member's decompressed head; a timeout is counted, not fatal."""
        if self.content is None or not head:
            return ()
        try:
            found = self.content.match(head)
        except ContentTimeout:
            self.stats.tuning["content_rules_timeout"] += 1
            return ()
        self.stats.tuning["content_rules_scanned"] += 1
        for name in found:
            self.stats.tuning[f"content:{name}"] += 1
        return found
