"""An independent oracle for the KPIs of shared/KPIS.md, for the system tests.

Written from the specification (shared/KPIS.md, shared/DESIGN.md, docs/decisions.md entries 35,
40-45, and the protos), not from metrics-service's code: it folds the event envelopes read back
from the three topics and computes every KPI again, so a test can assert that the service's
answers equal these figures. Pure Python (stdlib + protobuf), slow and obvious on purpose.

API
---
    oracle = KpiOracle(envelopes)
        `envelopes`: iterable of crm.events.v1.EventEnvelope (or of tuples whose last item is
        one, such as `System.read_topic` returns), from any topic, in any order, duplicates
        allowed: one event is kept per (stream_id, stream_version).

    oracle.query(kpi, period_kind, start, end, now, group_by=(), filters=None) -> dict
        `period_kind`: "week" (ISO week) or "month" (or the PeriodKind enum values);
        `start`, `end`: the requested range; every period overlapping [start, end) is answered;
        `now`: the service's "now" (state-at-a-point KPIs use min(end of P, now));
        `group_by`: dimension names of the KPI, in order;
        `filters`: {dimension: iterable of accepted values} (any dimension of the KPI).
        Datetimes must be UTC (a naive datetime is taken as UTC).

    Returns {(period_label, tuple_of_group_values): {measure_name: value}}, with period labels as
    the API writes them ("2026-W47" with the ISO week-numbering year, "2026-11").

    rows_from_result(kpi_result) converts a crm.metrics.v1.KpiResult into the same shape, and
    differences(expected, actual, rel_tol=0.01) lists what differs (quantiles compared with a
    relative tolerance, everything else exactly).

    DEFINITIONS: {kpi: (dimensions, [(measure, kind), ...])}, the names ListKpiDefinitions serves.

Measure shapes (how each maps onto crm.metrics.v1.Measure)
--------------------------------------------------------
    count            int                                   Measure.count
    ratio            (numerator, denominator) ints         Measure.ratio.{numerator,denominator};
                     a zero denominator means "no data" (the service leaves ratio.value unset).
                     duplicate_rate.per_100 is (merged, created): the ratio's value is
                     100 x numerator / denominator, the integers are the raw counts.
    quantile         Quantile(value, count) with the EXACT nearest-rank value (rank
                     ceil(q x n) of the sorted sample) and the sample size; None when the
                     sample is empty (the service leaves the oneof unset). Seconds are floats
                     (microsecond resolution); sales_cycle_days.p50_days is an int.
                     The service's seconds quantiles come from a sketch with 1% relative error,
                     so compare those with a tolerance (differences() does).
    money            {currency_code: int minor units}      one Measure per currency, amount_minor
    money ratio      {currency_code: (numerator, denominator)}  one Measure per currency, ratio
                     (win_rate.amount_ratio: won amount / closed amount)
    money / count    {currency_code: int}   sum / count of that currency, rounded toward zero
    money scaled     {currency_code: int}   exact sum / 10000, rounded toward zero
                     (pipeline_value.weighted_amount: sum of amount x bps, then / 10000)

Rows emitted
------------
    Without group_by there is one row per period, always (metrics_service.proto: "none gives
    one row per period"), with 0, (0, 0), None or {} when nothing counts, also for a
    state-at-a-point KPI in a period that starts after now. With group_by, a row exists for a
    (period, group) when at least one member of the KPI's population falls in it after the
    filters ("groups without data are absent"); its measures may then be 0, (0, 0) or None.
    The populations: activities_logged: DONE activities; visit_report_compliance:
    visits; logging_delay_seconds: the delay sample; active_reps: user actors; contact
    completeness: live contacts; open_deal_coverage: open opportunities; stale_opportunities:
    stale ones only; tasks_on_time_ratio: due tasks; speed_to_lead_seconds: leads captured
    (answered or not); duplicate_rate: contacts merged away and contacts created;
    leads_captured, lead_qualification_rate, lead_conversion_rate: leads captured (any status,
    so a group of only NEW leads has a row with ratio (0, 0)); stage_conversion_rate: stage
    entries; win_rate: latest closes; won_revenue: product lines of won opportunities;
    pipeline_value: open opportunities; sales_cycle_days, average_deal_size: won opportunities;
    case_resolution_seconds: latest resolutions, resolutions and reopenings in P; open_cases:
    open cases. State-at-a-point KPIs have no state (so no group) for a period that starts
    after `now` (decisions.md 42).

Readings of the specification (where KPIS.md and decisions.md 42 left something to choose)
-----------------------------------------------------------------------------------------
    - Times are compared in integer microseconds (Timestamp nanos truncated).
    - "As of e": a stream's state is the fold of its events whose envelope occurred_at < e.
    - Activities: only DONE ones count (decision 42), at the activity's own occurred_at field
      (decision 35; a completion moves it to when it happened). Their rep, channel, type and
      links cannot change after logging, so the final state is used. A scheduled activity
      that is DONE by now with occurred_at in a window is "linked activity in the window" for
      coverage/stale (its completion event's occurred_at equals the activity's occurred_at,
      so it was DONE before e too).
    - visit_report_compliance: the report is the activity's body; it was "recorded" at the
      recorded_at of the first event of the activity whose body is non-empty.
    - logging_delay_seconds: "first recorded_at" = recorded_at of the activity's first event
      (ActivityLogged), compared with the (final) activity occurred_at.
    - active_reps: every envelope counts (any payload type, even unknown ones); an actor is a
      user unless actor_kind is ACTOR_KIND_SERVICE (UNSPECIFIED is taken as the default,
      user); an empty actor_id is ignored.
    - contact completeness: live = created, not archived, not merged away (no erase event
      exists in the protos yet); complete = at least one email, one phone, a non-empty
      owner_id and account_id.
    - Stage entries: OpportunityOpened (its stage), OpportunityStageMoved (the new stage), and
      OpportunityReopened when it reopens in a different stage than it was closed in (the
      domain sets stage_enter_time then: the opportunity moved into that stage). Used by
      stale_opportunities and stage_conversion_rate.
    - stage_conversion_rate: an entry progressed when ANY later event of the opportunity is a
      won close or a stage entry into a stage with a higher index in the stage order of the
      entry's pipeline revision (the latest known revision when that one is unknown; a stage
      not found in the order cannot be "later"). A later loss, reopen or re-entry into the
      same stage is not progress; several entries into s each count.
    - Expected close date D has passed at e when D+1 day 00:00 UTC <= e; unset (year 0) never.
    - tasks_on_time_ratio: "not cancelled" = not cancelled as of now; on time = COMPLETED with
      complete_time <= due_time; the rep is the assignee as it was when the task fell due (the
      last event with occurred_at <= due_time, else the first event: a task scheduled after its
      due time). Reassignment is only possible while open, so for completed tasks this is also
      the assignee at completion.
    - speed_to_lead_seconds: responses are the DONE activities linked to the lead (lead_id), its
      qualifications, disqualifications and its conversion (converted counts as qualified,
      decisions 32 and the definition text); the earliest counts; before the capture -> 0 s.
      Source and channel are the lead's fields at capture (leads are not edited).
    - duplicate_rate: creation channel = the envelope channel of the contact's ContactCreated,
      else the created contact's source_channel (decision 42); for the contact merged away the
      same is computed from its own ContactCreated, falling back to ContactMergedInto's
      source_channel only when its creation event is not in the input. The merge's time is the
      ContactMergedInto event's occurred_at.
    - Lead statuses "as of now" are the latest state: qualified = QUALIFIED or CONVERTED.
    - Closes: the latest close of an opportunity counts only if the opportunity is still
      closed now (won or lost, not reopened since); owner, region, amount, currency and lines
      are the ones in the close event. won_revenue uses each line's amount_minor; an
      opportunity without lines counts its amount under product "-".
    - sales_cycle_days: opened = occurred_at of OpportunityOpened; floor((won - opened) / 1 day).
    - average_deal_size: per currency, sum of won amounts in that currency / number of won
      opportunities in that currency, rounded toward zero.
    - case_resolution_seconds: sample = cases whose latest CaseResolved has occurred_at in P and
      that are still resolved now, value = that resolution - occurred_at of CaseOpened;
      reopen_rate = (CaseReopened in P) / (every CaseResolved in P); each fact grouped by the
      priority in its own event and the case's channel. Priority labels are the enum names
      lower-cased without prefix ("high"); activity types likewise ("visit").

Readings settled by the cross-check (docs/decisions.md 47)
--------------------------------------------------------
    The first cross-check against the real binaries found two places where the service read
    the specification differently; the service now follows the readings above:
    - tasks_on_time_ratio groups a task by the assignee when it fell due;
    - a reopening into another stage is a stage entry (stage conversion, stale opportunities).
"""

import bisect
import collections
import datetime

from crm.activity.v1 import activity_pb2
from crm.activity.v1 import events_pb2 as activity_events
from crm.common.v1 import common_pb2
from crm.contact.v1 import events_pb2 as contact_events
from crm.pipeline.v1 import events_pb2 as pipeline_events
from crm.pipeline.v1 import pipeline_pb2

UTC = datetime.timezone.utc
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)
US_PER_SECOND = 1_000_000
US_PER_HOUR = 3600 * US_PER_SECOND
US_PER_DAY = 24 * US_PER_HOUR

Quantile = collections.namedtuple("Quantile", ["value", "count"])

# --- the definitions table (names as ListKpiDefinitions serves them) --------------------------

COUNT, RATIO, QUANTILE, MONEY, MONEY_RATIO, MONEY_PER_COUNT, MONEY_SCALED = (
    "count", "ratio", "quantile", "money", "money_ratio", "money_per_count", "money_scaled")

# kpi -> (dimensions, [(measure, kind, a, b, parameter)]) where a and b name the tallies the
# fact generators below fill, and parameter is the percent of a quantile, the scale of a ratio
# or the divisor of a scaled money sum.
_SPECS = {
    "activities_logged": (("rep", "channel", "type"), [("count", COUNT, "count", None, None)]),
    "visit_report_compliance": (("rep",), [
        ("compliant", COUNT, "compliant", None, None),
        ("visits", COUNT, "visits", None, None),
        ("ratio", RATIO, "compliant", "visits", 1)]),
    "logging_delay_seconds": (("rep",), [
        ("p50_seconds", QUANTILE, "delay", None, 50),
        ("p90_seconds", QUANTILE, "delay", None, 90),
        ("within_24h", RATIO, "within_24h", "logged", 1)]),
    "active_reps": ((), [("count", COUNT, "count", None, None)]),
    "contact_completeness_ratio": (("owner", "region"), [
        ("complete", COUNT, "complete", None, None),
        ("contacts", COUNT, "contacts", None, None),
        ("ratio", RATIO, "complete", "contacts", 1)]),
    "open_deal_coverage": (("owner",), [
        ("covered", COUNT, "covered", None, None),
        ("open", COUNT, "open", None, None),
        ("ratio", RATIO, "covered", "open", 1)]),
    "stale_opportunities": (("owner", "stage"), [("count", COUNT, "stale", None, None)]),
    "tasks_on_time_ratio": (("rep",), [
        ("on_time", COUNT, "on_time", None, None),
        ("due", COUNT, "due", None, None),
        ("ratio", RATIO, "on_time", "due", 1)]),
    "speed_to_lead_seconds": (("source", "channel"), [
        ("p50_seconds", QUANTILE, "response", None, 50),
        ("p90_seconds", QUANTILE, "response", None, 90),
        ("responded", COUNT, "responded", None, None),
        ("unanswered", COUNT, "unanswered", None, None)]),
    "duplicate_rate": (("channel",), [
        ("merged", COUNT, "merged", None, None),
        ("created", COUNT, "created", None, None),
        ("per_100", RATIO, "merged", "created", 100)]),
    "leads_captured": (("source", "channel"), [("count", COUNT, "count", None, None)]),
    "lead_qualification_rate": (("source",), [
        ("qualified", COUNT, "qualified", None, None),
        ("disqualified", COUNT, "disqualified", None, None),
        ("ratio", RATIO, "qualified", "decided", 1)]),
    "lead_conversion_rate": (("source",), [
        ("converted", COUNT, "converted", None, None),
        ("captured", COUNT, "captured", None, None),
        ("ratio", RATIO, "converted", "captured", 1)]),
    "stage_conversion_rate": (("pipeline", "stage"), [
        ("progressed", COUNT, "progressed", None, None),
        ("entered", COUNT, "entered", None, None),
        ("ratio", RATIO, "progressed", "entered", 1)]),
    "win_rate": (("owner", "region"), [
        ("won", COUNT, "won", None, None),
        ("lost", COUNT, "lost", None, None),
        ("ratio", RATIO, "won", "closed", 1),
        ("amount_ratio", MONEY_RATIO, "won_amount", "closed_amount", None)]),
    "won_revenue": (("product", "region"), [("amount", MONEY, "revenue", None, None)]),
    "pipeline_value": (("stage", "owner"), [
        ("amount", MONEY, "amount", None, None),
        ("weighted_amount", MONEY_SCALED, "weighted", None, 10000)]),
    "sales_cycle_days": (("region",), [
        ("p50_days", QUANTILE, "days", None, 50),
        ("won", COUNT, "won", None, None)]),
    "average_deal_size": (("region",), [
        ("amount", MONEY_PER_COUNT, "won_amount", "won_count", None)]),
    "case_resolution_seconds": (("priority", "channel"), [
        ("p50_seconds", QUANTILE, "resolution", None, 50),
        ("p90_seconds", QUANTILE, "resolution", None, 90),
        ("resolved", COUNT, "resolved", None, None),
        ("reopen_rate", RATIO, "reopenings", "resolutions", 1)]),
    "open_cases": (("priority",), [("count", COUNT, "count", None, None)]),
}

DEFINITIONS = {kpi: (dims, [(m[0], m[1]) for m in measures])
               for kpi, (dims, measures) in _SPECS.items()}

# State-at-a-point KPIs: evaluated at min(end of P, now); no rows for periods after now.
STATE_KPIS = frozenset({"contact_completeness_ratio", "open_deal_coverage",
                        "stale_opportunities", "pipeline_value", "open_cases"})

# --- time and periods -------------------------------------------------------------------------


def ts_us(timestamp):
    """A google.protobuf.Timestamp in integer microseconds since the epoch."""
    return timestamp.seconds * US_PER_SECOND + timestamp.nanos // 1000


def dt_us(value):
    """A datetime (UTC; naive is taken as UTC) in integer microseconds since the epoch."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - EPOCH) // datetime.timedelta(microseconds=1)


def us_dt(us):
    return EPOCH + datetime.timedelta(microseconds=us)


def _kind(period_kind):
    if period_kind in ("week", "iso_week", 1, "PERIOD_KIND_ISO_WEEK"):
        return "week"
    if period_kind in ("month", 2, "PERIOD_KIND_MONTH"):
        return "month"
    raise ValueError(f"unknown period kind {period_kind!r}")


def period_of(period_kind, t_us):
    """(label, start_us, end_us) of the period of `period_kind` holding instant `t_us`."""
    kind = _kind(period_kind)
    day = us_dt(t_us).date()
    if kind == "week":
        monday = day - datetime.timedelta(days=day.weekday())
        start = datetime.datetime(monday.year, monday.month, monday.day, tzinfo=UTC)
        end = start + datetime.timedelta(days=7)
        iso_year, iso_week, _ = monday.isocalendar()
        label = f"{iso_year}-W{iso_week:02d}"
    else:
        start = datetime.datetime(day.year, day.month, 1, tzinfo=UTC)
        if day.month == 12:
            end = datetime.datetime(day.year + 1, 1, 1, tzinfo=UTC)
        else:
            end = datetime.datetime(day.year, day.month + 1, 1, tzinfo=UTC)
        label = f"{day.year:04d}-{day.month:02d}"
    return label, dt_us(start), dt_us(end)


def periods(period_kind, start, end):
    """Every period of `period_kind` overlapping [start, end): [(label, start_us, end_us)]."""
    start_us, end_us = dt_us(start), dt_us(end)
    if end_us <= start_us:
        raise ValueError("empty range")
    out = []
    t = start_us
    while t < end_us:
        period = period_of(period_kind, t)
        out.append(period)
        t = period[2]
    return out


# --- arithmetic -------------------------------------------------------------------------------


def nearest_rank(sample, percent):
    """The value at rank ceil(percent/100 x n) (1-based) of the sorted sample; None if empty."""
    if not sample:
        return None
    ordered = sorted(sample)
    rank = max(1, -(-percent * len(ordered) // 100))
    return ordered[rank - 1]


def div_toward_zero(numerator, denominator):
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator >= 0) == (denominator > 0) else -quotient


# --- the events -------------------------------------------------------------------------------

_PAYLOAD_TYPES = {}
for _module in (contact_events, activity_events, pipeline_events):
    for _name, _descriptor in _module.DESCRIPTOR.message_types_by_name.items():
        _PAYLOAD_TYPES[_descriptor.full_name] = getattr(_module, _name)


class Event:
    """One deduplicated envelope with its unpacked payload (None for unknown types)."""

    __slots__ = ("envelope", "type", "payload", "occurred_us", "recorded_us", "version")

    def __init__(self, envelope):
        self.envelope = envelope
        full_name = envelope.payload.TypeName() if envelope.HasField("payload") else ""
        self.type = full_name.rsplit(".", 1)[-1]
        cls = _PAYLOAD_TYPES.get(full_name)
        self.payload = None
        if cls is not None:
            payload = cls()
            if envelope.payload.Unpack(payload):
                self.payload = payload
        self.occurred_us = ts_us(envelope.occurred_at)
        self.recorded_us = ts_us(envelope.recorded_at)
        self.version = envelope.stream_version


def _before(events, instant_us):
    """The events (in stream order) whose business time is before `instant_us`."""
    return [e for e in events if e.occurred_us < instant_us]


def _last_state(events, field, instant_us=None):
    """The full-state message `field` of the last event (before `instant_us` if given)."""
    chosen = events if instant_us is None else _before(events, instant_us)
    for event in reversed(chosen):
        if event.payload is not None and hasattr(event.payload, field):
            return getattr(event.payload, field)
    return None


def _label(enum_type, value, prefix):
    try:
        name = enum_type.Name(value)
    except ValueError:
        return str(value)
    return (name[len(prefix):] if name.startswith(prefix) else name).lower()


def type_label(activity_type):
    return _label(activity_pb2.ActivityType, activity_type, "ACTIVITY_TYPE_")


def priority_label(priority):
    return _label(activity_pb2.CasePriority, priority, "CASE_PRIORITY_")


class _Fact:
    """One member of a KPI's population: its dimension values and what it adds to the tallies."""

    __slots__ = ("dims", "counts", "samples", "money")

    def __init__(self, dims, counts=None, samples=None, money=None):
        self.dims = dims
        self.counts = counts or {}
        self.samples = samples or {}
        self.money = money or {}


class KpiOracle:
    def __init__(self, envelopes):
        seen = {}
        self.events = []
        for item in envelopes:
            envelope = item[-1] if isinstance(item, tuple) else item
            key = (envelope.stream_id, envelope.stream_version)
            if key in seen:
                continue
            seen[key] = True
            self.events.append(Event(envelope))
        streams = collections.defaultdict(list)
        for event in self.events:
            streams[event.envelope.stream_id].append(event)
        for events in streams.values():
            events.sort(key=lambda e: e.version)
        self.streams = dict(streams)

        # Records per aggregate, keyed by the aggregate's own id (links use plain ids).
        self.contacts, self.activities, self.tasks, self.cases = {}, {}, {}, {}
        self.leads, self.opportunities = {}, {}
        self.pipelines = collections.defaultdict(dict)  # pipeline_id -> {revision: [stage ids]}
        for events in self.streams.values():
            first = next((e for e in events if e.payload is not None), None)
            if first is None:
                continue
            payload = first.payload
            if first.type.startswith("Contact"):
                contact_id = (payload.contact.contact_id if hasattr(payload, "contact")
                              else payload.contact_id)
                self.contacts[contact_id] = events
            elif first.type.startswith("Activity"):
                self.activities[payload.activity.activity_id] = events
            elif first.type.startswith("Task"):
                self.tasks[payload.task.task_id] = events
            elif first.type.startswith("Case"):
                self.cases[getattr(payload, "case").case_id] = events
            elif first.type.startswith("Lead"):
                self.leads[payload.lead.lead_id] = events
            elif first.type.startswith("Opportunity"):
                self.opportunities[payload.opportunity.opportunity_id] = events
            elif first.type == "PipelineDefined":
                for event in events:
                    if event.type != "PipelineDefined" or event.payload is None:
                        continue
                    pipeline = event.payload.pipeline
                    revision = pipeline.revision or event.version
                    self.pipelines[pipeline.pipeline_id][revision] = [
                        s.stage_id for s in pipeline.stages]

        # DONE activities (final state), and by linked opportunity and lead.
        self.done_activities = []
        self.activities_by_opportunity = collections.defaultdict(list)
        self.activities_by_lead = collections.defaultdict(list)
        for events in self.activities.values():
            activity = _last_state(events, "activity")
            if activity is None or activity.status != activity_pb2.ACTIVITY_STATUS_DONE:
                continue
            record = (activity, events)
            self.done_activities.append(record)
            if activity.opportunity_id:
                self.activities_by_opportunity[activity.opportunity_id].append(
                    ts_us(activity.occurred_at))
            if activity.lead_id:
                self.activities_by_lead[activity.lead_id].append(ts_us(activity.occurred_at))
        for times in self.activities_by_opportunity.values():
            times.sort()

    # --- query ------------------------------------------------------------------------------

    def query(self, kpi, period_kind, start, end, now, group_by=(), filters=None):
        if kpi not in _SPECS:
            raise ValueError(f"unknown kpi {kpi!r}")
        dims, measures = _SPECS[kpi]
        group_by = tuple(group_by)
        filters = {d: set(v) for d, v in (filters or {}).items()}
        for dimension in tuple(group_by) + tuple(filters):
            if dimension not in dims:
                raise ValueError(f"{kpi} has no dimension {dimension!r}")
        now_us = dt_us(now)
        facts_of = getattr(self, "_" + kpi)
        result = {}
        for label, p_start, p_end in periods(period_kind, start, end):
            if kpi in STATE_KPIS:
                # decisions.md 42: no state for periods that start after now.
                facts = [] if p_start > now_us else facts_of(min(p_end, now_us))
            else:
                facts = facts_of(p_start, p_end)
            groups = collections.OrderedDict()
            for fact in facts:
                if any(fact.dims[d] not in values for d, values in filters.items()):
                    continue
                key = tuple(fact.dims[d] for d in group_by)
                groups.setdefault(key, []).append(fact)
            if not group_by:
                groups.setdefault((), [])  # "none gives one row per period" (QueryKpiRequest)
            for key in sorted(groups):
                result[(label, key)] = _measures(measures, groups[key])
        return result

    # --- behaviour --------------------------------------------------------------------------

    def _done_in(self, start, end):
        for activity, events in self.done_activities:
            if start <= ts_us(activity.occurred_at) < end:
                yield activity, events

    def _activities_logged(self, start, end):
        return [_Fact({"rep": a.owner_id, "channel": a.channel, "type": type_label(a.type)},
                      {"count": 1})
                for a, _ in self._done_in(start, end)]

    def _visit_report_compliance(self, start, end):
        facts = []
        visit_types = (activity_pb2.ACTIVITY_TYPE_MEETING, activity_pb2.ACTIVITY_TYPE_VISIT)
        for activity, events in self._done_in(start, end):
            if activity.type not in visit_types:
                continue
            reported = next((e.recorded_us for e in events
                             if e.payload is not None and hasattr(e.payload, "activity")
                             and e.payload.activity.body), None)
            compliant = (reported is not None and
                         reported <= ts_us(activity.occurred_at) + 48 * US_PER_HOUR)
            facts.append(_Fact({"rep": activity.owner_id},
                               {"visits": 1, "compliant": int(compliant)}))
        return facts

    def _logging_delay_seconds(self, start, end):
        facts = []
        for activity, events in self._done_in(start, end):
            occurred = ts_us(activity.occurred_at)
            delay = events[0].recorded_us - occurred
            if delay < 0:
                continue
            facts.append(_Fact({"rep": activity.owner_id},
                               {"logged": 1, "within_24h": int(delay <= 24 * US_PER_HOUR)},
                               {"delay": [delay / US_PER_SECOND]}))
        return facts

    def _active_reps(self, start, end):
        actors = set()
        for event in self.events:
            envelope = event.envelope
            if envelope.actor_kind == common_pb2.ACTOR_KIND_SERVICE or not envelope.actor_id:
                continue
            if start <= event.recorded_us < end:
                actors.add(envelope.actor_id)
        return [_Fact({}, {"count": 1}) for _ in sorted(actors)]

    def _contact_completeness_ratio(self, e):
        facts = []
        for events in self.contacts.values():
            contact, archived, merged = None, False, False
            for event in _before(events, e):
                p = event.payload
                if p is None:
                    continue
                if event.type in ("ContactCreated", "ContactUpdated", "ContactAbsorbedDuplicate"):
                    contact = p.contact
                    archived = contact.archived
                    merged = merged or bool(contact.merged_into_contact_id)
                elif event.type == "ContactArchived":
                    archived = True
                elif event.type == "ContactRestored":
                    archived = False
                elif event.type == "ContactMergedInto":
                    merged = True
            if contact is None or archived or merged:
                continue
            complete = bool(contact.emails and contact.phones and contact.owner_id
                            and contact.account_id)
            facts.append(_Fact({"owner": contact.owner_id, "region": contact.region},
                               {"contacts": 1, "complete": int(complete)}))
        return facts

    def _open_at(self, e):
        """(opportunity as of e, its events) for every opportunity open at e."""
        for events in self.opportunities.values():
            opportunity = _last_state(events, "opportunity", e)
            if opportunity is not None and (
                    opportunity.status == pipeline_pb2.OPPORTUNITY_STATUS_OPEN):
                yield opportunity, events

    def _activity_between(self, opportunity_id, lo, hi):
        times = self.activities_by_opportunity.get(opportunity_id, [])
        i = bisect.bisect_left(times, lo)
        return i < len(times) and times[i] < hi

    def _open_deal_coverage(self, e):
        facts = []
        for opportunity, _ in self._open_at(e):
            covered = self._activity_between(opportunity.opportunity_id, e - 7 * US_PER_DAY, e)
            facts.append(_Fact({"owner": opportunity.owner_id},
                               {"open": 1, "covered": int(covered)}))
        return facts

    def _stale_opportunities(self, e):
        facts = []
        window = e - 14 * US_PER_DAY
        for opportunity, events in self._open_at(e):
            recent = (self._activity_between(opportunity.opportunity_id, window, e) or
                      any(window <= t < e for t, _, _, _ in _stage_entries(events)))
            date = opportunity.expected_close_date
            passed = False
            if opportunity.HasField("expected_close_date") and date.year > 0:
                day = datetime.datetime(date.year, date.month, date.day, tzinfo=UTC)
                passed = dt_us(day) + US_PER_DAY <= e
            if not recent or passed:
                facts.append(_Fact({"owner": opportunity.owner_id,
                                    "stage": opportunity.stage_id}, {"stale": 1}))
        return facts

    def _tasks_on_time_ratio(self, start, end):
        facts = []
        for events in self.tasks.values():
            task = _last_state(events, "task")
            if task is None or task.status == activity_pb2.TASK_STATUS_CANCELLED:
                continue
            due = ts_us(task.due_time)
            if not start <= due < end:
                continue
            at_due = [e for e in events if e.occurred_us <= due and e.payload is not None]
            assignee = (at_due[-1] if at_due else events[0]).payload.task.assignee_id
            on_time = False
            if task.status == activity_pb2.TASK_STATUS_COMPLETED:
                completed = (ts_us(task.complete_time) if task.HasField("complete_time") else
                             next(e.occurred_us for e in events if e.type == "TaskCompleted"))
                on_time = completed <= due
            facts.append(_Fact({"rep": assignee}, {"due": 1, "on_time": int(on_time)}))
        return facts

    def _captured_in(self, start, end):
        """(lead at capture, capture time, lead now, events) of leads captured in [start, end)."""
        for events in self.leads.values():
            captured = next((e for e in events if e.type == "LeadCaptured"), None)
            if captured is None or not start <= captured.occurred_us < end:
                continue
            yield captured.payload.lead, captured.occurred_us, _last_state(events, "lead"), events

    def _speed_to_lead_seconds(self, start, end):
        facts = []
        for lead, captured, _, events in self._captured_in(start, end):
            responses = list(self.activities_by_lead.get(lead.lead_id, []))
            responses += [e.occurred_us for e in events
                          if e.type in ("LeadQualified", "LeadDisqualified", "LeadConverted")]
            dims = {"source": lead.source, "channel": lead.channel}
            if responses:
                seconds = max(0, min(responses) - captured) / US_PER_SECOND
                facts.append(_Fact(dims, {"responded": 1}, {"response": [seconds]}))
            else:
                facts.append(_Fact(dims, {"unanswered": 1}))
        return facts

    def _creation_channel(self, contact_id):
        events = self.contacts.get(contact_id, [])
        created = next((e for e in events if e.type == "ContactCreated"), None)
        if created is None:
            return None
        return created.envelope.channel or created.payload.contact.source_channel

    def _duplicate_rate(self, start, end):
        facts = []
        for contact_id, events in self.contacts.items():
            for event in events:
                if not start <= event.occurred_us < end or event.payload is None:
                    continue
                if event.type == "ContactCreated":
                    facts.append(_Fact({"channel": self._creation_channel(contact_id)},
                                       {"created": 1}))
                elif event.type == "ContactMergedInto":
                    channel = self._creation_channel(contact_id)
                    if channel is None:
                        channel = event.payload.source_channel
                    facts.append(_Fact({"channel": channel}, {"merged": 1}))
        return facts

    # --- business ---------------------------------------------------------------------------

    def _leads_captured(self, start, end):
        return [_Fact({"source": lead.source, "channel": lead.channel}, {"count": 1})
                for lead, _, _, _ in self._captured_in(start, end)]

    def _lead_qualification_rate(self, start, end):
        facts = []
        for lead, _, now_lead, _ in self._captured_in(start, end):
            status = now_lead.status
            qualified = status in (pipeline_pb2.LEAD_STATUS_QUALIFIED,
                                   pipeline_pb2.LEAD_STATUS_CONVERTED)
            disqualified = status == pipeline_pb2.LEAD_STATUS_DISQUALIFIED
            facts.append(_Fact({"source": lead.source},
                               {"qualified": int(qualified), "disqualified": int(disqualified),
                                "decided": int(qualified or disqualified)}))
        return facts

    def _lead_conversion_rate(self, start, end):
        return [_Fact({"source": lead.source},
                      {"captured": 1,
                       "converted": int(now_lead.status == pipeline_pb2.LEAD_STATUS_CONVERTED)})
                for lead, _, now_lead, _ in self._captured_in(start, end)]

    def _stage_order(self, pipeline_id, revision):
        revisions = self.pipelines.get(pipeline_id)
        if not revisions:
            return None
        return revisions.get(revision) or revisions[max(revisions)]

    def _stage_conversion_rate(self, start, end):
        facts = []
        for events in self.opportunities.values():
            entries = _stage_entries(events)
            for i, (time, stage, opportunity, version) in enumerate(entries):
                if not start <= time < end:
                    continue
                order = self._stage_order(opportunity.pipeline_id, opportunity.pipeline_revision)
                index = order.index(stage) if order and stage in order else None
                progressed = any(e.type == "OpportunityWon" and e.version > version
                                 for e in events)
                if index is not None:
                    progressed = progressed or any(
                        later in order and order.index(later) > index
                        for _, later, _, _ in entries[i + 1:])
                facts.append(_Fact({"pipeline": opportunity.pipeline_id, "stage": stage},
                                   {"entered": 1, "progressed": int(progressed)}))
        return facts

    def _closes_in(self, start, end, won_only):
        """(close event's opportunity, close time, events) of opportunities whose latest close
        is in [start, end) and that are still closed now."""
        for events in self.opportunities.values():
            now_state = _last_state(events, "opportunity")
            if now_state is None or now_state.status not in (
                    pipeline_pb2.OPPORTUNITY_STATUS_WON, pipeline_pb2.OPPORTUNITY_STATUS_LOST):
                continue
            close = next((e for e in reversed(events)
                          if e.type in ("OpportunityWon", "OpportunityLost")), None)
            if close is None or not start <= close.occurred_us < end:
                continue
            if won_only and close.type != "OpportunityWon":
                continue
            yield close.payload.opportunity, close.occurred_us, events

    def _win_rate(self, start, end):
        facts = []
        for opportunity, _, _ in self._closes_in(start, end, won_only=False):
            won = opportunity.status == pipeline_pb2.OPPORTUNITY_STATUS_WON
            currency, amount = opportunity.currency_code, opportunity.amount_minor
            money = {"closed_amount": {currency: amount}}
            if won:
                money["won_amount"] = {currency: amount}
            facts.append(_Fact({"owner": opportunity.owner_id, "region": opportunity.region},
                               {"won": int(won), "lost": int(not won), "closed": 1},
                               money=money))
        return facts

    def _won_revenue(self, start, end):
        facts = []
        for opportunity, _, _ in self._closes_in(start, end, won_only=True):
            currency = opportunity.currency_code
            lines = [(line.product_id, line.amount_minor) for line in opportunity.lines]
            if not lines:
                lines = [("-", opportunity.amount_minor)]
            for product, amount in lines:
                facts.append(_Fact({"product": product, "region": opportunity.region},
                                   money={"revenue": {currency: amount}}))
        return facts

    def _pipeline_value(self, e):
        facts = []
        for opportunity, _ in self._open_at(e):
            currency, amount = opportunity.currency_code, opportunity.amount_minor
            facts.append(_Fact({"stage": opportunity.stage_id, "owner": opportunity.owner_id},
                               money={"amount": {currency: amount},
                                      "weighted": {currency:
                                                   amount * opportunity.stage_probability_bps}}))
        return facts

    def _sales_cycle_days(self, start, end):
        facts = []
        for opportunity, won, events in self._closes_in(start, end, won_only=True):
            opened = next(e.occurred_us for e in events if e.type == "OpportunityOpened")
            days = (won - opened) // US_PER_DAY
            facts.append(_Fact({"region": opportunity.region}, {"won": 1}, {"days": [days]}))
        return facts

    def _average_deal_size(self, start, end):
        return [_Fact({"region": o.region},
                      money={"won_amount": {o.currency_code: o.amount_minor},
                             "won_count": {o.currency_code: 1}})
                for o, _, _ in self._closes_in(start, end, won_only=True)]

    def _case_resolution_seconds(self, start, end):
        facts = []
        for events in self.cases.values():
            opened = next((e for e in events if e.type == "CaseOpened"), None)
            if opened is None:
                continue
            channel = getattr(opened.payload, "case").channel
            resolutions = [e for e in events if e.type == "CaseResolved"]
            now_state = _last_state(events, "case")
            for event in events:
                if not start <= event.occurred_us < end or event.payload is None:
                    continue
                priority = priority_label(getattr(event.payload, "case").priority)
                dims = {"priority": priority, "channel": channel}
                if event.type == "CaseReopened":
                    facts.append(_Fact(dims, {"reopenings": 1}))
                elif event.type == "CaseResolved":
                    counts = {"resolutions": 1}
                    samples = {}
                    latest = (event is resolutions[-1] and
                              now_state.status == activity_pb2.CASE_STATUS_RESOLVED)
                    if latest:
                        counts["resolved"] = 1
                        samples["resolution"] = [
                            (event.occurred_us - opened.occurred_us) / US_PER_SECOND]
                    facts.append(_Fact(dims, counts, samples))
        return facts

    def _open_cases(self, e):
        facts = []
        for events in self.cases.values():
            state = _last_state(events, "case", e)
            if state is not None and state.status == activity_pb2.CASE_STATUS_OPEN:
                facts.append(_Fact({"priority": priority_label(state.priority)}, {"count": 1}))
        return facts


def _stage_entries(events):
    """[(occurred_us, stage_id, opportunity, stream_version)] of every entry of the opportunity
    into a stage: its opening, its stage moves, and a reopening in another stage than the one
    it was closed in."""
    entries = []
    stage = None
    for event in events:
        if event.payload is None or not hasattr(event.payload, "opportunity"):
            continue
        opportunity = event.payload.opportunity
        if event.type in ("OpportunityOpened", "OpportunityStageMoved") or (
                event.type == "OpportunityReopened" and opportunity.stage_id != stage):
            entries.append((event.occurred_us, opportunity.stage_id, opportunity, event.version))
        stage = opportunity.stage_id
    return entries


def _measures(specs, facts):
    counts = collections.Counter()
    samples = collections.defaultdict(list)
    money = collections.defaultdict(collections.Counter)
    for fact in facts:
        counts.update(fact.counts)
        for name, values in fact.samples.items():
            samples[name].extend(values)
        for name, per_currency in fact.money.items():
            money[name].update(per_currency)
    out = {}
    for name, kind, a, b, parameter in specs:
        if kind == COUNT:
            out[name] = counts[a]
        elif kind == RATIO:
            out[name] = (counts[a], counts[b])
        elif kind == QUANTILE:
            value = nearest_rank(samples[a], parameter)
            out[name] = None if value is None else Quantile(value, len(samples[a]))
        elif kind == MONEY:
            out[name] = dict(money[a])
        elif kind == MONEY_RATIO:
            currencies = set(money[a]) | set(money[b])
            out[name] = {c: (money[a][c], money[b][c]) for c in currencies}
        elif kind == MONEY_PER_COUNT:
            out[name] = {c: div_toward_zero(money[a][c], money[b][c])
                         for c in money[b] if money[b][c]}
        elif kind == MONEY_SCALED:
            out[name] = {c: div_toward_zero(v, parameter) for c, v in money[a].items()}
    return out


# --- the service's answers in the same shape --------------------------------------------------


def rows_from_result(kpi_result):
    """A crm.metrics.v1.KpiResult as {(label, group values): {measure: value}} (shapes above).
    A measure with a currency_code goes into {currency: value}; a quantile without a value
    (empty sample) is None."""
    out = {}
    for row in kpi_result.rows:
        key = (row.period.label, tuple(d.value for d in row.dimensions))
        measures = out.setdefault(key, {})
        for measure in row.measures:
            which = measure.WhichOneof("value")
            if which == "count":
                value = measure.count
            elif which == "ratio":
                value = (measure.ratio.numerator, measure.ratio.denominator)
            elif which == "quantile":
                value = Quantile(measure.quantile.value, measure.quantile.count)
            elif which == "amount_minor":
                value = measure.amount_minor
            else:
                value = None
            if measure.currency_code:
                measures.setdefault(measure.name, {})[measure.currency_code] = value
            else:
                measures[measure.name] = value
    return out


def differences(expected, actual, rel_tol=0.01, abs_tol=1e-6):
    """Human-readable differences between two results of the shape above. Quantile values may
    differ by rel_tol x |expected| + abs_tol (the service's sketch); their counts and every
    other figure must be equal. A measure missing on one side equals None, {} on the other."""
    out = []
    for key in sorted(set(expected) | set(actual)):
        if key not in actual:
            out.append(f"{key}: missing in actual (expected {expected[key]})")
            continue
        if key not in expected:
            out.append(f"{key}: unexpected row {actual[key]}")
            continue
        e_row, a_row = expected[key], actual[key]
        for name in sorted(set(e_row) | set(a_row)):
            e, a = e_row.get(name), a_row.get(name)
            if e in ({}, None) and a in ({}, None):
                continue
            if isinstance(e, Quantile) and isinstance(a, Quantile):
                if e.count != a.count or abs(a.value - e.value) > rel_tol * abs(e.value) + abs_tol:
                    out.append(f"{key} {name}: expected {e}, actual {a}")
            elif e != a:
                out.append(f"{key} {name}: expected {e}, actual {a}")
    return out
