"""Token roles and what each change needs (pure: the console reads it to hide what a token
cannot do; the server's routes enforce the same table through ``core.server.security``).

A viewer reads; an operator also runs experiments and rollouts and tags versions; an admin does
everything (registry status and deletion, deploy and undeploy, tokens).
"""

from __future__ import annotations

ROLES = ("viewer", "operator", "admin")

# The backend seam's changes (``core.backend``) and the least role that may make them.
NEEDED_ROLE: dict[str, str] = {
    "registry.update_status": "admin",
    "registry.delete_model": "admin",
    "registry.set_tags": "operator",
    "experiments.create_experiment": "operator",
    "experiments.start_experiment": "operator",
    "experiments.stop_experiment": "operator",
    "experiments.set_allocation": "operator",
    "deployments.deploy_model": "admin",
    "deployments.undeploy": "admin",
    "deployments.rollback_deployment": "operator",
    "deployments.health": "operator",
    "deployments.canaries.promote": "operator",
    "deployments.canaries.abort": "operator",
    "deployments.canaries.pause": "operator",
    "deployments.canaries.resume": "operator",
}


def allows(role: str | None, needed: str) -> bool:
    """Whether ``role`` may do what needs ``needed``; None (no token: a local user) may all."""
    return role is None or ROLES.index(role) >= ROLES.index(needed)


def refusal(role: str | None, change: str) -> str | None:
    """Why a token of ``role`` cannot make ``change`` (a NEEDED_ROLE key), or None if it can."""
    needed = NEEDED_ROLE[change]
    if allows(role, needed):
        return None
    return f"needs an {needed} token; this one is {role}"
