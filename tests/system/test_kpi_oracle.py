"""Unit tests of kpi_oracle on tiny hand-built event logs (no processes, no network).

Every expected figure is worked out by hand in the comments beside it. Times are in ISO week
2026-W47 (Monday 2026-11-16 00:00 UTC to Monday 2026-11-23) unless said otherwise.
"""

import collections
import datetime
import random
import unittest

from crm.activity.v1 import activity_pb2 as act
from crm.activity.v1 import events_pb2 as activity_events
from crm.common.v1 import common_pb2
from crm.contact.v1 import contact_pb2
from crm.contact.v1 import events_pb2 as contact_events
from crm.events.v1 import envelope_pb2
from crm.metrics.v1 import metrics_service_pb2 as metrics
from crm.pipeline.v1 import events_pb2 as pipeline_events
from crm.pipeline.v1 import pipeline_pb2 as pip

import kpi_oracle
from kpi_oracle import KpiOracle, Quantile

UTC = datetime.timezone.utc


def day(d, hour=0, minute=0, second=0, month=11):
    """2026-<month>-<d> hour:minute:second UTC."""
    return datetime.datetime(2026, month, d, hour, minute, second, tzinfo=UTC)


MON = 16  # 2026-11-16 is the Monday of 2026-W47
TUE, WED, THU, FRI, SAT, SUN = 17, 18, 19, 20, 21, 22
W47 = (day(MON), day(MON + 7))
LATER = day(30, month=12)  # a "now" long after every event


def set_time(timestamp, when):
    us = kpi_oracle.dt_us(when)
    timestamp.seconds, timestamp.nanos = us // 1_000_000, (us % 1_000_000) * 1000


class Log:
    """Envelopes with per-stream versions, as the services would publish them."""

    def __init__(self):
        self.envelopes = []
        self.versions = collections.Counter()

    def add(self, stream, payload, occurred, recorded=None, actor="alice",
            kind=common_pb2.ACTOR_KIND_USER, channel="web"):
        self.versions[stream] += 1
        envelope = envelope_pb2.EventEnvelope(
            event_id=f"{stream}#{self.versions[stream]}", stream_id=stream,
            stream_type=stream.split("/")[0], stream_version=self.versions[stream],
            position=len(self.envelopes) + 1, actor_id=actor, actor_kind=kind, channel=channel)
        set_time(envelope.occurred_at, occurred)
        set_time(envelope.recorded_at, recorded or occurred)
        envelope.payload.Pack(payload)
        self.envelopes.append(envelope)
        return envelope

    # activities ---------------------------------------------------------------------------
    def activity(self, activity_id, occurred, type=act.ACTIVITY_TYPE_CALL, owner="alice",
                 channel="phone", body="", recorded=None, opportunity="", lead="",
                 scheduled_for=None):
        """Logs an activity: DONE at `occurred`, or SCHEDULED (logged at `occurred`) for
        `scheduled_for`."""
        a = act.Activity(activity_id=activity_id, type=type, owner_id=owner, channel=channel,
                         body=body, opportunity_id=opportunity, lead_id=lead,
                         status=(act.ACTIVITY_STATUS_SCHEDULED if scheduled_for
                                 else act.ACTIVITY_STATUS_DONE))
        set_time(a.occurred_at, scheduled_for or occurred)
        self.add(f"activity/{activity_id}", activity_events.ActivityLogged(activity=a), occurred,
                 recorded, actor=owner)
        return a

    def update_activity(self, a, occurred, recorded=None, **fields):
        after = act.Activity()
        after.CopyFrom(a)
        for name, value in fields.items():
            setattr(after, name, value)
        self.add(f"activity/{a.activity_id}", activity_events.ActivityUpdated(activity=after),
                 occurred, recorded, actor=a.owner_id)
        return after

    def complete_activity(self, a, occurred, recorded=None, body=""):
        after = act.Activity()
        after.CopyFrom(a)
        after.status = act.ACTIVITY_STATUS_DONE
        set_time(after.occurred_at, occurred)
        if body:
            after.body = body
        self.add(f"activity/{a.activity_id}", activity_events.ActivityCompleted(activity=after),
                 occurred, recorded, actor=a.owner_id)
        return after

    def cancel_activity(self, a, occurred):
        after = act.Activity()
        after.CopyFrom(a)
        after.status = act.ACTIVITY_STATUS_CANCELLED
        self.add(f"activity/{a.activity_id}", activity_events.ActivityCancelled(activity=after),
                 occurred, actor=a.owner_id)
        return after

    # tasks --------------------------------------------------------------------------------
    def task(self, task_id, scheduled, due, assignee="alice"):
        t = act.Task(task_id=task_id, title="t", assignee_id=assignee,
                     status=act.TASK_STATUS_OPEN)
        set_time(t.due_time, due)
        self.add(f"task/{task_id}", activity_events.TaskScheduled(task=t), scheduled)
        return t

    def task_change(self, t, event_cls, occurred, **fields):
        after = act.Task()
        after.CopyFrom(t)
        for name, value in fields.items():
            setattr(after, name, value)
        if event_cls is activity_events.TaskCompleted:
            after.status = act.TASK_STATUS_COMPLETED
            set_time(after.complete_time, occurred)
        elif event_cls is activity_events.TaskCancelled:
            after.status = act.TASK_STATUS_CANCELLED
        self.add(f"task/{t.task_id}", event_cls(task=after), occurred)
        return after

    # cases --------------------------------------------------------------------------------
    def case(self, case_id, opened, priority, channel):
        c = act.Case(case_id=case_id, subject="s", channel=channel, priority=priority,
                     status=act.CASE_STATUS_OPEN, contact_id="c")
        set_time(c.open_time, opened)
        self.add(f"case/{case_id}", activity_events.CaseOpened(case=c), opened)
        return c

    def case_change(self, c, event_cls, occurred):
        after = act.Case()
        after.CopyFrom(c)
        if event_cls is activity_events.CaseResolved:
            after.status = act.CASE_STATUS_RESOLVED
            set_time(after.resolve_time, occurred)
        elif event_cls is activity_events.CaseReopened:
            after.status = act.CASE_STATUS_OPEN
            after.ClearField("resolve_time")
            after.reopen_count += 1
        self.add(f"case/{c.case_id}", event_cls(case=after), occurred)
        return after

    # leads --------------------------------------------------------------------------------
    def lead(self, lead_id, captured, source, channel):
        lead = pip.Lead(lead_id=lead_id, source=source, channel=channel,
                        status=pip.LEAD_STATUS_NEW)
        self.add(f"lead/{lead_id}", pipeline_events.LeadCaptured(lead=lead), captured)
        return lead

    def lead_change(self, lead, event_cls, status, occurred):
        after = pip.Lead()
        after.CopyFrom(lead)
        after.status = status
        self.add(f"lead/{lead.lead_id}", event_cls(lead=after), occurred)
        return after

    # pipelines and opportunities ---------------------------------------------------------
    def pipeline(self, pipeline_id, revision, stages, occurred):
        p = pip.Pipeline(pipeline_id=pipeline_id, revision=revision,
                         stages=[pip.Stage(stage_id=s, probability_bps=b) for s, b in stages])
        self.add(f"pipeline/{pipeline_id}", pipeline_events.PipelineDefined(pipeline=p),
                 occurred)

    def opportunity(self, opportunity_id, opened, stage, owner="alice", region="north",
                    currency="EUR", amount=0, lines=(), probability=0, pipeline="p1",
                    revision=1, close_date=None):
        o = pip.Opportunity(opportunity_id=opportunity_id, pipeline_id=pipeline,
                            pipeline_revision=revision, stage_id=stage,
                            stage_probability_bps=probability, owner_id=owner, region=region,
                            currency_code=currency, status=pip.OPPORTUNITY_STATUS_OPEN)
        for product, quantity, price in lines:
            o.lines.add(product_id=product, quantity=quantity, unit_price_minor=price,
                        amount_minor=quantity * price)
        o.amount_minor = amount or sum(q * p for _, q, p in lines)
        if close_date:
            o.expected_close_date.CopyFrom(
                common_pb2.Date(year=close_date.year, month=close_date.month, day=close_date.day))
        self.add(f"opportunity/{opportunity_id}", pipeline_events.OpportunityOpened(opportunity=o),
                 opened)
        return o

    def opportunity_change(self, o, event_cls, occurred, **fields):
        after = pip.Opportunity()
        after.CopyFrom(o)
        for name, value in fields.items():
            setattr(after, name, value)
        if event_cls is pipeline_events.OpportunityWon:
            after.status = pip.OPPORTUNITY_STATUS_WON
        elif event_cls is pipeline_events.OpportunityLost:
            after.status = pip.OPPORTUNITY_STATUS_LOST
        elif event_cls is pipeline_events.OpportunityReopened:
            after.status = pip.OPPORTUNITY_STATUS_OPEN
        self.add(f"opportunity/{o.opportunity_id}", event_cls(opportunity=after), occurred)
        return after

    # contacts -----------------------------------------------------------------------------
    def contact(self, contact_id, created, owner="alice", region="north", emails=("x@y.z",),
                phones=("+331",), account="a1", channel="web", source_channel=""):
        c = contact_pb2.Contact(contact_id=contact_id, owner_id=owner, region=region,
                                emails=list(emails), phones=list(phones), account_id=account,
                                source_channel=source_channel or channel)
        self.add(f"contact/{contact_id}", contact_events.ContactCreated(contact=c), created,
                 channel=channel)
        return c

    def update_contact(self, c, occurred, **fields):
        after = contact_pb2.Contact()
        after.CopyFrom(c)
        for name, value in fields.items():
            if isinstance(value, (list, tuple)):
                getattr(after, name)[:] = value
            else:
                setattr(after, name, value)
        self.add(f"contact/{c.contact_id}", contact_events.ContactUpdated(contact=after),
                 occurred)
        return after

    def merge(self, loser, winner, occurred):
        self.add(f"contact/{winner.contact_id}",
                 contact_events.ContactAbsorbedDuplicate(contact=winner,
                                                         loser_contact_id=loser.contact_id),
                 occurred)
        self.add(f"contact/{loser.contact_id}",
                 contact_events.ContactMergedInto(contact_id=loser.contact_id,
                                                  winner_contact_id=winner.contact_id,
                                                  source_channel=loser.source_channel),
                 occurred)


def week(oracle, kpi, group_by=(), now=LATER, start=W47[0], end=W47[1], filters=None):
    return oracle.query(kpi, "week", start, end, now, group_by=group_by, filters=filters)


class PeriodTest(unittest.TestCase):
    def test_labels_and_bounds(self):
        # decisions/periods: Sunday 2027-01-03 is in 2026-W53; 2024-12-31 is in 2025-W01.
        self.assertEqual(kpi_oracle.period_of("week", kpi_oracle.dt_us(
            datetime.datetime(2027, 1, 3, 23, tzinfo=UTC)))[0], "2026-W53")
        self.assertEqual(kpi_oracle.period_of("week", kpi_oracle.dt_us(
            datetime.datetime(2024, 12, 31, tzinfo=UTC)))[0], "2025-W01")
        # [Nov 20, Jan 1) overlaps months 2026-11 and 2026-12.
        self.assertEqual([p[0] for p in kpi_oracle.periods("month", day(20), day(1, month=12)
                                                            + datetime.timedelta(days=31))],
                         ["2026-11", "2026-12"])
        # [Wed W47, Mon W48 00:00) is W47 only: the end is exclusive.
        self.assertEqual([p[0] for p in kpi_oracle.periods("week", day(WED), day(MON + 7))],
                         ["2026-W47"])

    def test_nearest_rank_and_rounding(self):
        # ranks: ceil(0.5 x 4) = 2 -> 20; ceil(0.9 x 4) = 4 -> 40; ceil(0.5 x 1) = 1.
        self.assertEqual(kpi_oracle.nearest_rank([40, 10, 30, 20], 50), 20)
        self.assertEqual(kpi_oracle.nearest_rank([40, 10, 30, 20], 90), 40)
        self.assertEqual(kpi_oracle.nearest_rank([7], 50), 7)
        self.assertIsNone(kpi_oracle.nearest_rank([], 50))
        self.assertEqual(kpi_oracle.div_toward_zero(-7, 2), -3)
        self.assertEqual(kpi_oracle.div_toward_zero(7, 2), 3)


class ActivityKpiTest(unittest.TestCase):
    def test_activities_logged_done_only_by_activity_time_deduplicated(self):
        log = Log()
        log.activity("a1", day(MON, 10))  # alice call phone, DONE
        log.activity("a2", day(TUE, 9), type=act.ACTIVITY_TYPE_VISIT, owner="bob",
                     channel="field")
        log.activity("a3", day(MON, 8), type=act.ACTIVITY_TYPE_MEETING,
                     scheduled_for=day(WED, 10))  # scheduled, never done: not counted
        # Scheduled Monday for next Monday (W48), completed Friday: counts in W47 (decision 42).
        a4 = log.activity("a4", day(MON, 8), type=act.ACTIVITY_TYPE_VISIT, channel="field",
                          scheduled_for=day(MON + 7, 10))
        log.complete_activity(a4, day(FRI, 15))
        a5 = log.activity("a5", day(MON, 8), scheduled_for=day(TUE, 10))
        log.cancel_activity(a5, day(MON, 9))  # cancelled: not counted
        envelopes = log.envelopes + [log.envelopes[0]]  # a1 delivered twice
        oracle = KpiOracle(envelopes)
        # alice: a1 + a4 = 2; bob: a2 = 1.
        self.assertEqual(week(oracle, "activities_logged", ("rep",)), {
            ("2026-W47", ("alice",)): {"count": 2},
            ("2026-W47", ("bob",)): {"count": 1}})
        # by type: call a1; visit a2, a4.
        self.assertEqual(week(oracle, "activities_logged", ("type",)), {
            ("2026-W47", ("call",)): {"count": 1},
            ("2026-W47", ("visit",)): {"count": 2}})
        # next week: a4 moved out of it by its completion, nothing else; ungrouped queries
        # have one row per period even when it is empty.
        self.assertEqual(week(oracle, "activities_logged", start=day(MON + 7),
                              end=day(MON + 14)), {("2026-W48", ()): {"count": 0}})
        self.assertEqual(week(oracle, "activities_logged", ("rep",), start=day(MON + 7),
                              end=day(MON + 14)), {})
        # filter channel=phone, no grouping: a1 only.
        self.assertEqual(week(oracle, "activities_logged", filters={"channel": ["phone"]}),
                         {("2026-W47", ()): {"count": 1}})

    def test_visit_report_compliance(self):
        log = Log()
        # v1 visit at Mon 10:00 logged with its report at Mon 12:00: compliant.
        log.activity("v1", day(MON, 10), type=act.ACTIVITY_TYPE_VISIT, body="report",
                     recorded=day(MON, 12))
        # v2 meeting at Tue 10:00, report added exactly 48 h later: compliant (at or before).
        v2 = log.activity("v2", day(TUE, 10), type=act.ACTIVITY_TYPE_MEETING,
                          recorded=day(TUE, 11))
        log.update_activity(v2, day(THU, 10), recorded=day(THU, 10), body="report")
        # v3 visit at Tue 10:00, report 49 h later: not compliant.
        v3 = log.activity("v3", day(TUE, 10), type=act.ACTIVITY_TYPE_VISIT)
        log.update_activity(v3, day(THU, 11), recorded=day(THU, 11), body="report")
        # v4 visit at Wed 09:00 logged (with report) on Sat: counts by its recorded_at, late.
        log.activity("v4", day(WED, 9), type=act.ACTIVITY_TYPE_VISIT, body="report",
                     recorded=day(SAT, 10))
        log.activity("c1", day(WED, 9), body="not a visit")  # a call: not a visit
        oracle = KpiOracle(log.envelopes)
        # compliant v1, v2 = 2 of 4 visits.
        self.assertEqual(week(oracle, "visit_report_compliance", ("rep",)), {
            ("2026-W47", ("alice",)): {"compliant": 2, "visits": 4, "ratio": (2, 4)}})

    def test_logging_delay_seconds(self):
        log = Log()
        log.activity("d1", day(MON, 10), owner="bob", recorded=day(MON, 10, 0, 30))  # 30 s
        log.activity("d2", day(MON, 12), owner="bob", recorded=day(TUE, 12))  # 86400 s
        log.activity("d3", day(TUE, 0), owner="bob", recorded=day(WED, 1))  # 90000 s
        # Scheduled Mon for Tue 10:00, completed then: first recorded_at (Mon 08:00) is before
        # occurred_at (Tue 10:00), so it is left out.
        d4 = log.activity("d4", day(MON, 8), owner="bob", scheduled_for=day(TUE, 10))
        log.complete_activity(d4, day(TUE, 10), recorded=day(TUE, 10, 5))
        oracle = KpiOracle(log.envelopes)
        # sample [30, 86400, 90000]: p50 rank ceil(1.5) = 2 -> 86400; p90 rank ceil(2.7) = 3 ->
        # 90000; within 24 h (<=): 30 and 86400 -> (2, 3).
        self.assertEqual(week(oracle, "logging_delay_seconds", ("rep",)), {
            ("2026-W47", ("bob",)): {"p50_seconds": Quantile(86400.0, 3),
                                     "p90_seconds": Quantile(90000.0, 3),
                                     "within_24h": (2, 3)}})

    def test_active_reps_by_recorded_at_users_only(self):
        log = Log()
        account = contact_events.AccountCreated()
        log.add("account/a1", account, day(MON, 1), actor="alice")
        log.add("account/a2", account, day(TUE, 1), actor="alice")
        log.add("account/a3", account, day(TUE, 2), actor="bob")
        log.add("account/a4", account, day(TUE, 3), actor="importer",
                kind=common_pb2.ACTOR_KIND_SERVICE)  # an integration: not a rep
        log.add("account/a5", account, day(TUE, 4), actor="dave",
                kind=common_pb2.ACTOR_KIND_UNSPECIFIED)  # the default kind is user
        # occurred in W47 but recorded in W48: counts in W48 only.
        log.add("account/a6", account, day(SUN, 20), recorded=day(MON + 7, 9), actor="carol")
        oracle = KpiOracle(log.envelopes)
        # W47: alice, bob, dave = 3; W48: carol = 1.
        self.assertEqual(week(oracle, "active_reps", end=day(MON + 14)), {
            ("2026-W47", ()): {"count": 3},
            ("2026-W48", ()): {"count": 1}})


class ContactKpiTest(unittest.TestCase):
    def test_contact_completeness_ratio_as_of_end_of_period(self):
        log = Log()
        now = day(WED, 12)
        c1 = log.contact("c1", day(10))  # complete, alice/north
        c2 = log.contact("c2", day(10), phones=())  # no phone
        log.update_contact(c2, day(TUE), phones=["+332"])  # complete from Tuesday
        log.contact("c3", day(10), owner="bob", region="south")
        log.add("contact/c3", contact_events.ContactArchived(contact_id="c3"), day(11))
        log.add("contact/c3", contact_events.ContactRestored(contact_id="c3"), day(TUE, 10))
        c4 = log.contact("c4", day(10), owner="bob", region="south")
        log.merge(c4, c1, day(TUE))  # c4 merged away Tuesday: not live after
        log.contact("c5", day(THU))  # created after now
        c6 = log.contact("c6", day(10))
        log.update_contact(c6, day(TUE), owner_id="bob")  # owner alice until Tuesday
        oracle = KpiOracle(log.envelopes)
        result = oracle.query("contact_completeness_ratio", "week", day(9), W47[1], now,
                              group_by=("owner", "region"))
        self.assertEqual(result, {
            # W46 at its end (Mon 16 00:00): live c1, c2 (incomplete), c4, c6 (alice); c3
            # archived. alice/north: c1, c6 complete of c1, c2, c6 -> (2, 3); bob/south: c4.
            ("2026-W46", ("alice", "north")): {"complete": 2, "contacts": 3, "ratio": (2, 3)},
            ("2026-W46", ("bob", "south")): {"complete": 1, "contacts": 1, "ratio": (1, 1)},
            # W47 at now (Wed 12:00): c1, c2 complete (alice); c6 now bob's; c3 restored;
            # c4 merged away; c5 not yet created.
            ("2026-W47", ("alice", "north")): {"complete": 2, "contacts": 2, "ratio": (2, 2)},
            ("2026-W47", ("bob", "north")): {"complete": 1, "contacts": 1, "ratio": (1, 1)},
            ("2026-W47", ("bob", "south")): {"complete": 1, "contacts": 1, "ratio": (1, 1)},
        })
        # A period starting after now has no state (decisions.md 42): no groups, and the
        # ungrouped row is empty.
        self.assertEqual(oracle.query("contact_completeness_ratio", "week", day(MON + 7),
                                      day(MON + 14), now, ("owner",)), {})
        self.assertEqual(oracle.query("contact_completeness_ratio", "week", day(MON + 7),
                                      day(MON + 14), now),
                         {("2026-W48", ()): {"complete": 0, "contacts": 0, "ratio": (0, 0)}})
        # Ungrouped W47: 4 complete of 4.
        self.assertEqual(oracle.query("contact_completeness_ratio", "week", *W47, now),
                         {("2026-W47", ()): {"complete": 4, "contacts": 4, "ratio": (4, 4)}})

    def test_duplicate_rate(self):
        log = Log()
        k1 = log.contact("k1", day(MON), channel="web_form")
        k2 = log.contact("k2", day(MON, 1), channel="web_form")
        # No request channel: the creation channel is the contact's source channel.
        k3 = log.contact("k3", day(TUE), channel="", source_channel="import")
        k4 = log.contact("k4", day(TUE, 1), channel="field_sales")
        # k5 created in W46 through field_sales with source channel "partner": the request's
        # channel wins (decision 42), whatever ContactMergedInto.source_channel says.
        k5 = log.contact("k5", day(12), channel="field_sales", source_channel="partner")
        log.merge(k2, k1, day(WED))
        log.merge(k5, k4, day(WED, 1))
        log.merge(k3, k1, day(MON + 8))  # W48
        oracle = KpiOracle(log.envelopes)
        # web_form: merged k2 / created k1, k2 -> (1, 2); import: 0 / k3 -> (0, 1);
        # field_sales: merged k5 / created k4 -> (1, 1).
        self.assertEqual(week(oracle, "duplicate_rate", ("channel",)), {
            ("2026-W47", ("field_sales",)): {"merged": 1, "created": 1, "per_100": (1, 1)},
            ("2026-W47", ("import",)): {"merged": 0, "created": 1, "per_100": (0, 1)},
            ("2026-W47", ("web_form",)): {"merged": 1, "created": 2, "per_100": (1, 2)}})
        # all channels: 2 merged / 4 created.
        self.assertEqual(week(oracle, "duplicate_rate"), {
            ("2026-W47", ()): {"merged": 2, "created": 4, "per_100": (2, 4)}})


class OpenOpportunityKpiTest(unittest.TestCase):
    """At e = end of W46 = Mon 2026-11-16 00:00 (now is later)."""

    def setUp(self):
        log = Log()
        w46 = (day(9), day(MON))
        # o1: alice EUR 10005 at s1 (1000 bps), activity Nov 12 -> covered, not stale.
        log.opportunity("o1", day(20, month=10), "s1", amount=10005, probability=1000,
                        close_date=datetime.date(2026, 12, 1))
        log.activity("x1", day(12), opportunity="o1")
        # o2: alice EUR 20001, moved to s2 (5000 bps) Nov 5 -> not stale; activity Nov 8 23:59
        # is before e - 7 days (Nov 9) -> not covered.
        o2 = log.opportunity("o2", day(20, month=10), "s1", amount=20001, probability=1000)
        log.opportunity_change(o2, pipeline_events.OpportunityStageMoved, day(5), stage_id="s2",
                               stage_probability_bps=5000)
        log.activity("x2", day(8, 23, 59), opportunity="o2")
        # o3: bob USD 5000 at s1, nothing for 14 days -> stale, not covered; a scheduled
        # (never done) activity on Nov 15 does not count.
        log.opportunity("o3", day(1), "s1", owner="bob", currency="USD", amount=5000,
                        probability=1000)
        log.activity("x3", day(1), opportunity="o3", scheduled_for=day(15))
        # o4: bob USD 3333 at s2 opened Nov 10 (a recent stage entry) but expected to close
        # Nov 15: that whole day lies before e -> stale.
        log.opportunity("o4", day(10), "s2", owner="bob", currency="USD", amount=3333,
                        probability=5000, close_date=datetime.date(2026, 11, 15))
        # o5 won Nov 1, o6 lost Nov 1 and reopened Nov 20: both closed at e.
        o5 = log.opportunity("o5", day(1, month=10), "s1", amount=1)
        log.opportunity_change(o5, pipeline_events.OpportunityWon, day(1))
        o6 = log.opportunity("o6", day(1, month=10), "s1", amount=1)
        o6 = log.opportunity_change(o6, pipeline_events.OpportunityLost, day(1))
        log.opportunity_change(o6, pipeline_events.OpportunityReopened, day(20))
        # o7 opened exactly at e: not before e, not open.
        log.opportunity("o7", day(MON), "s1", amount=1)
        self.oracle = KpiOracle(log.envelopes)
        self.w46 = w46

    def test_open_deal_coverage(self):
        # alice: o1 covered of o1, o2; bob: none of o3, o4.
        self.assertEqual(week(self.oracle, "open_deal_coverage", ("owner",), start=self.w46[0],
                              end=self.w46[1]), {
            ("2026-W46", ("alice",)): {"covered": 1, "open": 2, "ratio": (1, 2)},
            ("2026-W46", ("bob",)): {"covered": 0, "open": 2, "ratio": (0, 2)}})

    def test_stale_opportunities(self):
        self.assertEqual(week(self.oracle, "stale_opportunities", ("owner", "stage"),
                              start=self.w46[0], end=self.w46[1]), {
            ("2026-W46", ("bob", "s1")): {"count": 1},  # o3
            ("2026-W46", ("bob", "s2")): {"count": 1}})  # o4

    def test_pipeline_value_rounds_once(self):
        self.assertEqual(week(self.oracle, "pipeline_value", ("stage", "owner"),
                              start=self.w46[0], end=self.w46[1]), {
            # o1: 10005 x 1000 / 10000 = 1000.5 -> 1000
            ("2026-W46", ("s1", "alice")): {"amount": {"EUR": 10005},
                                            "weighted_amount": {"EUR": 1000}},
            # o3: 5000 x 1000 / 10000 = 500
            ("2026-W46", ("s1", "bob")): {"amount": {"USD": 5000},
                                          "weighted_amount": {"USD": 500}},
            # o2: 20001 x 5000 / 10000 = 10000.5 -> 10000
            ("2026-W46", ("s2", "alice")): {"amount": {"EUR": 20001},
                                            "weighted_amount": {"EUR": 10000}},
            # o4: 3333 x 5000 / 10000 = 1666.5 -> 1666
            ("2026-W46", ("s2", "bob")): {"amount": {"USD": 3333},
                                          "weighted_amount": {"USD": 1666}}})
        # All together: EUR (10005000 + 100005000) / 10000 = 11001 exactly (rounding each
        # would give 11000); USD (5000000 + 16665000) / 10000 = 2166.5 -> 2166.
        self.assertEqual(week(self.oracle, "pipeline_value", start=self.w46[0],
                              end=self.w46[1]), {
            ("2026-W46", ()): {"amount": {"EUR": 30006, "USD": 8333},
                               "weighted_amount": {"EUR": 11001, "USD": 2166}}})


class TaskKpiTest(unittest.TestCase):
    def test_tasks_on_time_ratio(self):
        log = Log()
        t1 = log.task("t1", day(MON), day(WED, 12))
        log.task_change(t1, activity_events.TaskCompleted, day(WED, 11))  # on time
        t2 = log.task("t2", day(MON), day(WED, 12))
        log.task_change(t2, activity_events.TaskCompleted, day(WED, 12))  # exactly: on time
        t3 = log.task("t3", day(MON), day(THU, 12))
        log.task_change(t3, activity_events.TaskCompleted, day(FRI))  # late
        t4 = log.task("t4", day(MON), day(THU, 12))
        log.task_change(t4, activity_events.TaskCancelled, day(TUE))  # not due
        # t5 due Fri for alice, handed to bob on Sat and done Sunday: late, alice's.
        t5 = log.task("t5", day(MON), day(FRI, 12))
        t5 = log.task_change(t5, activity_events.TaskReassigned, day(SAT), assignee_id="bob")
        log.task_change(t5, activity_events.TaskCompleted, day(SUN))
        log.task("t6", day(MON), day(FRI, 12), assignee="bob")  # still open: due, not on time
        log.task("t7", day(MON), day(MON + 7, 12))  # due next week
        # t8 handed from alice to bob Tuesday, due Thursday, done Wednesday: bob's, on time.
        t8 = log.task("t8", day(MON), day(THU, 12))
        t8 = log.task_change(t8, activity_events.TaskReassigned, day(TUE), assignee_id="bob")
        log.task_change(t8, activity_events.TaskCompleted, day(WED))
        oracle = KpiOracle(log.envelopes)
        # alice: due t1, t2, t3, t5 = 4, on time t1, t2 = 2; bob: due t6, t8, on time t8.
        self.assertEqual(week(oracle, "tasks_on_time_ratio", ("rep",)), {
            ("2026-W47", ("alice",)): {"on_time": 2, "due": 4, "ratio": (2, 4)},
            ("2026-W47", ("bob",)): {"on_time": 1, "due": 2, "ratio": (1, 2)}})


class LeadKpiTest(unittest.TestCase):
    def setUp(self):
        log = Log()
        Q, D, C = (pipeline_events.LeadQualified, pipeline_events.LeadDisqualified,
                   pipeline_events.LeadConverted)
        # l1: first response the activity 10 min after capture (600 s); qualified later.
        l1 = log.lead("l1", day(MON, 10), "webinar", "web_form")
        log.activity("r1", day(MON, 10, 10), lead="l1")
        log.lead_change(l1, Q, pip.LEAD_STATUS_QUALIFIED, day(TUE))
        # l2: qualified after 1 h (3600 s), activity later, then converted.
        l2 = log.lead("l2", day(MON, 11), "webinar", "web_form")
        l2 = log.lead_change(l2, Q, pip.LEAD_STATUS_QUALIFIED, day(MON, 12))
        log.activity("r2", day(TUE), lead="l2")
        log.lead_change(l2, C, pip.LEAD_STATUS_CONVERTED, day(WED))
        # l3: disqualified after 5 s.
        l3 = log.lead("l3", day(TUE, 9), "webinar", "web_form")
        log.lead_change(l3, D, pip.LEAD_STATUS_DISQUALIFIED, day(TUE, 9, 0, 5))
        # l4: no response, NEW.
        log.lead("l4", day(TUE, 10), "webinar", "email")
        # l5: a call dated before the capture (0 s), converted straight from NEW.
        l5 = log.lead("l5", day(WED, 10), "trade_show", "phone")
        log.activity("r5", day(WED, 9), lead="l5")
        log.lead_change(l5, C, pip.LEAD_STATUS_CONVERTED, day(THU))
        # l6: a scheduled (not done) activity is no response; disqualified after 1 day
        # (86400 s), then qualified again.
        l6 = log.lead("l6", day(WED, 11), "trade_show", "phone")
        log.activity("r6", day(WED, 11, 30), lead="l6", scheduled_for=day(WED, 11, 45))
        l6 = log.lead_change(l6, D, pip.LEAD_STATUS_DISQUALIFIED, day(THU, 11))
        log.lead_change(l6, Q, pip.LEAD_STATUS_QUALIFIED, day(FRI))
        log.lead("l7", day(MON + 7), "webinar", "web_form")  # next week
        self.oracle = KpiOracle(log.envelopes)

    def test_speed_to_lead_seconds(self):
        self.assertEqual(week(self.oracle, "speed_to_lead_seconds", ("source", "channel")), {
            # [0, 86400]: p50 rank 1 -> 0; p90 rank ceil(1.8) = 2 -> 86400.
            ("2026-W47", ("trade_show", "phone")): {
                "p50_seconds": Quantile(0.0, 2), "p90_seconds": Quantile(86400.0, 2),
                "responded": 2, "unanswered": 0},
            # l4 only, unanswered: no sample.
            ("2026-W47", ("webinar", "email")): {
                "p50_seconds": None, "p90_seconds": None, "responded": 0, "unanswered": 1},
            # [5, 600, 3600]: p50 rank 2 -> 600; p90 rank 3 -> 3600.
            ("2026-W47", ("webinar", "web_form")): {
                "p50_seconds": Quantile(600.0, 3), "p90_seconds": Quantile(3600.0, 3),
                "responded": 3, "unanswered": 0}})
        # filter on channel, no grouping: the phone leads only.
        self.assertEqual(week(self.oracle, "speed_to_lead_seconds",
                              filters={"channel": ["phone"]}), {
            ("2026-W47", ()): {"p50_seconds": Quantile(0.0, 2),
                               "p90_seconds": Quantile(86400.0, 2),
                               "responded": 2, "unanswered": 0}})

    def test_leads_captured(self):
        self.assertEqual(week(self.oracle, "leads_captured", ("source", "channel")), {
            ("2026-W47", ("trade_show", "phone")): {"count": 2},
            ("2026-W47", ("webinar", "email")): {"count": 1},
            ("2026-W47", ("webinar", "web_form")): {"count": 3}})

    def test_lead_qualification_and_conversion(self):
        # webinar: l1 qualified, l2 converted (counts as qualified), l3 disqualified, l4 new ->
        # 2 / (2 + 1); trade_show: l5 converted, l6 qualified again -> 2 / 2.
        self.assertEqual(week(self.oracle, "lead_qualification_rate", ("source",)), {
            ("2026-W47", ("trade_show",)): {"qualified": 2, "disqualified": 0, "ratio": (2, 2)},
            ("2026-W47", ("webinar",)): {"qualified": 2, "disqualified": 1, "ratio": (2, 3)}})
        # webinar: l2 of 4 captured; trade_show: l5 of 2.
        self.assertEqual(week(self.oracle, "lead_conversion_rate", ("source",)), {
            ("2026-W47", ("trade_show",)): {"converted": 1, "captured": 2, "ratio": (1, 2)},
            ("2026-W47", ("webinar",)): {"converted": 1, "captured": 4, "ratio": (1, 4)}})


class ClosedOpportunityKpiTest(unittest.TestCase):
    def setUp(self):
        log = Log()
        won, lost, reopened = (pipeline_events.OpportunityWon, pipeline_events.OpportunityLost,
                               pipeline_events.OpportunityReopened)
        # w1 alice/north EUR lines pA 1000 + pB 2 x 500: opened Nov 1, won Mon 12:00 (15.5 d).
        w1 = log.opportunity("w1", day(1), "s1", lines=[("pA", 1, 1000), ("pB", 2, 500)])
        log.opportunity_change(w1, won, day(MON, 12))
        # w2 alice/north EUR 3001 without lines: opened Nov 10, won Tue (7 d).
        w2 = log.opportunity("w2", day(10), "s1", amount=3001)
        log.opportunity_change(w2, won, day(TUE))
        # w3 won Wed but reopened Thursday: not counted.
        w3 = log.opportunity("w3", day(17, month=10), "s1", lines=[("pA", 5, 1000)])
        w3 = log.opportunity_change(w3, won, day(WED))
        log.opportunity_change(w3, reopened, day(THU))
        # w4 bob/south USD 7000 lost Wed.
        w4 = log.opportunity("w4", day(1), "s1", owner="bob", region="south", currency="USD",
                             lines=[("pC", 7, 1000)])
        log.opportunity_change(w4, lost, day(WED))
        # w5 won in W46, reopened, moved to region east, won again Thu of W47 (18 d from Nov 1).
        w5 = log.opportunity("w5", day(1), "s1", lines=[("pA", 4, 1000)])
        w5 = log.opportunity_change(w5, won, day(12))
        w5 = log.opportunity_change(w5, reopened, day(13))
        w5 = log.opportunity_change(w5, pipeline_events.OpportunityUpdated, day(14),
                                    region="east")
        log.opportunity_change(w5, won, day(THU))
        # w6 alice/north EUR 1000 lost Thu.
        w6 = log.opportunity("w6", day(1), "s1", amount=1000)
        log.opportunity_change(w6, lost, day(THU))
        # w7 bob/south EUR 999 (pC): opened Thu, won Fri 12:00 (1.5 d -> 1).
        w7 = log.opportunity("w7", day(THU), "s1", owner="bob", region="south",
                             lines=[("pC", 1, 999)])
        log.opportunity_change(w7, won, day(FRI, 12))
        # w8 bob/south USD 1001 without lines: opened Wed, won Fri (2 d).
        w8 = log.opportunity("w8", day(WED), "s1", owner="bob", region="south", currency="USD",
                             amount=1001)
        log.opportunity_change(w8, won, day(FRI))
        self.oracle = KpiOracle(log.envelopes)

    def test_win_rate(self):
        self.assertEqual(week(self.oracle, "win_rate", ("owner", "region")), {
            # w5 (its region at the close).
            ("2026-W47", ("alice", "east")): {"won": 1, "lost": 0, "ratio": (1, 1),
                                              "amount_ratio": {"EUR": (4000, 4000)}},
            # w1 2000 + w2 3001 won, w6 1000 lost.
            ("2026-W47", ("alice", "north")): {"won": 2, "lost": 1, "ratio": (2, 3),
                                               "amount_ratio": {"EUR": (5001, 6001)}},
            # w7 EUR 999 won; w8 USD 1001 won, w4 USD 7000 lost.
            ("2026-W47", ("bob", "south")): {"won": 2, "lost": 1, "ratio": (2, 3),
                                             "amount_ratio": {"EUR": (999, 999),
                                                              "USD": (1001, 8001)}}})

    def test_won_revenue(self):
        self.assertEqual(week(self.oracle, "won_revenue", ("product", "region")), {
            ("2026-W47", ("-", "north")): {"amount": {"EUR": 3001}},  # w2
            ("2026-W47", ("-", "south")): {"amount": {"USD": 1001}},  # w8
            ("2026-W47", ("pA", "east")): {"amount": {"EUR": 4000}},  # w5
            ("2026-W47", ("pA", "north")): {"amount": {"EUR": 1000}},  # w1
            ("2026-W47", ("pB", "north")): {"amount": {"EUR": 1000}},  # w1
            ("2026-W47", ("pC", "south")): {"amount": {"EUR": 999}}})  # w7
        self.assertEqual(week(self.oracle, "won_revenue", ("region",)), {
            ("2026-W47", ("east",)): {"amount": {"EUR": 4000}},
            ("2026-W47", ("north",)): {"amount": {"EUR": 5001}},
            ("2026-W47", ("south",)): {"amount": {"EUR": 999, "USD": 1001}}})

    def test_sales_cycle_days(self):
        self.assertEqual(week(self.oracle, "sales_cycle_days", ("region",)), {
            ("2026-W47", ("east",)): {"p50_days": Quantile(18, 1), "won": 1},
            # [15, 7] -> rank 1 of [7, 15] = 7.
            ("2026-W47", ("north",)): {"p50_days": Quantile(7, 2), "won": 2},
            # [1, 2] -> 1.
            ("2026-W47", ("south",)): {"p50_days": Quantile(1, 2), "won": 2}})
        # [1, 2, 7, 15, 18]: rank ceil(2.5) = 3 -> 7.
        self.assertEqual(week(self.oracle, "sales_cycle_days"), {
            ("2026-W47", ()): {"p50_days": Quantile(7, 5), "won": 5}})

    def test_average_deal_size(self):
        self.assertEqual(week(self.oracle, "average_deal_size", ("region",)), {
            ("2026-W47", ("east",)): {"amount": {"EUR": 4000}},
            ("2026-W47", ("north",)): {"amount": {"EUR": 2500}},  # 5001 / 2 = 2500.5 -> 2500
            ("2026-W47", ("south",)): {"amount": {"EUR": 999, "USD": 1001}}})
        # EUR (2000 + 3001 + 4000 + 999) / 4 = 2500; USD 1001 / 1.
        self.assertEqual(week(self.oracle, "average_deal_size"), {
            ("2026-W47", ()): {"amount": {"EUR": 2500, "USD": 1001}}})

    def test_month_period(self):
        # November 2026 holds every close above, plus w5's first win (Nov 12) which is not its
        # latest close: won w1, w2, w5, w7, w8; lost w4, w6.
        result = self.oracle.query("win_rate", "month", day(1), day(30), LATER)
        self.assertEqual(result[("2026-11", ())]["ratio"], (5, 7))


class StageConversionTest(unittest.TestCase):
    def test_stage_conversion_rate(self):
        log = Log()
        log.pipeline("p1", 1, [("s1", 1000), ("s2", 5000), ("s3", 9000)], day(1))
        log.pipeline("p1", 2, [("s1", 1000), ("s3", 5000), ("s2", 9000)], day(2))
        moved = pipeline_events.OpportunityStageMoved
        # o1 (rev 1): s1 -> s2 -> s3: s1 and s2 progressed, s3 not.
        o1 = log.opportunity("o1", day(MON), "s1")
        o1 = log.opportunity_change(o1, moved, day(TUE), stage_id="s2")
        log.opportunity_change(o1, moved, day(WED), stage_id="s3")
        # o2 (rev 1): s1 then won: progressed.
        o2 = log.opportunity("o2", day(MON), "s1")
        log.opportunity_change(o2, pipeline_events.OpportunityWon, day(TUE))
        # o3 (rev 1): s2 -> s1 (back) then lost: neither progressed.
        o3 = log.opportunity("o3", day(MON), "s2")
        o3 = log.opportunity_change(o3, moved, day(TUE), stage_id="s1")
        log.opportunity_change(o3, pipeline_events.OpportunityLost, day(WED))
        # o4 (rev 2, order s1 s3 s2): s3 -> s2 is forward: s3 progressed, s2 not.
        o4 = log.opportunity("o4", day(MON), "s3", revision=2)
        log.opportunity_change(o4, moved, day(TUE), stage_id="s2")
        # o5 (rev 1): opened in s1 in W46 (not counted), s2 Monday, lost, reopened in s3
        # Thursday (an entry into s3, later than s2): s2 progressed, s3 not.
        o5 = log.opportunity("o5", day(10), "s1")
        o5 = log.opportunity_change(o5, moved, day(MON), stage_id="s2")
        o5 = log.opportunity_change(o5, pipeline_events.OpportunityLost, day(TUE))
        log.opportunity_change(o5, pipeline_events.OpportunityReopened, day(THU), stage_id="s3")
        oracle = KpiOracle(log.envelopes)
        self.assertEqual(week(oracle, "stage_conversion_rate", ("pipeline", "stage")), {
            # s1: o1 yes, o2 yes, o3's re-entry no.
            ("2026-W47", ("p1", "s1")): {"progressed": 2, "entered": 3, "ratio": (2, 3)},
            # s2: o1 yes, o3 no, o4 no, o5 yes.
            ("2026-W47", ("p1", "s2")): {"progressed": 2, "entered": 4, "ratio": (2, 4)},
            # s3: o1 no, o4 yes, o5 (reopened into it) no.
            ("2026-W47", ("p1", "s3")): {"progressed": 1, "entered": 3, "ratio": (1, 3)}})


class CaseKpiTest(unittest.TestCase):
    def setUp(self):
        log = Log()
        resolved, reopened = activity_events.CaseResolved, activity_events.CaseReopened
        high, low = act.CASE_PRIORITY_HIGH, act.CASE_PRIORITY_LOW
        cs1 = log.case("cs1", day(MON, 10), high, "email")
        log.case_change(cs1, resolved, day(MON, 11))  # 3600 s
        # cs2 opened Fri Nov 13 10:00, resolved Mon, reopened Tue, resolved Wed 10:00: the
        # latest resolution counts, from the first opening: 5 days = 432000 s.
        cs2 = log.case("cs2", day(13, 10), high, "email")
        cs2 = log.case_change(cs2, resolved, day(MON, 10))
        cs2 = log.case_change(cs2, reopened, day(TUE, 10))
        log.case_change(cs2, resolved, day(WED, 10))
        # cs3 resolved Tue, reopened Thu: open now, no sample; 1 resolution, 1 reopening.
        cs3 = log.case("cs3", day(MON, 12), low, "chat")
        cs3 = log.case_change(cs3, resolved, day(TUE, 12))
        log.case_change(cs3, reopened, day(THU))
        log.case("cs4", day(TUE), low, "chat")  # never resolved
        self.oracle = KpiOracle(log.envelopes)

    def test_case_resolution_seconds(self):
        self.assertEqual(week(self.oracle, "case_resolution_seconds", ("priority", "channel")), {
            # [3600, 432000]: p50 rank 1 -> 3600, p90 rank 2 -> 432000; reopenings cs2 (1) /
            # resolutions cs1, cs2 Mon, cs2 Wed (3).
            ("2026-W47", ("high", "email")): {
                "p50_seconds": Quantile(3600.0, 2), "p90_seconds": Quantile(432000.0, 2),
                "resolved": 2, "reopen_rate": (1, 3)},
            ("2026-W47", ("low", "chat")): {
                "p50_seconds": None, "p90_seconds": None, "resolved": 0,
                "reopen_rate": (1, 1)}})

    def test_open_cases(self):
        now = day(FRI, 12)
        # W46 at its end: cs2 (high) open. W47 at now: cs3 reopened and cs4, both low.
        self.assertEqual(self.oracle.query("open_cases", "week", day(9), W47[1] +
                                           datetime.timedelta(days=7), now, ("priority",)), {
            ("2026-W46", ("high",)): {"count": 1},
            ("2026-W47", ("low",)): {"count": 2}})


class PlumbingTest(unittest.TestCase):
    def test_order_and_duplicates_do_not_matter(self):
        log = Log()
        o = log.opportunity("o1", day(MON), "s1", amount=100, probability=5000)
        log.opportunity_change(o, pipeline_events.OpportunityStageMoved, day(TUE),
                               stage_id="s2", stage_probability_bps=2000)
        log.activity("a1", day(WED), opportunity="o1")
        shuffled = log.envelopes * 3
        random.Random(7).shuffle(shuffled)
        for kpi in ("pipeline_value", "activities_logged", "stage_conversion_rate"):
            self.assertEqual(week(KpiOracle(log.envelopes), kpi),
                             week(KpiOracle(shuffled), kpi), kpi)
        # s2 at 2000 bps: 100 x 2000 / 10000 = 20.
        self.assertEqual(week(KpiOracle(shuffled), "pipeline_value", now=day(FRI)), {
            ("2026-W47", ()): {"amount": {"EUR": 100}, "weighted_amount": {"EUR": 20}}})

    def test_every_kpi_is_defined_and_answers(self):
        self.assertEqual(len(kpi_oracle.DEFINITIONS), 21)
        oracle = KpiOracle([])
        for kpi, (dims, _) in kpi_oracle.DEFINITIONS.items():
            if dims:
                self.assertEqual(week(oracle, kpi, dims), {}, kpi)
            self.assertEqual(list(week(oracle, kpi)), [("2026-W47", ())], kpi)
        with self.assertRaises(ValueError):
            week(oracle, "win_rate", ("stage",))

    def test_rows_from_result_and_differences(self):
        result = metrics.KpiResult()
        row = result.rows.add()
        row.period.label = "2026-W47"
        row.dimensions.add(name="region", value="south")
        row.measures.add(name="won", count=2)
        row.measures.add(name="ratio", ratio=metrics.Ratio(numerator=2, denominator=3))
        row.measures.add(name="amount_ratio", currency_code="EUR",
                         ratio=metrics.Ratio(numerator=999, denominator=999))
        row.measures.add(name="amount", currency_code="USD", amount_minor=1001)
        row.measures.add(name="p50_seconds",
                         quantile=metrics.Quantile(value=100.5, relative_error=0.01, count=4))
        row.measures.add(name="p90_seconds")  # empty sample
        actual = kpi_oracle.rows_from_result(result)
        expected = {("2026-W47", ("south",)): {
            "won": 2, "ratio": (2, 3), "amount_ratio": {"EUR": (999, 999)},
            "amount": {"USD": 1001}, "p50_seconds": Quantile(100.0, 4), "p90_seconds": None}}
        self.assertEqual(kpi_oracle.differences(expected, actual), [])  # 0.5% off: tolerated
        expected[("2026-W47", ("south",))]["p50_seconds"] = Quantile(98.0, 4)
        self.assertEqual(len(kpi_oracle.differences(expected, actual)), 1)  # 2.5% off


if __name__ == "__main__":
    unittest.main()
