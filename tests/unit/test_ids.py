"""The fast name-based UUID equals the standard library's, for any name."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from service.core.engine import _STATE_EVENT_NAMESPACE
from service.core.firings import FIRING_NAMESPACE
from service.core.ids import uuid5_str


@given(name=st.text())
def test_uuid5_str_is_the_standard_uuid5(name: str) -> None:
    for namespace in (FIRING_NAMESPACE, _STATE_EVENT_NAMESPACE, uuid.NAMESPACE_URL):
        assert uuid5_str(namespace, name) == str(uuid.uuid5(namespace, name))
