"""The sync engine: rows -> updates -> dedupe -> full users.track requests -> send -> commit.

It knows no integration by name: a mapper turns rows into UserUpdates, the engine does the rest.
Guarantees, in order of importance:
- every row ends applied, in the rejects, or in the retry file (nothing is dropped silently);
- state is written only for what Braze acknowledged, so dedupe never hides a lost write; a request
  whose outcome is unknown (no answer after the retries) forgets the state of what it wrote, so the
  next value is sent whatever Braze took;
- updates of one user are applied in file order (a request never overtakes an earlier one that
  names the same user), and each is deduped against what Braze holds after the earlier rows of the
  run, not against the state stored before them;
- events and purchases acknowledged once are never sent again for the same scope (send ledger);
- once an object of a user goes to the retry file, the user's later objects follow it there, so the
  next run delivers them in file order and an older value never lands after a newer one.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import Any, Final, Protocol

from aws_lambda_powertools import Logger

from cdpbridge.braze import (
    AdaptiveTrackCap,
    BrazeClient,
    TrackCap,
    TrackOutcome,
    TrackRequest,
    TrackRequestBuilder,
)
from cdpbridge.braze.track import TRACK_KINDS, names_missing_user
from cdpbridge.records import RejectedRow, RowIssue, RowPosition, SourceRow
from cdpbridge.state import RECORD_DIGEST_KEY, FieldStateSnapshot, FieldStateStore, SendLedger
from cdpbridge.state.contracts import merge_user_state
from cdpbridge.sync.artifacts import RejectsWriter
from cdpbridge.sync.concurrency import InFlightWindow
from cdpbridge.sync.counters import RunCounters, attribute_data_points, event_data_points
from cdpbridge.sync.dedupe import (
    APPLIED_AT_PREFIX,
    LIST_ELEMENTS_TRACKED,
    LOOKUP_PENDING,
    PlannedUser,
    plan_user,
    resolve_lookup,
)
from cdpbridge.sync.lookup import BrazeProfileLookup
from cdpbridge.sync.objects import Kind, ObjectRef
from cdpbridge.sync.retry import RetryEntry
from cdpbridge.updates import UserUpdate, WriteMode

logger = Logger(child=True)


class RowMapper(Protocol):
    def map_row(self, row: SourceRow) -> UserUpdate: ...


class ResumableRows(Protocol):
    def __iter__(self) -> Iterator[SourceRow | RejectedRow]: ...

    def resume_point(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class EngineOptions:
    workspace: str
    track_cap: TrackCap = field(default_factory=TrackCap)
    # The ceiling of requests in flight: the window finds its own level under it (sync/concurrency.py).
    in_flight: int = 256
    # Rows mapped and deduped together: one state read and one ledger read per chunk.
    chunk_rows: int = 1500
    full_refresh: bool = False
    dry_run: bool = False
    # A drained checkpoint is offered this often, so a crash never loses more than this much work.
    checkpoint_interval_s: float = 60.0
    # Field-state commits are written in groups of at least this many users (and at every drain).
    state_flush_users: int = 1000
    # Elements of one array attribute whose acknowledged add/remove is kept, so that a list sent
    # again costs only its new elements: the workspace's array maximum (Braze's default is 25).
    list_elements_tracked: int = LIST_ELEMENTS_TRACKED
    # Forget the state of what a request writes before sending it (one more state write a request):
    # for callers that cannot read their input again after a crash (the webhook relay, whose other
    # messages may run before the crashed batch comes back), so a process killed after Braze applied
    # a request and before its state was written leaves the attributes unknown, never out of date.
    # A file run needs none: its resume reads again every row after the last checkpoint.
    forget_before_send: bool = False


@dataclass(slots=True)
class RunResult:
    counters: RunCounters
    finished: bool
    resume: Any = None
    aborted_reason: str | None = None


class RunAborted(Exception):
    """Braze refused the credentials or permissions: every further request would fail alike."""


class SyncEngine:
    def __init__(
        self,
        *,
        client: BrazeClient | None,
        field_state: FieldStateStore,
        ledger: SendLedger,
        options: EngineOptions,
        rejects: RejectsWriter,
        retry_sink: Callable[[list[RetryEntry]], None],
        counters: RunCounters | None = None,
        held_users: set[str] | None = None,
    ) -> None:
        if client is None and not options.dry_run:
            raise ValueError("a Braze client is required unless the run is a dry run")
        self.client = client
        self.field_state = field_state
        self.ledger = ledger
        self.options = options
        self.rejects = rejects
        self.retry_sink = retry_sink
        self.counters = counters or RunCounters()
        self.lookup = BrazeProfileLookup(client) if client is not None else None
        self._builder = TrackRequestBuilder(options.track_cap)
        # The cap this run sends with: halved by the client on "Max Input Length Exceeded".
        self._send_cap = AdaptiveTrackCap(options.track_cap)
        self._executor: ThreadPoolExecutor | None = None
        self._in_flight: dict[Future[TrackOutcome], TrackRequest] = {}
        # Requests in flight find their own level under the configured ceiling (sync/concurrency.py).
        self._window = InFlightWindow(options.in_flight)
        # Per request in flight: when it was sent, whether the window was full then, and how many
        # requests were in flight with it.
        self._sent_at: dict[Future[TrackOutcome], tuple[float, bool, int]] = {}
        # When each answered request's answer came (set by the worker thread that got it).
        self._answered_at: dict[Future[TrackOutcome], float] = {}
        self._users_in_flight: dict[str, int] = {}
        self._pending_state: dict[str, dict[str, bytes | None]] = {}
        # What the chunks read, kept in step by apply(), so committing needs no second read.
        self._known = FieldStateSnapshot()
        # Digests this run planned per user that the store may not hold yet (requests buffered, in
        # flight, or acknowledged but not flushed): a later row of the same user is planned against
        # the stored state overlaid with these. None = unknown (add/remove/increment/merge writes,
        # objects Braze refused or that went to the retry file). Entries are replaced, never changed
        # in place: one may be the very dict an ObjectRef carries.
        self._planned: dict[str, dict[str, bytes | None]] = {}
        self._planned_limit = _PLANNED_USERS_KEPT
        # Users of the objects in the request being filled: not in flight yet, so not settled.
        self._buffered_users: list[str] = []
        self._retry_entries: list[RetryEntry] = []
        # Users with an object in a retry file: their later objects are held behind it, in the retry
        # file too. Shared (the same set) by the engines of one part: its replays and its run.
        self.held_users: set[str] = held_users if held_users is not None else set()
        self._scope = ""
        self._abort: str | None = None

    # -- public API ---------------------------------------------------------------------------

    def run(
        self,
        rows: ResumableRows,
        mapper: RowMapper,
        *,
        scope: str,
        should_stop: Callable[[], bool] = lambda: False,
        on_drained: Callable[[Any, RunCounters], None] | None = None,
        progress: Callable[[RunCounters], None] | None = None,
    ) -> RunResult:
        """Processes ``rows`` until the end or until ``should_stop`` says the deadline is near.

        ``scope`` identifies the file version (bucket/key@etag) for the send ledger. When the run
        stops early, the result carries the resume point of the first row not yet handled.
        """
        with _fewer_collections():
            return self._run(
                rows, mapper, scope=scope, should_stop=should_stop, on_drained=on_drained, progress=progress
            )

    def _run(
        self,
        rows: ResumableRows,
        mapper: RowMapper,
        *,
        scope: str,
        should_stop: Callable[[], bool],
        on_drained: Callable[[Any, RunCounters], None] | None,
        progress: Callable[[RunCounters], None] | None,
    ) -> RunResult:
        self._scope = scope
        # What Braze will hold is only followed within a run: the next one starts from the store.
        self._planned = {}
        self._planned_limit = _PLANNED_USERS_KEPT
        failure: list[Exception] = []
        last_drain = time.monotonic()
        stopped = False
        source = iter(rows)
        chunk_rows = self.options.chunk_rows
        with self._sending():
            while True:
                chunk = _next_chunk(source, chunk_rows, failure)
                if len(chunk) < chunk_rows:
                    break
                self._process_chunk(chunk, mapper)
                chunk = []
                if progress is not None:
                    progress(self.counters)
                if self._abort:
                    break
                if should_stop():
                    stopped = True
                    break
                if (
                    on_drained is not None
                    and time.monotonic() - last_drain >= self.options.checkpoint_interval_s
                ):
                    self._drain()
                    on_drained(rows.resume_point(), self.counters)
                    last_drain = time.monotonic()
            if chunk and not self._abort:
                self._process_chunk(chunk, mapper)
            self._drain()
            if failure:
                # Everything read before the source failed is applied and committed; now say why.
                raise failure[0]
        if progress is not None:
            progress(self.counters)
        if self._abort:
            return RunResult(
                self.counters, finished=False, resume=rows.resume_point(), aborted_reason=self._abort
            )
        if stopped:
            return RunResult(self.counters, finished=False, resume=rows.resume_point())
        return RunResult(self.counters, finished=True)

    def replay(self, entries: Iterable[RetryEntry], should_stop: Callable[[], bool] = lambda: False) -> int:
        """Sends the objects a previous run could not deliver, exactly as they were built, until the
        end or until ``should_stop`` says the deadline is near; returns how many entries it took."""
        taken = 0
        with self._sending():
            for entry in entries:
                if should_stop():
                    break
                taken += 1
                ref = entry.ref
                if ref.ledger_id and self.ledger.already_sent(entry.scope, [ref.ledger_id]):
                    self.counters.events_already_sent += 1
                    continue
                self._scope = entry.scope
                self.counters.retry_entries_replayed += 1
                self._add_object(ref)
            self._drain()
        return taken

    @contextmanager
    def _sending(self) -> Iterator[None]:
        """Around a run or a replay: the pool is shut down and the 429s counted however it ends."""
        rate_limited_before = self._track_rate_limited()
        try:
            yield
        except BaseException:
            # Whatever Braze already acknowledged is committed (state and ledger) before giving up,
            # so a resume neither loses those writes nor sends their events a second time.
            self._settle_in_flight()
            raise
        finally:
            self._shutdown()
            self.counters.rate_limited += self._track_rate_limited() - rate_limited_before

    def _track_rate_limited(self) -> int:
        if self.client is None:
            return 0
        stats = self.client.snapshot().get("users.track")
        return 0 if stats is None else stats.rate_limited

    # -- chunk processing ---------------------------------------------------------------------

    def _process_chunk(self, chunk: list[SourceRow | RejectedRow], mapper: RowMapper) -> None:
        counters = self.counters
        record_digest: Callable[[SourceRow], tuple[str, bytes] | None] | None = getattr(
            mapper, "record_digest", None
        )
        # Rows that can be recognised by their digest are only read here; the others are mapped.
        slots: list[UserUpdate | tuple[SourceRow, str, bytes]] = []
        keys: set[str] = set()
        counters.rows_read += len(chunk)
        for item in chunk:
            if isinstance(item, RejectedRow):
                self._reject_issues(item.issues, row_rejected=True)
                continue
            recognised = record_digest(item) if record_digest is not None else None
            if recognised is not None:
                slots.append((item, *recognised))
                keys.add(recognised[0])
                continue
            update = self._map(item, mapper)
            if update is not None:
                slots.append(update)
                keys.add(update.user_key)
        if not slots:
            return

        self._forget_settled_users()
        self._forget_settled_plans()
        # States stay packed where the store can: a record recognised by its digest needs only its
        # record entry, read in place; the users mapped are decoded once the skipped ones are known.
        read_packed: Callable[[str, Collection[str]], FieldStateSnapshot] | None = getattr(
            self.field_state, "get_many_packed", None
        )
        if read_packed is not None:
            known = read_packed(self.options.workspace, keys)
        else:
            known = self.field_state.get_many(self.options.workspace, keys)
        counters.state_users_read += len(keys)
        updates = self._unchanged_records_skipped(slots, known, mapper)
        self._known.absorb(known)
        if not updates:
            return
        counters.users += len(updates)
        planned = self._plan(updates, known)
        needing_lookup = [p for p in planned if p.pending_lookups]
        if needing_lookup:
            self._resolve_lookups(needing_lookup)

        sent_before = self._already_sent_ids(planned)
        for plan in planned:
            counters.attributes_unchanged += plan.unchanged
            counters.data_points_saved += plan.unchanged_data_points
            counters.attributes_set_if_empty_skipped += plan.set_if_empty_skipped
            counters.attributes_superseded += plan.superseded
            if plan.issues:
                # Planning kept the row but left part of it out (members over the array maximum).
                self._reject_issues(plan.issues, row_rejected=False)
            if plan.recorded and not self.options.dry_run:
                # State that needs no write: committed with the next flush, nothing is sent.
                self._pending_state.setdefault(plan.update.user_key, {}).update(plan.recorded)
            self._emit_user(plan, sent_before)

    def _map(self, row: SourceRow, mapper: RowMapper) -> UserUpdate | None:
        """The row's update, its issues rejected; None when the whole row is rejected or the record
        asks for nothing on purpose (counted by its reason)."""
        update = mapper.map_row(row)
        if update.skipped is not None:
            self.counters.skipped_by_reason[update.skipped] += 1
            return None
        if update.issues:
            # With on_invalid=skip_field the mapper keeps the row and only reports the fields.
            self._reject_issues(update.issues, row_rejected=update.rejected)
        return None if update.rejected else update

    def _unchanged_records_skipped(
        self,
        slots: list[UserUpdate | tuple[SourceRow, str, bytes]],
        known: FieldStateSnapshot,
        mapper: RowMapper,
    ) -> list[UserUpdate]:
        """The chunk's updates in file order: a record whose digest is the one acknowledged last for
        its user is skipped unmapped, the others are mapped now.

        A record is skipped only when what Braze holds for the user is what the store says: no
        earlier row of this run may still change it (none planned and unsettled, none earlier in
        this chunk), no object of the user waits in a retry file, and no full refresh was asked."""
        updates: list[UserUpdate] = []
        full_refresh = self.options.full_refresh
        planned_by_user = self._planned
        held_users = self.held_users
        mapped_users: set[str] = set()
        record_entry = known.record_entry
        skipped = attributes_unchanged = data_points_saved = 0
        for slot in slots:
            if slot.__class__ is not tuple:
                update: UserUpdate = slot  # type: ignore[assignment]  # the class was just checked
                mapped_users.add(update.user_key)
                updates.append(update)
                continue
            row, user_key, digest = slot
            if (
                not full_refresh
                and user_key not in mapped_users
                and user_key not in planned_by_user
                and user_key not in held_users
            ):
                stored = record_entry(user_key)
                if stored is not None and stored[:_RECORD_HASH_BYTES] == digest:
                    # The record is worth what it was when acknowledged: its attributes and data
                    # points count as unchanged, as they would had it been mapped.
                    skipped += 1
                    attributes_unchanged += stored[_RECORD_HASH_BYTES]
                    data_points_saved += stored[_RECORD_HASH_BYTES + 1]
                    continue
            mapped_users.add(user_key)
            mapped = self._map(row, mapper)
            if mapped is None:
                continue
            if not mapped.issues:
                # A record whose fields had issues is mapped again each time, so they are reported.
                mapped.record_digest = digest
            updates.append(mapped)
        # The states of users skipped stay packed: they are not covered, so a commit reads them again.
        known.decode(mapped_users)
        counters = self.counters
        counters.records_unchanged += skipped
        counters.attributes_unchanged += attributes_unchanged
        counters.data_points_saved += data_points_saved
        return updates

    def _plan(self, updates: list[UserUpdate], known: FieldStateSnapshot) -> list[PlannedUser]:
        """Plans each update against what Braze will hold once the earlier rows of the run are
        applied (Braze applies one user's writes in file order): the stored state, read before any
        of them was committed, overlaid with what they planned."""
        full_refresh = self.options.full_refresh
        list_elements_tracked = self.options.list_elements_tracked
        planned_by_user = self._planned
        held_users = self.held_users
        planned: list[PlannedUser] = []
        for update in updates:
            user_key = update.user_key
            state = known.get(user_key)
            earlier = planned_by_user.get(user_key)
            if user_key in held_users:
                # What Braze will hold depends on objects still waiting in a retry file, which
                # neither the store nor this run's plans know of: nothing is skipped.
                state = earlier = None
            elif earlier is not None:
                state = merge_user_state(state or {}, earlier)
            plan = plan_user(update, state, full_refresh, list_elements_tracked)
            planned.append(plan)
            stored = known.get(user_key)
            _note_record(
                plan,
                against_store=earlier is None and user_key not in held_users,
                record_known=(stored is not None and RECORD_DIGEST_KEY in stored)
                or (earlier is not None and RECORD_DIGEST_KEY in earlier),
            )
            digests = {**plan.recorded, **plan.digests} if plan.recorded else plan.digests
            if not digests and not plan.pending_lookups:
                continue
            if earlier is None and not plan.pending_lookups:
                # Most users appear once: the plan's own digests serve, with no copy.
                planned_by_user[user_key] = digests
                continue
            after: dict[str, bytes | None] = {**earlier} if earlier is not None else {}
            after.update(digests)
            for name in plan.pending_lookups:
                after[name] = LOOKUP_PENDING
            planned_by_user[user_key] = after
        return planned

    def _reject_issues(self, issues: list[RowIssue], *, row_rejected: bool) -> None:
        if row_rejected:
            self.counters.rows_rejected += 1
        for issue in issues:
            self.rejects.add(issue)
            self.counters.reject(issue.reason)

    def _resolve_lookups(self, plans: list[PlannedUser]) -> None:
        assert self.lookup is not None or self.options.dry_run
        started = time.monotonic()
        resolved: list[tuple[str, str, bytes]] = []
        if self.lookup is None:
            # A dry run asks Braze nothing: an unknown set_if_empty is planned as a write.
            for plan in plans:
                names = list(plan.pending_lookups)
                learnt = resolve_lookup(plan, None)
                resolved.extend(_resolved_lookups(plan, names, learnt))
            self._settle_lookups_planned(resolved)
            return
        attributes = sorted({name for plan in plans for name in plan.pending_lookups})
        found, requests = self.lookup.fetch([plan.update for plan in plans], attributes)
        learnt_state: dict[str, dict[str, bytes | None]] = {}
        for plan in plans:
            names = list(plan.pending_lookups)
            learnt = resolve_lookup(plan, found.get(plan.update.user_key))
            learnt_state.setdefault(plan.update.user_key, {}).update(learnt)
            resolved.extend(_resolved_lookups(plan, names, learnt))
        self._settle_lookups_planned(resolved)
        self.counters.lookup_requests += requests
        self.counters.lookup_users += len(plans)
        self.counters.lookup_seconds += time.monotonic() - started
        if not self.options.dry_run:
            # What Braze holds is acknowledged state too: the next run needs no lookup.
            for user_key, digests in learnt_state.items():
                self._pending_state.setdefault(user_key, {}).update(digests)

    def _settle_lookups_planned(self, resolved: list[tuple[str, str, bytes]]) -> None:
        """Replaces the pending markers with what each lookup decided. Latest row first: a marker is
        the last pending lookup of its attribute, which alone decides what Braze will hold."""
        planned_by_user = self._planned
        for user_key, name, digest in reversed(resolved):
            earlier = planned_by_user.get(user_key)
            if earlier is not None and earlier.get(name) == LOOKUP_PENDING:
                planned_by_user[user_key] = {**earlier, name: digest}

    def _already_sent_ids(self, planned: list[PlannedUser]) -> set[str]:
        ids: list[str] = []
        for plan in planned:
            update = plan.update
            # plan_user keeps every increment, so has_increment says whether the update has one.
            if plan.has_increment:
                ids.append(ledger_id(update.position, "attributes", 0))
            if update.events or update.purchases:
                for kind, items in (("events", update.events), ("purchases", update.purchases)):
                    ids.extend(ledger_id(update.position, kind, index) for index in range(len(items)))
        if not ids:
            return set()
        self.counters.ledger_reads += _ledger_items(len(ids))
        return self.ledger.already_sent(self._scope, ids)

    def _emit_user(self, plan: PlannedUser, sent_before: set[str]) -> None:
        update = plan.update
        identifier = update.identifier
        writes = plan.writes
        data_points = plan.data_points
        increments_id: str | None = None
        if plan.has_increment:
            # Increments are not idempotent: like events, they go through the send ledger.
            increments_id = ledger_id(update.position, "attributes", 0)
            if increments_id in sent_before:
                self.counters.events_already_sent += 1
                writes = {n: w for n, w in writes.items() if w.mode is not WriteMode.INCREMENT}
                data_points -= sum(
                    attribute_data_points(n, w) for n, w in plan.writes.items() if n not in writes
                )
                increments_id = None
        if writes:
            body = plan.attributes_object(writes)
            digests = plan.digests_of(writes)
            self._add_object(
                ObjectRef(
                    update.position,
                    update.user_key,
                    "attributes",
                    body,
                    digests,
                    increments_id,
                    data_points,
                    len(writes),
                )
            )
        elif plan.digests.get(RECORD_DIGEST_KEY) is not None:
            # Nothing to send, yet the record was not known by its digest (the first run since a
            # mapping change, or cells that map alike): noted, so the next run skips it unmapped.
            self._pending_state.setdefault(update.user_key, {}).update(plan.digests)
        if not update.events and not update.purchases:
            return
        for kind, items in (("events", update.events), ("purchases", update.purchases)):
            for index, item in enumerate(items):
                item_id = ledger_id(update.position, kind, index)
                if item_id in sent_before:
                    self.counters.events_already_sent += 1
                    continue
                body = {**identifier, **item}
                if update.update_existing_only:
                    body["_update_existing_only"] = True
                elif "user_alias" in identifier:
                    body["_update_existing_only"] = False
                self._add_object(
                    ObjectRef(
                        update.position, update.user_key, kind, body, None, item_id, event_data_points(item)
                    )
                )

    # -- batching and sending -----------------------------------------------------------------

    def _add_object(self, ref: ObjectRef) -> None:
        if ref.user_key in self.held_users:
            self._hold(ref, HELD_BEHIND_RETRY)
            return
        request = self._builder.add(ref.kind, ref.body, ref)  # type: ignore[arg-type]
        if request is None:
            self._buffered_users.append(ref.user_key)
            return
        # The builder handed back the full request: the new object alone starts the next one.
        self._buffered_users = [ref.user_key]
        self._dispatch(request)

    def _dispatch(self, request: TrackRequest) -> None:
        if self.options.dry_run:
            self._count_request(request)
            for ref in _refs(request):
                self._count_sent(ref)
            return
        user_keys = {ref.user_key for ref in _refs(request)}
        # Keep per-user order: wait while an earlier request naming one of these users is in flight.
        while any(key in self._users_in_flight for key in user_keys):
            self._wait_for_completions()
        while len(self._in_flight) >= self._window.size:
            self._wait_for_completions()
        if not user_keys.isdisjoint(self.held_users):
            # An earlier request of one of these users went to the retry file while this one was
            # being filled: that user's objects follow it there.
            request = self._without_held(request)
            if not request.object_count():
                return
            user_keys = {ref.user_key for ref in _refs(request)}
        if self.options.forget_before_send:
            self._forget_before_send(request)
        self._count_request(request)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self.options.in_flight, thread_name_prefix="track"
            )
        assert self.client is not None
        in_flight = len(self._in_flight) + 1
        future = self._executor.submit(self._send_and_record, request, self._scope)
        self._sent_at[future] = (time.monotonic(), in_flight >= self._window.size, in_flight)
        future.add_done_callback(self._note_answer_time)
        self._in_flight[future] = request
        for key in user_keys:
            self._users_in_flight[key] = self._users_in_flight.get(key, 0) + 1

    def _send_and_record(self, request: TrackRequest, scope: str) -> TrackOutcome:
        """Sends a request (on a sending thread) and writes the ledger ids Braze acknowledged at once,
        before the outcome waits for the run's thread to take it: the run's thread may be reading or
        mapping for a while, and a crash meanwhile must not make a resume send these again."""
        assert self.client is not None
        outcome = self.client.track(request, self._send_cap)
        acknowledged = acknowledged_ledger_ids(request, outcome)
        if acknowledged:
            self.ledger.mark_sent(scope, acknowledged)
        return outcome

    def _count_request(self, request: TrackRequest) -> None:
        counters = self.counters
        counters.requests += 1
        counters.objects_sent += request.object_count()
        counters.request_fill_units += _request_fill(request, self.options.track_cap)
        counters.request_slots += self.options.track_cap.limit

    def _without_held(self, request: TrackRequest) -> TrackRequest:
        """``request`` without the objects of held users, which go to the retry file instead."""
        kept = TrackRequest()
        for kind in TRACK_KINDS:
            objects = kept.objects(kind)
            refs = kept.refs[kind]
            for obj, ref in zip(request.objects(kind), request.refs[kind], strict=True):
                assert isinstance(ref, ObjectRef)
                if ref.user_key in self.held_users:
                    self._hold(ref, HELD_BEHIND_RETRY)
                else:
                    objects.append(obj)
                    refs.append(ref)
        return kept

    def _hold(self, ref: ObjectRef, reason: str) -> None:
        """Sends ``ref`` to the retry file, and with it every later object of its user."""
        self._retry_entries.append(RetryEntry(self._scope, ref, reason))
        self._forget_planned(ref)
        self.held_users.add(ref.user_key)
        self.counters.objects_to_retry_file += 1

    def _wait_for_completions(self) -> None:
        done, _ = wait(list(self._in_flight), return_when=FIRST_COMPLETED)
        for future in done:
            request = self._in_flight.pop(future)
            self._adjust_window(future)
            for key in {ref.user_key for ref in _refs(request)}:
                remaining = self._users_in_flight[key] - 1
                if remaining:
                    self._users_in_flight[key] = remaining
                else:
                    del self._users_in_flight[key]
            self._handle_outcome(request, future.result())
        if len(self._pending_state) >= self.options.state_flush_users:
            self._flush_state()

    def _note_answer_time(self, future: Future[TrackOutcome]) -> None:
        self._answered_at[future] = time.monotonic()

    def _adjust_window(self, future: Future[TrackOutcome]) -> None:
        """Feeds one answer to the window: its latency, and whether Braze pushed back."""
        sent_at, window_full, in_flight = self._sent_at.pop(future)
        answered_at = self._answered_at.pop(future, None) or time.monotonic()
        if future.exception() is not None:
            return
        outcome = future.result()
        congested = outcome.attempts > outcome.requests or outcome.status == "retries_exhausted"
        # Braze's own answer time when the client measured it: the wait in the rate limiter is no
        # latency (it says the rate limit has no room, which held_s carries).
        latency_s = outcome.answer_s if outcome.answer_s is not None else answered_at - sent_at
        self._window.answered(
            latency_s=latency_s,
            congested=congested,
            window_was_full=window_full,
            now=answered_at,
            held_s=outcome.held_s,
            in_flight=in_flight,
        )
        self.counters.in_flight_peak = max(self.counters.in_flight_peak, self._window.peak)

    def _handle_outcome(self, request: TrackRequest, outcome: TrackOutcome) -> None:  # noqa: PLR0912 - one branch per outcome Braze can give a request
        counters = self.counters
        counters.retries += max(0, outcome.attempts - outcome.requests)
        counters.requests += outcome.requests - 1
        if self._send_cap.lowered_to is not None:
            counters.track_cap_lowered_to = self._send_cap.lowered_to
        refs = _refs(request)
        if outcome.unsent:
            # Pieces of a split request that could not be sent: they follow the retry-file path.
            unsent = {id(ref) for ref in outcome.unsent}
            for ref in refs:
                if id(ref) in unsent:
                    self._mark_unknown(ref)
                    self._hold(ref, outcome.message or "not sent")
            refs = [ref for ref in refs if id(ref) not in unsent]
        if outcome.status == "retries_exhausted":
            for ref in refs:
                self._mark_unknown(ref)
                self._hold(ref, outcome.message)
            return
        failed: dict[int, str] = {}
        for error in outcome.errors:
            if isinstance(error.ref, ObjectRef):
                failed[id(error.ref)] = error.error_type
        ledger_ids = 0
        if outcome.status == "permanent_failure":
            if outcome.attempts > outcome.requests:
                # Refused after a retry: an earlier attempt may have been applied, its answer lost.
                for ref in refs:
                    self._mark_unknown(ref)
            if outcome.http_status in (401, 403):
                self._abort = f"Braze refused the request ({outcome.http_status}): {outcome.message}"
                for ref in refs:
                    self._hold(ref, outcome.message)
                return
            reason = f"braze: {outcome.message}"
            for ref in refs:
                failed.setdefault(id(ref), reason)
        for ref in refs:
            error_type = failed.get(id(ref))
            if error_type is not None:
                counters.objects_rejected_by_braze += 1
                if ref.kind == "attributes" and names_missing_user(error_type):
                    counters.users_missing_in_braze += 1
                reason = error_type if error_type.startswith("braze: ") else f"braze: {error_type}"
                self.rejects.add(RowIssue(ref.position, None, reason, f"{ref.kind} object"))
                counters.reject(reason)
                self._forget_planned(ref)
                continue
            self._count_sent(ref)
            if ref.digests:
                self._pending_state.setdefault(ref.user_key, {}).update(ref.digests)
            if ref.ledger_id is not None:
                ledger_ids += 1
        if ledger_ids:
            # The sending thread wrote them to the ledger as Braze answered (_send_and_record), so a
            # crash before this point does not make a resume resend them; counted on the run's thread.
            counters.ledger_writes += _ledger_items(ledger_ids)

    def _forget_before_send(self, request: TrackRequest) -> None:
        """Writes the attributes of ``request`` as unknown before it goes (with what else is
        pending): its answer then writes them as acknowledged."""
        for ref in request.refs["attributes"]:
            assert isinstance(ref, ObjectRef)
            self._mark_unknown(ref)
        self._flush_state()

    def _mark_unknown(self, ref: ObjectRef) -> None:
        """Braze may have applied ``ref`` though no answer said so (the connection dropped after it
        took the request, then the retries ran out): what it holds for the attributes ``ref`` wrote
        is no longer known. Their stored digests and the record's are forgotten with the next flush
        (before the run ends, so before a relay message is failed back to its queue), so that the
        next value of each is sent rather than skipped as unchanged against a value Braze may no
        longer hold. The applied times stay: they only ever drop a value older than one applied."""
        if ref.kind != "attributes":
            return
        unknown: dict[str, bytes | None] = {RECORD_DIGEST_KEY: None}
        if ref.digests:
            for key in ref.digests:
                if not key.startswith(APPLIED_AT_PREFIX):
                    unknown[key] = None
        self._pending_state.setdefault(ref.user_key, {}).update(unknown)

    def _forget_planned(self, ref: ObjectRef) -> None:
        """Braze did not take ``ref``: for the attributes whose planned value is still the one ``ref``
        carried, what Braze will hold is no longer known, so a later row is not skipped for them.

        A later row already skipped because it carried the same value while ``ref`` was in flight
        is not sent again: a retry file sends that value later, and a rejection is reported under
        the row of ``ref``, which carried the very same value."""
        if not ref.digests:
            return
        earlier = self._planned.get(ref.user_key)
        if earlier is None:
            return
        unknown = {
            name: None
            for name, digest in ref.digests.items()
            if digest is not None and earlier.get(name) == digest
        }
        if unknown:
            self._planned[ref.user_key] = {**earlier, **unknown}

    def _count_sent(self, ref: ObjectRef) -> None:
        counters = self.counters
        counters.data_points_sent += ref.data_points
        if ref.kind == "attributes":
            counters.users_written += 1
            counters.attributes_sent += ref.attribute_count
        elif ref.kind == "events":
            counters.events_sent += 1
        else:
            counters.purchases_sent += 1

    def _drain(self) -> None:
        request = self._builder.flush()
        self._buffered_users = []
        if request is not None:
            self._dispatch(request)
        while self._in_flight:
            self._wait_for_completions()
        self._flush_state()
        if self._retry_entries:
            self.retry_sink(self._retry_entries)
            self._retry_entries = []
        self.rejects.flush()

    def _settle_in_flight(self) -> None:
        try:
            while self._in_flight:
                self._wait_for_completions()
            self._flush_state()
            if self._retry_entries:
                self.retry_sink(self._retry_entries)
                self._retry_entries = []
            self.rejects.flush()
        except Exception:
            logger.exception("could not settle the requests in flight after a failure")

    def _flush_state(self) -> None:
        if self._pending_state and not self.options.dry_run:
            self.field_state.apply(self.options.workspace, self._pending_state, known=self._known)
            self._count_state_written(self._pending_state)
        self._pending_state = {}
        if len(self._known.covered) > _KNOWN_USERS_KEPT and not self._in_flight:
            # Bounded memory: users not covered are simply read again before their next commit.
            self._known = FieldStateSnapshot()

    def _count_state_written(self, written: dict[str, dict[str, bytes | None]]) -> None:
        """Users written and the write units of their items (1 KB each), sized from the snapshot
        ``apply`` kept in step: a user's item holds a key and one digest and name per entry."""
        counters = self.counters
        counters.state_users_written += len(written)
        known = self._known
        units = 0
        for user_key in written:
            entries = len(known.get(user_key, ()))
            units += 1 + (_ITEM_BASE_BYTES + entries * _ENTRY_BYTES) // 1024
        counters.state_write_units += units

    def _forget_settled_users(self) -> None:
        """Bounds the snapshot between chunks, while requests are in flight (they always are in a
        long run): the users of requests in flight stay covered, since their commits are still to
        come; any other user is simply read again before its next commit."""
        known = self._known
        if len(known.covered) <= _KNOWN_USERS_KEPT:
            return
        kept = [key for key in self._users_in_flight if key in known.covered]
        self._known = FieldStateSnapshot({key: known[key] for key in kept if key in known}, covered=kept)

    def _forget_settled_plans(self) -> None:
        """Bounds what the run planned to the users the store may still be behind on: those in the
        request being filled, in flight, or acknowledged and not yet flushed. For any other user the
        store holds what Braze holds (acknowledged writes are flushed; refused ones never reached
        Braze), so a later row of theirs is planned against the store alone.

        In a dry run nothing is ever committed: a user repeated beyond the bound is planned against
        the state stored before the run, so the run's figures are an estimate for that user."""
        planned = self._planned
        if len(planned) <= self._planned_limit:
            return
        unsettled = chain(self._buffered_users, self._users_in_flight, self._pending_state)
        self._planned = kept = {key: planned[key] for key in unsettled if key in planned}
        # Costs as many steps as users kept: pruning again only after as many more users keeps the
        # cost per user constant even when most of the bound is still unsettled.
        self._planned_limit = max(_PLANNED_USERS_KEPT, 2 * len(kept))

    def _shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


# The record entry of a user's state: the record's digest (Mapper.record_digest, 6 bytes), then the
# attributes and the data points the record is worth, a byte each (a record worth more is never
# skipped: it is simply mapped each time).
_RECORD_HASH_BYTES: Final = 6
_RECORD_WORTH_MAX: Final = 255
# Sizes of a field-state item for write units: key and attribute names of the item, then per entry
# an 8-byte digest and a name (about 16 characters on average).
_ITEM_BASE_BYTES: Final = 80
_ENTRY_BYTES: Final = 25
# The send ledger keeps the ids of 64 consecutive rows in one item.
_LEDGER_ROWS_PER_ITEM: Final = 64


def _ledger_items(ids: int) -> int:
    return -(-ids // _LEDGER_ROWS_PER_ITEM)


HELD_BEHIND_RETRY = "held: an earlier object of this user awaits retry"

# 2-3 KB a user with 20 attributes: 15,000 users keep the snapshot under 40 MB.
_KNOWN_USERS_KEPT = 15_000
# Planned digests are the changed attributes only (at most the same 2-3 KB a user): a run settles
# a few thousand users at a time (requests in flight, commits grouped by state_flush_users).
_PLANNED_USERS_KEPT = 10_000


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Rows make many short-lived objects and no cycles: the default collector thresholds had the
    engine spend about a seventh of its CPU scanning them. Restored when the run ends."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(_GC_GEN0_THRESHOLD, thresholds[1], thresholds[2])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


_GC_GEN0_THRESHOLD = 50_000


def _next_chunk(
    source: Iterator[SourceRow | RejectedRow], size: int, failure: list[Exception]
) -> list[SourceRow | RejectedRow]:
    """The next ``size`` rows, fewer at the end of the source or where it raises: the error is kept
    so the rows before it are still sent. The rows are pulled by C code (no Python frame runs per
    row here); list.extend keeps the rows it took before the source raised."""
    chunk: list[SourceRow | RejectedRow] = []
    try:
        chunk.extend(islice(source, size))
    except Exception as error:
        failure.append(error)
    return chunk


def _note_record(plan: PlannedUser, *, against_store: bool, record_known: bool) -> None:
    """Adds to what ``plan`` commits on acknowledgement the digest of its record, or forgets the one
    stored or planned (``record_known``) when the plan changes attributes without one.

    The entry is committed only when, once Braze acknowledged the plan, Braze holds exactly what
    the record maps to: the plan was made against the stored state alone (no earlier row of the run
    unsettled, no object in a retry file), every write is a plain value (none whose effect is
    unknown: add, remove, increment, merge), and no lookup decides part of it."""
    digests = plan.digests
    record = plan.update.record_digest
    attributes = plan.unchanged + len(plan.writes)
    data_points = plan.data_points + plan.unchanged_data_points
    if (
        record is not None
        and against_store
        and not plan.pending_lookups
        and not plan.has_list_write
        and attributes <= _RECORD_WORTH_MAX
        and data_points <= _RECORD_WORTH_MAX
        and None not in digests.values()
    ):
        digests[RECORD_DIGEST_KEY] = record + bytes((attributes, data_points))
    elif record_known and (digests or plan.pending_lookups):
        digests[RECORD_DIGEST_KEY] = None


def _resolved_lookups(
    plan: PlannedUser, names: list[str], learnt: dict[str, bytes]
) -> Iterator[tuple[str, str, bytes]]:
    """What Braze holds after ``plan`` for each attribute its lookup decided: the value written, or
    the value found (``learnt``)."""
    user_key = plan.update.user_key
    for name in names:
        written = plan.digests.get(name)
        yield user_key, name, written if written is not None else learnt[name]


def acknowledged_ledger_ids(request: TrackRequest, outcome: TrackOutcome) -> list[str]:
    """The ledger ids of the objects Braze took: every object of the request with a ledger id, but
    those not sent (pieces of a split request), refused with an object error, or in a request that
    failed whole (retries exhausted, permanent failure). Mirrors SyncEngine._handle_outcome."""
    if outcome.status in ("retries_exhausted", "permanent_failure"):
        return []
    left_out = {id(ref) for ref in outcome.unsent}
    left_out |= {id(error.ref) for error in outcome.errors if isinstance(error.ref, ObjectRef)}
    return [ref.ledger_id for ref in _refs(request) if ref.ledger_id is not None and id(ref) not in left_out]


def ledger_id(position: RowPosition, kind: Kind, index: int) -> str:
    """Identifies one event or purchase of one row within a file version."""
    return f"{position.row}:{kind[0]}{index}"


def _refs(request: TrackRequest) -> list[ObjectRef]:
    refs: list[ObjectRef] = []
    for kind in ("attributes", "events", "purchases"):
        refs.extend(request.refs[kind])  # type: ignore[arg-type]
    return refs


def _request_fill(request: TrackRequest, cap: TrackCap) -> int:
    """Objects that count against the cap: the fullest array (per_array) or all of them (total)."""
    if cap.mode == "total":
        return request.object_count()
    return max(len(request.attributes), len(request.events), len(request.purchases))
