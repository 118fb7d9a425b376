"""The stage benchmark builds the requests the engine would send for the plans it times."""

from __future__ import annotations

from engine_stages import build_requests

from cdpbridge.records import RowPosition
from cdpbridge.sync.dedupe import plan_user
from cdpbridge.updates import AttributeWrite, UserUpdate


def test_requests_are_full_and_carry_every_planned_value() -> None:
    plans = [
        plan_user(
            UserUpdate(
                RowPosition("f.csv", index, 0),
                f"external_id:u{index}",
                {"external_id": f"u{index}"},
                attributes={"tier": AttributeWrite("gold"), "points": AttributeWrite(index)},
            ),
            None,
            False,
        )
        for index in range(200)
    ]
    requests = build_requests(plans)
    assert [len(request.attributes) for request in requests] == [75, 75, 50]
    sent = [item for request in requests for item in request.attributes]
    assert sent[199] == {"external_id": "u199", "tier": "gold", "points": 199}
