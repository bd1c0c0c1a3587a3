"""The lifecycle transition table and semantic-version ordering."""

from __future__ import annotations

import itertools

import pytest

from core.errors import InvalidTransitionError, ValidationError
from core.lifecycle import TRANSITIONS, ModelStatus, check_transition
from core.semver import version_key

S = ModelStatus
EXPECTED_ALLOWED = {
    (S.TRAINING, S.VALIDATION),
    (S.TRAINING, S.FAILED),
    (S.VALIDATION, S.TESTING),
    (S.VALIDATION, S.DEPLOYED),
    (S.VALIDATION, S.TRAINING),
    (S.VALIDATION, S.FAILED),
    (S.VALIDATION, S.RETIRED),
    (S.TESTING, S.DEPLOYED),
    (S.TESTING, S.VALIDATION),
    (S.TESTING, S.FAILED),
    (S.TESTING, S.RETIRED),
    (S.DEPLOYED, S.RETIRED),
    (S.DEPLOYED, S.TESTING),
    (S.DEPLOYED, S.FAILED),
    (S.RETIRED, S.TESTING),
    (S.RETIRED, S.DEPLOYED),
    (S.FAILED, S.TRAINING),
    (S.FAILED, S.RETIRED),
}


@pytest.mark.parametrize("current,target", list(itertools.product(ModelStatus, ModelStatus)))
def test_transition_table(current, target):
    if (current, target) in EXPECTED_ALLOWED:
        check_transition("m:v1", current, target)
    else:
        with pytest.raises(InvalidTransitionError) as info:
            check_transition("m:v1", current, target)
        message = str(info.value)
        assert f"from {current.value.upper()} to {target.value.upper()}" in message
        for allowed in TRANSITIONS[current]:
            assert allowed.value.upper() in message


def test_status_parsing_accepts_any_case_and_rejects_unknown():
    assert ModelStatus.parse("DEPLOYED") is S.DEPLOYED
    assert ModelStatus.parse(" deployed ") is S.DEPLOYED
    with pytest.raises(ValidationError, match="unknown status 'live'"):
        ModelStatus.parse("live")


def test_semantic_versions_sort_numerically():
    versions = ["v2.10.0", "v2.9.0", "v2.1.0-rc.10", "v2.1.0", "v2.1.0-rc.9", "v10.0.0", "nightly"]
    assert sorted(versions, key=version_key) == [
        "v2.1.0-rc.9",
        "v2.1.0-rc.10",
        "v2.1.0",
        "v2.9.0",
        "v2.10.0",
        "v10.0.0",
        "nightly",
    ]
