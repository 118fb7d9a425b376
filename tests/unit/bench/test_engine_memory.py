"""The memory row's two-field mapping: every customer row still maps to a user, with one value."""

from __future__ import annotations

from engine_memory import NARROW_MAPPING_YAML

from cdpbridge.mapping import Mapper, load_mapping
from cdpbridge.records import RowPosition, SourceRow
from cdpbridge_local.demo_data import CUSTOMER_COLUMNS, customer_row


def test_the_narrow_mapping_maps_each_customer_row_to_its_user_and_one_attribute() -> None:
    mapper = Mapper(load_mapping(NARROW_MAPPING_YAML))
    for index in (0, 1, 6_559_999):
        row = dict(zip(CUSTOMER_COLUMNS, customer_row(index), strict=True))
        update = mapper.map_row(SourceRow(RowPosition("customers.csv", index + 2), row))
        assert update.identifier == {"external_id": row["customer_id"]} and not update.issues
        assert list(update.attributes) == ["loyalty_tier"]
