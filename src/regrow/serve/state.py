"""What the app's endpoints share (:class:`ServeState`): the workspace, the models, the guard,
metrics and the prediction log, and the steps every endpoint takes (who calls, reading a JSON
body within the limits, counting and logging what was scored).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from starlette.concurrency import run_in_threadpool

from regrow.config import ServeSettings
from regrow.serve.errors import BadRequest, PayloadTooLarge
from regrow.serve.guard import Guard
from regrow.serve.host import ModelHost
from regrow.serve.metrics import Metrics
from regrow.serve.served import Served, Ticket

if TYPE_CHECKING:
    from regrow.catalog.identities import IdentityRecord
    from regrow.serve.predlog import PredictionLog
    from regrow.workspace import Workspace

__all__ = ["ServeState"]


@dataclass
class ServeState:
    """What the app's endpoints share: the workspace, the host, the guard, metrics, the log."""

    workspace: Workspace
    settings: ServeSettings
    host: ModelHost
    guard: Guard
    metrics: Metrics
    predictions: PredictionLog | None
    owned: bool
    _closed: bool = field(default=False, repr=False)

    async def caller(self, header: str | None, role: str, what: str) -> IdentityRecord:
        """The identity of an ``Authorization`` header's token, if its role is ``role`` or
        above (a token not checked lately is checked in a worker thread: ~20 ms)."""
        known = self.guard.cached(header, role)
        if known is not None:
            return known
        return await run_in_threadpool(self.guard.check, header, role, what)

    async def read_json(self, headers: Mapping[str, str], chunks: AsyncIterator[bytes]) -> Any:
        """A request's JSON body from its ``headers`` (lowercase names) and body ``chunks``,
        at most ``max_request_bytes`` of it."""
        limit = self.settings.max_request_bytes
        if "inference-header-content-length" in headers:
            raise BadRequest(
                "the request uses the binary tensor extension (Inference-Header-Content-Length)",
                hint="send the tensors as JSON (tritonclient: binary_data=False)",
            )
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise _too_large(int(length), limit)
        parts: list[bytes] = []
        size = 0
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:  # the rest is not read: the size is a lower bound
                raise _too_large(size, limit, read=True)
            parts.append(chunk)
        try:
            return orjson.loads(b"".join(parts))
        except orjson.JSONDecodeError as exc:
            raise BadRequest(
                f"the body is not JSON ({exc})", hint="send a JSON object (application/json)"
            ) from None

    def scored(
        self,
        served: Served,
        columns: Mapping[str, np.ndarray],
        outputs: dict[str, np.ndarray],
        tickets: list[Ticket],
    ) -> None:
        """Count and log one predict call (see :class:`~regrow.serve.served.Served`)."""
        model = served.version.system
        self.metrics.batch(model, sum(t.rows for t in tickets))
        lanes: dict[tuple[str, str], list[int]] = {}  # (lane, rollout) -> its tickets' positions
        for i, ticket in enumerate(tickets):
            lanes.setdefault((ticket.lane, ticket.rollout), []).append(i)
        for (lane, _), mine in lanes.items():
            rows = sum(tickets[i].rows for i in mine)
            self.metrics.scored(model, lane, served.ref, served.members, rows)
        if self.predictions is None:
            return
        at = datetime.now(UTC)
        starts = np.cumsum([0] + [t.rows for t in tickets])
        for (lane, rollout), mine in lanes.items():
            ids = [tickets[i].request_id for i in mine for _ in range(tickets[i].rows)]
            numbers = [r for i in mine for r in range(tickets[i].rows)]
            part, outs = columns, outputs
            if len(lanes) > 1:  # this lane's rows only
                take = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in mine])
                part = {k: v[take] for k, v in columns.items()}
                outs = {k: v[take] for k, v in outputs.items()}
            # The columns as they are: the log's writer concatenates them column by column.
            self.predictions.record(
                system=model, version=served.ref, lane=lane, request_ids=ids, rows=numbers,
                inputs=part, outputs=outs, at=at, classes=served.signature.classes,
                rollout=rollout,
            )  # fmt: skip

    def close(self) -> None:
        """Stop the poller, flush the prediction log, close an owned workspace (once)."""
        if self._closed:
            return
        self._closed = True
        self.host.stop()
        try:
            if self.predictions is not None:
                self.predictions.close()
        finally:
            if self.owned:
                self.workspace.close()


def _too_large(size: int, limit: int, *, read: bool = False) -> PayloadTooLarge:
    """The error for a body of ``size`` bytes (``read``: the bytes read before stopping)."""
    has = f"at least {size:,}" if read else f"{size:,}"
    return PayloadTooLarge(
        f"the request body has {has} bytes, over the limit of {limit:,}",
        hint="send fewer rows per request, or raise [serve] max_request_bytes",
    )
