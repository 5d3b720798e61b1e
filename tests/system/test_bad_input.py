"""The bad input matrix against every method of the four services.

Table-driven: each case is (service, method, request builder, token, expected status code,
expected offending field). A case passes when

- the call fails with the documented status code (docs/api.md);
- the offending field is named: in the google.rpc.BadRequest field violations of the
  `grpc-status-details-bin` trailer (decoded with crm.common.v1's wire-compatible mirror of
  google.rpc.Status / BadRequest: Debian ships no googleapis protos for Python), or where the
  API says only the message names it (occurred_at out of bounds, earlier than the record's
  last change) in the status message; PERMISSION_DENIED names the missing scope;
- nothing was stored: the event-store counters and the relay's log position of the three
  command services are the same before and after the call.

Requests that protobuf's Python runtime refuses to build (invalid UTF-8, messages over the
server's 4 MiB receive limit) are sent as raw bytes through a pass-through serializer.
"""

import collections
import datetime
import re
import unittest
import uuid

import grpc
from google.protobuf import descriptor, duration_pb2, field_mask_pb2, symbol_database
from google.protobuf import timestamp_pb2

from crm.activity.v1 import activity_pb2, activity_service_pb2
from crm.common.v1 import common_pb2, error_pb2
from crm.contact.v1 import contact_pb2, contact_service_pb2
from crm.metrics.v1 import metrics_service_pb2
from crm.pipeline.v1 import pipeline_pb2, pipeline_service_pb2

import harness
from harness import metadata, token
from test_system import REP_SCOPES

OK = grpc.StatusCode
TIMEOUT = 20
# libs/runtime: ServerOptions::max_message_bytes (--max-message-bytes), default 4 MiB.
MAX_MESSAGE_BYTES = 4 << 20
# docs/api.md section 5: occurred_at at most 5 minutes ahead, at most 400 days back.
MAX_PAST = datetime.timedelta(days=400)

SERVICES = {
    "contact": contact_service_pb2.DESCRIPTOR.services_by_name["ContactService"],
    "activity": activity_service_pb2.DESCRIPTOR.services_by_name["ActivityService"],
    "pipeline": pipeline_service_pb2.DESCRIPTOR.services_by_name["PipelineService"],
    "metrics": metrics_service_pb2.DESCRIPTOR.services_by_name["MetricsService"],
}
COMMAND_SERVICES = ("contact", "activity", "pipeline")
STORE_METRICS = ("crm_eventstore_events_appended_total", "crm_relay_log_position")
READ_VERBS = ("Get", "List", "FindDuplicates", "ValidateReferences")
SERVICE_SCOPE = {"contact": "contacts", "activity": "activities", "pipeline": "pipeline"}

DELETE = object()  # a value for set_path: clear the field
UTF8_MARK = "u8MARK-3f9c1e"


def required_scope(service, method):
    """docs/api.md section 3, scopes per method."""
    if service == "metrics":
        return "admin" if method == "RebuildProjections" else "metrics:read"
    kind = "read" if method.startswith(READ_VERBS) else "write"
    return f"{SERVICE_SCOPE[service]}:{kind}"


def is_command(service, method):
    return service in COMMAND_SERVICES and required_scope(service, method).endswith(":write")


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def ts(moment):
    result = timestamp_pb2.Timestamp()
    result.FromDatetime(moment)
    return result


def uid(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def big(n, char="x"):
    return char * n


_INDEXED = re.compile(r"^(\w+)\[(\d+)\]$")


def set_path(message, path, value):
    """Sets a field by its path ("contact.emails", "lines[0].quantity"); DELETE clears it.
    Lists and maps are replaced whole; message values are copied."""
    parts = path.split(".")
    target = message
    for part in parts[:-1]:
        indexed = _INDEXED.match(part)
        if indexed:
            container, index = getattr(target, indexed[1]), int(indexed[2])
            if index == len(container):
                container.add()  # one past the end: a new element
            target = container[index]
        else:
            target = getattr(target, part)
    last = parts[-1]
    indexed = _INDEXED.match(last)
    if indexed:
        container, index = getattr(target, indexed[1]), int(indexed[2])
        if index == len(container):
            container.append(value)
        else:
            container[index] = value
        return
    if value is DELETE:
        target.ClearField(last)
        return
    field = target.DESCRIPTOR.fields_by_name[last]
    if field.label == descriptor.FieldDescriptor.LABEL_REPEATED:
        container = getattr(target, last)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            container.clear()
            container.update(value)
            return
        del container[:]
        if field.message_type is not None:
            for item in value:
                container.add().CopyFrom(item)
        else:
            container.extend(value)
    elif field.message_type is not None:
        getattr(target, last).CopyFrom(value)
    else:
        setattr(target, last, value)


def _varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def oversized(message, size=MAX_MESSAGE_BYTES + (64 << 10)):
    """The valid request plus an unknown length-delimited field (number 4000) that takes the
    whole message over the server's receive limit."""
    padding = b"x" * size
    return message.SerializeToString() + _varint((4000 << 3) | 2) + _varint(len(padding)) + padding


def invalid_utf8(message, path):
    """The request's bytes with the string field at `path` made invalid UTF-8 (0xFF 0xFE are
    never valid); protobuf's Python runtime refuses to serialize that itself."""
    set_path(message, path, UTF8_MARK)
    data = message.SerializeToString()
    mark = UTF8_MARK.encode()
    assert data.count(mark) == 1, path
    return data.replace(mark, b"\xff\xfe" + mark[2:])


def decode_violations(error):
    """(google.rpc.Status code or None, [(field, description)]) from the status details."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = error_pb2.RpcStatus.FromString(value)
            violations = []
            for detail in status.details:
                if detail.type_url == "type.googleapis.com/google.rpc.BadRequest":
                    bad_request = error_pb2.BadRequest.FromString(detail.value)
                    violations += [(v.field, v.description) for v in bad_request.field_violations]
            return status.code, violations
    return None, []


def names_field(violation_field, expected):
    """A violation names `expected` when it is that path or a path inside it."""
    return (violation_field == expected or violation_field.startswith(expected + ".")
            or violation_field.startswith(expected + "["))


Case = collections.namedtuple("Case", "service method name build code field token where message",
                              defaults=("rep", "details", None))
# field: None (no field expected), a path, a tuple of acceptable paths, or a list of paths that
#   must all be named.
# where: "details" (BadRequest violations) or "message" (the status message names the field).
# message: a substring the status message must contain.


class BadInputTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.system = harness.System()
        cls.system.__enter__()
        try:
            cls.rep_id = uid("rep")
            cls.tokens = {
                "rep": token(cls.rep_id, REP_SCOPES),
                "admin": token("admin-bad-input", ("admin",)),
                "expired": token(cls.rep_id, REP_SCOPES, ttl=-60),
                "forged": token(cls.rep_id, REP_SCOPES, secret="not-the-secret-0123456789"),
                "service": token("integration-bad-input", REP_SCOPES, kind="service"),
            }
            cls.f = Fixtures(cls.system, cls.tokens)
        except BaseException:
            cls.system.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.system.close()

    # --- running a case ----------------------------------------------------------------------

    def store_positions(self):
        positions = {}
        for service in COMMAND_SERVICES:
            page = self.system.metrics_page(service)
            for name in STORE_METRICS:
                self.assertIn(name, page, f"{service} /metrics has no {name}")
                positions[(service, name)] = harness.metric_sum(page, name)
        return positions

    def invoke(self, service, method, request, token_name):
        method_descriptor = SERVICES[service].methods_by_name[method]
        response_class = symbol_database.Default().GetSymbol(
            method_descriptor.output_type.full_name)
        rpc = self.system.channel(service).unary_unary(
            f"/{SERVICES[service].full_name}/{method}",
            request_serializer=lambda data: data,
            response_deserializer=response_class.FromString)
        data = request if isinstance(request, bytes) else request.SerializeToString()
        if token_name is None:
            call_metadata = ()
        elif token_name == "wrong_scope":
            scopes = [s for s in REP_SCOPES if s != required_scope(service, method)]
            call_metadata = metadata(token(self.rep_id, scopes))
        else:
            call_metadata = metadata(self.tokens[token_name])
        return rpc(data, metadata=call_metadata, timeout=TIMEOUT)

    def run_cases(self, cases):
        for case in cases:
            with self.subTest(f"{case.service}.{case.method}: {case.name}"):
                self.run_case(case)

    def run_case(self, case):
        request = case.build()
        before = self.store_positions()
        try:
            answer = self.invoke(case.service, case.method, request, case.token)
        except grpc.RpcError as error:
            failure = error
        else:
            after = self.store_positions()
            self.fail(f"accepted; expected {case.code.name}; answer: {str(answer)[:300]!r}; "
                      f"stores {'unchanged' if after == before else 'CHANGED'}")
        message = failure.details() or ""
        status_code, violations = decode_violations(failure)
        after = self.store_positions()
        problems = []
        if failure.code() != case.code:
            problems.append(f"code {failure.code().name}, expected {case.code.name}")
        if status_code is not None and status_code != failure.code().value[0]:
            problems.append(f"status details carry code {status_code}")
        fields = [f for f, _ in violations]
        if case.field is not None:
            wanted = case.field if isinstance(case.field, list) else [case.field]
            for expected in wanted:
                options = expected if isinstance(expected, tuple) else (expected,)
                if case.where == "details":
                    named = any(names_field(f, o) for f in fields for o in options)
                else:
                    named = any(o in message for o in options)
                if not named:
                    where = "field violations" if case.where == "details" else "message"
                    problems.append(f"field {' or '.join(options)} not named in the {where}")
        if case.message is not None and case.message not in message:
            problems.append(f"message does not contain {case.message!r}")
        if after != before:
            changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
            problems.append(f"STORED DATA: {changed}")
        if problems:
            self.fail("; ".join(problems) + f" (got {failure.code().name}: {message[:300]!r}; "
                      f"violations {violations})")

    # --- the matrix --------------------------------------------------------------------------

    def test_authentication_and_scopes_of_every_method(self):
        """No token, an expired or forged token: UNAUTHENTICATED. A valid token without the
        method's scope (every other scope present): PERMISSION_DENIED naming the scope."""
        cases = []
        for service, service_descriptor in SERVICES.items():
            for method in service_descriptor.methods_by_name:
                build = self.f.base(service, method)
                cases += [
                    Case(service, method, "no token", build, OK.UNAUTHENTICATED, None, None),
                    Case(service, method, "expired token", build, OK.UNAUTHENTICATED, None,
                         "expired"),
                    Case(service, method, "forged token", build, OK.UNAUTHENTICATED, None,
                         "forged"),
                    Case(service, method, "without its scope", build, OK.PERMISSION_DENIED,
                         None, "wrong_scope", message=required_scope(service, method)),
                ]
        self.assertEqual(len(cases), 4 * 60)
        self.run_cases(cases)

    def test_message_over_the_size_limit_for_every_method(self):
        cases = [Case(service, method, "message over 4 MiB",
                      lambda s=service, m=method: oversized(self.f.base(s, m)()),
                      OK.RESOURCE_EXHAUSTED, None)
                 for service, service_descriptor in SERVICES.items()
                 for method in service_descriptor.methods_by_name]
        self.run_cases(cases)

    def test_invalid_utf8_in_a_string_field_of_every_method(self):
        """The parser names the field but not the list element (docs/api.md section 4)."""
        cases = []
        for (service, method), path in self.f.UTF8_FIELDS.items():
            cases.append(Case(service, method, f"invalid UTF-8 in {path}",
                              lambda s=service, m=method, p=path: invalid_utf8(
                                  self.f.base(s, m)(), p),
                              OK.INVALID_ARGUMENT, re.sub(r"\[\d+\]", "", path)))
        covered = {m for _, m in self.f.UTF8_FIELDS} | {
            "ListKpiDefinitions", "RebuildProjections", "GetProjectionStatus"}  # no string field
        self.assertEqual(covered, {m for s in SERVICES.values() for m in s.methods_by_name})
        self.run_cases(cases)

    def test_bytes_that_are_not_a_request(self):
        """A body protobuf cannot parse at all: malformed input, INVALID_ARGUMENT."""
        garbage = b"\xff\xff\xff\xff\x0f"  # field 0 does not exist; a truncated varint
        self.run_cases([
            Case("contact", "CreateContact", "unparseable bytes", lambda: garbage,
                 OK.INVALID_ARGUMENT, None),
            Case("activity", "LogActivity", "unparseable bytes", lambda: garbage,
                 OK.INVALID_ARGUMENT, None),
            Case("pipeline", "OpenOpportunity", "unparseable bytes", lambda: garbage,
                 OK.INVALID_ARGUMENT, None),
            Case("metrics", "QueryKpi", "unparseable bytes", lambda: garbage,
                 OK.INVALID_ARGUMENT, None),
        ])

    def test_business_time_out_of_bounds_for_every_command(self):
        """occurred_at more than 400 days back or 5 minutes ahead: INVALID_ARGUMENT, the
        message starts with occurred_at; a timestamp outside 0001..9999: INVALID_ARGUMENT on
        occurred_at."""
        cases = []
        for service in COMMAND_SERVICES:
            for method in SERVICES[service].methods_by_name:
                if not is_command(service, method):
                    continue
                build = self.f.base(service, method)
                cases += [
                    Case(service, method, "occurred_at 401 days ago",
                         self.f.changed(build, {"occurred_at": lambda: ts(
                             now() - MAX_PAST - datetime.timedelta(days=1))}),
                         OK.INVALID_ARGUMENT, "occurred_at", where="message"),
                    Case(service, method, "occurred_at 1 hour ahead",
                         self.f.changed(build, {"occurred_at": lambda: ts(
                             now() + datetime.timedelta(hours=1))}),
                         OK.INVALID_ARGUMENT, "occurred_at", where="message"),
                    Case(service, method, "occurred_at after year 9999",
                         self.f.changed(build, {"occurred_at": timestamp_pb2.Timestamp(
                             seconds=253_402_300_800)}),
                         OK.INVALID_ARGUMENT, "occurred_at"),
                    Case(service, method, "occurred_at with negative nanos",
                         self.f.changed(build, {"occurred_at": timestamp_pb2.Timestamp(
                             seconds=int(now().timestamp()), nanos=-1)}),
                         OK.INVALID_ARGUMENT, "occurred_at"),
                ]
        self.assertEqual(len(cases), 4 * 32)
        self.run_cases(cases)

    def test_contact_service(self):
        self.run_cases(self.f.contact_cases())

    def test_activity_service(self):
        self.run_cases(self.f.activity_cases())

    def test_pipeline_service(self):
        self.run_cases(self.f.pipeline_cases())

    def test_metrics_service(self):
        self.run_cases(self.f.metrics_cases())


class Fixtures:
    """The records the cases refer to, and a valid request of every method (fresh ids and
    request ids on every call), from which the cases are variants."""

    def __init__(self, system, tokens):
        from crm.contact.v1 import contact_service_pb2_grpc
        from crm.activity.v1 import activity_service_pb2_grpc
        from crm.pipeline.v1 import pipeline_service_pb2_grpc
        self.tokens = tokens
        rep = metadata(tokens["rep"])
        contacts = contact_service_pb2_grpc.ContactServiceStub(system.channel("contact"))
        activities = activity_service_pb2_grpc.ActivityServiceStub(system.channel("activity"))
        pipeline = pipeline_service_pb2_grpc.PipelineServiceStub(system.channel("pipeline"))

        def call(rpc, request):
            return rpc(request, metadata=rep, timeout=TIMEOUT)

        def account(**fields):
            fields.setdefault("display_name", "Fixture Ltd")
            return call(contacts.CreateAccount, contact_service_pb2.CreateAccountRequest(
                account_id=uid("acc"), request_id=uid("req"),
                account=contact_pb2.Account(**fields)))

        def contact(occurred_at=None, request_id=None, **fields):
            fields.setdefault("given_name", "Fixture")
            fields.setdefault("family_name", uid("Person"))
            request = contact_service_pb2.CreateContactRequest(
                contact_id=uid("con"), request_id=request_id or uid("req"), channel="web_form",
                contact=contact_pb2.Contact(**fields))
            if occurred_at is not None:
                request.occurred_at.CopyFrom(ts(occurred_at))
            return call(contacts.CreateContact, request)

        # contact-service
        self.account = account(region="south").account_id
        self.account_archived = account().account_id
        call(contacts.ArchiveAccount, contact_service_pb2.ArchiveAccountRequest(
            account_id=self.account_archived, request_id=uid("req")))
        self.contact_request_id = uid("req")
        self.contact = contact(request_id=self.contact_request_id, account_id=self.account,
                               emails=[f"{uid('f')}@example.com"]).contact_id
        self.contact_archived = contact().contact_id
        call(contacts.ArchiveContact, contact_service_pb2.ArchiveContactRequest(
            contact_id=self.contact_archived, request_id=uid("req")))
        self.merge_winner = contact().contact_id
        self.merge_loser = contact().contact_id
        self.merged_winner = contact().contact_id
        self.merged = contact().contact_id  # merged into merged_winner
        call(contacts.MergeContacts, contact_service_pb2.MergeContactsRequest(
            winner_contact_id=self.merged_winner, loser_contact_id=self.merged,
            request_id=uid("req")))
        self.many_emails_a = contact(emails=[f"a{i}-{uid('e')}@example.com"
                                             for i in range(6)]).contact_id
        self.many_emails_b = contact(emails=[f"b{i}-{uid('e')}@example.com"
                                             for i in range(6)]).contact_id
        self.early_winner = contact(occurred_at=now() - datetime.timedelta(hours=2)).contact_id
        self.late_loser = contact().contact_id

        # pipeline-service
        self.pipeline = uid("pipe")
        call(pipeline.DefinePipeline, pipeline_service_pb2.DefinePipelineRequest(
            pipeline_id=self.pipeline, display_name="Fixture pipeline", request_id=uid("req"),
            stages=[pipeline_pb2.Stage(stage_id="s1", probability_bps=2000),
                    pipeline_pb2.Stage(stage_id="s2", probability_bps=6000)]))

        def lead(**fields):
            fields.setdefault("source", "fixture")
            fields.setdefault("person", pipeline_pb2.LeadPerson(given_name="Lead",
                                                                family_name="Fixture"))
            if fields["person"] is None:
                del fields["person"]
            return call(pipeline.CaptureLead, pipeline_service_pb2.CaptureLeadRequest(
                lead_id=uid("lead"), request_id=uid("req"), channel="web_form",
                lead=pipeline_pb2.Lead(**fields))).lead_id

        self.lead = lead()
        self.lead_to_convert = lead(company=pipeline_pb2.LeadCompany(display_name="Convert Co"))
        self.lead_company_only = lead(person=None,
                                      company=pipeline_pb2.LeadCompany(display_name="Only Co"))
        self.lead_qualified = lead()
        call(pipeline.QualifyLead, pipeline_service_pb2.QualifyLeadRequest(
            lead_id=self.lead_qualified, request_id=uid("req")))
        self.lead_disqualified = lead()
        call(pipeline.DisqualifyLead, pipeline_service_pb2.DisqualifyLeadRequest(
            lead_id=self.lead_disqualified, reason="No budget", request_id=uid("req")))

        def opportunity():
            return call(pipeline.OpenOpportunity, pipeline_service_pb2.OpenOpportunityRequest(
                opportunity_id=uid("opp"), request_id=uid("req"),
                opportunity=pipeline_pb2.Opportunity(
                    display_name="Fixture deal", pipeline_id=self.pipeline, currency_code="EUR",
                    contact_id=self.contact))).opportunity_id

        self.opportunity = opportunity()
        self.opportunity_closed = opportunity()
        call(pipeline.CloseOpportunity, pipeline_service_pb2.CloseOpportunityRequest(
            opportunity_id=self.opportunity_closed, outcome=pipeline_pb2.OPPORTUNITY_STATUS_WON,
            request_id=uid("req")))

        # activity-service
        def activity(scheduled=False, **fields):
            fields.setdefault("type", activity_pb2.ACTIVITY_TYPE_CALL)
            request = activity_service_pb2.LogActivityRequest(
                activity_id=uid("act"), request_id=uid("req"), channel="phone",
                activity=activity_pb2.Activity(contact_id=self.contact, **fields))
            if scheduled:
                request.scheduled_time.CopyFrom(ts(now() + datetime.timedelta(days=1)))
            return call(activities.LogActivity, request).activity_id

        self.activity_done = activity()
        self.activity_scheduled = activity(scheduled=True)
        self.activity_cancelled = activity(scheduled=True)
        call(activities.CancelActivity, activity_service_pb2.CancelActivityRequest(
            activity_id=self.activity_cancelled, request_id=uid("req")))

        def task():
            return call(activities.ScheduleTask, activity_service_pb2.ScheduleTaskRequest(
                task_id=uid("task"), request_id=uid("req"),
                task=activity_pb2.Task(title="Fixture task", assignee_id="agent-1",
                                       due_time=ts(now() + datetime.timedelta(days=2)),
                                       contact_id=self.contact))).task_id

        self.task = task()
        self.task_completed = task()
        call(activities.CompleteTask, activity_service_pb2.CompleteTaskRequest(
            task_id=self.task_completed, request_id=uid("req")))

        def case():
            return call(activities.OpenCase, activity_service_pb2.OpenCaseRequest(
                case_id=uid("case"), request_id=uid("req"), channel="service_desk",
                case=activity_pb2.Case(subject="Fixture case", contact_id=self.contact,
                                       priority=activity_pb2.CASE_PRIORITY_NORMAL,
                                       assignee_id="agent-1"))).case_id

        self.case = case()
        self.case_resolved = case()
        call(activities.ResolveCase, activity_service_pb2.ResolveCaseRequest(
            case_id=self.case_resolved, resolution="Done", request_id=uid("req")))

        self._bases = self._make_bases()

    # --- valid requests ----------------------------------------------------------------------

    def base(self, service, method):
        """A builder of a valid request of the method (fresh ids on every call)."""
        return self._bases[(service, method)]

    @staticmethod
    def changed(build, changes):
        """A builder of `build`'s request with `changes` (path -> value, a callable giving the
        value, or DELETE) applied."""
        def variant():
            request = build()
            for path, value in changes.items():
                set_path(request, path, value() if callable(value) else value)
            return request
        return variant

    def _make_bases(self):
        c, a, p, m = (contact_service_pb2, activity_service_pb2, pipeline_service_pb2,
                      metrics_service_pb2)
        mask = lambda *paths: field_mask_pb2.FieldMask(paths=list(paths))  # noqa: E731
        day = datetime.timedelta(days=1)
        bases = {
            # contact-service
            ("contact", "CreateContact"): lambda: c.CreateContactRequest(
                contact_id=uid("con"), request_id=uid("req"), channel="web_form",
                contact=contact_pb2.Contact(given_name="Bad", family_name="Input",
                                            emails=[f"{uid('b')}@example.com"])),
            ("contact", "GetContact"): lambda: c.GetContactRequest(contact_id=self.contact),
            ("contact", "UpdateContact"): lambda: c.UpdateContactRequest(
                contact=contact_pb2.Contact(contact_id=self.contact, given_name=uid("Name")),
                update_mask=mask("given_name"), request_id=uid("req")),
            ("contact", "ArchiveContact"): lambda: c.ArchiveContactRequest(
                contact_id=self.contact, request_id=uid("req"), channel="web_form"),
            ("contact", "RestoreContact"): lambda: c.RestoreContactRequest(
                contact_id=self.contact_archived, request_id=uid("req"), channel="web_form"),
            ("contact", "ListContacts"): lambda: c.ListContactsRequest(
                page_size=10, owner_id="someone"),
            ("contact", "FindDuplicates"): lambda: c.FindDuplicatesRequest(
                contact_id=self.contact),
            ("contact", "MergeContacts"): lambda: c.MergeContactsRequest(
                winner_contact_id=self.merge_winner, loser_contact_id=self.merge_loser,
                request_id=uid("req"), channel="service_desk"),
            ("contact", "ListContactEvents"): lambda: c.ListContactEventsRequest(
                contact_id=self.contact),
            ("contact", "CreateAccount"): lambda: c.CreateAccountRequest(
                account_id=uid("acc"), request_id=uid("req"),
                account=contact_pb2.Account(display_name="Bad Input Ltd", region="south")),
            ("contact", "GetAccount"): lambda: c.GetAccountRequest(account_id=self.account),
            ("contact", "UpdateAccount"): lambda: c.UpdateAccountRequest(
                account=contact_pb2.Account(account_id=self.account, region=uid("region")),
                update_mask=mask("region"), request_id=uid("req")),
            ("contact", "ArchiveAccount"): lambda: c.ArchiveAccountRequest(
                account_id=self.account, request_id=uid("req"), channel="web_form"),
            ("contact", "RestoreAccount"): lambda: c.RestoreAccountRequest(
                account_id=self.account_archived, request_id=uid("req"), channel="web_form"),
            ("contact", "ListAccounts"): lambda: c.ListAccountsRequest(page_size=10,
                                                                       region="south"),
            ("contact", "ValidateReferences"): lambda: c.ValidateReferencesRequest(
                contact_ids=[self.contact], account_ids=[self.account]),
            # activity-service
            ("activity", "LogActivity"): lambda: a.LogActivityRequest(
                activity_id=uid("act"), request_id=uid("req"), channel="phone",
                activity=activity_pb2.Activity(type=activity_pb2.ACTIVITY_TYPE_CALL,
                                               contact_id=self.contact, subject="Call")),
            ("activity", "GetActivity"): lambda: a.GetActivityRequest(
                activity_id=self.activity_done),
            ("activity", "UpdateActivity"): lambda: a.UpdateActivityRequest(
                activity=activity_pb2.Activity(activity_id=self.activity_scheduled,
                                               body=uid("body")),
                update_mask=mask("body"), request_id=uid("req")),
            ("activity", "CompleteActivity"): lambda: a.CompleteActivityRequest(
                activity_id=self.activity_scheduled, outcome="connected",
                request_id=uid("req")),
            ("activity", "CancelActivity"): lambda: a.CancelActivityRequest(
                activity_id=self.activity_scheduled, reason="postponed", request_id=uid("req")),
            ("activity", "ListTimeline"): lambda: a.ListTimelineRequest(
                contact_id=self.contact, page_size=10),
            ("activity", "ListActivities"): lambda: a.ListActivitiesRequest(
                owner_id="someone", page_size=10),
            ("activity", "ScheduleTask"): lambda: a.ScheduleTaskRequest(
                task_id=uid("task"), request_id=uid("req"),
                task=activity_pb2.Task(title="Call back", contact_id=self.contact,
                                       due_time=ts(now() + day))),
            ("activity", "GetTask"): lambda: a.GetTaskRequest(task_id=self.task),
            ("activity", "CompleteTask"): lambda: a.CompleteTaskRequest(
                task_id=self.task, request_id=uid("req"), channel="phone"),
            ("activity", "CancelTask"): lambda: a.CancelTaskRequest(
                task_id=self.task, reason="not needed", request_id=uid("req")),
            ("activity", "ReassignTask"): lambda: a.ReassignTaskRequest(
                task_id=self.task, assignee_id="agent-2", request_id=uid("req")),
            ("activity", "ListTasks"): lambda: a.ListTasksRequest(assignee_id="agent-1",
                                                                  page_size=10),
            ("activity", "OpenCase"): lambda: a.OpenCaseRequest(
                case_id=uid("case"), request_id=uid("req"), channel="service_desk",
                case=activity_pb2.Case(subject="Wrong invoice", contact_id=self.contact,
                                       priority=activity_pb2.CASE_PRIORITY_HIGH)),
            ("activity", "GetCase"): lambda: a.GetCaseRequest(case_id=self.case),
            ("activity", "AssignCase"): lambda: a.AssignCaseRequest(
                case_id=self.case, assignee_id="agent-2", request_id=uid("req")),
            ("activity", "AddCaseNote"): lambda: a.AddCaseNoteRequest(
                case_id=self.case, text="A note", request_id=uid("req")),
            ("activity", "ResolveCase"): lambda: a.ResolveCaseRequest(
                case_id=self.case, resolution="Fixed", request_id=uid("req")),
            ("activity", "ReopenCase"): lambda: a.ReopenCaseRequest(
                case_id=self.case_resolved, reason="Still broken", request_id=uid("req")),
            ("activity", "ListCases"): lambda: a.ListCasesRequest(assignee_id="agent-1",
                                                                  page_size=10),
            ("activity", "ListCaseNotes"): lambda: a.ListCaseNotesRequest(case_id=self.case),
            # pipeline-service
            ("pipeline", "DefinePipeline"): lambda: p.DefinePipelineRequest(
                pipeline_id=uid("pipe"), display_name="Bad input", request_id=uid("req"),
                stages=[pipeline_pb2.Stage(stage_id="one", probability_bps=5000)]),
            ("pipeline", "GetPipeline"): lambda: p.GetPipelineRequest(pipeline_id=self.pipeline),
            ("pipeline", "ListPipelines"): lambda: p.ListPipelinesRequest(page_size=10),
            ("pipeline", "CaptureLead"): lambda: p.CaptureLeadRequest(
                lead_id=uid("lead"), request_id=uid("req"), channel="web_form",
                lead=pipeline_pb2.Lead(source="web", person=pipeline_pb2.LeadPerson(
                    given_name="Lead"))),
            ("pipeline", "GetLead"): lambda: p.GetLeadRequest(lead_id=self.lead),
            ("pipeline", "ListLeads"): lambda: p.ListLeadsRequest(source="fixture",
                                                                  page_size=10),
            ("pipeline", "QualifyLead"): lambda: p.QualifyLeadRequest(
                lead_id=self.lead, request_id=uid("req"), channel="phone"),
            ("pipeline", "DisqualifyLead"): lambda: p.DisqualifyLeadRequest(
                lead_id=self.lead, reason="No budget", request_id=uid("req")),
            ("pipeline", "ConvertLead"): lambda: p.ConvertLeadRequest(
                lead_id=self.lead_to_convert, request_id=uid("req"),
                opportunity=pipeline_pb2.Opportunity(
                    pipeline_id=self.pipeline, currency_code="EUR", display_name="Converted",
                    lines=[pipeline_pb2.ProductLine(product_id="pro", quantity=2,
                                                    unit_price_minor=100)])),
            ("pipeline", "OpenOpportunity"): lambda: p.OpenOpportunityRequest(
                opportunity_id=uid("opp"), request_id=uid("req"),
                opportunity=pipeline_pb2.Opportunity(
                    display_name="Deal", pipeline_id=self.pipeline, currency_code="EUR",
                    lines=[pipeline_pb2.ProductLine(product_id="pro", quantity=2,
                                                    unit_price_minor=100)])),
            ("pipeline", "GetOpportunity"): lambda: p.GetOpportunityRequest(
                opportunity_id=self.opportunity),
            ("pipeline", "UpdateOpportunity"): lambda: p.UpdateOpportunityRequest(
                opportunity=pipeline_pb2.Opportunity(opportunity_id=self.opportunity,
                                                     display_name=uid("Deal")),
                update_mask=mask("display_name"), request_id=uid("req")),
            ("pipeline", "MoveOpportunityStage"): lambda: p.MoveOpportunityStageRequest(
                opportunity_id=self.opportunity, stage_id="s2", request_id=uid("req")),
            ("pipeline", "CloseOpportunity"): lambda: p.CloseOpportunityRequest(
                opportunity_id=self.opportunity, outcome=pipeline_pb2.OPPORTUNITY_STATUS_LOST,
                reason="Competitor", request_id=uid("req")),
            ("pipeline", "ReopenOpportunity"): lambda: p.ReopenOpportunityRequest(
                opportunity_id=self.opportunity_closed, request_id=uid("req"), channel="phone"),
            ("pipeline", "ListOpportunities"): lambda: p.ListOpportunitiesRequest(
                owner_id="someone", page_size=10),
            ("pipeline", "ValidateReferences"): lambda: p.ValidateReferencesRequest(
                lead_ids=[self.lead], opportunity_ids=[self.opportunity]),
            # metrics-service
            ("metrics", "ListKpiDefinitions"): lambda: m.ListKpiDefinitionsRequest(),
            ("metrics", "QueryKpi"): lambda: m.QueryKpiRequest(
                kpi="activities_logged", period_kind=m.PERIOD_KIND_MONTH,
                start_time=ts(now() - 30 * day), end_time=ts(now())),
            ("metrics", "GetAdoptionScorecard"): lambda: m.GetAdoptionScorecardRequest(
                period_kind=m.PERIOD_KIND_MONTH),
            ("metrics", "GetBusinessDashboard"): lambda: m.GetBusinessDashboardRequest(
                period_kind=m.PERIOD_KIND_ISO_WEEK),
            ("metrics", "RebuildProjections"): lambda: m.RebuildProjectionsRequest(),
            ("metrics", "GetProjectionStatus"): lambda: m.GetProjectionStatusRequest(),
        }
        every = {(s, name) for s, d in SERVICES.items() for name in d.methods_by_name}
        assert set(bases) == every, every ^ set(bases)
        return bases

    # The string field made invalid UTF-8, per method (every method that has one).
    UTF8_FIELDS = {
        ("contact", "CreateContact"): "contact.given_name",
        ("contact", "GetContact"): "contact_id",
        ("contact", "UpdateContact"): "contact.given_name",
        ("contact", "ArchiveContact"): "channel",
        ("contact", "RestoreContact"): "channel",
        ("contact", "ListContacts"): "owner_id",
        ("contact", "FindDuplicates"): "contact_id",
        ("contact", "MergeContacts"): "channel",
        ("contact", "ListContactEvents"): "contact_id",
        ("contact", "CreateAccount"): "account.display_name",
        ("contact", "GetAccount"): "account_id",
        ("contact", "UpdateAccount"): "account.region",
        ("contact", "ArchiveAccount"): "channel",
        ("contact", "RestoreAccount"): "channel",
        ("contact", "ListAccounts"): "region",
        ("contact", "ValidateReferences"): "contact_ids[0]",
        ("activity", "LogActivity"): "activity.subject",
        ("activity", "GetActivity"): "activity_id",
        ("activity", "UpdateActivity"): "activity.body",
        ("activity", "CompleteActivity"): "outcome",
        ("activity", "CancelActivity"): "reason",
        ("activity", "ListTimeline"): "contact_id",
        ("activity", "ListActivities"): "owner_id",
        ("activity", "ScheduleTask"): "task.title",
        ("activity", "GetTask"): "task_id",
        ("activity", "CompleteTask"): "channel",
        ("activity", "CancelTask"): "reason",
        ("activity", "ReassignTask"): "assignee_id",
        ("activity", "ListTasks"): "assignee_id",
        ("activity", "OpenCase"): "case.subject",
        ("activity", "GetCase"): "case_id",
        ("activity", "AssignCase"): "assignee_id",
        ("activity", "AddCaseNote"): "text",
        ("activity", "ResolveCase"): "resolution",
        ("activity", "ReopenCase"): "reason",
        ("activity", "ListCases"): "assignee_id",
        ("activity", "ListCaseNotes"): "case_id",
        ("pipeline", "DefinePipeline"): "display_name",
        ("pipeline", "GetPipeline"): "pipeline_id",
        ("pipeline", "ListPipelines"): "page_token",
        ("pipeline", "CaptureLead"): "lead.person.given_name",
        ("pipeline", "GetLead"): "lead_id",
        ("pipeline", "ListLeads"): "source",
        ("pipeline", "QualifyLead"): "channel",
        ("pipeline", "DisqualifyLead"): "reason",
        ("pipeline", "ConvertLead"): "opportunity.display_name",
        ("pipeline", "OpenOpportunity"): "opportunity.display_name",
        ("pipeline", "GetOpportunity"): "opportunity_id",
        ("pipeline", "UpdateOpportunity"): "opportunity.display_name",
        ("pipeline", "MoveOpportunityStage"): "stage_id",
        ("pipeline", "CloseOpportunity"): "reason",
        ("pipeline", "ReopenOpportunity"): "channel",
        ("pipeline", "ListOpportunities"): "owner_id",
        ("pipeline", "ValidateReferences"): "lead_ids[0]",
        ("metrics", "QueryKpi"): "kpi",
        ("metrics", "GetAdoptionScorecard"): "consistency.min_versions[0].stream",
        ("metrics", "GetBusinessDashboard"): "consistency.min_versions[0].stream",
    }

    # --- cases per service -------------------------------------------------------------------

    def _cases(self, service, rows):
        """Case objects from compact rows: (method, name, changes, code, field[, token[,
        where[, message]]]); changes is a dict for set_path or a builder."""
        cases = []
        for row in rows:
            method, name, changes, code, field, *rest = row
            build = changes if callable(changes) else self.changed(self.base(service, method),
                                                                   changes)
            cases.append(Case(service, method, name, build, code, field, *rest))
        return cases

    def _common(self, service, method, id_field, *, versioned=True, unknown=True,
                version_field="expected_version"):
        """Malformed, missing and unknown ids; stale and negative expected versions."""
        rows = [
            (method, f"malformed {id_field}", {id_field: "bad id/with slash"},
             OK.INVALID_ARGUMENT, id_field),
            (method, f"missing {id_field}", {id_field: ""}, OK.INVALID_ARGUMENT, id_field),
            (method, f"{id_field} longer than 64", {id_field: big(65, "a")},
             OK.INVALID_ARGUMENT, id_field),
        ]
        if unknown:
            rows.append((method, f"unknown {id_field}", {id_field: uid("nobody")},
                         OK.NOT_FOUND, None))
        if versioned:
            rows += [
                (method, f"stale {version_field}", {version_field: 999}, OK.ABORTED, None,
                 "rep", "details", "version"),
                (method, f"negative {version_field}", {version_field: -1},
                 OK.INVALID_ARGUMENT, version_field),
            ]
        return rows

    def _list(self, method, max_size):
        return [
            (method, "negative page_size", {"page_size": -1}, OK.INVALID_ARGUMENT, "page_size"),
            (method, f"page_size over {max_size}", {"page_size": max_size + 1},
             OK.INVALID_ARGUMENT, "page_size"),
            (method, "page_token that is not base64", {"page_token": "!!not a token!!"},
             OK.INVALID_ARGUMENT, "page_token"),
        ]

    def contact_cases(self):
        E = OK
        name201 = big(201)
        rows = [
            # CreateContact
            ("CreateContact", "no contact", {"contact": DELETE}, E.INVALID_ARGUMENT,
             ("contact", "contact.given_name")),
            ("CreateContact", "neither given nor family name",
             {"contact.given_name": "", "contact.family_name": "  "}, E.INVALID_ARGUMENT,
             ("contact.given_name", "contact.family_name")),
            ("CreateContact", "malformed email", {"contact.emails": ["ok@example.com", "nope"]},
             E.INVALID_ARGUMENT, "contact.emails[1]"),
            ("CreateContact", "malformed phone", {"contact.phones": ["12ab34"]},
             E.INVALID_ARGUMENT, "contact.phones[0]"),
            ("CreateContact", "malformed contact_id", {"contact_id": "bad id!"},
             E.INVALID_ARGUMENT, "contact_id"),
            ("CreateContact", "malformed attribute key", {"contact.attributes": {"bad key!": "v"}},
             E.INVALID_ARGUMENT, "contact.attributes[bad key!]"),
            ("CreateContact", "empty tag", {"contact.tags": ["ok", " "]}, E.INVALID_ARGUMENT,
             "contact.tags[1]"),
            ("CreateContact", "unknown lifecycle_stage 99", {"contact.lifecycle_stage": 99},
             E.INVALID_ARGUMENT, "contact.lifecycle_stage"),
            ("CreateContact", "given_name over 200 bytes", {"contact.given_name": name201},
             E.RESOURCE_EXHAUSTED, "contact.given_name"),
            ("CreateContact", "11 emails",
             {"contact.emails": [f"e{i}@example.com" for i in range(11)]},
             E.RESOURCE_EXHAUSTED, "contact.emails"),
            ("CreateContact", "email over 254 bytes",
             {"contact.emails": [big(250, "e") + "@example.com"]}, E.RESOURCE_EXHAUSTED,
             "contact.emails[0]"),
            ("CreateContact", "11 phones",
             {"contact.phones": [f"+4420794600{i:02d}" for i in range(11)]},
             E.RESOURCE_EXHAUSTED, "contact.phones"),
            ("CreateContact", "51 tags", {"contact.tags": [f"t{i}" for i in range(51)]},
             E.RESOURCE_EXHAUSTED, "contact.tags"),
            ("CreateContact", "tag over 64 bytes", {"contact.tags": [big(65)]},
             E.RESOURCE_EXHAUSTED, "contact.tags[0]"),
            ("CreateContact", "51 attributes",
             {"contact.attributes": {f"k{i}": "v" for i in range(51)}},
             E.RESOURCE_EXHAUSTED, "contact.attributes"),
            ("CreateContact", "attribute value over 1024 bytes",
             {"contact.attributes": {"note": big(1025)}}, E.RESOURCE_EXHAUSTED,
             "contact.attributes[note]"),
            ("CreateContact", "owner_id over 128 bytes", {"contact.owner_id": big(129)},
             E.RESOURCE_EXHAUSTED, "contact.owner_id"),
            ("CreateContact", "too large and malformed: every violation",
             {"contact.given_name": name201, "contact.emails": ["nope"]},
             E.RESOURCE_EXHAUSTED, ["contact.given_name", "contact.emails[0]"]),
            ("CreateContact", "unknown account", {"contact.account_id": uid("nobody")},
             E.FAILED_PRECONDITION, "contact.account_id"),
            ("CreateContact", "archived account", {"contact.account_id": self.account_archived},
             E.FAILED_PRECONDITION, "contact.account_id"),
            ("CreateContact", "contact id taken", {"contact_id": self.contact},
             E.ALREADY_EXISTS, None),
            ("CreateContact", "request_id reused for another request",
             {"request_id": self.contact_request_id}, E.ALREADY_EXISTS, None),
            ("CreateContact", "request_id over 128 bytes", {"request_id": big(129)},
             E.RESOURCE_EXHAUSTED, "request_id"),
            ("CreateContact", "channel over 64 bytes", {"channel": big(65)},
             E.RESOURCE_EXHAUSTED, "channel"),
            # GetContact
            *self._common("contact", "GetContact", "contact_id", versioned=False),
            ("GetContact", "negative as_of_version", {"as_of_version": -1}, E.INVALID_ARGUMENT,
             "as_of_version"),
            ("GetContact", "as_of_version beyond the stream", {"as_of_version": 99},
             E.NOT_FOUND, None),
            ("GetContact", "as_of_time before year 1",
             {"as_of_time": timestamp_pb2.Timestamp(seconds=-62_135_596_801)},
             E.INVALID_ARGUMENT, "as_of_time"),
            ("GetContact", "as_of_time before the contact existed",
             {"as_of_time": ts(datetime.datetime(2001, 1, 1, tzinfo=datetime.timezone.utc))},
             E.NOT_FOUND, None),
            # UpdateContact
            *self._common("contact", "UpdateContact", "contact.contact_id"),
            ("UpdateContact", "empty update_mask", {"update_mask": field_mask_pb2.FieldMask()},
             E.INVALID_ARGUMENT, "update_mask"),
            ("UpdateContact", "path that cannot be set",
             {"update_mask": field_mask_pb2.FieldMask(paths=["version"])}, E.INVALID_ARGUMENT,
             ("update_mask", "contact.version")),
            ("UpdateContact", "unknown path",
             {"update_mask": field_mask_pb2.FieldMask(paths=["shoe_size"])},
             E.INVALID_ARGUMENT, ("update_mask", "contact.shoe_size")),
            ("UpdateContact", "both names removed",
             {"contact.given_name": "", "contact.family_name": "",
              "update_mask": field_mask_pb2.FieldMask(paths=["given_name", "family_name"])},
             E.INVALID_ARGUMENT, ("contact.given_name", "contact.family_name")),
            ("UpdateContact", "malformed email",
             {"contact.emails": ["nope"], "update_mask": field_mask_pb2.FieldMask(
                 paths=["emails"])}, E.INVALID_ARGUMENT, "contact.emails[0]"),
            ("UpdateContact", "unknown lifecycle_stage 99",
             {"contact.lifecycle_stage": 99,
              "update_mask": field_mask_pb2.FieldMask(paths=["lifecycle_stage"])},
             E.INVALID_ARGUMENT, "contact.lifecycle_stage"),
            ("UpdateContact", "family_name over 200 bytes",
             {"contact.family_name": name201,
              "update_mask": field_mask_pb2.FieldMask(paths=["family_name"])},
             E.RESOURCE_EXHAUSTED, "contact.family_name"),
            ("UpdateContact", "archived account",
             {"contact.account_id": self.account_archived,
              "update_mask": field_mask_pb2.FieldMask(paths=["account_id"])},
             E.FAILED_PRECONDITION, "contact.account_id"),
            ("UpdateContact", "merged contact", {"contact.contact_id": self.merged},
             E.FAILED_PRECONDITION, None),
            ("UpdateContact", "occurred_at before the contact's last change",
             {"occurred_at": lambda: ts(now() - datetime.timedelta(days=1))},
             E.FAILED_PRECONDITION, "occurred_at", "rep", "message"),
            # ArchiveContact / RestoreContact
            *self._common("contact", "ArchiveContact", "contact_id"),
            ("ArchiveContact", "already archived", {"contact_id": self.contact_archived},
             E.FAILED_PRECONDITION, None),
            ("ArchiveContact", "merged contact", {"contact_id": self.merged},
             E.FAILED_PRECONDITION, None),
            *self._common("contact", "RestoreContact", "contact_id"),
            ("RestoreContact", "not archived", {"contact_id": self.contact},
             E.FAILED_PRECONDITION, None),
            # ListContacts
            *self._list("ListContacts", 500),
            ("ListContacts", "page_token this service never issued",
             {"page_token": "Zm9yZ2VkLXRva2Vu"}, E.INVALID_ARGUMENT, "page_token"),
            ("ListContacts", "unknown lifecycle_stage 99", {"lifecycle_stage": 99},
             E.INVALID_ARGUMENT, "lifecycle_stage"),
            ("ListContacts", "updated_since after year 9999",
             {"updated_since": timestamp_pb2.Timestamp(seconds=253_402_300_800)},
             E.INVALID_ARGUMENT, "updated_since"),
            # FindDuplicates
            ("FindDuplicates", "neither contact_id nor candidate", {"contact_id": ""},
             E.INVALID_ARGUMENT, ("contact_id", "candidate")),
            ("FindDuplicates", "malformed contact_id", {"contact_id": "bad id/"},
             E.INVALID_ARGUMENT, "contact_id"),
            ("FindDuplicates", "unknown contact_id", {"contact_id": uid("nobody")},
             E.NOT_FOUND, None),
            ("FindDuplicates", "candidate with a malformed email",
             {"contact_id": "", "candidate": contact_pb2.Contact(given_name="X",
                                                                 emails=["nope"])},
             E.INVALID_ARGUMENT, "candidate.emails[0]"),
            ("FindDuplicates", "page_size over 100", {"page_size": 101}, E.INVALID_ARGUMENT,
             "page_size"),
            # MergeContacts
            ("MergeContacts", "missing winner_contact_id", {"winner_contact_id": ""},
             E.INVALID_ARGUMENT, "winner_contact_id"),
            ("MergeContacts", "malformed loser_contact_id", {"loser_contact_id": "bad id/"},
             E.INVALID_ARGUMENT, "loser_contact_id"),
            ("MergeContacts", "both ids malformed: every violation",
             {"winner_contact_id": "bad id/", "loser_contact_id": ""},
             E.INVALID_ARGUMENT, ["winner_contact_id", "loser_contact_id"]),
            ("MergeContacts", "loser is the winner", {"loser_contact_id": self.merge_winner},
             E.INVALID_ARGUMENT, "loser_contact_id"),
            ("MergeContacts", "unknown winner", {"winner_contact_id": uid("nobody")},
             E.NOT_FOUND, None),
            ("MergeContacts", "unknown loser", {"loser_contact_id": uid("nobody")},
             E.NOT_FOUND, None),
            ("MergeContacts", "stale winner_expected_version", {"winner_expected_version": 999},
             E.ABORTED, None, "rep", "details", "version"),
            ("MergeContacts", "stale loser_expected_version", {"loser_expected_version": 999},
             E.ABORTED, None, "rep", "details", "version"),
            ("MergeContacts", "negative winner_expected_version",
             {"winner_expected_version": -1}, E.INVALID_ARGUMENT, "winner_expected_version"),
            ("MergeContacts", "negative loser_expected_version",
             {"loser_expected_version": -1}, E.INVALID_ARGUMENT, "loser_expected_version"),
            ("MergeContacts", "loser already merged into another contact",
             {"loser_contact_id": self.merged}, E.FAILED_PRECONDITION, None),
            ("MergeContacts", "winner is itself merged", {"winner_contact_id": self.merged},
             E.FAILED_PRECONDITION, None),
            ("MergeContacts", "merged contact would have 12 emails",
             {"winner_contact_id": self.many_emails_a, "loser_contact_id": self.many_emails_b},
             E.RESOURCE_EXHAUSTED, "merged contact.emails"),
            ("MergeContacts", "occurred_at after the winner's last change but before the "
             "loser's", {"winner_contact_id": self.early_winner,
                         "loser_contact_id": self.late_loser,
                         "occurred_at": lambda: ts(now() - datetime.timedelta(hours=1))},
             E.FAILED_PRECONDITION, "occurred_at", "rep", "message"),
            # ListContactEvents
            *self._common("contact", "ListContactEvents", "contact_id", versioned=False),
            *self._list("ListContactEvents", 1000),
            # CreateAccount
            ("CreateAccount", "no account", {"account": DELETE}, E.INVALID_ARGUMENT,
             ("account", "account.display_name")),
            ("CreateAccount", "blank display_name", {"account.display_name": "   "},
             E.INVALID_ARGUMENT, "account.display_name"),
            ("CreateAccount", "malformed domain", {"account.domain": "bad domain!"},
             E.INVALID_ARGUMENT, "account.domain"),
            ("CreateAccount", "malformed account_id", {"account_id": "bad id!"},
             E.INVALID_ARGUMENT, "account_id"),
            ("CreateAccount", "display_name over 200 bytes", {"account.display_name": name201},
             E.RESOURCE_EXHAUSTED, "account.display_name"),
            ("CreateAccount", "domain over 128 bytes",
             {"account.domain": big(121, "d") + ".example"}, E.RESOURCE_EXHAUSTED,
             "account.domain"),
            ("CreateAccount", "industry over 128 bytes", {"account.industry": big(129)},
             E.RESOURCE_EXHAUSTED, "account.industry"),
            ("CreateAccount", "account id taken", {"account_id": self.account},
             E.ALREADY_EXISTS, None),
            # GetAccount
            *self._common("contact", "GetAccount", "account_id", versioned=False),
            # UpdateAccount
            *self._common("contact", "UpdateAccount", "account.account_id"),
            ("UpdateAccount", "empty update_mask", {"update_mask": field_mask_pb2.FieldMask()},
             E.INVALID_ARGUMENT, "update_mask"),
            ("UpdateAccount", "path that cannot be set",
             {"update_mask": field_mask_pb2.FieldMask(paths=["archived"])},
             E.INVALID_ARGUMENT, ("update_mask", "account.archived")),
            ("UpdateAccount", "display_name removed",
             {"account.display_name": "", "update_mask": field_mask_pb2.FieldMask(
                 paths=["display_name"])}, E.INVALID_ARGUMENT, "account.display_name"),
            ("UpdateAccount", "malformed domain",
             {"account.domain": "bad domain!", "update_mask": field_mask_pb2.FieldMask(
                 paths=["domain"])}, E.INVALID_ARGUMENT, "account.domain"),
            ("UpdateAccount", "region over 128 bytes", {"account.region": big(129)},
             E.RESOURCE_EXHAUSTED, "account.region"),
            # ArchiveAccount / RestoreAccount
            *self._common("contact", "ArchiveAccount", "account_id"),
            ("ArchiveAccount", "already archived", {"account_id": self.account_archived},
             E.FAILED_PRECONDITION, None),
            *self._common("contact", "RestoreAccount", "account_id"),
            ("RestoreAccount", "not archived", {"account_id": self.account},
             E.FAILED_PRECONDITION, None),
            # ListAccounts
            *self._list("ListAccounts", 500),
            # ValidateReferences
            ("ValidateReferences", "501 contact ids",
             {"contact_ids": [f"c-{i}" for i in range(501)]}, E.RESOURCE_EXHAUSTED,
             "contact_ids"),
            ("ValidateReferences", "501 account ids",
             {"account_ids": [f"a-{i}" for i in range(501)]}, E.RESOURCE_EXHAUSTED,
             "account_ids"),
        ]
        return self._cases("contact", rows)

    def activity_cases(self):
        E = OK
        mask = lambda *paths: field_mask_pb2.FieldMask(paths=list(paths))  # noqa: E731
        later = lambda days: (lambda: ts(now() + datetime.timedelta(days=days)))  # noqa: E731
        rows = [
            # LogActivity
            ("LogActivity", "no activity", {"activity": DELETE}, E.INVALID_ARGUMENT,
             ("activity", "activity.type")),
            ("LogActivity", "type UNSPECIFIED", {"activity.type": 0}, E.INVALID_ARGUMENT,
             "activity.type"),
            ("LogActivity", "unknown type 99", {"activity.type": 99}, E.INVALID_ARGUMENT,
             "activity.type"),
            ("LogActivity", "neither contact nor lead", {"activity.contact_id": ""},
             E.INVALID_ARGUMENT, "activity.contact_id"),
            ("LogActivity", "no channel at all", {"channel": "", "activity.channel": ""},
             E.INVALID_ARGUMENT, "activity.channel"),
            ("LogActivity", "malformed activity_id", {"activity_id": "bad id!"},
             E.INVALID_ARGUMENT, "activity_id"),
            ("LogActivity", "malformed contact_id", {"activity.contact_id": "bad id!"},
             E.INVALID_ARGUMENT, "activity.contact_id"),
            ("LogActivity", "negative duration", {"activity.duration_seconds": -1},
             E.INVALID_ARGUMENT, "activity.duration_seconds"),
            ("LogActivity", "duration over 24 h", {"activity.duration_seconds": 86_401},
             E.INVALID_ARGUMENT, "activity.duration_seconds"),
            ("LogActivity", "owner_id with a slash", {"activity.owner_id": "rep/1"},
             E.INVALID_ARGUMENT, "activity.owner_id"),
            ("LogActivity", "service token without owner_id", {}, E.INVALID_ARGUMENT,
             "activity.owner_id", "service"),
            ("LogActivity", "subject over 512 bytes", {"activity.subject": big(513)},
             E.RESOURCE_EXHAUSTED, "activity.subject"),
            ("LogActivity", "body over 64 KiB", {"activity.body": big(65_537)},
             E.RESOURCE_EXHAUSTED, "activity.body"),
            ("LogActivity", "outcome over 256 bytes", {"activity.outcome": big(257)},
             E.RESOURCE_EXHAUSTED, "activity.outcome"),
            ("LogActivity", "owner_id over 256 bytes", {"activity.owner_id": big(257)},
             E.RESOURCE_EXHAUSTED, "activity.owner_id"),
            ("LogActivity", "activity.channel over 64 bytes", {"activity.channel": big(65)},
             E.RESOURCE_EXHAUSTED, "activity.channel"),
            ("LogActivity", "too large and malformed: every violation",
             {"activity.subject": big(513), "activity.duration_seconds": -1},
             E.RESOURCE_EXHAUSTED, ["activity.subject", "activity.duration_seconds"]),
            ("LogActivity", "unknown contact", {"activity.contact_id": uid("nobody")},
             E.NOT_FOUND, "activity.contact_id"),
            ("LogActivity", "unknown lead", {"activity.lead_id": uid("nobody")},
             E.NOT_FOUND, "activity.lead_id"),
            ("LogActivity", "unknown opportunity", {"activity.opportunity_id": uid("nobody")},
             E.NOT_FOUND, "activity.opportunity_id"),
            ("LogActivity", "unknown account", {"activity.account_id": uid("nobody")},
             E.NOT_FOUND, "activity.account_id"),
            ("LogActivity", "unknown case", {"activity.case_id": uid("nobody")},
             E.NOT_FOUND, "activity.case_id"),
            ("LogActivity", "archived contact", {"activity.contact_id": self.contact_archived},
             E.FAILED_PRECONDITION, "activity.contact_id"),
            ("LogActivity", "archived account", {"activity.account_id": self.account_archived},
             E.FAILED_PRECONDITION, "activity.account_id"),
            ("LogActivity", "a note cannot be scheduled",
             {"activity.type": activity_pb2.ACTIVITY_TYPE_NOTE, "scheduled_time": later(1)},
             E.INVALID_ARGUMENT, "scheduled_time"),
            ("LogActivity", "scheduled 401 days ahead", {"scheduled_time": later(401)},
             E.INVALID_ARGUMENT, "scheduled_time"),
            ("LogActivity", "scheduled in the past", {"scheduled_time": later(-1)},
             E.INVALID_ARGUMENT, "scheduled_time"),
            ("LogActivity", "scheduled_time with nanos over 1e9",
             {"scheduled_time": timestamp_pb2.Timestamp(seconds=int(now().timestamp()) + 3600,
                                                        nanos=1_000_000_000)},
             E.INVALID_ARGUMENT, "scheduled_time"),
            ("LogActivity", "activity id taken", {"activity_id": self.activity_done},
             E.ALREADY_EXISTS, None),
            ("LogActivity", "request_id over 128 bytes", {"request_id": big(129)},
             E.RESOURCE_EXHAUSTED, "request_id"),
            ("LogActivity", "channel over 64 bytes", {"channel": big(65)},
             E.RESOURCE_EXHAUSTED, ("channel", "activity.channel")),
            # GetActivity
            *self._common("activity", "GetActivity", "activity_id", versioned=False),
            # UpdateActivity
            *self._common("activity", "UpdateActivity", "activity.activity_id"),
            ("UpdateActivity", "empty update_mask", {"update_mask": mask()},
             E.INVALID_ARGUMENT, "update_mask"),
            ("UpdateActivity", "path that cannot be set", {"update_mask": mask("type")},
             E.INVALID_ARGUMENT, ("update_mask", "activity.type")),
            ("UpdateActivity", "negative duration",
             {"activity.duration_seconds": -5, "update_mask": mask("duration_seconds")},
             E.INVALID_ARGUMENT, "activity.duration_seconds"),
            ("UpdateActivity", "subject over 512 bytes",
             {"activity.subject": big(513), "update_mask": mask("subject")},
             E.RESOURCE_EXHAUSTED, "activity.subject"),
            ("UpdateActivity", "cancelled activity",
             {"activity.activity_id": self.activity_cancelled}, E.FAILED_PRECONDITION, None),
            # CompleteActivity
            *self._common("activity", "CompleteActivity", "activity_id"),
            ("CompleteActivity", "duration over 24 h", {"duration_seconds": 86_401},
             E.INVALID_ARGUMENT, "duration_seconds"),
            ("CompleteActivity", "body over 64 KiB", {"body": big(65_537)},
             E.RESOURCE_EXHAUSTED, "body"),
            ("CompleteActivity", "outcome over 256 bytes", {"outcome": big(257)},
             E.RESOURCE_EXHAUSTED, "outcome"),
            ("CompleteActivity", "activity already done", {"activity_id": self.activity_done},
             E.FAILED_PRECONDITION, None),
            # CancelActivity
            *self._common("activity", "CancelActivity", "activity_id"),
            ("CancelActivity", "reason over 1024 bytes", {"reason": big(1025)},
             E.RESOURCE_EXHAUSTED, "reason"),
            ("CancelActivity", "activity already done", {"activity_id": self.activity_done},
             E.FAILED_PRECONDITION, None),
            ("CancelActivity", "activity already cancelled",
             {"activity_id": self.activity_cancelled}, E.FAILED_PRECONDITION, None),
            # ListTimeline
            ("ListTimeline", "neither contact nor lead", {"contact_id": ""},
             E.INVALID_ARGUMENT, "contact_id"),
            ("ListTimeline", "both contact and lead", {"lead_id": self.lead},
             E.INVALID_ARGUMENT, "contact_id"),
            ("ListTimeline", "malformed lead_id", {"contact_id": "", "lead_id": "bad id/"},
             E.INVALID_ARGUMENT, "lead_id"),
            ("ListTimeline", "type UNSPECIFIED", {"types": [0]}, E.INVALID_ARGUMENT, "types"),
            ("ListTimeline", "unknown type 99", {"types": [1, 99]}, E.INVALID_ARGUMENT,
             "types"),
            *self._list("ListTimeline", 500),
            # ListActivities
            ("ListActivities", "missing owner_id", {"owner_id": ""}, E.INVALID_ARGUMENT,
             "owner_id"),
            ("ListActivities", "owner_id with a slash", {"owner_id": "a/b"},
             E.INVALID_ARGUMENT, "owner_id"),
            ("ListActivities", "period.start_time before year 1",
             {"period": common_pb2.TimeRange(start_time=timestamp_pb2.Timestamp(
                 seconds=-62_135_596_801))}, E.INVALID_ARGUMENT, "period.start_time"),
            ("ListActivities", "period.end_time with negative nanos",
             {"period": common_pb2.TimeRange(end_time=timestamp_pb2.Timestamp(
                 seconds=1, nanos=-1))}, E.INVALID_ARGUMENT, "period.end_time"),
            ("ListActivities", "unknown type 99", {"types": [99]}, E.INVALID_ARGUMENT, "types"),
            *self._list("ListActivities", 500),
            # ScheduleTask
            ("ScheduleTask", "no task", {"task": DELETE}, E.INVALID_ARGUMENT,
             ("task", "task.title")),
            ("ScheduleTask", "missing title", {"task.title": " "}, E.INVALID_ARGUMENT,
             "task.title"),
            ("ScheduleTask", "missing due_time", {"task.due_time": DELETE},
             E.INVALID_ARGUMENT, "task.due_time"),
            ("ScheduleTask", "due 401 days ahead", {"task.due_time": later(401)},
             E.INVALID_ARGUMENT, "task.due_time"),
            ("ScheduleTask", "due_time after year 9999",
             {"task.due_time": timestamp_pb2.Timestamp(seconds=253_402_300_800)},
             E.INVALID_ARGUMENT, "task.due_time"),
            ("ScheduleTask", "malformed task_id", {"task_id": "bad id!"}, E.INVALID_ARGUMENT,
             "task_id"),
            ("ScheduleTask", "assignee_id with a slash", {"task.assignee_id": "a/b"},
             E.INVALID_ARGUMENT, "task.assignee_id"),
            ("ScheduleTask", "service token without assignee", {}, E.INVALID_ARGUMENT,
             "task.assignee_id", "service"),
            ("ScheduleTask", "assignee_id over 256 bytes", {"task.assignee_id": big(257)},
             E.RESOURCE_EXHAUSTED, "task.assignee_id"),
            ("ScheduleTask", "title over 512 bytes", {"task.title": big(513)},
             E.RESOURCE_EXHAUSTED, "task.title"),
            ("ScheduleTask", "description over 64 KiB", {"task.description": big(65_537)},
             E.RESOURCE_EXHAUSTED, "task.description"),
            ("ScheduleTask", "unknown contact", {"task.contact_id": uid("nobody")},
             E.NOT_FOUND, "task.contact_id"),
            ("ScheduleTask", "unknown opportunity", {"task.opportunity_id": uid("nobody")},
             E.NOT_FOUND, "task.opportunity_id"),
            ("ScheduleTask", "archived contact", {"task.contact_id": self.contact_archived},
             E.FAILED_PRECONDITION, "task.contact_id"),
            ("ScheduleTask", "task id taken", {"task_id": self.task}, E.ALREADY_EXISTS, None),
            # GetTask
            *self._common("activity", "GetTask", "task_id", versioned=False),
            # CompleteTask / CancelTask / ReassignTask
            *self._common("activity", "CompleteTask", "task_id"),
            ("CompleteTask", "task already completed", {"task_id": self.task_completed},
             E.FAILED_PRECONDITION, None),
            *self._common("activity", "CancelTask", "task_id"),
            ("CancelTask", "reason over 1024 bytes", {"reason": big(1025)},
             E.RESOURCE_EXHAUSTED, "reason"),
            ("CancelTask", "task already completed", {"task_id": self.task_completed},
             E.FAILED_PRECONDITION, None),
            *self._common("activity", "ReassignTask", "task_id"),
            ("ReassignTask", "missing assignee_id", {"assignee_id": ""}, E.INVALID_ARGUMENT,
             "assignee_id"),
            ("ReassignTask", "assignee_id with a slash", {"assignee_id": "a/b"},
             E.INVALID_ARGUMENT, "assignee_id"),
            ("ReassignTask", "assignee_id over 256 bytes", {"assignee_id": big(257)},
             E.RESOURCE_EXHAUSTED, "assignee_id"),
            ("ReassignTask", "same assignee", {"assignee_id": "agent-1"},
             E.FAILED_PRECONDITION, None),
            ("ReassignTask", "task already completed", {"task_id": self.task_completed},
             E.FAILED_PRECONDITION, None),
            # ListTasks
            ("ListTasks", "unknown status 99", {"status": 99}, E.INVALID_ARGUMENT, "status"),
            ("ListTasks", "assignee_id with a slash", {"assignee_id": "a/b"},
             E.INVALID_ARGUMENT, "assignee_id"),
            *self._list("ListTasks", 500),
            ("ListTasks", "page_token this service never issued",
             {"page_token": "Zm9yZ2VkLXRva2Vu"}, E.INVALID_ARGUMENT, "page_token"),
            # OpenCase
            ("OpenCase", "no case", {"case": DELETE}, E.INVALID_ARGUMENT,
             ("case", "case.subject")),
            ("OpenCase", "missing subject", {"case.subject": ""}, E.INVALID_ARGUMENT,
             "case.subject"),
            ("OpenCase", "missing contact", {"case.contact_id": ""}, E.INVALID_ARGUMENT,
             "case.contact_id"),
            ("OpenCase", "priority UNSPECIFIED", {"case.priority": 0}, E.INVALID_ARGUMENT,
             "case.priority"),
            ("OpenCase", "unknown priority 99", {"case.priority": 99}, E.INVALID_ARGUMENT,
             "case.priority"),
            ("OpenCase", "no channel at all", {"channel": "", "case.channel": ""},
             E.INVALID_ARGUMENT, "case.channel"),
            ("OpenCase", "malformed case_id", {"case_id": "bad id!"}, E.INVALID_ARGUMENT,
             "case_id"),
            ("OpenCase", "every missing field at once",
             {"case.subject": "", "case.contact_id": "", "case.priority": 0},
             E.INVALID_ARGUMENT, ["case.subject", "case.contact_id", "case.priority"]),
            ("OpenCase", "subject over 512 bytes", {"case.subject": big(513)},
             E.RESOURCE_EXHAUSTED, "case.subject"),
            ("OpenCase", "description over 64 KiB", {"case.description": big(65_537)},
             E.RESOURCE_EXHAUSTED, "case.description"),
            ("OpenCase", "unknown contact", {"case.contact_id": uid("nobody")}, E.NOT_FOUND,
             "case.contact_id"),
            ("OpenCase", "archived contact", {"case.contact_id": self.contact_archived},
             E.FAILED_PRECONDITION, "case.contact_id"),
            ("OpenCase", "unknown account", {"case.account_id": uid("nobody")}, E.NOT_FOUND,
             "case.account_id"),
            ("OpenCase", "case id taken", {"case_id": self.case}, E.ALREADY_EXISTS, None),
            # GetCase
            *self._common("activity", "GetCase", "case_id", versioned=False),
            # AssignCase
            *self._common("activity", "AssignCase", "case_id"),
            ("AssignCase", "missing assignee_id", {"assignee_id": ""}, E.INVALID_ARGUMENT,
             "assignee_id"),
            ("AssignCase", "assignee_id with a slash", {"assignee_id": "x/y"},
             E.INVALID_ARGUMENT, "assignee_id"),
            ("AssignCase", "assignee_id over 256 bytes", {"assignee_id": big(257)},
             E.RESOURCE_EXHAUSTED, "assignee_id"),
            ("AssignCase", "same assignee", {"assignee_id": "agent-1"},
             E.FAILED_PRECONDITION, None),
            ("AssignCase", "resolved case", {"case_id": self.case_resolved},
             E.FAILED_PRECONDITION, None),
            # AddCaseNote
            *self._common("activity", "AddCaseNote", "case_id"),
            ("AddCaseNote", "missing text", {"text": ""}, E.INVALID_ARGUMENT, "text"),
            ("AddCaseNote", "blank text", {"text": " \t "}, E.INVALID_ARGUMENT, "text"),
            ("AddCaseNote", "text over 16 KiB", {"text": big(16_385)}, E.RESOURCE_EXHAUSTED,
             "text"),
            # ResolveCase
            *self._common("activity", "ResolveCase", "case_id"),
            ("ResolveCase", "missing resolution", {"resolution": ""}, E.INVALID_ARGUMENT,
             "resolution"),
            ("ResolveCase", "resolution over 16 KiB", {"resolution": big(16_385)},
             E.RESOURCE_EXHAUSTED, "resolution"),
            ("ResolveCase", "case already resolved", {"case_id": self.case_resolved},
             E.FAILED_PRECONDITION, None),
            # ReopenCase
            *self._common("activity", "ReopenCase", "case_id"),
            ("ReopenCase", "reason over 1024 bytes", {"reason": big(1025)},
             E.RESOURCE_EXHAUSTED, "reason"),
            ("ReopenCase", "open case", {"case_id": self.case}, E.FAILED_PRECONDITION, None),
            # ListCases
            ("ListCases", "unknown status 99", {"status": 99}, E.INVALID_ARGUMENT, "status"),
            ("ListCases", "unknown priority 99", {"priority": 99}, E.INVALID_ARGUMENT,
             "priority"),
            ("ListCases", "assignee_id with a slash", {"assignee_id": "x/y"},
             E.INVALID_ARGUMENT, "assignee_id"),
            *self._list("ListCases", 500),
            # ListCaseNotes
            *self._common("activity", "ListCaseNotes", "case_id", versioned=False),
            *self._list("ListCaseNotes", 500),
        ]
        return self._cases("activity", rows)

    def pipeline_cases(self):
        E = OK
        mask = lambda *paths: field_mask_pb2.FieldMask(paths=list(paths))  # noqa: E731
        line = pipeline_pb2.ProductLine
        stage = pipeline_pb2.Stage
        rows = [
            # DefinePipeline
            ("DefinePipeline", "missing pipeline_id", {"pipeline_id": ""}, E.INVALID_ARGUMENT,
             "pipeline_id"),
            ("DefinePipeline", "malformed pipeline_id", {"pipeline_id": "bad id!"},
             E.INVALID_ARGUMENT, "pipeline_id"),
            ("DefinePipeline", "missing display_name", {"display_name": " "},
             E.INVALID_ARGUMENT, "display_name"),
            ("DefinePipeline", "no stages", {"stages": []}, E.INVALID_ARGUMENT, "stages"),
            ("DefinePipeline", "malformed stage_id",
             {"stages": [stage(stage_id="ok"), stage(stage_id="bad id")]},
             E.INVALID_ARGUMENT, "stages[1].stage_id"),
            ("DefinePipeline", "stage_id twice",
             {"stages": [stage(stage_id="a"), stage(stage_id="a")]}, E.INVALID_ARGUMENT,
             "stages[1].stage_id"),
            ("DefinePipeline", "probability over 10000 bps",
             {"stages": [stage(stage_id="a", probability_bps=10_001)]}, E.INVALID_ARGUMENT,
             "stages[0].probability_bps"),
            ("DefinePipeline", "negative probability",
             {"stages": [stage(stage_id="a", probability_bps=-1)]}, E.INVALID_ARGUMENT,
             "stages[0].probability_bps"),
            # docs/api.md 10.1 lists these size limits under INVALID_ARGUMENT (section 4's
            # general rule would say RESOURCE_EXHAUSTED); the method's own page is followed.
            ("DefinePipeline", "display_name over 200 bytes", {"display_name": big(201)},
             E.INVALID_ARGUMENT, "display_name"),
            ("DefinePipeline", "stage display_name over 200 bytes",
             {"stages": [stage(stage_id="a", display_name=big(201))]},
             E.INVALID_ARGUMENT, "stages[0].display_name"),
            ("DefinePipeline", "51 stages",
             {"stages": [stage(stage_id=f"s{i}") for i in range(51)]},
             E.INVALID_ARGUMENT, "stages"),
            ("DefinePipeline", "stale expected_revision",
             {"pipeline_id": self.pipeline, "expected_revision": 999}, E.ABORTED, None,
             "rep", "details", "version"),
            ("DefinePipeline", "negative expected_revision", {"expected_revision": -1},
             E.INVALID_ARGUMENT, "expected_revision"),
            ("DefinePipeline", "request_id over 128 bytes", {"request_id": big(129)},
             E.RESOURCE_EXHAUSTED, "request_id"),
            ("DefinePipeline", "channel over 64 bytes", {"channel": big(65)},
             E.RESOURCE_EXHAUSTED, "channel"),
            # GetPipeline
            *self._common("pipeline", "GetPipeline", "pipeline_id", versioned=False),
            ("GetPipeline", "negative revision", {"revision": -1}, E.INVALID_ARGUMENT,
             "revision"),
            ("GetPipeline", "revision beyond the latest", {"revision": 99}, E.NOT_FOUND, None),
            # ListPipelines
            *self._list("ListPipelines", 500),
            # CaptureLead
            ("CaptureLead", "no lead", {"lead": DELETE}, E.INVALID_ARGUMENT,
             ("lead", "lead.source")),
            ("CaptureLead", "missing source", {"lead.source": ""}, E.INVALID_ARGUMENT,
             "lead.source"),
            ("CaptureLead", "source with a slash", {"lead.source": "web/form"},
             E.INVALID_ARGUMENT, "lead.source"),
            ("CaptureLead", "nobody named", {"lead.person": DELETE}, E.INVALID_ARGUMENT,
             "lead.person"),
            ("CaptureLead", "malformed email", {"lead.person.email": "no-at-sign"},
             E.INVALID_ARGUMENT, "lead.person.email"),
            ("CaptureLead", "malformed phone", {"lead.person.phone": "call me"},
             E.INVALID_ARGUMENT, "lead.person.phone"),
            ("CaptureLead", "malformed company domain",
             {"lead.company": pipeline_pb2.LeadCompany(display_name="Co", domain="bad domain!")},
             E.INVALID_ARGUMENT, "lead.company.domain"),
            ("CaptureLead", "malformed lead_id", {"lead_id": "bad id!"}, E.INVALID_ARGUMENT,
             "lead_id"),
            ("CaptureLead", "every malformed field at once",
             {"lead.source": "", "lead.person.email": "nope"}, E.INVALID_ARGUMENT,
             ["lead.source", "lead.person.email"]),
            ("CaptureLead", "source over 128 bytes", {"lead.source": big(129)},
             E.RESOURCE_EXHAUSTED, "lead.source"),
            ("CaptureLead", "campaign over 128 bytes", {"lead.campaign": big(129)},
             E.RESOURCE_EXHAUSTED, "lead.campaign"),
            ("CaptureLead", "lead.channel over 64 bytes", {"lead.channel": big(65)},
             E.RESOURCE_EXHAUSTED, "lead.channel"),
            ("CaptureLead", "person given_name over 200 bytes",
             {"lead.person.given_name": big(201)}, E.RESOURCE_EXHAUSTED,
             "lead.person.given_name"),
            ("CaptureLead", "company display_name over 200 bytes",
             {"lead.company": pipeline_pb2.LeadCompany(display_name=big(201))},
             E.RESOURCE_EXHAUSTED, "lead.company.display_name"),
            ("CaptureLead", "lead id taken", {"lead_id": self.lead}, E.ALREADY_EXISTS, None),
            # GetLead
            *self._common("pipeline", "GetLead", "lead_id", versioned=False),
            # ListLeads
            ("ListLeads", "unknown status 99", {"status": 99}, E.INVALID_ARGUMENT, "status"),
            *self._list("ListLeads", 500),
            ("ListLeads", "page_token this service never issued",
             {"page_token": "Zm9yZ2VkLXRva2Vu"}, E.INVALID_ARGUMENT, "page_token"),
            # QualifyLead / DisqualifyLead
            *self._common("pipeline", "QualifyLead", "lead_id"),
            ("QualifyLead", "already qualified", {"lead_id": self.lead_qualified},
             E.FAILED_PRECONDITION, None),
            *self._common("pipeline", "DisqualifyLead", "lead_id"),
            ("DisqualifyLead", "missing reason", {"reason": " "}, E.INVALID_ARGUMENT, "reason"),
            ("DisqualifyLead", "reason over 1000 bytes", {"reason": big(1001)},
             E.RESOURCE_EXHAUSTED, "reason"),
            ("DisqualifyLead", "already disqualified", {"lead_id": self.lead_disqualified},
             E.FAILED_PRECONDITION, None),
            # ConvertLead
            *self._common("pipeline", "ConvertLead", "lead_id"),
            ("ConvertLead", "missing pipeline_id", {"opportunity.pipeline_id": ""},
             E.INVALID_ARGUMENT, "opportunity.pipeline_id"),
            ("ConvertLead", "unknown pipeline", {"opportunity.pipeline_id": uid("nopipe")},
             E.FAILED_PRECONDITION, "opportunity.pipeline_id"),
            ("ConvertLead", "missing currency_code", {"opportunity.currency_code": ""},
             E.INVALID_ARGUMENT, "opportunity.currency_code"),
            ("ConvertLead", "malformed currency_code", {"opportunity.currency_code": "EURO"},
             E.INVALID_ARGUMENT, "opportunity.currency_code"),
            ("ConvertLead", "stage not in the pipeline", {"opportunity.stage_id": "nowhere"},
             E.INVALID_ARGUMENT, "opportunity.stage_id"),
            ("ConvertLead", "quantity 0",
             {"opportunity.lines": [line(product_id="p", quantity=0, unit_price_minor=1)]},
             E.INVALID_ARGUMENT, "opportunity.lines[0].quantity"),
            ("ConvertLead", "expected_close_date month 13",
             {"opportunity.expected_close_date": common_pb2.Date(year=2027, month=13, day=1)},
             E.INVALID_ARGUMENT, "opportunity.expected_close_date"),
            ("ConvertLead", "unknown contact_id", {"contact_id": uid("nobody")},
             E.FAILED_PRECONDITION, "contact_id"),
            ("ConvertLead", "archived account_id", {"account_id": self.account_archived},
             E.FAILED_PRECONDITION, "account_id"),
            ("ConvertLead", "lead without a person and no contact_id",
             {"lead_id": self.lead_company_only}, E.INVALID_ARGUMENT, "contact_id"),
            ("ConvertLead", "disqualified lead", {"lead_id": self.lead_disqualified},
             E.FAILED_PRECONDITION, None),
            ("ConvertLead", "occurred_at before the lead's last change",
             {"occurred_at": lambda: ts(now() - datetime.timedelta(hours=1))},
             E.FAILED_PRECONDITION, "occurred_at", "rep", "message"),
            # OpenOpportunity
            ("OpenOpportunity", "no opportunity", {"opportunity": DELETE},
             E.INVALID_ARGUMENT, "opportunity"),
            ("OpenOpportunity", "missing display_name", {"opportunity.display_name": ""},
             E.INVALID_ARGUMENT, "opportunity.display_name"),
            ("OpenOpportunity", "missing currency_code", {"opportunity.currency_code": ""},
             E.INVALID_ARGUMENT, "opportunity.currency_code"),
            ("OpenOpportunity", "malformed currency_code", {"opportunity.currency_code": "E1R"},
             E.INVALID_ARGUMENT, "opportunity.currency_code"),
            ("OpenOpportunity", "missing pipeline_id", {"opportunity.pipeline_id": ""},
             E.INVALID_ARGUMENT, "opportunity.pipeline_id"),
            ("OpenOpportunity", "unknown pipeline", {"opportunity.pipeline_id": uid("nopipe")},
             E.FAILED_PRECONDITION, "opportunity.pipeline_id"),
            ("OpenOpportunity", "stage not in the pipeline", {"opportunity.stage_id": "nowhere"},
             E.INVALID_ARGUMENT, "opportunity.stage_id"),
            ("OpenOpportunity", "quantity 0",
             {"opportunity.lines": [line(product_id="p", quantity=0, unit_price_minor=5)]},
             E.INVALID_ARGUMENT, "opportunity.lines[0].quantity"),
            ("OpenOpportunity", "negative quantity",
             {"opportunity.lines": [line(product_id="p", quantity=1, unit_price_minor=5),
                                    line(product_id="q", quantity=-3, unit_price_minor=5)]},
             E.INVALID_ARGUMENT, "opportunity.lines[1].quantity"),
            ("OpenOpportunity", "negative unit price",
             {"opportunity.lines": [line(product_id="p", quantity=1, unit_price_minor=-1)]},
             E.INVALID_ARGUMENT, "opportunity.lines[0].unit_price_minor"),
            ("OpenOpportunity", "line amount overflows int64",
             {"opportunity.lines": [line(product_id="p", quantity=2**62, unit_price_minor=4)]},
             E.INVALID_ARGUMENT, ("opportunity.lines[0]", "opportunity.lines")),
            ("OpenOpportunity", "sum of the lines overflows int64",
             {"opportunity.lines": [line(product_id="p", quantity=1, unit_price_minor=2**62),
                                    line(product_id="q", quantity=1, unit_price_minor=2**62)]},
             E.INVALID_ARGUMENT, "opportunity.lines"),
            ("OpenOpportunity", "malformed product_id",
             {"opportunity.lines": [line(product_id="bad id!", quantity=1)]},
             E.INVALID_ARGUMENT, "opportunity.lines[0].product_id"),
            ("OpenOpportunity", "missing product_id",
             {"opportunity.lines": [line(quantity=1, unit_price_minor=1)]},
             E.INVALID_ARGUMENT, "opportunity.lines[0].product_id"),
            ("OpenOpportunity", "expected_close_date month 13",
             {"opportunity.expected_close_date": common_pb2.Date(year=2027, month=13, day=1)},
             E.INVALID_ARGUMENT, "opportunity.expected_close_date"),
            ("OpenOpportunity", "expected_close_date 30 February",
             {"opportunity.expected_close_date": common_pb2.Date(year=2027, month=2, day=30)},
             E.INVALID_ARGUMENT, "opportunity.expected_close_date"),
            ("OpenOpportunity", "expected_close_date year 0",
             {"opportunity.expected_close_date": common_pb2.Date(year=0, month=1, day=1)},
             E.INVALID_ARGUMENT, "opportunity.expected_close_date"),
            ("OpenOpportunity", "expected_close_date year 10000",
             {"opportunity.expected_close_date": common_pb2.Date(year=10000, month=1, day=1)},
             E.INVALID_ARGUMENT, "opportunity.expected_close_date"),
            ("OpenOpportunity", "malformed opportunity_id", {"opportunity_id": "bad id!"},
             E.INVALID_ARGUMENT, "opportunity_id"),
            ("OpenOpportunity", "every malformed field at once",
             {"opportunity.display_name": "", "opportunity.currency_code": "xx",
              "opportunity.lines": [line(product_id="p", quantity=0)]},
             E.INVALID_ARGUMENT, ["opportunity.display_name", "opportunity.currency_code",
                                  "opportunity.lines[0].quantity"]),
            ("OpenOpportunity", "display_name over 200 bytes",
             {"opportunity.display_name": big(201)}, E.RESOURCE_EXHAUSTED,
             "opportunity.display_name"),
            ("OpenOpportunity", "owner_id over 128 bytes", {"opportunity.owner_id": big(129)},
             E.RESOURCE_EXHAUSTED, "opportunity.owner_id"),
            ("OpenOpportunity", "101 lines",
             {"opportunity.lines": [line(product_id=f"p{i}", quantity=1) for i in range(101)]},
             E.RESOURCE_EXHAUSTED, "opportunity.lines"),
            ("OpenOpportunity", "unknown contact", {"opportunity.contact_id": uid("nobody")},
             E.FAILED_PRECONDITION, "opportunity.contact_id"),
            ("OpenOpportunity", "archived contact",
             {"opportunity.contact_id": self.contact_archived}, E.FAILED_PRECONDITION,
             "opportunity.contact_id"),
            ("OpenOpportunity", "archived account",
             {"opportunity.account_id": self.account_archived}, E.FAILED_PRECONDITION,
             "opportunity.account_id"),
            ("OpenOpportunity", "opportunity id taken", {"opportunity_id": self.opportunity},
             E.ALREADY_EXISTS, None),
            ("OpenOpportunity", "request_id over 128 bytes", {"request_id": big(129)},
             E.RESOURCE_EXHAUSTED, "request_id"),
            # GetOpportunity
            *self._common("pipeline", "GetOpportunity", "opportunity_id", versioned=False),
            ("GetOpportunity", "as_of_time with negative nanos",
             {"as_of_time": timestamp_pb2.Timestamp(seconds=1, nanos=-1)},
             E.INVALID_ARGUMENT, "as_of_time"),
            ("GetOpportunity", "as_of_time before it was opened",
             {"as_of_time": ts(datetime.datetime(2001, 1, 1, tzinfo=datetime.timezone.utc))},
             E.NOT_FOUND, None),
            # UpdateOpportunity
            *self._common("pipeline", "UpdateOpportunity", "opportunity.opportunity_id"),
            ("UpdateOpportunity", "empty update_mask", {"update_mask": mask()},
             E.INVALID_ARGUMENT, "update_mask"),
            ("UpdateOpportunity", "stage is not settable", {"update_mask": mask("stage_id")},
             E.INVALID_ARGUMENT, ("update_mask", "opportunity.stage_id")),
            ("UpdateOpportunity", "display_name removed",
             {"opportunity.display_name": ""}, E.INVALID_ARGUMENT, "opportunity.display_name"),
            ("UpdateOpportunity", "malformed currency_code",
             {"opportunity.currency_code": "eu", "update_mask": mask("currency_code")},
             E.INVALID_ARGUMENT, "opportunity.currency_code"),
            ("UpdateOpportunity", "negative quantity",
             {"opportunity.lines": [line(product_id="p", quantity=-1)],
              "update_mask": mask("lines")},
             E.INVALID_ARGUMENT, "opportunity.lines[0].quantity"),
            ("UpdateOpportunity", "expected_close_date month 13",
             {"opportunity.expected_close_date": common_pb2.Date(year=2027, month=13, day=1),
              "update_mask": mask("expected_close_date")},
             E.INVALID_ARGUMENT, "opportunity.expected_close_date"),
            ("UpdateOpportunity", "display_name over 200 bytes",
             {"opportunity.display_name": big(201)}, E.RESOURCE_EXHAUSTED,
             "opportunity.display_name"),
            ("UpdateOpportunity", "unknown contact",
             {"opportunity.contact_id": uid("nobody"), "update_mask": mask("contact_id")},
             E.FAILED_PRECONDITION, "opportunity.contact_id"),
            ("UpdateOpportunity", "closed opportunity",
             {"opportunity.opportunity_id": self.opportunity_closed},
             E.FAILED_PRECONDITION, None),
            # MoveOpportunityStage
            *self._common("pipeline", "MoveOpportunityStage", "opportunity_id"),
            ("MoveOpportunityStage", "missing stage_id", {"stage_id": ""},
             E.INVALID_ARGUMENT, "stage_id"),
            ("MoveOpportunityStage", "stage not in the pipeline", {"stage_id": "nowhere"},
             E.INVALID_ARGUMENT, "stage_id"),
            ("MoveOpportunityStage", "already in that stage", {"stage_id": "s1"},
             E.FAILED_PRECONDITION, None),
            ("MoveOpportunityStage", "closed opportunity",
             {"opportunity_id": self.opportunity_closed}, E.FAILED_PRECONDITION, None),
            # CloseOpportunity
            *self._common("pipeline", "CloseOpportunity", "opportunity_id"),
            ("CloseOpportunity", "missing outcome", {"outcome": 0}, E.INVALID_ARGUMENT,
             "outcome"),
            ("CloseOpportunity", "outcome OPEN",
             {"outcome": pipeline_pb2.OPPORTUNITY_STATUS_OPEN}, E.INVALID_ARGUMENT, "outcome"),
            ("CloseOpportunity", "unknown outcome 99", {"outcome": 99}, E.INVALID_ARGUMENT,
             "outcome"),
            ("CloseOpportunity", "lost without a reason", {"reason": ""}, E.INVALID_ARGUMENT,
             "reason"),
            ("CloseOpportunity", "reason over 1000 bytes", {"reason": big(1001)},
             E.RESOURCE_EXHAUSTED, "reason"),
            ("CloseOpportunity", "already closed", {"opportunity_id": self.opportunity_closed},
             E.FAILED_PRECONDITION, None),
            # ReopenOpportunity
            *self._common("pipeline", "ReopenOpportunity", "opportunity_id"),
            ("ReopenOpportunity", "stage not in the pipeline", {"stage_id": "nowhere"},
             E.INVALID_ARGUMENT, "stage_id"),
            ("ReopenOpportunity", "open opportunity", {"opportunity_id": self.opportunity},
             E.FAILED_PRECONDITION, None),
            # ListOpportunities
            ("ListOpportunities", "unknown status 99", {"status": 99}, E.INVALID_ARGUMENT,
             "status"),
            ("ListOpportunities", "expected_close_from month 13",
             {"expected_close_from": common_pb2.Date(year=2027, month=13, day=1)},
             E.INVALID_ARGUMENT, "expected_close_from"),
            ("ListOpportunities", "expected_close_to day 0",
             {"expected_close_to": common_pb2.Date(year=2027, month=1, day=0)},
             E.INVALID_ARGUMENT, "expected_close_to"),
            *self._list("ListOpportunities", 500),
            # ValidateReferences
            ("ValidateReferences", "501 lead ids", {"lead_ids": [f"l-{i}" for i in range(501)]},
             E.RESOURCE_EXHAUSTED, "lead_ids"),
            ("ValidateReferences", "501 opportunity ids",
             {"opportunity_ids": [f"o-{i}" for i in range(501)]}, E.RESOURCE_EXHAUSTED,
             "opportunity_ids"),
        ]
        return self._cases("pipeline", rows)

    def metrics_cases(self):
        E = OK
        m = metrics_service_pb2
        day = datetime.timedelta(days=1)

        def consistency(stream="contact/x", version=1, wait=None):
            result = m.Consistency(min_versions=[m.StreamVersion(stream=stream, version=version)])
            if wait is not None:
                result.max_wait.CopyFrom(wait)
            return result

        one_second = duration_pb2.Duration(seconds=1)
        behind = consistency(f"contact/{self.contact}", 999, one_second)
        rows = [
            ("QueryKpi", "missing kpi", {"kpi": ""}, E.INVALID_ARGUMENT, "kpi"),
            ("QueryKpi", "unknown kpi", {"kpi": "happiness"}, E.INVALID_ARGUMENT, "kpi"),
            ("QueryKpi", "missing period_kind", {"period_kind": 0}, E.INVALID_ARGUMENT,
             "period_kind"),
            ("QueryKpi", "unknown period_kind 99", {"period_kind": 99}, E.INVALID_ARGUMENT,
             "period_kind"),
            ("QueryKpi", "missing start_time", {"start_time": DELETE}, E.INVALID_ARGUMENT,
             "start_time"),
            ("QueryKpi", "missing end_time", {"end_time": DELETE}, E.INVALID_ARGUMENT,
             "end_time"),
            ("QueryKpi", "end_time not after start_time",
             {"end_time": lambda: ts(now() - 40 * day)}, E.INVALID_ARGUMENT, "end_time"),
            ("QueryKpi", "more than 400 periods",
             {"period_kind": m.PERIOD_KIND_ISO_WEEK, "start_time": lambda: ts(now() - 3000 * day)},
             E.INVALID_ARGUMENT, "end_time"),
            ("QueryKpi", "start_time with nanos over 1e9",
             {"start_time": timestamp_pb2.Timestamp(seconds=1, nanos=1_000_000_000)},
             E.INVALID_ARGUMENT, "start_time"),
            ("QueryKpi", "unknown filter dimension",
             {"filters": [m.DimensionFilter(dimension="shoe_size", values=["42"])]},
             E.INVALID_ARGUMENT, "filters[0].dimension"),
            ("QueryKpi", "filter without values",
             {"filters": [m.DimensionFilter(dimension="rep")]}, E.INVALID_ARGUMENT,
             "filters[0].values"),
            ("QueryKpi", "unknown group_by", {"group_by": ["rep", "shoe_size"]},
             E.INVALID_ARGUMENT, "group_by[1]"),
            ("QueryKpi", "group_by twice", {"group_by": ["rep", "rep"]}, E.INVALID_ARGUMENT,
             "group_by[1]"),
            ("QueryKpi", "malformed consistency stream", {"consistency": consistency("nope")},
             E.INVALID_ARGUMENT, "consistency.min_versions[0].stream"),
            ("QueryKpi", "consistency stream of an unknown type",
             {"consistency": consistency("widget/w-1", 1, one_second)}, E.INVALID_ARGUMENT,
             "consistency.min_versions[0].stream"),
            ("QueryKpi", "consistency version 0",
             {"consistency": consistency(f"contact/{self.contact}", 0)}, E.INVALID_ARGUMENT,
             "consistency.min_versions[0].version"),
            ("QueryKpi", "max_wait over 60 s",
             {"consistency": consistency(wait=duration_pb2.Duration(seconds=61))},
             E.INVALID_ARGUMENT, "consistency.max_wait"),
            ("QueryKpi", "negative max_wait",
             {"consistency": consistency(wait=duration_pb2.Duration(seconds=-1))},
             E.INVALID_ARGUMENT, "consistency.max_wait"),
            ("QueryKpi", "a version the projection never reaches", {"consistency": behind},
             E.DEADLINE_EXCEEDED, None, "rep", "details", f"contact/{self.contact}"),
        ]
        for method in ("GetAdoptionScorecard", "GetBusinessDashboard"):
            rows += [
                (method, "missing period_kind", {"period_kind": 0}, E.INVALID_ARGUMENT,
                 "period_kind"),
                (method, "unknown period_kind 99", {"period_kind": 99}, E.INVALID_ARGUMENT,
                 "period_kind"),
                (method, "time after year 9999",
                 {"time": timestamp_pb2.Timestamp(seconds=253_402_300_800)},
                 E.INVALID_ARGUMENT, "time"),
                (method, "malformed consistency stream", {"consistency": consistency("/x")},
                 E.INVALID_ARGUMENT, "consistency.min_versions[0].stream"),
                (method, "max_wait over 60 s",
                 {"consistency": consistency(wait=duration_pb2.Duration(seconds=3600))},
                 E.INVALID_ARGUMENT, "consistency.max_wait"),
                (method, "a version the projection never reaches", {"consistency": behind},
                 E.DEADLINE_EXCEEDED, None, "rep", "details", f"contact/{self.contact}"),
            ]
        return self._cases("metrics", rows)


if __name__ == "__main__":
    unittest.main()
