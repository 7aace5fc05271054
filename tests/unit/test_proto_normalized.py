"""proto/ depends on the wire contract, not on how a library formats a docstring."""

from __future__ import annotations

import msgspec

from ticktape import proto


class _Indented(msgspec.Struct, frozen=True):
    """First line of the contract.
    Second line, indented in the source
        and a third, indented further."""

    price: float


def test_descriptions_are_cleaned_whatever_the_library_left_in_them():
    raw = "First line of the contract.\n    Second line, indented in the source\n        and a third, indented further."
    stripped = "First line of the contract.\nSecond line, indented in the source\n    and a third, indented further."
    want = {"description": stripped, "properties": {"x": {"description": "y"}}}
    assert proto._normalized({"description": raw, "properties": {"x": {"description": "  y\n"}}}) == want
    assert proto._normalized({"description": stripped, "properties": {"x": {"description": "y"}}}) == want


def test_event_schema_descriptions_are_normalized_for_a_real_struct():
    schema = proto.event_schema(_Indented)
    descriptions = [d["description"] for d in schema["$defs"].values() if "description" in d]
    assert descriptions == [
        "First line of the contract.\nSecond line, indented in the source\n    and a third, indented further."
    ]
