"""Users' evaluators: names, queues, attribution and least-privilege regexes (issue 13)."""

from __future__ import annotations

import re

import pytest

from ezspark_common.wire.messages import COMMANDS_QUEUE, EVENTS_QUEUE, RESULTS_QUEUE, tasks_queue
from ezspark_common.wire.permissions import SERVICE_PERMISSIONS, user_evaluator_permission
from ezspark_common.wire.routing import (
    account_key,
    account_tag,
    attributed,
    avoided,
    fronted_queues,
    identify,
    queues_of,
    user_evaluator_name,
    user_tasks_queue,
    volunteer_tasks_queue,
)

ENV = "pkg.envs:Maze-v0"


def allows(regex: str, name: str) -> bool:
    """Whether a RabbitMQ permission regex grants ``name`` (it matches anywhere)."""
    return re.search(regex, name) is not None


def test_user_evaluator_names_say_whose_machine_and_whether_it_volunteers() -> None:
    """The broker user name is the evaluator id; it carries the account and the opt-in."""
    own = identify(user_evaluator_name("ada.l", False, "t3xab12"))
    volunteer = identify(user_evaluator_name("ada.l", True, "t3xab12"))
    assert (own.evaluator_id, own.account, own.volunteer) == ("evu.ada~l.t3xab12", "ada~l", False)
    assert (volunteer.account, volunteer.volunteer) == ("ada~l", True)
    assert not identify("host-123-abcdef").is_user
    assert account_key("evv.ada~l.t3xab12") == "account:ada~l"
    assert account_key("host-123-abcdef") is None


def test_attribution_follows_rabbitmqs_validated_user() -> None:
    """A machine speaks only for itself, the operator's users never for a machine, and a
    message without a user_id for nobody."""
    assert attributed("evu.ada.t1xabcd", "evu.ada.t1xabcd")
    assert not attributed("evu.ada.t1xabcd", "evu.ada.t1xffff")
    assert not attributed("evu.ada.t1xabcd", "honest-evaluator")
    assert attributed("ezspark-evaluator", "honest-evaluator")
    assert not attributed("ezspark-evaluator", "evv.bob.t2xabcd")
    assert not attributed(None, "honest-evaluator")


def test_avoided_covers_a_whole_account() -> None:
    """An ``account:`` entry keeps every machine of that user away."""
    assert avoided("evv.bob.t1xaaaa", {"account:bob"})
    assert avoided("evv.bob.t1xaaaa", ["evv.bob.t1xaaaa"])
    assert not avoided("evv.bobby.t1xaaaa", {"account:bob"})
    assert not avoided("honest", {"account:bob"})


def test_each_machine_reads_the_queues_of_its_pool() -> None:
    """Operator: the environment's queue; a user's machine: its owner's; a volunteer too
    the volunteers'; plug-in ids route by their registry id."""
    assert queues_of(identify("op-1"), ENV) == [tasks_queue(ENV)] == ["ezspark.tasks.Maze-v0"]
    assert queues_of(identify("evu.ada.t1xabcd"), ENV) == ["ezspark.user.ada.tasks.Maze-v0"]
    assert queues_of(identify("evv.ada.t1xabcd"), ENV, "p.") == [
        user_tasks_queue("ada", ENV, "p."),
        volunteer_tasks_queue(ENV, "p."),
    ]
    assert fronted_queues("p.") == ["p." + q for q in (COMMANDS_QUEUE, EVENTS_QUEUE, RESULTS_QUEUE)]


@pytest.mark.parametrize("volunteer", [False, True])
def test_user_evaluator_permission_reads_only_its_owners_queues(volunteer: bool) -> None:
    """The regexes of a machine of ``ada.l``: nothing to configure, results and
    announcements to write, its owner's task queues (volunteers' too if it opted in) to
    read; never another user's, even one whose name starts the same."""
    perm = user_evaluator_permission(account_tag("ada.l"), volunteer)
    assert not allows(perm.configure, "ezspark.results")
    assert [allows(perm.write, x) for x in ("ezspark.results", "ezspark.evaluators")] == [1, 1]
    for name in ("ezspark.events", "ezspark.commands", "amq.default", "ezspark.tasks.X"):
        assert not allows(perm.write, name), name
    assert allows(perm.read, user_tasks_queue("ada~l", ENV))
    for other in ("ada", "ada~lx", "bob"):
        assert not allows(perm.read, user_tasks_queue(other, ENV)), other
    assert not allows(perm.read, tasks_queue(ENV))
    assert allows(perm.read, volunteer_tasks_queue(ENV)) is volunteer


def test_only_the_evolver_writes_events_and_the_default_exchange() -> None:
    """The gateway accepts events only from the evolver: no other service may write them
    or write through the default exchange; only the gateway writes commands."""
    writers = {k for k, p in SERVICE_PERMISSIONS.items() if allows(p.write, "ezspark.events")}
    default = {k for k, p in SERVICE_PERMISSIONS.items() if allows(p.write, "amq.default")}
    commands = {k for k, p in SERVICE_PERMISSIONS.items() if allows(p.write, "ezspark.commands")}
    assert writers == default == {"evolver"}
    assert commands == {"evolver", "gateway"}  # the evolver owns (binds) every queue
    assert not allows(SERVICE_PERMISSIONS["evaluator"].read, "ezspark.user.ada.tasks.X")
