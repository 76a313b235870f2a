"""Production tokens: created on first use, required of other users once, renewable."""

from __future__ import annotations

import pytest

from cafstore.client.production import production_token
from cafstore.client.production import resolve_production_namespace as resolve
from cafstore.exception import IncorrectProductionToken, ProductionTokenError


def test_first_use_creates_a_token(cstore):
    ns = resolve(cstore, "PredictionFlow", "anne")
    assert ns.startswith("production:") and ns.created and ns.token in ns.message
    assert ns == f"production:{ns.token}" == f"production:{production_token(cstore, 'PredictionFlow')}"
    again = resolve(cstore, "PredictionFlow", "anne")
    assert again == ns and not again.created  # the creator needs no --authorize


def test_another_user_needs_authorize_once(cstore):
    ns = resolve(cstore, "PredictionFlow", "anne")
    with pytest.raises(ProductionTokenError, match="--authorize") as err:
        resolve(cstore, "PredictionFlow", "will")
    assert isinstance(err.value, IncorrectProductionToken) and ns.token not in str(err.value)
    with pytest.raises(ProductionTokenError, match="not the production token"):
        resolve(cstore, "PredictionFlow", "will", authorize="wrong-token")
    assert resolve(cstore, "PredictionFlow", "will", authorize=ns.token) == ns
    assert resolve(cstore, "PredictionFlow", "will") == ns  # remembered
    assert resolve(cstore, "PredictionFlow", "bob", authorize=str(ns)) == ns  # production:<token> works too


def test_generate_new_token_starts_a_fresh_namespace(cstore):
    old = resolve(cstore, "PredictionFlow", "anne")
    resolve(cstore, "PredictionFlow", "will", authorize=old.token)
    new = resolve(cstore, "PredictionFlow", "will", generate_new=True)
    assert new != old and new.created
    assert resolve(cstore, "PredictionFlow", "will") == new
    with pytest.raises(ProductionTokenError):
        resolve(cstore, "PredictionFlow", "anne")  # anne's token is the old one now
    assert resolve(cstore, "PredictionFlow", "anne", authorize=new.token) == new


def test_tokens_are_per_flow(cstore):
    a = resolve(cstore, "A", "anne")
    b = resolve(cstore, "B", "will")
    assert a != b
    with pytest.raises(ProductionTokenError):
        resolve(cstore, "A", "will")
