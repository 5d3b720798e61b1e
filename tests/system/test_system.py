"""The whole system as its users see it: real processes, standard clients.

One System (dev broker + four services) is shared by the tests of a class; each test uses its
own ids so that the tests do not depend on each other's data.
"""

import datetime
import subprocess
import unittest
import uuid

from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2

from crm.activity.v1 import activity_pb2, activity_service_pb2, activity_service_pb2_grpc
from crm.contact.v1 import contact_pb2, contact_service_pb2, contact_service_pb2_grpc
from crm.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from crm.pipeline.v1 import pipeline_pb2, pipeline_service_pb2, pipeline_service_pb2_grpc
from stdproto import reflection_pb2, reflection_pb2_grpc

import harness
from harness import metadata, token

SERVICE_NAMES = {
    "contact": "crm.contact.v1.ContactService",
    "activity": "crm.activity.v1.ActivityService",
    "pipeline": "crm.pipeline.v1.PipelineService",
    "metrics": "crm.metrics.v1.MetricsService",
}


REP_SCOPES = ("contacts:read", "contacts:write", "activities:read", "activities:write",
              "pipeline:read", "pipeline:write", "metrics:read")


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def timestamp(moment):
    result = timestamp_pb2.Timestamp()
    result.FromDatetime(moment)
    return result


class Clients:
    """Stubs of the four services and tokens for an admin and a rep."""

    def __init__(self, system):
        self.contacts = contact_service_pb2_grpc.ContactServiceStub(system.channel("contact"))
        self.activities = activity_service_pb2_grpc.ActivityServiceStub(system.channel("activity"))
        self.pipeline = pipeline_service_pb2_grpc.PipelineServiceStub(system.channel("pipeline"))
        self.metrics = metrics_service_pb2_grpc.MetricsServiceStub(system.channel("metrics"))
        self.admin = metadata(token("admin-1", ("admin",)))
        self.rep = metadata(token("rep-1", REP_SCOPES))


class SystemTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.system = harness.System()
        cls.system.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.system.close()

    def setUp(self):
        self.clients = Clients(self.system)

    # --- standard protocols ------------------------------------------------------------------

    def test_every_service_is_healthy_and_reflects_its_api(self):
        for name, service in SERVICE_NAMES.items():
            with self.subTest(service=name):
                self.assertEqual(self.system.health(name), "SERVING")
                stub = reflection_pb2_grpc.ServerReflectionStub(self.system.channel(name))
                responses = list(stub.ServerReflectionInfo(
                    iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10))
                listed = {s.name for s in responses[0].list_services_response.service}
                self.assertIn(service, listed)
                self.assertIn("grpc.health.v1.Health", listed)
                # The descriptors are served too: a generic client can build requests.
                responses = list(stub.ServerReflectionInfo(
                    iter([reflection_pb2.ServerReflectionRequest(file_containing_symbol=service)]),
                    timeout=10))
                self.assertTrue(responses[0].file_descriptor_response.file_descriptor_proto)

    def test_every_metrics_page_passes_promtool(self):
        for name in SERVICE_NAMES:
            with self.subTest(service=name):
                page = self.system.metrics_page(name)
                self.assertIn("grpc_server", page)
                checked = subprocess.run(["promtool", "check", "metrics"], input=page.encode(),
                                         capture_output=True, timeout=60)
                self.assertEqual(checked.returncode, 0,
                                 checked.stdout.decode() + checked.stderr.decode())

    # --- a sale, through every service, read back from Kafka and the KPIs --------------------

    def test_a_sale_reaches_the_topics_and_the_kpis(self):
        c = self.clients
        now = datetime.datetime.now(datetime.timezone.utc)
        acknowledged = {}  # stream id -> last version a command returned

        def ack(kind, record_id, version):
            acknowledged[f"{kind}/{record_id}"] = version

        account_id = unique("acc")
        account = c.contacts.CreateAccount(contact_service_pb2.CreateAccountRequest(
            account_id=account_id, request_id=unique("req"),
            account=contact_pb2.Account(display_name="Acme", region="emea", owner_id="rep-1")),
            metadata=c.rep, timeout=10)
        ack("account", account_id, account.version)

        contact_id = unique("con")
        contact = c.contacts.CreateContact(contact_service_pb2.CreateContactRequest(
            contact_id=contact_id, request_id=unique("req"), channel="web_form",
            contact=contact_pb2.Contact(given_name="Ada", family_name="Lovelace",
                                        emails=["ada@example.com"], account_id=account_id,
                                        owner_id="rep-1", region="emea")),
            metadata=c.rep, timeout=10)
        self.assertEqual(contact.version, 1)
        contact = c.contacts.UpdateContact(contact_service_pb2.UpdateContactRequest(
            contact=contact_pb2.Contact(contact_id=contact_id, phones=["+442079460000"]),
            update_mask=field_mask_pb2.FieldMask(paths=["phones"]), expected_version=1,
            request_id=unique("req")), metadata=c.rep, timeout=10)
        self.assertEqual(contact.version, 2)
        ack("contact", contact_id, contact.version)
        got = c.contacts.GetContact(contact_service_pb2.GetContactRequest(contact_id=contact_id),
                                    metadata=c.rep, timeout=10)
        self.assertEqual(list(got.phones), ["+442079460000"])
        listed = c.contacts.ListContacts(contact_service_pb2.ListContactsRequest(
            account_id=account_id, page_size=10), metadata=c.rep, timeout=10)
        self.assertEqual([x.contact_id for x in listed.contacts], [contact_id])

        pipeline_id = unique("pipe")
        pipeline = c.pipeline.DefinePipeline(pipeline_service_pb2.DefinePipelineRequest(
            pipeline_id=pipeline_id, display_name="New business", request_id=unique("req"),
            stages=[pipeline_pb2.Stage(stage_id="discovery", display_name="Discovery",
                                       probability_bps=2000),
                    pipeline_pb2.Stage(stage_id="proposal", display_name="Proposal",
                                       probability_bps=6000)]),
            metadata=c.admin, timeout=10)
        ack("pipeline", pipeline_id, pipeline.revision)

        opportunity_id = unique("opp")
        opportunity = c.pipeline.OpenOpportunity(pipeline_service_pb2.OpenOpportunityRequest(
            opportunity_id=opportunity_id, request_id=unique("req"),
            opportunity=pipeline_pb2.Opportunity(
                display_name="Acme renewal", pipeline_id=pipeline_id, stage_id="discovery",
                account_id=account_id, contact_id=contact_id, owner_id="rep-1", region="emea",
                currency_code="EUR",
                lines=[pipeline_pb2.ProductLine(product_id="crm-pro", quantity=2,
                                                unit_price_minor=50_000, amount_minor=100_000)])),
            metadata=c.rep, timeout=10)
        opportunity = c.pipeline.MoveOpportunityStage(
            pipeline_service_pb2.MoveOpportunityStageRequest(
                opportunity_id=opportunity_id, stage_id="proposal",
                expected_version=opportunity.version, request_id=unique("req")),
            metadata=c.rep, timeout=10)

        activity_id = unique("act")
        visit = c.activities.LogActivity(activity_service_pb2.LogActivityRequest(
            activity_id=activity_id, request_id=unique("req"),
            activity=activity_pb2.Activity(
                type=activity_pb2.ACTIVITY_TYPE_VISIT, status=activity_pb2.ACTIVITY_STATUS_DONE,
                channel="field_sales", owner_id="rep-1", contact_id=contact_id,
                opportunity_id=opportunity_id, occurred_at=timestamp(now),
                subject="Renewal visit", body="Agreed on two seats.")),
            metadata=c.rep, timeout=10)
        ack("activity", activity_id, visit.version)

        opportunity = c.pipeline.CloseOpportunity(pipeline_service_pb2.CloseOpportunityRequest(
            opportunity_id=opportunity_id, outcome=pipeline_pb2.OPPORTUNITY_STATUS_WON,
            reason="signed", expected_version=opportunity.version, request_id=unique("req")),
            metadata=c.rep, timeout=10)
        self.assertEqual(opportunity.status, pipeline_pb2.OPPORTUNITY_STATUS_WON)
        ack("opportunity", opportunity_id, opportunity.version)

        # Every acknowledged stream is on its topic up to the version the command returned.
        # The relay publishes after the commit, so wait for it.
        def published():
            seen = {}
            for service in ("contact", "pipeline", "activity"):
                for _, _, envelope in self.system.read_topic(service):
                    seen[envelope.stream_id] = max(seen.get(envelope.stream_id, 0),
                                                   envelope.stream_version)
            missing = {s: v for s, v in acknowledged.items() if seen.get(s, 0) < v}
            return not missing
        harness.wait_until(published, timeout=30, interval=0.5, what="the events on the topics")

        # Read-your-writes across services: the KPI answer includes the won deal.
        request = metrics_service_pb2.QueryKpiRequest(
            kpi="won_revenue", period_kind=metrics_service_pb2.PERIOD_KIND_MONTH,
            start_time=timestamp(now - datetime.timedelta(days=1)),
            end_time=timestamp(now + datetime.timedelta(minutes=1)), group_by=["region"],
            filters=[metrics_service_pb2.DimensionFilter(dimension="region", values=["emea"])],
            consistency=metrics_service_pb2.Consistency(
                min_versions=[metrics_service_pb2.StreamVersion(
                    stream=f"opportunity/{opportunity_id}", version=opportunity.version)],
                max_wait=duration_pb2.Duration(seconds=20)))
        answer = c.metrics.QueryKpi(request, metadata=c.rep, timeout=30)
        amounts = [m.amount_minor for row in answer.result.rows for m in row.measures
                   if m.currency_code == "EUR"]
        self.assertEqual(sum(amounts), 100_000)
        self.assertTrue(answer.receipt.positions)
