"""The operator end to end on a real control plane and a real Redis: a JobQueue's flow control lands in
Redis and its status shows the queue's depth; a RecurringTask becomes a schedule that fires once per slot,
pauses while suspended and is removed with the resource; a spec the operator cannot apply gets a
condition saying why."""

from __future__ import annotations

import threading
import time

import pytest
from kubernetes import client as k8s_client
from kubernetes.client.rest import ApiException

from jobqueue import Client, Settings
from jobqueue.broker.completion_calls import build_completion
from jobqueue.broker.leases import Outcome, OutcomeKind, build_fetch, parse_fetch
from jobqueue.broker.queue_admin import QueueAdmin
from jobqueue.broker.redis_io import run_script
from jobqueue.errors import ScheduleNotFound
from jobqueue.flow_control import RetryDefaults
from jobqueue.models import Priority
from jobqueue.retry import QUEUE_DEFAULT_RETRY
from jobqueue.schedules.registry import ScheduleRegistry
from jobqueue.services.scheduler import Scheduler
from k8s.control_plane import wait_until
from k8s.custom_resources import condition, create_cr, events_for, get_cr, patch_spec

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("operator")]


def test_jobqueue_flow_control_lands_in_redis_and_status_shows_depth(
    kube_api: k8s_client.ApiClient, kube_namespace: str, client: Client
) -> None:
    create_cr(
        kube_api,
        kube_namespace,
        "jobqueues",
        {
            "kind": "JobQueue",
            "metadata": {"name": "emails"},
            "spec": {
                "paused": True,
                "rateLimit": {"tasks": 5, "periodSeconds": 2, "burst": 2},
                "priorityRateLimits": {"low": {"tasks": 2, "periodSeconds": 10}},
                "maxInFlight": 3,
                "priority": {"policy": "Weighted", "weights": {"high": 5, "medium": 2, "low": 1}},
                "deadLetter": {"alertThreshold": 10},
            },
        },
    )
    admin = QueueAdmin(client)
    wait_until(lambda: admin.get_config("emails").paused, 30, "the queue to be paused in Redis")
    config = admin.get_config("emails")
    assert config.max_in_flight == 3
    assert config.rate_limit is not None
    assert (config.rate_limit.limit, config.rate_limit.period_seconds, config.rate_limit.burst) == (5, 2.0, 2)
    assert (config.priority_policy.value, config.weights) == ("weighted", (5, 2, 1))
    low = config.priority_rate_limits[Priority.LOW]
    assert (low.limit, low.period_seconds, low.burst) == (2, 10.0, 1)
    assert Priority.HIGH not in config.priority_rate_limits

    for _ in range(4):
        client.enqueue("add", [1, 2], queue="emails")
    client.enqueue("add", [1, 2], queue="emails", priority="high")

    def shows_depth() -> bool:
        status = get_cr(kube_api, kube_namespace, "jobqueues", "emails").get("status", {})
        return status.get("depth") == {"high": 1, "medium": 4, "low": 0}

    wait_until(shows_depth, 30, "status.depth to show the waiting tasks")
    queue = get_cr(kube_api, kube_namespace, "jobqueues", "emails")
    assert queue["status"]["inFlight"] == 0
    assert queue["status"]["deadLetterSize"] == 0
    assert queue["status"]["oldestTaskAgeSeconds"] >= 0
    assert queue["status"]["observedGeneration"] == queue["metadata"]["generation"]

    # The conditions and the event are written by the configure handler, which may land after the status
    # timer showed the depth: wait for them instead of reading them once.
    def configured() -> bool:
        queue = get_cr(kube_api, kube_namespace, "jobqueues", "emails")
        return (condition(queue, "Ready") or {}).get("status") == "True" and (
            condition(queue, "Paused") or {}
        ).get("status") == "True"

    wait_until(configured, 30, "the Ready and Paused conditions")
    wait_until(lambda: "Configured" in events_for(kube_api, kube_namespace, "emails"), 30, "the event")

    patch = {"paused": False, "rateLimit": None, "priorityRateLimits": None}
    patch_spec(kube_api, kube_namespace, "jobqueues", "emails", patch)
    wait_until(lambda: not admin.get_config("emails").paused, 30, "the queue to resume in Redis")
    wait_until(lambda: admin.get_rate_limit("emails") is None, 10, "the rate limit to be removed")
    wait_until(lambda: not admin.get_config("emails").priority_rate_limits, 10, "no level limit")


def test_jobqueue_retries_and_dead_letter_settings_apply_in_redis(
    kube_api: k8s_client.ApiClient, kube_namespace: str, client: Client
) -> None:
    create_cr(
        kube_api,
        kube_namespace,
        "jobqueues",
        {
            "kind": "JobQueue",
            "metadata": {"name": "billing"},
            "spec": {
                "retries": {"maxRetries": 0, "backoff": {"strategy": "Fixed", "initialSeconds": 0.5,
                                                         "maxSeconds": 10, "jitter": False}},
                "deadLetter": {"maxLostLeases": 1, "alertThreshold": 1},
            },
        },
    )  # fmt: skip
    admin = QueueAdmin(client)
    wait_until(lambda: admin.get_config("billing").retry_defaults is not None, 30, "retry defaults in Redis")
    config = admin.get_config("billing")
    assert config.retry_defaults == RetryDefaults(0, "constant", 0.5, 10.0, False)
    assert config.max_lost_leases == 1
    queue = get_cr(kube_api, kube_namespace, "jobqueues", "billing")
    ready = condition(queue, "Ready") or {}
    assert ready.get("status") == "True" and "not" not in ready.get("message", "")

    # A task that sets no retries of its own fails once: the queue's maxRetries 0 dead-letters it, and
    # the DeadLetterAlert condition turns True at the threshold.
    task = client.enqueue("add", ["a", 1], queue="billing").id
    reply = run_script(client.redis, build_fetch(client.settings, "billing", 1, "w"))
    [job] = parse_fetch("billing", reply).jobs
    outcome = Outcome(job.id, job.token, OutcomeKind.ERROR, error="TypeError: no", retryable=True)
    run_script(
        client.redis, build_completion(client.settings, job, outcome, QUEUE_DEFAULT_RETRY, worker_id="w")
    )
    assert client.get_task(task).dead_letter_reason == "max_retries_exceeded"

    def alerting() -> bool:
        alert = condition(get_cr(kube_api, kube_namespace, "jobqueues", "billing"), "DeadLetterAlert") or {}
        return alert.get("status") == "True"

    wait_until(alerting, 30, "the DeadLetterAlert condition")

    patch_spec(kube_api, kube_namespace, "jobqueues", "billing", {"retries": {"maxRetries": 5}})

    def raised() -> bool:
        defaults = admin.get_config("billing").retry_defaults
        return defaults is not None and defaults.max_retries == 5

    wait_until(raised, 30, "the raised maxRetries in Redis")
    # Fixed is an earlier release's spelling: still applied, with a warning event naming the new one.
    wait_until(
        lambda: "DeprecatedValue" in events_for(kube_api, kube_namespace, "billing"),
        30,
        "the deprecation event",
    )


def test_jobqueue_spec_queue_name_configures_a_queue_kubernetes_cannot_name(
    kube_api: k8s_client.ApiClient, kube_namespace: str, client: Client
) -> None:
    # "Billing_EU" is a valid queue name, not a valid object name: spec.queueName carries it.
    create_cr(
        kube_api,
        kube_namespace,
        "jobqueues",
        {
            "kind": "JobQueue",
            "metadata": {"name": "billing-eu"},
            "spec": {
                "queueName": "Billing_EU",
                "retries": {"maxRetries": 2, "backoff": {"strategy": "fibonacci", "jitter": False}},
            },
        },
    )
    admin = QueueAdmin(client)
    wait_until(
        lambda: admin.get_config("Billing_EU").retry_defaults is not None, 30, "retry defaults in Redis"
    )
    assert admin.get_config("Billing_EU").retry_defaults == RetryDefaults(2, "fibonacci", 1.0, 300.0, False)
    assert admin.get_config("billing-eu").retry_defaults is None
    wait_until(
        lambda: "Configured" in events_for(kube_api, kube_namespace, "billing-eu"), 30, "the Configured event"
    )
    assert "DeprecatedValue" not in events_for(kube_api, kube_namespace, "billing-eu")


def test_recurring_task_fires_once_per_slot_suspends_and_is_removed(
    kube_api: k8s_client.ApiClient, kube_namespace: str, client: Client, settings: Settings
) -> None:
    create_cr(
        kube_api,
        kube_namespace,
        "recurringtasks",
        {
            "kind": "RecurringTask",
            "metadata": {"name": "tick"},
            "spec": {"schedule": "* * * * *", "task": "add", "args": [2, 3], "queue": "ticks"},
        },
    )
    registry = ScheduleRegistry(client)
    redis_name = f"{kube_namespace}.tick"
    wait_until(lambda: bool(registry.list()), 30, "the schedule to be registered in Redis")
    info = registry.get(redis_name)
    assert (info.schedule.cron, info.schedule.queue, info.schedule.args) == ("* * * * *", "ticks", [2, 3])

    # Two schedulers race for every slot, as two replicas of `jobqueue scheduler` would.
    schedulers = [Scheduler(Client(settings), interval_seconds=0.5) for _ in range(2)]
    threads = [threading.Thread(target=s.run, daemon=True) for s in schedulers]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: registry.get(redis_name).fired >= 1, 75, "the first slot to fire")
        time.sleep(2)  # both schedulers have looked at the slot by now
        assert registry.get(redis_name).fired == 1
        assert client.queue_depth("ticks").total_ready == 1  # one task for the slot, not two

        def status_shows_fire() -> bool:
            status = get_cr(kube_api, kube_namespace, "recurringtasks", "tick").get("status", {})
            return bool(status.get("lastTaskId")) and bool(status.get("lastScheduleTime"))

        wait_until(status_shows_fire, 20, "status to show the last fire")
        task = get_cr(kube_api, kube_namespace, "recurringtasks", "tick")
        assert task["status"]["lastTaskId"] == registry.get(redis_name).last_task_id
        assert task["status"]["nextScheduleTime"] > task["status"]["lastScheduleTime"]
    finally:
        for s in schedulers:
            s.stop()
        for t in threads:
            t.join(5)
        for s in schedulers:
            s.client.close()

    patch_spec(kube_api, kube_namespace, "recurringtasks", "tick", {"suspend": True})
    wait_until(lambda: registry.get(redis_name).paused, 30, "the schedule to pause")
    wait_until(
        lambda: (
            (condition(get_cr(kube_api, kube_namespace, "recurringtasks", "tick"), "Suspended") or {}).get(
                "status"
            )
            == "True"
        ),
        20,
        "the Suspended condition",
    )

    patch_spec(kube_api, kube_namespace, "recurringtasks", "tick", {"suspend": False})
    wait_until(lambda: not registry.get(redis_name).paused, 30, "the schedule to resume")
    assert registry.get(redis_name).next_fire_at is not None

    k8s_client.CustomObjectsApi(kube_api).delete_namespaced_custom_object(
        "jobqueue.dev", "v1alpha1", kube_namespace, "recurringtasks", "tick"
    )

    def removed() -> bool:
        try:
            registry.get(redis_name)
        except ScheduleNotFound:
            return True
        return False

    wait_until(removed, 30, "the schedule to be removed from Redis")

    def resource_gone() -> bool:
        try:
            get_cr(kube_api, kube_namespace, "recurringtasks", "tick")
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_until(resource_gone, 30, "the finalizer to be released")


def test_spec_the_core_rejects_gets_an_invalid_spec_condition(
    kube_api: k8s_client.ApiClient, kube_namespace: str
) -> None:
    # The API server checks the shape of a time zone name; only the time zone database knows this one.
    create_cr(
        kube_api,
        kube_namespace,
        "recurringtasks",
        {
            "kind": "RecurringTask",
            "metadata": {"name": "on-mars"},
            "spec": {"schedule": "@hourly", "task": "add", "timeZone": "Mars/Olympus_Mons"},
        },
    )

    def invalid() -> bool:
        ready = condition(get_cr(kube_api, kube_namespace, "recurringtasks", "on-mars"), "Ready") or {}
        return ready.get("status") == "False" and ready.get("reason") == "InvalidSpec"

    wait_until(invalid, 30, "the Ready=False InvalidSpec condition")
    ready = condition(get_cr(kube_api, kube_namespace, "recurringtasks", "on-mars"), "Ready") or {}
    assert "Mars/Olympus_Mons" in ready["message"]
    assert "InvalidSpec" in events_for(kube_api, kube_namespace, "on-mars")
