"""Every KPI of KPIS.md, as metrics-service answers it, equals what an independent oracle
(kpi_oracle.py, Python, written from the specification) computes from the events read back
from Kafka with kcat. The scenario goes through the public APIs of the three command services
with backdated business times, several reps, an integration (kind=service) and the edge cases
the rules name: merges, archives, late reports at 47 h and 49 h, reopened deals, reassigned
and cancelled tasks, reopened cases, leads answered before capture.
"""

import datetime
import unittest
import uuid

from google.protobuf import field_mask_pb2

from crm.activity.v1 import activity_pb2 as A, activity_service_pb2 as AS, activity_service_pb2_grpc
from crm.common.v1 import common_pb2
from crm.contact.v1 import contact_pb2 as C, contact_service_pb2 as CS, contact_service_pb2_grpc
from crm.metrics.v1 import metrics_service_pb2 as M, metrics_service_pb2_grpc
from crm.pipeline.v1 import pipeline_pb2 as P, pipeline_service_pb2 as PS, pipeline_service_pb2_grpc

import harness
import kpi_oracle
from harness import metadata, token
from test_system import REP_SCOPES as SCOPES
from test_system import timestamp as ts

UTC = datetime.timezone.utc


def rid():
    return uuid.uuid4().hex


class KpiOracleEqualityTest(unittest.TestCase):
    def test_every_kpi_equals_the_independent_oracle(self):
        with harness.System() as system:
            self.run_scenario(system)
            self.compare(system)

    def run_scenario(self, system):
        cs = contact_service_pb2_grpc.ContactServiceStub(system.channel("contact"))
        acs = activity_service_pb2_grpc.ActivityServiceStub(system.channel("activity"))
        ps = pipeline_service_pb2_grpc.PipelineServiceStub(system.channel("pipeline"))
        admin = metadata(token("admin-1", ("admin",)))
        r1 = metadata(token("rep-1", SCOPES))
        r2 = metadata(token("rep-2", SCOPES))
        svc = metadata(token("importer", SCOPES, kind="service"))
        now0 = datetime.datetime.now(UTC).replace(microsecond=0)
        base = now0 - datetime.timedelta(days=12)
        self.base, self.now0 = base, now0
        h = lambda hours: base + datetime.timedelta(hours=hours)  # noqa: E731
        d = lambda days, hours=0: base + datetime.timedelta(days=days, hours=hours)  # noqa: E731

        ps.DefinePipeline(PS.DefinePipelineRequest(
            pipeline_id="pp", display_name="x", request_id=rid(), occurred_at=ts(h(-1)),
            stages=[P.Stage(stage_id="d", display_name="D", probability_bps=2000),
                    P.Stage(stage_id="p", display_name="P", probability_bps=6000),
                    P.Stage(stage_id="n", display_name="N", probability_bps=9000)]),
            metadata=admin, timeout=10)
        cs.CreateAccount(CS.CreateAccountRequest(account_id="acc", request_id=rid(),
                         occurred_at=ts(h(-1)), account=C.Account(display_name="Acme")),
                         metadata=r1, timeout=10)
        # contacts
        cs.CreateContact(CS.CreateContactRequest(contact_id="c1", request_id=rid(), channel="web_form",
            occurred_at=ts(h(0)), contact=C.Contact(given_name="A", emails=["a@x.com"],
            phones=["+442079460000"], account_id="acc", region="emea")), metadata=r1, timeout=10)
        c2 = cs.CreateContact(CS.CreateContactRequest(contact_id="c2", request_id=rid(), channel="phone",
            occurred_at=ts(h(1)), contact=C.Contact(given_name="B", emails=["b@x.com"],
            account_id="acc", region="emea")), metadata=r2, timeout=10)
        cs.UpdateContact(CS.UpdateContactRequest(contact=C.Contact(contact_id="c2", phones=["+442079460001"]),
            update_mask=field_mask_pb2.FieldMask(paths=["phones"]), expected_version=c2.version,
            request_id=rid(), occurred_at=ts(d(2))), metadata=r2, timeout=10)
        cs.CreateContact(CS.CreateContactRequest(contact_id="c3", request_id=rid(), channel="import",
            occurred_at=ts(h(2)), contact=C.Contact(given_name="C", owner_id="rep-2", region="apac")),
            metadata=svc, timeout=10)
        cs.CreateContact(CS.CreateContactRequest(contact_id="c4", request_id=rid(), channel="web_form",
            occurred_at=ts(d(1)), contact=C.Contact(given_name="A2", emails=["a@x.com"], region="emea")),
            metadata=r1, timeout=10)
        cs.MergeContacts(CS.MergeContactsRequest(winner_contact_id="c1", loser_contact_id="c4",
            request_id=rid(), occurred_at=ts(d(3))), metadata=r1, timeout=10)
        cs.ArchiveContact(CS.ArchiveContactRequest(contact_id="c3", request_id=rid(),
            occurred_at=ts(d(4))), metadata=r2, timeout=10)
        # leads
        ps.CaptureLead(PS.CaptureLeadRequest(lead_id="l1", request_id=rid(), occurred_at=ts(h(0)),
            lead=P.Lead(source="webinar", channel="web_form", person=P.LeadPerson(given_name="x"))),
            metadata=r1, timeout=10)
        acs.LogActivity(AS.LogActivityRequest(activity_id="la1", request_id=rid(), occurred_at=ts(h(0.5)),
            activity=A.Activity(type=A.ACTIVITY_TYPE_CALL, channel="phone", lead_id="l1")),
            metadata=r1, timeout=10)
        ps.QualifyLead(PS.QualifyLeadRequest(lead_id="l1", request_id=rid(), occurred_at=ts(d(1))),
                       metadata=r1, timeout=10)
        ps.CaptureLead(PS.CaptureLeadRequest(lead_id="l2", request_id=rid(), occurred_at=ts(h(1)),
            lead=P.Lead(source="trade_show", channel="phone", person=P.LeadPerson(given_name="y"))),
            metadata=svc, timeout=10)
        ps.DisqualifyLead(PS.DisqualifyLeadRequest(lead_id="l2", reason="no", request_id=rid(),
            occurred_at=ts(h(3))), metadata=r2, timeout=10)
        ps.CaptureLead(PS.CaptureLeadRequest(lead_id="l3", request_id=rid(), occurred_at=ts(d(2)),
            lead=P.Lead(source="webinar", channel="web_form", region="emea",
                        person=P.LeadPerson(given_name="z", email="z@x.com"),
                        company=P.LeadCompany(display_name="Zed"))), metadata=r1, timeout=10)
        ps.ConvertLead(PS.ConvertLeadRequest(lead_id="l3", request_id=rid(), occurred_at=ts(d(3)),
            opportunity=P.Opportunity(pipeline_id="pp", display_name="z", region="emea",
                currency_code="EUR", lines=[P.ProductLine(product_id="pro", quantity=3,
                unit_price_minor=333)])), metadata=r1, timeout=10)
        ps.CaptureLead(PS.CaptureLeadRequest(lead_id="l4", request_id=rid(), occurred_at=ts(d(5)),
            lead=P.Lead(source="webinar", channel="email", person=P.LeadPerson(given_name="w"))),
            metadata=r2, timeout=10)
        # opportunities
        ps.OpenOpportunity(PS.OpenOpportunityRequest(opportunity_id="o1", request_id=rid(),
            occurred_at=ts(h(0)), opportunity=P.Opportunity(pipeline_id="pp", display_name="o1",
            stage_id="d", account_id="acc", contact_id="c1", region="emea", currency_code="EUR",
            lines=[P.ProductLine(product_id="pro", quantity=2, unit_price_minor=50001),
                   P.ProductLine(product_id="basic", quantity=1, unit_price_minor=999)])),
            metadata=r1, timeout=10)
        ps.MoveOpportunityStage(PS.MoveOpportunityStageRequest(opportunity_id="o1", stage_id="p",
            request_id=rid(), occurred_at=ts(d(2))), metadata=r1, timeout=10)
        acs.LogActivity(AS.LogActivityRequest(activity_id="oa1", request_id=rid(), occurred_at=ts(d(6)),
            activity=A.Activity(type=A.ACTIVITY_TYPE_MEETING, channel="field_sales", contact_id="c1",
                                opportunity_id="o1", body="report")), metadata=r1, timeout=10)
        ps.CloseOpportunity(PS.CloseOpportunityRequest(opportunity_id="o1",
            outcome=P.OPPORTUNITY_STATUS_WON, reason="ok", request_id=rid(), occurred_at=ts(d(7, 5))),
            metadata=r1, timeout=10)
        ps.OpenOpportunity(PS.OpenOpportunityRequest(opportunity_id="o2", request_id=rid(),
            occurred_at=ts(d(1)), opportunity=P.Opportunity(pipeline_id="pp", display_name="o2",
            stage_id="d", account_id="acc", owner_id="rep-2", region="apac", currency_code="USD",
            lines=[P.ProductLine(product_id="pro", quantity=1, unit_price_minor=70000)])),
            metadata=r2, timeout=10)
        ps.CloseOpportunity(PS.CloseOpportunityRequest(opportunity_id="o2",
            outcome=P.OPPORTUNITY_STATUS_LOST, reason="price", request_id=rid(), occurred_at=ts(d(4))),
            metadata=r2, timeout=10)
        ps.ReopenOpportunity(PS.ReopenOpportunityRequest(opportunity_id="o2", stage_id="p",
            request_id=rid(), occurred_at=ts(d(5))), metadata=r2, timeout=10)
        close = (base + datetime.timedelta(days=3)).date()
        ps.OpenOpportunity(PS.OpenOpportunityRequest(opportunity_id="o3", request_id=rid(),
            occurred_at=ts(d(1)), opportunity=P.Opportunity(pipeline_id="pp", display_name="o3",
            stage_id="d", account_id="acc", region="emea", currency_code="EUR",
            expected_close_date=common_pb2.Date(year=close.year, month=close.month, day=close.day),
            lines=[P.ProductLine(product_id="basic", quantity=5, unit_price_minor=1001)])),
            metadata=r1, timeout=10)
        # activities
        acs.LogActivity(AS.LogActivityRequest(activity_id="v1", request_id=rid(), occurred_at=ts(d(1)),
            activity=A.Activity(type=A.ACTIVITY_TYPE_VISIT, channel="field_sales", contact_id="c1",
                                body="late report")), metadata=r1, timeout=10)  # recorded now
        acs.LogActivity(AS.LogActivityRequest(activity_id="m1", request_id=rid(), occurred_at=ts(d(2)),
            scheduled_time=ts(d(3)), activity=A.Activity(type=A.ACTIVITY_TYPE_MEETING,
            channel="phone", contact_id="c2")), metadata=r2, timeout=10)
        acs.CompleteActivity(AS.CompleteActivityRequest(activity_id="m1", body="done",
            request_id=rid(), occurred_at=ts(d(3))), metadata=r2, timeout=10)
        acs.LogActivity(AS.LogActivityRequest(activity_id="n1", request_id=rid(),
            activity=A.Activity(type=A.ACTIVITY_TYPE_NOTE, channel="web", contact_id="c2")),
            metadata=r2, timeout=10)
        # tasks
        for tid, due, done, who in (("t1", d(2), d(1), "complete"), ("t2", d(3), d(4), "complete"),
                                    ("t3", d(5), d(1), "cancel"), ("t4", d(6), d(7), "reassign")):
            acs.ScheduleTask(AS.ScheduleTaskRequest(task_id=tid, request_id=rid(), occurred_at=ts(h(0)),
                task=A.Task(title="t", due_time=ts(due), contact_id="c1")), metadata=r1, timeout=10)
            if who == "complete":
                acs.CompleteTask(AS.CompleteTaskRequest(task_id=tid, request_id=rid(),
                                 occurred_at=ts(done)), metadata=r1, timeout=10)
            elif who == "cancel":
                acs.CancelTask(AS.CancelTaskRequest(task_id=tid, reason="x", request_id=rid(),
                               occurred_at=ts(done)), metadata=r1, timeout=10)
            else:
                acs.ReassignTask(AS.ReassignTaskRequest(task_id=tid, assignee_id="rep-2",
                                 request_id=rid(), occurred_at=ts(done)), metadata=r1, timeout=10)
        # cases
        acs.OpenCase(AS.OpenCaseRequest(case_id="k1", request_id=rid(), occurred_at=ts(h(0)),
            case=A.Case(subject="s", channel="email", priority=A.CASE_PRIORITY_HIGH, contact_id="c1")),
            metadata=r1, timeout=10)
        acs.ResolveCase(AS.ResolveCaseRequest(case_id="k1", resolution="r", request_id=rid(),
                        occurred_at=ts(d(1))), metadata=r1, timeout=10)
        acs.ReopenCase(AS.ReopenCaseRequest(case_id="k1", reason="r", request_id=rid(),
                       occurred_at=ts(d(2))), metadata=r1, timeout=10)
        acs.ResolveCase(AS.ResolveCaseRequest(case_id="k1", resolution="r", request_id=rid(),
                        occurred_at=ts(d(3, 7))), metadata=r1, timeout=10)
        acs.OpenCase(AS.OpenCaseRequest(case_id="k2", request_id=rid(), occurred_at=ts(d(1)),
            case=A.Case(subject="s", channel="chat", priority=A.CASE_PRIORITY_LOW, contact_id="c2")),
            metadata=r2, timeout=10)

        # --- second batch: edge cases ---
        for oid, stage in (("o5", "n"), ("o6", "d")):
            ps.OpenOpportunity(PS.OpenOpportunityRequest(opportunity_id=oid, request_id=rid(),
                occurred_at=ts(d(-8)), opportunity=P.Opportunity(pipeline_id="pp", display_name=oid,
                stage_id="d", account_id="acc", owner_id="rep-2", region="emea", currency_code="EUR",
                lines=[P.ProductLine(product_id="pro", quantity=1, unit_price_minor=10)])),
                metadata=r2, timeout=10)
            ps.CloseOpportunity(PS.CloseOpportunityRequest(opportunity_id=oid,
                outcome=P.OPPORTUNITY_STATUS_LOST, reason="x", request_id=rid(), occurred_at=ts(d(-7))),
                metadata=r2, timeout=10)
            ps.ReopenOpportunity(PS.ReopenOpportunityRequest(opportunity_id=oid, stage_id=stage,
                request_id=rid(), occurred_at=ts(d(9))), metadata=r2, timeout=10)
        cs.CreateContact(CS.CreateContactRequest(contact_id="c5", request_id=rid(), channel="partner_api",
            occurred_at=ts(d(7)), contact=C.Contact(given_name="E", source_channel="trade_show",
            region="emea")), metadata=r1, timeout=10)
        cs.MergeContacts(CS.MergeContactsRequest(winner_contact_id="c2", loser_contact_id="c5",
            request_id=rid(), occurred_at=ts(d(8))), metadata=r1, timeout=10)
        now1 = datetime.datetime.now(UTC)
        for aid, hours, kind in (("v2", 47, A.ACTIVITY_TYPE_VISIT), ("v3", 49, A.ACTIVITY_TYPE_VISIT),
                                 ("v4", 23.9, A.ACTIVITY_TYPE_MEETING), ("v5", 0.01, A.ACTIVITY_TYPE_CALL)):
            acs.LogActivity(AS.LogActivityRequest(activity_id=aid, request_id=rid(),
                occurred_at=ts(now1 - datetime.timedelta(hours=hours)),
                activity=A.Activity(type=kind, channel="field_sales", contact_id="c1", body="r")),
                metadata=r1, timeout=10)
        ps.CaptureLead(PS.CaptureLeadRequest(lead_id="l5", request_id=rid(), occurred_at=ts(d(6)),
            lead=P.Lead(source="partner", channel="api", person=P.LeadPerson(given_name="q"))),
            metadata=r1, timeout=10)
        acs.LogActivity(AS.LogActivityRequest(activity_id="la5", request_id=rid(), occurred_at=ts(d(5)),
            activity=A.Activity(type=A.ACTIVITY_TYPE_EMAIL, channel="email", lead_id="l5")),
            metadata=r1, timeout=10)
        ps.OpenOpportunity(PS.OpenOpportunityRequest(opportunity_id="o7", request_id=rid(),
            occurred_at=ts(d(0)), opportunity=P.Opportunity(pipeline_id="pp", display_name="o7",
            stage_id="d", account_id="acc", region="emea", currency_code="EUR",
            lines=[P.ProductLine(product_id="pro", quantity=3, unit_price_minor=7)])),
            metadata=r1, timeout=10)
        ps.CloseOpportunity(PS.CloseOpportunityRequest(opportunity_id="o7",
            outcome=P.OPPORTUNITY_STATUS_WON, reason="x", request_id=rid(), occurred_at=ts(d(7))),
            metadata=r1, timeout=10)
        ps.ReopenOpportunity(PS.ReopenOpportunityRequest(opportunity_id="o7",
            request_id=rid(), occurred_at=ts(d(8))), metadata=r1, timeout=10)
        ps.UpdateOpportunity(PS.UpdateOpportunityRequest(opportunity=P.Opportunity(
            opportunity_id="o7", region="latam"), update_mask=field_mask_pb2.FieldMask(paths=["region"]),
            request_id=rid(), occurred_at=ts(d(8, 1))), metadata=r1, timeout=10)
        ps.CloseOpportunity(PS.CloseOpportunityRequest(opportunity_id="o7",
            outcome=P.OPPORTUNITY_STATUS_WON, reason="x", request_id=rid(), occurred_at=ts(d(9))),
            metadata=r1, timeout=10)


    def compare(self, system):
        ms = metrics_service_pb2_grpc.MetricsServiceStub(system.channel("metrics"))
        reader = metadata(token("rep-1", SCOPES))
        # Everything the command services acknowledged is on the topics once each relay has
        # caught up (lag 0 on every command service's /metrics).
        for service in ("contact", "activity", "pipeline"):
            harness.wait_until(
                lambda: harness.metric_sum(system.metrics_page(service), "crm_relay_lag_events") == 0,
                timeout=30, interval=0.2, what=f"{service}'s relay to catch up")
        envelopes = []
        for service in ("contact", "activity", "pipeline"):
            envelopes += [e for _, _, e in system.read_topic(service)]
        versions = {}
        for e in envelopes:
            versions[e.stream_id] = max(versions.get(e.stream_id, 0), e.stream_version)
        self.assertGreater(len(envelopes), 60)
        consistency = M.Consistency(min_versions=[M.StreamVersion(stream=s, version=v)
                                                  for s, v in versions.items()])
        consistency.max_wait.seconds = 30

        served = ms.ListKpiDefinitions(M.ListKpiDefinitionsRequest(), metadata=reader, timeout=10)
        self.assertEqual(
            {x.name: (tuple(x.dimensions), list(x.measures))
             for x in served.definitions},
            {kpi: (dims, [m for m, _ in measures])
             for kpi, (dims, measures) in kpi_oracle.DEFINITIONS.items()})

        oracle = kpi_oracle.KpiOracle(envelopes)
        start = self.base - datetime.timedelta(days=8)
        end = self.now0 + datetime.timedelta(days=1)
        compared = 0
        for kpi, (dims, _) in kpi_oracle.DEFINITIONS.items():
            for kind, period_kind in (("week", M.PERIOD_KIND_ISO_WEEK),
                                      ("month", M.PERIOD_KIND_MONTH)):
                groupings = [(), tuple(dims)] + [(x,) for x in dims] if dims else [()]
                for group_by in groupings:
                    with self.subTest(kpi=kpi, period=kind, group_by=group_by):
                        answer = ms.QueryKpi(M.QueryKpiRequest(
                            kpi=kpi, period_kind=period_kind, start_time=ts(start),
                            end_time=ts(end), group_by=list(group_by), consistency=consistency),
                            metadata=reader, timeout=40)
                        now = answer.receipt.compute_time.ToDatetime(tzinfo=UTC)
                        expected = oracle.query(kpi, kind, start, end, now, group_by)
                        actual = kpi_oracle.rows_from_result(answer.result)
                        self.assertEqual(kpi_oracle.differences(expected, actual), [])
                        compared += 1
        self.assertGreater(compared, 100)

