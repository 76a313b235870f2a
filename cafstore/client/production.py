"""Production namespaces: ``python flow.py run --production`` (the namespaces-and-tags seed).

A flow's production runs are tagged ``production:<token>``. The token is
random, created the first time anyone runs the flow with ``--production``
and kept in the ref ``namespaces/production/<Flow>`` (``schema.production_ref``).
Whoever created it is authorized; anyone else must pass ``--authorize TOKEN``
once (it is then remembered in ``namespaces/authorized/<user>/<Flow>``,
``schema.authorized_ref``), which keeps people from landing experiments in
production by accident. ``--generate-new-token`` starts a fresh, empty
production namespace.

Each decision reads and writes its refs in one transaction, so two users
running ``--production`` for the first time at once agree on one token.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Optional

from cafstore.exception import ProductionTokenError
from cafstore.schema import authorized_ref, production_ref

PREFIX = "production:"


class ProductionNamespace(str):
    """``'production:<token>'``, plus what happened: ``token``, ``created`` and a ``message`` to show."""

    token: str
    created: bool
    message: str


def _new_token(flow: str) -> str:
    return f"{flow.lower()}-{secrets.token_hex(5)}"


def _bare(token: str) -> str:
    token = token.strip()
    return token[len(PREFIX) :] if token.startswith(PREFIX) else token


def resolve_production_namespace(
    store: Any, flow_name: str, user: str, authorize: Optional[str] = None, generate_new: bool = False
) -> ProductionNamespace:
    """The ``production:<token>`` tag a ``--production`` run of ``flow_name`` by ``user`` gets.

    Creates the token on first use; refuses (ProductionTokenError) a user who
    is not authorized and passed no ``--authorize``, or passed a wrong token.
    """
    now = time.time()

    def decide(txn: Any) -> "tuple[str, bool, str]":
        current = txn.get_ref(production_ref(flow_name))
        if generate_new or current is None:
            token = _new_token(flow_name)
            txn.set_ref(production_ref(flow_name), {"token": token, "created": now, "by": user})
            txn.set_ref(authorized_ref(user, flow_name), {"token": token})
            what = "a fresh" if current is not None else "the first"
            return (
                token,
                True,
                (
                    f"Created {what} production namespace for {flow_name}: {PREFIX}{token}. "
                    f"To let others run it in production, share the token: they pass "
                    f"--authorize {token} once."
                ),
            )
        token = current["token"]
        if authorize is not None:
            if _bare(authorize) != token:
                raise ProductionTokenError(
                    f"{authorize!r} is not the production token of {flow_name}. Ask whoever last deployed it "
                    f"(it was created by {current.get('by', 'someone')}) for the current token, or start a "
                    "fresh production namespace with --generate-new-token."
                )
            txn.set_ref(authorized_ref(user, flow_name), {"token": token})
            return (
                token,
                False,
                (
                    f"Authorized {user} for the production namespace of {flow_name} "
                    f"({PREFIX}{token}); --authorize is not needed again."
                ),
            )
        mine = txn.get_ref(authorized_ref(user, flow_name)) or {}
        if mine.get("token") != token:
            raise ProductionTokenError(
                f"The production namespace of {flow_name} belongs to another deployment (created by "
                f"{current.get('by', 'someone')}), and {user} is not authorized for it. Ask for its token and "
                "run once with --authorize TOKEN, or start a fresh production namespace with "
                "--generate-new-token."
            )
        return token, False, f"Running in the production namespace of {flow_name}: {PREFIX}{token}."

    with store.transaction() as txn:
        token, created, message = decide(txn)
    result = ProductionNamespace(PREFIX + token)
    result.token, result.created, result.message = token, created, message
    return result


def production_token(store: Any, flow_name: str) -> Optional[str]:
    """The current production token of ``flow_name`` (None if it never ran in production)."""
    current = store.get_ref(production_ref(flow_name))
    return None if current is None else current["token"]
