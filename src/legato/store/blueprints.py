"""Published blueprint versions: immutable once published."""

from __future__ import annotations

from functools import partial

from ..records import BlueprintRecord
from .ops import Op, count, one, rows
from .plumbing import Plumbing
from .rows import blueprint_from_row, latest_blueprint, published_unchanged, sorted_blueprints


def publish_blueprint(
    namespace: str, name: str, version: str, digest: str, source: str, now: float
) -> Op[BlueprintRecord]:
    key = {"namespace": namespace, "name": name, "version": version}
    yield count("insert_blueprint", **key, digest=digest, source=source, now=now)
    stored = blueprint_from_row((yield one("get_blueprint", **key)))
    return published_unchanged(stored, digest)


def get_blueprint(namespace: str, name: str, version: str | None) -> Op[BlueprintRecord | None]:
    key = {"namespace": namespace, "name": name, "version": version}
    if version is None:
        return latest_blueprint((yield rows("blueprint_versions", **key)))
    row = yield one("get_blueprint", **key)
    return blueprint_from_row(row) if row else None


def list_blueprints(namespace: str | None) -> Op[list[BlueprintRecord]]:
    return sorted_blueprints((yield rows("list_blueprints", namespace=namespace)))


class Blueprints(Plumbing):
    async def publish_blueprint(
        self, namespace: str, name: str, version: str, digest: str, source: str, now: float
    ) -> BlueprintRecord:
        """Publish one version of a blueprint; versions are immutable once published.

        Publishing the same content again (same ``digest``) returns the stored record, so
        a deploy script can publish on every run. Other content under a version already
        taken raises Conflict: runs pinned to that version must keep meaning what they
        meant.
        """
        result: BlueprintRecord = await self._write(
            partial(publish_blueprint, namespace, name, version, digest, source, now)
        )
        return result

    async def get_blueprint(
        self, namespace: str, name: str, version: str | None
    ) -> BlueprintRecord | None:
        """That version, or the highest by semantic version when ``version`` is None."""
        result: BlueprintRecord | None = await self._read(
            partial(get_blueprint, namespace, name, version)
        )
        return result

    async def list_blueprints(self, namespace: str | None = None) -> list[BlueprintRecord]:
        """Every published version, by namespace, name and semantic version."""
        result: list[BlueprintRecord] = await self._read(partial(list_blueprints, namespace))
        return result
