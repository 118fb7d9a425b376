"""Lytics audience records into member changes of one Braze array attribute (``lytics_segments``).

Three record shapes, all ending as a ``MemberChange`` scoped to the feed, so the state of each
(user, audience) is kept per feed and only changes reach Braze:

- delta (``mode: delta``): Lytics' own shape, ``{"external_id": ..., "lytics_segments": {"add":
  [...], "remove": [...]}}``, one record per user (JSON lines or a JSON array);
- snapshot, one row per user: the audiences column holds every audience of the user (split on the
  separator, or a JSON array); the change is complete, so audiences the user left are removed;
- snapshot, one row per (user, audience) (``audience_column``): each row adds one audience; the
  audiences a user left are those the snapshot did not name (``cdpbridge.sync.snapshots``).

Users a snapshot leaves out entirely are removed from every audience after the last row
(``absent_members``). The identifier and any ``fields`` of the config are the generic mapper's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Final, Self

import orjson

from cdpbridge.integrations.lytics.settings import LyticsMode, LyticsSettings
from cdpbridge.mapping import ColumnCheck, Mapper, MappingConfig
from cdpbridge.mapping.config import ConfigProblem
from cdpbridge.records import RowIssue, RowPosition, SourceRow
from cdpbridge.updates import AttributeWrite, MemberChange, UserUpdate, WriteMode

MAX_AUDIENCE_LENGTH: Final = 255
DEFAULT_FEED: Final = "default"
_INBOUND_FOLDER: Final = re.compile(r"(?:^|/)inbound/lytics/([^/]+)/[^/]+$")
_FEED_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_.-]+")


def default_feed(location: str, config_name: str | None) -> str:
    """The folder under inbound/lytics/ the file is in; else the config's name; else "default"."""
    match = _INBOUND_FOLDER.search(location)
    name = match[1] if match else config_name
    cleaned = _FEED_UNSAFE.sub("_", name or "").strip("_.-")
    return cleaned[:100] or DEFAULT_FEED


@dataclass(frozen=True, slots=True)
class _Audiences:
    members: tuple[str, ...]
    issues: tuple[tuple[str, str], ...]  # (reason, detail)


def parse_audiences(raw: Any, separator: str) -> _Audiences:
    """Audience slugs of one cell: a JSON array (from a JSON source, or a cell starting with "["),
    or text split on ``separator``. Empty slugs are skipped; repeated ones kept once."""
    issues: list[tuple[str, str]] = []
    if raw is None:
        return _Audiences((), ())
    items: list[Any]
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("["):
            try:
                decoded = orjson.loads(text)
            except orjson.JSONDecodeError:
                return _Audiences(
                    (), (("invalid audiences", "a cell starting with '[' is not a JSON array"),)
                )
            items = decoded if isinstance(decoded, list) else [decoded]
        else:
            items = text.split(separator) if text else []
    elif isinstance(raw, list):
        items = raw
    else:
        return _Audiences(
            (), (("invalid audiences", f"expected text or an array, got {type(raw).__name__}"),)
        )
    members: dict[str, None] = {}
    for item in items:
        if not isinstance(item, str):
            issues.append(("invalid audience", f"expected a text slug, got {type(item).__name__}"))
            continue
        slug = item.strip()
        if not slug:
            continue
        if len(slug) > MAX_AUDIENCE_LENGTH:
            issues.append(("invalid audience", f"longer than {MAX_AUDIENCE_LENGTH} characters"))
            continue
        members[slug] = None
    return _Audiences(tuple(members), tuple(issues))


class LyticsTransformer:
    """The RecordTransformer of ``integration: lytics`` (see the module docstring)."""

    def __init__(
        self,
        config: MappingConfig,
        *,
        feed: str | None = None,
        record_only: bool = False,
        mapper: Mapper | None = None,
    ) -> None:
        self._config = config
        self.settings: LyticsSettings = config.lytics or LyticsSettings()
        self.feed = feed or self.settings.feed or DEFAULT_FEED
        self.record_only = record_only
        self._mapper = mapper or Mapper(config)

    @property
    def config(self) -> MappingConfig:
        return self._config

    def _copy(self, **changes: Any) -> Self:
        options: dict[str, Any] = {
            "feed": self.feed,
            "record_only": self.record_only,
            "mapper": self._mapper,
            **changes,
        }
        return type(self)(self._config, **options)

    # -- the job's side (cdpbridge.sync.snapshots) -------------------------------------------------

    def for_source(self, location: str, config_name: str | None) -> Self:
        return self._copy(feed=self.settings.feed or default_feed(location, config_name))

    @property
    def snapshot_scope(self) -> str | None:
        return f"lytics/{self.feed}" if self.settings.mode is LyticsMode.SNAPSHOT else None

    @property
    def sends_first_snapshot(self) -> bool:
        return self.settings.existing_users

    def recording_only(self) -> Self:
        return self._copy(record_only=True)

    def seen_members(self, update: UserUpdate) -> tuple[str, ...]:
        write = update.attributes.get(self.settings.attribute)
        if write is None or not isinstance(write.value, MemberChange):
            return ()
        return write.value.add

    def absent_members(
        self, position: RowPosition, user_key: str, identifier: dict[str, Any], members: tuple[str, ...]
    ) -> UserUpdate:
        change = MemberChange(self.feed, remove=members, record_only=self.record_only)
        return UserUpdate(
            position=position,
            user_key=user_key,
            identifier=identifier,
            attributes={self.settings.attribute: AttributeWrite(change, WriteMode.MEMBERS)},
        )

    # -- the engine's side ----------------------------------------------------------------------

    def check_columns(self, columns: Iterable[str]) -> ColumnCheck:
        present = list(columns)
        check = self._mapper.check_columns(present)
        needed, where = self._members_column()
        if needed in present:
            return check
        problem = ConfigProblem(where, f"the file has no column '{needed}'")
        return ColumnCheck((*check.missing, needed), check.warnings, (*check.errors, problem), check.skipped)

    def without_columns(self, columns: Iterable[str]) -> Self:
        return self._copy(mapper=self._mapper.without_columns(columns))

    def _members_column(self) -> tuple[str, str]:
        settings = self.settings
        if settings.mode is LyticsMode.DELTA:
            return settings.attribute, "lytics.attribute"
        if settings.audience_column is not None:
            return settings.audience_column, "lytics.audience_column"
        return settings.audiences_column, "lytics.audiences_column"

    def map_row(self, row: SourceRow) -> UserUpdate:
        update = self._mapper.map_row(row)
        if update.rejected:
            return update
        column, _ = self._members_column()
        raw = row.values.get(column)
        settings = self.settings
        if settings.mode is LyticsMode.DELTA:
            change, problems = self._delta_change(raw)
        elif settings.audience_column is not None:
            audiences = parse_audiences(raw, settings.separator)
            problems = list(audiences.issues)
            if not audiences.members and not problems:
                problems.append(("missing audience", "a (user, audience) row without an audience"))
            change = MemberChange(self.feed, add=audiences.members)
        else:
            audiences = parse_audiences(raw, settings.separator)
            problems = list(audiences.issues)
            change = MemberChange(self.feed, add=audiences.members, complete=not problems)
        if problems:
            update.issues.extend(
                RowIssue(row.position, column, reason, detail) for reason, detail in problems
            )
            # A delta record with a problem is refused whole (a misspelt "remove" must not become
            # an add alone); a snapshot row still sends the audiences it could read.
            if settings.mode is LyticsMode.DELTA or (not change.add and not change.remove):
                # Nothing usable: sending nothing keeps what the user holds; the row is reported.
                update.rejected = True
                return update
        change = replace(change, limit=settings.array_maximum, record_only=self.record_only)
        update.attributes[settings.attribute] = AttributeWrite(change, WriteMode.MEMBERS, column)
        return update

    def _delta_change(self, raw: Any) -> tuple[MemberChange, list[tuple[str, str]]]:
        if isinstance(raw, str) and raw.strip().startswith("{"):
            try:
                raw = orjson.loads(raw)
            except orjson.JSONDecodeError:
                return MemberChange(self.feed), [("invalid change", "not a JSON object")]
        if not isinstance(raw, dict):
            return MemberChange(self.feed), [
                ("invalid change", "expected an object with 'add' and/or 'remove'")
            ]
        unknown = sorted(set(raw) - {"add", "remove"})
        problems: list[tuple[str, str]] = []
        if unknown:
            problems.append(("invalid change", f"unknown keys: {', '.join(unknown)}"))
        for key in ("add", "remove"):
            if not isinstance(raw.get(key, []), list):
                problems.append(("invalid change", f"'{key}' must be an array of audience slugs"))
        add = parse_audiences(raw.get("add"), self.settings.separator)
        remove = parse_audiences(raw.get("remove"), self.settings.separator)
        problems += [*add.issues, *remove.issues]
        return MemberChange(self.feed, add=add.members, remove=remove.members), problems


def lytics_transformer(config: MappingConfig) -> LyticsTransformer:
    return LyticsTransformer(config)
