"""Faults on real processes: kill -9 under load, the broker down and back, metrics-service
killed mid-stream, contact-service down. Each class starts its own system.

What is checked is DESIGN.md's guarantee: every acknowledged command is in its store exactly
once, reaches its topic (duplicates allowed: consumers skip by stream version) and the KPIs.
"""

import collections
import datetime
import threading
import time
import unittest

import grpc

from crm.activity.v1 import activity_pb2, activity_service_pb2
from crm.contact.v1 import contact_pb2, contact_service_pb2
from crm.metrics.v1 import metrics_service_pb2
from crm.pipeline.v1 import pipeline_pb2, pipeline_service_pb2

import harness
from test_system import Clients, timestamp, unique


class Load:
    """Threads sending one kind of command until stopped; what was acknowledged, and the
    error codes of what was not."""

    def __init__(self, send, threads=4):
        self._send = send
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.acknowledged = []
        self.errors = collections.Counter()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _run(self):
        while not self._stop.is_set():
            record_id = unique("load")
            try:
                self._send(record_id)
            except grpc.RpcError as error:
                with self._lock:
                    self.errors[error.code().name] += 1
                self._stop.wait(0.02)  # the service is down: do not spin
                continue
            with self._lock:
                self.acknowledged.append(record_id)

    def wait_for(self, count, timeout=60):
        harness.wait_until(lambda: len(self.acknowledged) >= count, timeout=timeout,
                           what=f"{count} acknowledged commands")


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def streams_on_topic(system, service):
    """stream id -> sorted list of the versions on the topic (duplicates kept)."""
    versions = collections.defaultdict(list)
    for _, _, envelope in system.read_topic(service):
        versions[envelope.stream_id].append(envelope.stream_version)
    return versions


class FaultTest(unittest.TestCase):
    def setUp(self):
        self.system = harness.System()
        self.system.__enter__()
        self.clients = Clients(self.system)

    def tearDown(self):
        self.system.close()

    # --- senders -----------------------------------------------------------------------------

    def create_contact(self, contact_id, owner="rep-load"):
        self.clients.contacts.CreateContact(contact_service_pb2.CreateContactRequest(
            contact_id=contact_id, request_id=contact_id, channel="web_form",
            contact=contact_pb2.Contact(given_name="Load", family_name="Test", owner_id=owner,
                                        emails=[f"{contact_id}@example.com"])),
            metadata=self.clients.rep, timeout=5)

    def log_activity(self, contact_id):
        def send(activity_id):
            self.clients.activities.LogActivity(activity_service_pb2.LogActivityRequest(
                activity_id=activity_id, request_id=activity_id,
                activity=activity_pb2.Activity(
                    type=activity_pb2.ACTIVITY_TYPE_CALL, status=activity_pb2.ACTIVITY_STATUS_DONE,
                    channel="phone", owner_id="rep-load", contact_id=contact_id,
                    occurred_at=timestamp(now()), subject="call")),
                metadata=self.clients.rep, timeout=5)
        return send

    def capture_lead(self, lead_id):
        self.clients.pipeline.CaptureLead(pipeline_service_pb2.CaptureLeadRequest(
            lead_id=lead_id, request_id=lead_id, channel="web_form",
            lead=pipeline_pb2.Lead(source="web", owner_id="rep-load",
                                   person=pipeline_pb2.LeadPerson(given_name="Lead"))),
            metadata=self.clients.rep, timeout=5)

    def kpi_count(self, kpi, streams_and_versions):
        """The KPI's counts summed over this month and last, once it includes the streams."""
        request = metrics_service_pb2.QueryKpiRequest(
            kpi=kpi, period_kind=metrics_service_pb2.PERIOD_KIND_MONTH,
            start_time=timestamp(now() - datetime.timedelta(days=35)),
            end_time=timestamp(now() + datetime.timedelta(minutes=5)),
            consistency=metrics_service_pb2.Consistency(min_versions=[
                metrics_service_pb2.StreamVersion(stream=s, version=v)
                for s, v in streams_and_versions]))
        request.consistency.max_wait.seconds = 30
        answer = self.clients.metrics.QueryKpi(request, metadata=self.clients.admin, timeout=40)
        return sum(m.count for row in answer.result.rows for m in row.measures
                   if m.WhichOneof("value") == "count")

    # --- the faults --------------------------------------------------------------------------

    def assert_acknowledged_once(self, service, kind, acknowledged, get):
        """Each acknowledged record is in the store at version 1 (created exactly once) and on
        the topic; duplicates on the topic repeat a version, never add one."""
        for record_id in acknowledged:
            self.assertEqual(get(record_id).version, 1, record_id)
        expected = {f"{kind}/{record_id}" for record_id in acknowledged}

        def all_published():
            topic = streams_on_topic(self.system, service)
            return topic if expected <= set(topic) else None
        topic = harness.wait_until(all_published, timeout=60, interval=0.5,
                                   what=f"every acknowledged {kind} on its topic")
        for stream in expected:
            self.assertEqual(set(topic[stream]), {1}, stream)
        return topic

    def test_kill_9_of_each_command_service_under_load_loses_no_acknowledged_command(self):
        c = self.clients
        contact_id = unique("con")
        self.create_contact(contact_id)
        cases = [
            ("contact", "contact", self.create_contact,
             lambda i: c.contacts.GetContact(contact_service_pb2.GetContactRequest(contact_id=i),
                                             metadata=c.admin, timeout=5)),
            ("activity", "activity", self.log_activity(contact_id),
             lambda i: c.activities.GetActivity(
                 activity_service_pb2.GetActivityRequest(activity_id=i), metadata=c.admin,
                 timeout=5)),
            ("pipeline", "lead", self.capture_lead,
             lambda i: c.pipeline.GetLead(pipeline_service_pb2.GetLeadRequest(lead_id=i),
                                          metadata=c.admin, timeout=5)),
        ]
        for service, kind, send, get in cases:
            with self.subTest(service=service):
                with Load(send) as load:
                    load.wait_for(50)
                    self.system.kill(service)
                    before_restart = len(load.acknowledged)
                    self.system.start(service)
                    load.wait_for(before_restart + 50)
                self.assertGreater(sum(load.errors.values()), 0, "the kill was not noticed")
                self.assert_acknowledged_once(service, kind, load.acknowledged, get)

        # The KPIs count each activity once, whatever the relay re-published after the kill.
        activity_streams = {s: max(v) for s, v in streams_on_topic(self.system, "activity").items()}
        self.assertEqual(self.kpi_count("activities_logged", activity_streams.items()),
                         len(activity_streams))

    def test_broker_down_for_10_s_under_load_loses_nothing_and_relay_lag_returns_to_zero(self):
        with Load(self.create_contact) as load:
            load.wait_for(30)
            self.assertTrue(self.system.broker_control("down all").startswith("ok"))
            self.assertIn(":down:", self.system.broker_control("status"))
            # Commands keep being acknowledged while the broker is down: the store is the
            # source of truth, the relay catches up later.
            load.wait_for(len(load.acknowledged) + 30, timeout=10)
            time.sleep(10)  # the length of the outage is the fault under test, not a wait
            self.assertTrue(self.system.broker_control("up all").startswith("ok"))
            load.wait_for(len(load.acknowledged) + 30)
        get = lambda i: self.clients.contacts.GetContact(  # noqa: E731
            contact_service_pb2.GetContactRequest(contact_id=i), metadata=self.clients.admin,
            timeout=5)
        self.assert_acknowledged_once("contact", "contact", load.acknowledged, get)
        harness.wait_until(
            lambda: harness.metric_sum(self.system.metrics_page("contact"), "crm_relay_lag_events") == 0,
            timeout=60, interval=0.5, what="relay lag 0")

    def test_metrics_service_killed_mid_stream_answers_the_same_kpis(self):
        contact_id = unique("con")
        self.create_contact(contact_id)
        with Load(self.log_activity(contact_id)) as load:
            load.wait_for(100)
            self.system.kill("metrics")
            self.system.start("metrics")
            load.wait_for(len(load.acknowledged) + 100)
        streams = {s: max(v) for s, v in streams_on_topic(self.system, "activity").items()}
        restarted = self.kpi_count("activities_logged", streams.items())
        self.assertEqual(restarted, len(streams))
        # And a rebuild from offset 0 gives the same figure.
        response = self.clients.metrics.RebuildProjections(
            metrics_service_pb2.RebuildProjectionsRequest(), metadata=self.clients.admin,
            timeout=10)

        def swapped():
            status = self.clients.metrics.GetProjectionStatus(
                metrics_service_pb2.GetProjectionStatusRequest(), metadata=self.clients.admin,
                timeout=5)
            return status.receipt.generation == response.generation
        harness.wait_until(swapped, timeout=60, interval=0.2, what="the rebuild to swap in")
        self.assertEqual(self.kpi_count("activities_logged", streams.items()), restarted)

    def test_contact_service_down_commands_that_need_it_fail_unavailable_and_store_nothing(self):
        c = self.clients
        contact_id = unique("con")
        self.create_contact(contact_id)
        pipeline_id = unique("pipe")
        c.pipeline.DefinePipeline(pipeline_service_pb2.DefinePipelineRequest(
            pipeline_id=pipeline_id, display_name="Sales", request_id=pipeline_id,
            stages=[pipeline_pb2.Stage(stage_id="new", display_name="New", probability_bps=1000)]),
            metadata=c.admin, timeout=10)
        self.system.stop("contact")
        activity_id = unique("act")
        with self.assertRaises(grpc.RpcError) as raised:
            self.log_activity(contact_id)(activity_id)
        self.assertEqual(raised.exception.code(), grpc.StatusCode.UNAVAILABLE)
        opportunity_id = unique("opp")
        with self.assertRaises(grpc.RpcError) as raised:
            c.pipeline.OpenOpportunity(pipeline_service_pb2.OpenOpportunityRequest(
                opportunity_id=opportunity_id, request_id=opportunity_id,
                opportunity=pipeline_pb2.Opportunity(
                    display_name="x", pipeline_id=pipeline_id, stage_id="new",
                    contact_id=contact_id,
                    owner_id="rep-1", currency_code="EUR")),
                metadata=c.rep, timeout=10)
        self.assertEqual(raised.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.system.start("contact")
        # Nothing stored: neither record exists, and no event of theirs is on a topic.
        with self.assertRaises(grpc.RpcError) as raised:
            c.activities.GetActivity(activity_service_pb2.GetActivityRequest(
                activity_id=activity_id), metadata=c.admin, timeout=5)
        self.assertEqual(raised.exception.code(), grpc.StatusCode.NOT_FOUND)
        with self.assertRaises(grpc.RpcError) as raised:
            c.pipeline.GetOpportunity(pipeline_service_pb2.GetOpportunityRequest(
                opportunity_id=opportunity_id), metadata=c.admin, timeout=5)
        self.assertEqual(raised.exception.code(), grpc.StatusCode.NOT_FOUND)
        self.assertNotIn(f"activity/{activity_id}", streams_on_topic(self.system, "activity"))
        self.assertNotIn(f"opportunity/{opportunity_id}",
                         streams_on_topic(self.system, "pipeline"))
