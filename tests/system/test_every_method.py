"""Create, update, list and every domain verb of every service, through Python grpcio.

One System for the class. The tests together call every rpc of the four services at least
once successfully, with assertions on the answers; lists are paged with a page size smaller
than the records created, following next_page_token until it is empty, and every record must
come back exactly once. Every channel is wrapped in a client interceptor that records the
full names of the methods that answered OK, and test_zz_every_method_was_called (run last:
unittest sorts test names) compares them with the methods of the generated descriptors.
"""

import datetime
import threading
import unittest

import grpc
from google.protobuf import duration_pb2, field_mask_pb2

from crm.activity.v1 import activity_pb2, activity_service_pb2, activity_service_pb2_grpc
from crm.common.v1 import common_pb2
from crm.contact.v1 import contact_pb2, contact_service_pb2, contact_service_pb2_grpc
from crm.contact.v1 import events_pb2 as contact_events_pb2
from crm.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from crm.pipeline.v1 import pipeline_pb2, pipeline_service_pb2, pipeline_service_pb2_grpc

import harness
from harness import metadata, token
from test_system import REP_SCOPES, timestamp, unique

SERVICE_DESCRIPTORS = [
    contact_service_pb2.DESCRIPTOR.services_by_name["ContactService"],
    activity_service_pb2.DESCRIPTOR.services_by_name["ActivityService"],
    pipeline_service_pb2.DESCRIPTOR.services_by_name["PipelineService"],
    metrics_service_pb2.DESCRIPTOR.services_by_name["MetricsService"],
]

KPI_NAMES = {
    "activities_logged", "visit_report_compliance", "logging_delay_seconds", "active_reps",
    "contact_completeness_ratio", "open_deal_coverage", "stale_opportunities",
    "tasks_on_time_ratio", "speed_to_lead_seconds", "duplicate_rate", "leads_captured",
    "lead_qualification_rate", "lead_conversion_rate", "stage_conversion_rate", "win_rate",
    "won_revenue", "pipeline_value", "sales_cycle_days", "average_deal_size",
    "case_resolution_seconds", "open_cases",
}

TIMEOUT = 15


def all_methods():
    """Every rpc of the four services, as grpc's full method names ("/pkg.Service/Method")."""
    return {f"/{service.full_name}/{method.name}"
            for service in SERVICE_DESCRIPTORS for method in service.methods}


class RecordingInterceptor(grpc.UnaryUnaryClientInterceptor):
    """Records the full method name of every unary call that answered OK."""

    def __init__(self):
        self.succeeded = set()
        self._lock = threading.Lock()

    def intercept_unary_unary(self, continuation, client_call_details, request):
        outcome = continuation(client_call_details, request)
        if outcome.code() == grpc.StatusCode.OK:
            with self._lock:
                self.succeeded.add(client_call_details.method)
        return outcome


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def page_through(test, call, request, items_of, max_pages=200):
    """Every item of a listing: follows next_page_token until empty. Asserts that no page is
    longer than page_size and that the listing ends."""
    items, pages = [], 0
    while True:
        response = call(request)
        page = list(items_of(response))
        test.assertLessEqual(len(page), request.page_size)
        items.extend(page)
        pages += 1
        if not response.next_page_token:
            return items, pages
        test.assertLess(pages, max_pages, "the listing never ends")
        request.page_token = response.next_page_token


class EveryMethodTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.system = harness.System()
        cls.system.__enter__()
        cls.recorder = RecordingInterceptor()
        cls.intercepted = []
        try:
            channels = {name: grpc.intercept_channel(cls.system.channel(name), cls.recorder)
                        for name in harness.System.SERVICES}
            cls.contacts = contact_service_pb2_grpc.ContactServiceStub(channels["contact"])
            cls.activities = activity_service_pb2_grpc.ActivityServiceStub(channels["activity"])
            cls.pipeline = pipeline_service_pb2_grpc.PipelineServiceStub(channels["pipeline"])
            cls.metrics = metrics_service_pb2_grpc.MetricsServiceStub(channels["metrics"])
            cls.rep_id = unique("rep")
            cls.rep = metadata(token(cls.rep_id, REP_SCOPES))
            cls.admin = metadata(token("admin-every-method", ("admin",)))
            # Shared by several tests, made by the first that needs them.
            cls._pipeline_id = None
            cls._contact_id = None
        except BaseException:
            cls.system.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.system.close()

    # --- shared records ----------------------------------------------------------------------

    def contact(self, **fields):
        """A new live contact of the rep, with the given Contact fields."""
        fields.setdefault("given_name", "Ada")
        fields.setdefault("family_name", unique("Lovelace"))
        contact_id = unique("con")
        created = self.contacts.CreateContact(contact_service_pb2.CreateContactRequest(
            contact_id=contact_id, request_id=unique("req"), channel="web_form",
            contact=contact_pb2.Contact(**fields)), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual(created.contact_id, contact_id)
        self.assertEqual(created.version, 1)
        return created

    def shared_contact(self):
        if EveryMethodTest._contact_id is None:
            email = f"{unique('shared')}@example.com"
            EveryMethodTest._contact_id = self.contact(emails=[email]).contact_id
        return EveryMethodTest._contact_id

    def shared_pipeline(self):
        if EveryMethodTest._pipeline_id is None:
            pipeline_id = unique("pipe")
            self.pipeline.DefinePipeline(pipeline_service_pb2.DefinePipelineRequest(
                pipeline_id=pipeline_id, display_name="Sales", request_id=unique("req"),
                stages=[pipeline_pb2.Stage(stage_id="discovery", probability_bps=1000),
                        pipeline_pb2.Stage(stage_id="proposal", probability_bps=5000),
                        pipeline_pb2.Stage(stage_id="negotiation", probability_bps=8000)]),
                metadata=self.rep, timeout=TIMEOUT)
            EveryMethodTest._pipeline_id = pipeline_id
        return EveryMethodTest._pipeline_id

    def open_case(self, contact_id, **fields):
        fields.setdefault("subject", "Invoice is wrong")
        fields.setdefault("priority", activity_pb2.CASE_PRIORITY_NORMAL)
        return self.activities.OpenCase(activity_service_pb2.OpenCaseRequest(
            case_id=unique("case"), request_id=unique("req"), channel="service_desk",
            case=activity_pb2.Case(contact_id=contact_id, **fields)),
            metadata=self.rep, timeout=TIMEOUT)

    # --- contact-service ---------------------------------------------------------------------

    def test_accounts_create_get_update_archive_restore_list(self):
        owner = unique("owner")
        account_id = unique("acc")
        created = self.contacts.CreateAccount(contact_service_pb2.CreateAccountRequest(
            account_id=account_id, request_id=unique("req"), channel="field_sales",
            account=contact_pb2.Account(display_name="  Acme Ltd ", domain="ACME.example",
                                        owner_id=owner, region="south")),
            metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual(created.account_id, account_id)
        self.assertEqual(created.name, f"accounts/{account_id}")
        self.assertEqual(created.display_name, "Acme Ltd")  # trimmed
        self.assertEqual(created.domain, "acme.example")  # lower-cased
        self.assertEqual(created.version, 1)

        updated = self.contacts.UpdateAccount(contact_service_pb2.UpdateAccountRequest(
            account=contact_pb2.Account(account_id=account_id, region="north",
                                        display_name="ignored: not in the mask"),
            update_mask=field_mask_pb2.FieldMask(paths=["region"]), expected_version=1,
            request_id=unique("req")), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual((updated.region, updated.display_name, updated.version),
                         ("north", "Acme Ltd", 2))

        archived = self.contacts.ArchiveAccount(contact_service_pb2.ArchiveAccountRequest(
            account_id=account_id, expected_version=2, request_id=unique("req")),
            metadata=self.rep, timeout=TIMEOUT)
        self.assertTrue(archived.archived)
        self.assertEqual(archived.version, 3)
        got = self.contacts.GetAccount(contact_service_pb2.GetAccountRequest(
            account_id=account_id), metadata=self.rep, timeout=TIMEOUT)
        self.assertTrue(got.archived)
        live = self.contacts.ListAccounts(contact_service_pb2.ListAccountsRequest(
            owner_id=owner), metadata=self.rep, timeout=TIMEOUT)
        self.assertNotIn(account_id, [a.account_id for a in live.accounts])

        restored = self.contacts.RestoreAccount(contact_service_pb2.RestoreAccountRequest(
            account_id=account_id, expected_version=3, request_id=unique("req")),
            metadata=self.rep, timeout=TIMEOUT)
        self.assertFalse(restored.archived)
        self.assertEqual(restored.version, 4)
        got = self.contacts.GetAccount(contact_service_pb2.GetAccountRequest(
            account_id=account_id), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual((got.archived, got.region, got.version), (False, "north", 4))

        # Pagination: 7 accounts of one owner, 3 per page, each exactly once, by account id.
        ids = [account_id] + [
            self.contacts.CreateAccount(contact_service_pb2.CreateAccountRequest(
                account_id=unique("acc"), request_id=unique("req"),
                account=contact_pb2.Account(display_name=f"Account {i}", owner_id=owner)),
                metadata=self.rep, timeout=TIMEOUT).account_id for i in range(6)]
        listed, pages = page_through(
            self, lambda r: self.contacts.ListAccounts(r, metadata=self.rep, timeout=TIMEOUT),
            contact_service_pb2.ListAccountsRequest(owner_id=owner, page_size=3),
            lambda r: r.accounts)
        listed_ids = [a.account_id for a in listed]
        self.assertEqual(listed_ids, sorted(ids))
        self.assertGreaterEqual(pages, 3)

    def test_contacts_create_get_update_list_and_time_travel(self):
        owner = unique("owner")
        account = self.contacts.CreateAccount(contact_service_pb2.CreateAccountRequest(
            account_id=unique("acc"), request_id=unique("req"),
            account=contact_pb2.Account(display_name="Hopper Inc", region="south")),
            metadata=self.rep, timeout=TIMEOUT)
        created = self.contacts.CreateContact(contact_service_pb2.CreateContactRequest(
            contact_id=unique("con"), request_id=unique("req"), channel="web_form",
            contact=contact_pb2.Contact(
                given_name="Grace", family_name="Hopper", emails=["GRACE@Example.com"],
                phones=["+1 650-253-0000"], account_id=account.account_id, owner_id=owner,
                region="south", lifecycle_stage=contact_pb2.LIFECYCLE_STAGE_PROSPECT,
                tags=["webinar", "webinar"], attributes={"job_title": "CTO"})),
            metadata=self.rep, timeout=TIMEOUT)
        contact_id = created.contact_id
        self.assertEqual(created.name, f"contacts/{contact_id}")
        self.assertEqual(list(created.emails), ["grace@example.com"])
        self.assertEqual(list(created.phones), ["+16502530000"])
        self.assertEqual(list(created.tags), ["webinar"])
        self.assertEqual(created.source_channel, "web_form")  # defaults to the request channel
        self.assertEqual(dict(created.attributes), {"job_title": "CTO"})

        updated = self.contacts.UpdateContact(contact_service_pb2.UpdateContactRequest(
            contact=contact_pb2.Contact(contact_id=contact_id,
                                        lifecycle_stage=contact_pb2.LIFECYCLE_STAGE_CUSTOMER),
            update_mask=field_mask_pb2.FieldMask(paths=["lifecycle_stage"]), expected_version=1,
            request_id=unique("req")), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual(updated.version, 2)
        self.assertEqual(updated.lifecycle_stage, contact_pb2.LIFECYCLE_STAGE_CUSTOMER)

        latest = self.contacts.GetContact(contact_service_pb2.GetContactRequest(
            contact_id=contact_id), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual(latest.lifecycle_stage, contact_pb2.LIFECYCLE_STAGE_CUSTOMER)
        first = self.contacts.GetContact(contact_service_pb2.GetContactRequest(
            contact_id=contact_id, as_of_version=1), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual((first.version, first.lifecycle_stage),
                         (1, contact_pb2.LIFECYCLE_STAGE_PROSPECT))

        # Pagination: 7 contacts of one owner, 3 per page, each exactly once, by contact id.
        ids = [contact_id] + [self.contact(owner_id=owner).contact_id for _ in range(6)]
        listed, pages = page_through(
            self, lambda r: self.contacts.ListContacts(r, metadata=self.rep, timeout=TIMEOUT),
            contact_service_pb2.ListContactsRequest(owner_id=owner, page_size=3),
            lambda r: r.contacts)
        self.assertEqual([c.contact_id for c in listed], sorted(ids))
        self.assertGreaterEqual(pages, 3)
        # A filter on top of the owner: only the customer.
        customers, _ = page_through(
            self, lambda r: self.contacts.ListContacts(r, metadata=self.rep, timeout=TIMEOUT),
            contact_service_pb2.ListContactsRequest(
                owner_id=owner, lifecycle_stage=contact_pb2.LIFECYCLE_STAGE_CUSTOMER,
                page_size=2),
            lambda r: r.contacts)
        self.assertEqual([c.contact_id for c in customers], [contact_id])

    def test_contact_archive_restore_round_trip_and_its_event_history_in_order(self):
        owner = unique("owner")
        contact = self.contact(owner_id=owner, emails=["history@example.com"])
        contact_id = contact.contact_id
        updated = self.contacts.UpdateContact(contact_service_pb2.UpdateContactRequest(
            contact=contact_pb2.Contact(contact_id=contact_id, region="west"),
            update_mask=field_mask_pb2.FieldMask(paths=["region"]), expected_version=1,
            request_id=unique("req"), channel="phone"), metadata=self.rep, timeout=TIMEOUT)
        archived = self.contacts.ArchiveContact(contact_service_pb2.ArchiveContactRequest(
            contact_id=contact_id, expected_version=updated.version, request_id=unique("req")),
            metadata=self.rep, timeout=TIMEOUT)
        self.assertTrue(archived.archived)
        self.assertEqual(archived.version, 3)

        listed = self.contacts.ListContacts(contact_service_pb2.ListContactsRequest(
            owner_id=owner), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual(list(listed.contacts), [])
        listed = self.contacts.ListContacts(contact_service_pb2.ListContactsRequest(
            owner_id=owner, include_archived=True), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual([c.contact_id for c in listed.contacts], [contact_id])

        restored = self.contacts.RestoreContact(contact_service_pb2.RestoreContactRequest(
            contact_id=contact_id, expected_version=3, request_id=unique("req")),
            metadata=self.rep, timeout=TIMEOUT)
        self.assertFalse(restored.archived)
        self.assertEqual((restored.version, restored.region), (4, "west"))
        listed = self.contacts.ListContacts(contact_service_pb2.ListContactsRequest(
            owner_id=owner), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual([c.contact_id for c in listed.contacts], [contact_id])

        # The history, oldest first, two per page.
        events, _ = page_through(
            self, lambda r: self.contacts.ListContactEvents(r, metadata=self.rep,
                                                            timeout=TIMEOUT),
            contact_service_pb2.ListContactEventsRequest(contact_id=contact_id, page_size=2),
            lambda r: r.events)
        self.assertEqual([e.stream_version for e in events], [1, 2, 3, 4])
        self.assertEqual([e.payload.type_url.rsplit("/", 1)[1] for e in events],
                         ["crm.contact.v1.ContactCreated", "crm.contact.v1.ContactUpdated",
                          "crm.contact.v1.ContactArchived", "crm.contact.v1.ContactRestored"])
        self.assertEqual({e.stream_id for e in events}, {f"contact/{contact_id}"})
        self.assertEqual({e.actor_id for e in events}, {self.rep_id})
        self.assertEqual(events[1].channel, "phone")
        positions = [e.position for e in events]
        self.assertEqual(positions, sorted(positions))
        changed = contact_events_pb2.ContactUpdated()
        self.assertTrue(events[1].payload.Unpack(changed))
        self.assertEqual(list(changed.changed_fields), ["region"])
        self.assertEqual(changed.contact.region, "west")
        self.assertEqual(len({e.event_id for e in events}), 4)

    def test_find_duplicates_and_merge(self):
        email = f"{unique('dup')}@example.com"
        winner = self.contact(given_name="Alan", family_name="Turing", emails=[email])
        loser = self.contact(given_name="A.", family_name="Turing",
                             emails=[email.upper(), f"{unique('second')}@example.com"],
                             phones=["+441234567890"])
        # Candidate data before a create: the same email, differently cased.
        found = self.contacts.FindDuplicates(contact_service_pb2.FindDuplicatesRequest(
            candidate=contact_pb2.Contact(given_name="Al", emails=[email.upper()])),
            metadata=self.rep, timeout=TIMEOUT)
        by_id = {m.contact.contact_id: list(m.reasons) for m in found.matches}
        self.assertEqual(set(by_id), {winner.contact_id, loser.contact_id})
        self.assertIn("email", by_id[winner.contact_id])
        # An existing contact is never its own match.
        found = self.contacts.FindDuplicates(contact_service_pb2.FindDuplicatesRequest(
            contact_id=winner.contact_id), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual([m.contact.contact_id for m in found.matches], [loser.contact_id])
        self.assertIn("email", found.matches[0].reasons)

        merged = self.contacts.MergeContacts(contact_service_pb2.MergeContactsRequest(
            winner_contact_id=winner.contact_id, loser_contact_id=loser.contact_id,
            winner_expected_version=1, loser_expected_version=1, request_id=unique("req"),
            channel="service_desk"), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual(merged.contact_id, winner.contact_id)
        self.assertEqual(merged.given_name, "Alan")  # the winner keeps its own values
        self.assertEqual(len(merged.emails), 2)  # and gains the loser's missing email
        self.assertEqual(list(merged.phones), ["+441234567890"])
        # The loser resolves to the winner, and its own record says so.
        resolved = self.contacts.GetContact(contact_service_pb2.GetContactRequest(
            contact_id=loser.contact_id), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual(resolved.contact_id, winner.contact_id)
        itself = self.contacts.GetContact(contact_service_pb2.GetContactRequest(
            contact_id=loser.contact_id, resolve_merged=False), metadata=self.rep,
            timeout=TIMEOUT)
        self.assertEqual(itself.merged_into_contact_id, winner.contact_id)
        # Merged contacts are not duplicates any more.
        found = self.contacts.FindDuplicates(contact_service_pb2.FindDuplicatesRequest(
            contact_id=winner.contact_id), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual(list(found.matches), [])

    def test_contact_validate_references(self):
        account = self.contacts.CreateAccount(contact_service_pb2.CreateAccountRequest(
            account_id=unique("acc"), request_id=unique("req"),
            account=contact_pb2.Account(display_name="Refs", region="east")),
            metadata=self.rep, timeout=TIMEOUT)
        archived = self.contacts.CreateAccount(contact_service_pb2.CreateAccountRequest(
            account_id=unique("acc"), request_id=unique("req"),
            account=contact_pb2.Account(display_name="Gone")), metadata=self.rep,
            timeout=TIMEOUT)
        self.contacts.ArchiveAccount(contact_service_pb2.ArchiveAccountRequest(
            account_id=archived.account_id, request_id=unique("req")), metadata=self.rep,
            timeout=TIMEOUT)
        email = f"{unique('v')}@example.com"
        winner = self.contact(emails=[email], account_id=account.account_id, region="east")
        loser = self.contact(emails=[email])
        self.contacts.MergeContacts(contact_service_pb2.MergeContactsRequest(
            winner_contact_id=winner.contact_id, loser_contact_id=loser.contact_id,
            request_id=unique("req")), metadata=self.rep, timeout=TIMEOUT)
        answer = self.contacts.ValidateReferences(contact_service_pb2.ValidateReferencesRequest(
            contact_ids=[winner.contact_id, loser.contact_id, "c-nobody", "not an id!"],
            account_ids=[account.account_id, archived.account_id, "a-nobody"]),
            metadata=self.rep, timeout=TIMEOUT)
        contacts = [(c.contact_id, c.exists, c.resolved_contact_id) for c in answer.contacts]
        self.assertEqual(contacts, [
            (winner.contact_id, True, winner.contact_id),
            (loser.contact_id, True, winner.contact_id),
            ("c-nobody", False, ""), ("not an id!", False, "")])
        self.assertEqual((answer.contacts[0].account_id, answer.contacts[0].region,
                          answer.contacts[0].owner_id),
                         (account.account_id, "east", self.rep_id))
        self.assertEqual([(a.account_id, a.exists, a.archived) for a in answer.accounts], [
            (account.account_id, True, False), (archived.account_id, True, True),
            ("a-nobody", False, False)])
        self.assertEqual(answer.accounts[0].region, "east")

    # --- activity-service --------------------------------------------------------------------

    def test_activities_log_get_update_complete_cancel(self):
        contact_id = self.shared_contact()
        logged = self.activities.LogActivity(activity_service_pb2.LogActivityRequest(
            activity_id=unique("act"), request_id=unique("req"), channel="field_sales",
            occurred_at=timestamp(now() - datetime.timedelta(hours=2)),
            activity=activity_pb2.Activity(type=activity_pb2.ACTIVITY_TYPE_VISIT,
                                           contact_id=contact_id, subject="On-site demo",
                                           duration_seconds=3600)),
            metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual(logged.status, activity_pb2.ACTIVITY_STATUS_DONE)
        self.assertEqual(logged.owner_id, self.rep_id)  # defaults to the caller
        self.assertEqual(logged.channel, "field_sales")
        self.assertEqual(logged.version, 1)

        updated = self.activities.UpdateActivity(activity_service_pb2.UpdateActivityRequest(
            activity=activity_pb2.Activity(activity_id=logged.activity_id,
                                           body="Visit report: 50 seats", outcome="quote"),
            update_mask=field_mask_pb2.FieldMask(paths=["body", "outcome"]),
            expected_version=1, request_id=unique("req")), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual((updated.body, updated.outcome, updated.version),
                         ("Visit report: 50 seats", "quote", 2))
        got = self.activities.GetActivity(activity_service_pb2.GetActivityRequest(
            activity_id=logged.activity_id), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual((got.subject, got.body, got.duration_seconds),
                         ("On-site demo", "Visit report: 50 seats", 3600))

        planned_for = now() + datetime.timedelta(days=2)
        scheduled = self.activities.LogActivity(activity_service_pb2.LogActivityRequest(
            activity_id=unique("act"), request_id=unique("req"), channel="phone",
            scheduled_time=timestamp(planned_for),
            activity=activity_pb2.Activity(type=activity_pb2.ACTIVITY_TYPE_CALL,
                                           contact_id=contact_id, subject="Follow-up")),
            metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual(scheduled.status, activity_pb2.ACTIVITY_STATUS_SCHEDULED)
        self.assertEqual(scheduled.occurred_at.seconds, int(planned_for.timestamp()))
        completed = self.activities.CompleteActivity(activity_service_pb2.CompleteActivityRequest(
            activity_id=scheduled.activity_id, outcome="connected", duration_seconds=300,
            expected_version=1, request_id=unique("req")), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual(completed.status, activity_pb2.ACTIVITY_STATUS_DONE)
        self.assertEqual((completed.outcome, completed.duration_seconds, completed.version),
                         ("connected", 300, 2))
        self.assertLess(completed.occurred_at.seconds, int(planned_for.timestamp()))

        to_cancel = self.activities.LogActivity(activity_service_pb2.LogActivityRequest(
            activity_id=unique("act"), request_id=unique("req"), channel="field_sales",
            scheduled_time=timestamp(planned_for),
            activity=activity_pb2.Activity(type=activity_pb2.ACTIVITY_TYPE_MEETING,
                                           contact_id=contact_id)),
            metadata=self.rep, timeout=TIMEOUT)
        cancelled = self.activities.CancelActivity(activity_service_pb2.CancelActivityRequest(
            activity_id=to_cancel.activity_id, reason="Customer postponed", expected_version=1,
            request_id=unique("req")), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual(cancelled.status, activity_pb2.ACTIVITY_STATUS_CANCELLED)
        self.assertEqual(cancelled.cancel_reason, "Customer postponed")

    def test_timeline_and_activities_paginate(self):
        contact_id = self.contact().contact_id
        owner = unique("owner")
        start = now() - datetime.timedelta(hours=3)
        times = [start + datetime.timedelta(minutes=10 * i) for i in range(7)]
        ids = []
        for i, moment in enumerate(times):
            ids.append(self.activities.LogActivity(activity_service_pb2.LogActivityRequest(
                activity_id=unique("act"), request_id=unique("req"),
                channel="phone" if i % 2 else "email", occurred_at=timestamp(moment),
                activity=activity_pb2.Activity(
                    type=activity_pb2.ACTIVITY_TYPE_CALL if i % 2 else
                    activity_pb2.ACTIVITY_TYPE_EMAIL,
                    contact_id=contact_id, owner_id=owner, subject=f"#{i}")),
                metadata=self.rep, timeout=TIMEOUT).activity_id)

        timeline, pages = page_through(
            self, lambda r: self.activities.ListTimeline(r, metadata=self.rep, timeout=TIMEOUT),
            activity_service_pb2.ListTimelineRequest(contact_id=contact_id, page_size=3),
            lambda r: r.activities)
        self.assertEqual([a.activity_id for a in timeline], list(reversed(ids)))  # newest first
        self.assertGreaterEqual(pages, 3)
        calls, _ = page_through(
            self, lambda r: self.activities.ListTimeline(r, metadata=self.rep, timeout=TIMEOUT),
            activity_service_pb2.ListTimelineRequest(
                contact_id=contact_id, types=[activity_pb2.ACTIVITY_TYPE_CALL], page_size=2),
            lambda r: r.activities)
        self.assertEqual([a.activity_id for a in calls], [ids[5], ids[3], ids[1]])

        listed, pages = page_through(
            self, lambda r: self.activities.ListActivities(r, metadata=self.rep,
                                                           timeout=TIMEOUT),
            activity_service_pb2.ListActivitiesRequest(
                owner_id=owner, page_size=3, period=common_pb2.TimeRange(
                    start_time=timestamp(start - datetime.timedelta(minutes=1)),
                    end_time=timestamp(now() + datetime.timedelta(minutes=1)))),
            lambda r: r.activities)
        self.assertEqual([a.activity_id for a in listed], ids)  # oldest first
        self.assertGreaterEqual(pages, 3)
        # The half-open period leaves out the first and the last.
        inner, _ = page_through(
            self, lambda r: self.activities.ListActivities(r, metadata=self.rep,
                                                           timeout=TIMEOUT),
            activity_service_pb2.ListActivitiesRequest(
                owner_id=owner, page_size=4, period=common_pb2.TimeRange(
                    start_time=timestamp(times[1]), end_time=timestamp(times[6]))),
            lambda r: r.activities)
        self.assertEqual([a.activity_id for a in inner], ids[1:6])

    def test_tasks_schedule_get_complete_cancel_reassign_list(self):
        contact_id = self.shared_contact()
        assignee = unique("assignee")
        due = [now() + datetime.timedelta(hours=1 + i) for i in range(7)]
        tasks = []
        for i in reversed(range(7)):  # scheduled latest-due first; listed earliest-due first
            tasks.append(self.activities.ScheduleTask(activity_service_pb2.ScheduleTaskRequest(
                task_id=unique("task"), request_id=unique("req"), channel="field_sales",
                task=activity_pb2.Task(title=f"Task {i}", assignee_id=assignee,
                                       due_time=timestamp(due[i]), contact_id=contact_id)),
                metadata=self.rep, timeout=TIMEOUT))
        tasks.reverse()
        self.assertEqual(tasks[0].status, activity_pb2.TASK_STATUS_OPEN)
        self.assertEqual(tasks[0].channel, "field_sales")
        got = self.activities.GetTask(activity_service_pb2.GetTaskRequest(
            task_id=tasks[0].task_id), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual((got.title, got.assignee_id, got.due_time.seconds),
                         ("Task 0", assignee, int(due[0].timestamp())))

        listed, pages = page_through(
            self, lambda r: self.activities.ListTasks(r, metadata=self.rep, timeout=TIMEOUT),
            activity_service_pb2.ListTasksRequest(assignee_id=assignee, page_size=3),
            lambda r: r.tasks)
        self.assertEqual([t.task_id for t in listed], [t.task_id for t in tasks])
        self.assertGreaterEqual(pages, 3)

        completed = self.activities.CompleteTask(activity_service_pb2.CompleteTaskRequest(
            task_id=tasks[0].task_id, expected_version=1, request_id=unique("req")),
            metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual(completed.status, activity_pb2.TASK_STATUS_COMPLETED)
        self.assertTrue(completed.HasField("complete_time"))
        cancelled = self.activities.CancelTask(activity_service_pb2.CancelTaskRequest(
            task_id=tasks[1].task_id, reason="Not needed", expected_version=1,
            request_id=unique("req")), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual((cancelled.status, cancelled.cancel_reason),
                         (activity_pb2.TASK_STATUS_CANCELLED, "Not needed"))
        other = unique("assignee")
        reassigned = self.activities.ReassignTask(activity_service_pb2.ReassignTaskRequest(
            task_id=tasks[2].task_id, assignee_id=other, expected_version=1,
            request_id=unique("req")), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual((reassigned.assignee_id, reassigned.version), (other, 2))

        still_open, _ = page_through(
            self, lambda r: self.activities.ListTasks(r, metadata=self.rep, timeout=TIMEOUT),
            activity_service_pb2.ListTasksRequest(assignee_id=assignee, page_size=2),
            lambda r: r.tasks)
        self.assertEqual([t.task_id for t in still_open], [t.task_id for t in tasks[3:]])
        done, _ = page_through(
            self, lambda r: self.activities.ListTasks(r, metadata=self.rep, timeout=TIMEOUT),
            activity_service_pb2.ListTasksRequest(
                assignee_id=assignee, status=activity_pb2.TASK_STATUS_COMPLETED, page_size=2),
            lambda r: r.tasks)
        self.assertEqual([t.task_id for t in done], [tasks[0].task_id])
        theirs = self.activities.ListTasks(activity_service_pb2.ListTasksRequest(
            assignee_id=other), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual([t.task_id for t in theirs.tasks], [tasks[2].task_id])

    def test_cases_open_assign_note_resolve_reopen_list(self):
        contact_id = self.shared_contact()
        opened = self.open_case(contact_id, priority=activity_pb2.CASE_PRIORITY_HIGH,
                                description="Reported by phone")
        self.assertEqual((opened.status, opened.channel, opened.version),
                         (activity_pb2.CASE_STATUS_OPEN, "service_desk", 1))
        assignee = unique("agent")
        assigned = self.activities.AssignCase(activity_service_pb2.AssignCaseRequest(
            case_id=opened.case_id, assignee_id=assignee, expected_version=1,
            request_id=unique("req")), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual((assigned.assignee_id, assigned.version), (assignee, 2))

        texts = [f"note {i}" for i in range(7)]
        for i, text in enumerate(texts):
            noted = self.activities.AddCaseNote(activity_service_pb2.AddCaseNoteRequest(
                case_id=opened.case_id, text=text, request_id=unique("req")),
                metadata=self.rep, timeout=TIMEOUT)
            self.assertEqual(noted.note_count, i + 1)
        notes, pages = page_through(
            self, lambda r: self.activities.ListCaseNotes(r, metadata=self.rep,
                                                          timeout=TIMEOUT),
            activity_service_pb2.ListCaseNotesRequest(case_id=opened.case_id, page_size=3),
            lambda r: r.notes)
        self.assertEqual([(n.note_number, n.text) for n in notes],
                         list(zip(range(1, 8), texts)))
        self.assertEqual({n.author_id for n in notes}, {self.rep_id})
        self.assertGreaterEqual(pages, 3)

        resolved = self.activities.ResolveCase(activity_service_pb2.ResolveCaseRequest(
            case_id=opened.case_id, resolution="Corrected invoice sent",
            request_id=unique("req")), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual((resolved.status, resolved.resolution),
                         (activity_pb2.CASE_STATUS_RESOLVED, "Corrected invoice sent"))
        self.assertTrue(resolved.HasField("resolve_time"))
        reopened = self.activities.ReopenCase(activity_service_pb2.ReopenCaseRequest(
            case_id=opened.case_id, reason="Still wrong", expected_version=resolved.version,
            request_id=unique("req")), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual((reopened.status, reopened.reopen_count, reopened.resolution),
                         (activity_pb2.CASE_STATUS_OPEN, 1, ""))
        got = self.activities.GetCase(activity_service_pb2.GetCaseRequest(
            case_id=opened.case_id), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual((got.note_count, got.reopen_count, got.assignee_id),
                         (7, 1, assignee))

        # Pagination: 6 more cases for the assignee; urgent first, then the rest.
        ids = {opened.case_id}
        for i in range(6):
            case = self.open_case(contact_id, priority=activity_pb2.CASE_PRIORITY_URGENT
                                  if i == 5 else activity_pb2.CASE_PRIORITY_LOW)
            self.activities.AssignCase(activity_service_pb2.AssignCaseRequest(
                case_id=case.case_id, assignee_id=assignee, request_id=unique("req")),
                metadata=self.rep, timeout=TIMEOUT)
            ids.add(case.case_id)
        listed, pages = page_through(
            self, lambda r: self.activities.ListCases(r, metadata=self.rep, timeout=TIMEOUT),
            activity_service_pb2.ListCasesRequest(assignee_id=assignee, page_size=3),
            lambda r: r.cases)
        listed_ids = [c.case_id for c in listed]
        self.assertEqual(sorted(listed_ids), sorted(ids))
        self.assertEqual(len(listed_ids), len(set(listed_ids)))
        priorities = [c.priority for c in listed]
        self.assertEqual(priorities, sorted(priorities, reverse=True))  # most urgent first
        self.assertEqual(listed_ids[1], opened.case_id)  # HIGH after the URGENT one
        self.assertGreaterEqual(pages, 3)
        high, _ = page_through(
            self, lambda r: self.activities.ListCases(r, metadata=self.rep, timeout=TIMEOUT),
            activity_service_pb2.ListCasesRequest(
                assignee_id=assignee, priority=activity_pb2.CASE_PRIORITY_HIGH, page_size=2),
            lambda r: r.cases)
        self.assertEqual([c.case_id for c in high], [opened.case_id])

    # --- pipeline-service --------------------------------------------------------------------

    def test_pipelines_define_revise_get_list(self):
        pipeline_id = unique("pipe")
        stages = [pipeline_pb2.Stage(stage_id="new", display_name="New", probability_bps=1000),
                  pipeline_pb2.Stage(stage_id="won", probability_bps=10000)]
        first = self.pipeline.DefinePipeline(pipeline_service_pb2.DefinePipelineRequest(
            pipeline_id=pipeline_id, display_name="Renewals", stages=stages,
            request_id=unique("req")), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual(first.revision, 1)
        self.assertEqual(first.stages[1].display_name, "won")  # defaults to the stage id
        same = self.pipeline.DefinePipeline(pipeline_service_pb2.DefinePipelineRequest(
            pipeline_id=pipeline_id, display_name="Renewals", stages=stages,
            request_id=unique("req")), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual(same.revision, 1)  # identical: nothing added
        stages.insert(1, pipeline_pb2.Stage(stage_id="quote", probability_bps=5000))
        second = self.pipeline.DefinePipeline(pipeline_service_pb2.DefinePipelineRequest(
            pipeline_id=pipeline_id, display_name="Renewals", stages=stages,
            expected_revision=1, request_id=unique("req")), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual(second.revision, 2)
        latest = self.pipeline.GetPipeline(pipeline_service_pb2.GetPipelineRequest(
            pipeline_id=pipeline_id), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual([s.stage_id for s in latest.stages], ["new", "quote", "won"])
        old = self.pipeline.GetPipeline(pipeline_service_pb2.GetPipelineRequest(
            pipeline_id=pipeline_id, revision=1), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual([s.stage_id for s in old.stages], ["new", "won"])

        ids = {pipeline_id}
        for _ in range(5):
            ids.add(self.pipeline.DefinePipeline(pipeline_service_pb2.DefinePipelineRequest(
                pipeline_id=unique("pipe"), display_name="More", request_id=unique("req"),
                stages=[pipeline_pb2.Stage(stage_id="only")]), metadata=self.rep,
                timeout=TIMEOUT).pipeline_id)
        listed, pages = page_through(
            self, lambda r: self.pipeline.ListPipelines(r, metadata=self.rep, timeout=TIMEOUT),
            pipeline_service_pb2.ListPipelinesRequest(page_size=2), lambda r: r.pipelines)
        listed_ids = [p.pipeline_id for p in listed]
        self.assertEqual(len(listed_ids), len(set(listed_ids)), "a pipeline listed twice")
        self.assertEqual(listed_ids, sorted(listed_ids))
        self.assertLessEqual(ids, set(listed_ids))
        self.assertGreaterEqual(pages, 3)
        self.assertEqual(next(p for p in listed if p.pipeline_id == pipeline_id).revision, 2)

    def test_leads_capture_get_qualify_disqualify_list(self):
        source = unique("webinar")
        leads = [self.pipeline.CaptureLead(pipeline_service_pb2.CaptureLeadRequest(
            lead_id=unique("lead"), request_id=unique("req"), channel="web_form",
            lead=pipeline_pb2.Lead(source=source, campaign="autumn", region="south",
                                   person=pipeline_pb2.LeadPerson(
                                       given_name=f"Lead {i}", email=f"l{i}@example.com"))),
            metadata=self.rep, timeout=TIMEOUT) for i in range(7)]
        self.assertEqual((leads[0].status, leads[0].channel, leads[0].owner_id),
                         (pipeline_pb2.LEAD_STATUS_NEW, "web_form", self.rep_id))
        got = self.pipeline.GetLead(pipeline_service_pb2.GetLeadRequest(
            lead_id=leads[0].lead_id), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual((got.source, got.person.email), (source, "l0@example.com"))

        qualified = self.pipeline.QualifyLead(pipeline_service_pb2.QualifyLeadRequest(
            lead_id=leads[0].lead_id, expected_version=1, request_id=unique("req")),
            metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual((qualified.status, qualified.version),
                         (pipeline_pb2.LEAD_STATUS_QUALIFIED, 2))
        disqualified = self.pipeline.DisqualifyLead(pipeline_service_pb2.DisqualifyLeadRequest(
            lead_id=leads[1].lead_id, reason="No budget", expected_version=1,
            request_id=unique("req")), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual((disqualified.status, disqualified.disqualify_reason),
                         (pipeline_pb2.LEAD_STATUS_DISQUALIFIED, "No budget"))

        listed, pages = page_through(
            self, lambda r: self.pipeline.ListLeads(r, metadata=self.rep, timeout=TIMEOUT),
            pipeline_service_pb2.ListLeadsRequest(source=source, page_size=3),
            lambda r: r.leads)
        self.assertEqual([l.lead_id for l in listed], sorted(l.lead_id for l in leads))
        self.assertGreaterEqual(pages, 3)
        new, _ = page_through(
            self, lambda r: self.pipeline.ListLeads(r, metadata=self.rep, timeout=TIMEOUT),
            pipeline_service_pb2.ListLeadsRequest(source=source, page_size=2,
                                                  status=pipeline_pb2.LEAD_STATUS_NEW),
            lambda r: r.leads)
        self.assertEqual([l.lead_id for l in new], sorted(l.lead_id for l in leads[2:]))

    def test_convert_lead_creates_account_contact_and_opportunity(self):
        pipeline_id = self.shared_pipeline()
        lead = self.pipeline.CaptureLead(pipeline_service_pb2.CaptureLeadRequest(
            lead_id=unique("lead"), request_id=unique("req"), channel="web_form",
            lead=pipeline_pb2.Lead(
                source="trade_show", region="south",
                person=pipeline_pb2.LeadPerson(given_name="Grace", family_name="Hopper",
                                               email=f"{unique('g')}@hopper.example"),
                company=pipeline_pb2.LeadCompany(display_name="Hopper Inc",
                                                 domain="hopper.example"))),
            metadata=self.rep, timeout=TIMEOUT)
        converted = self.pipeline.ConvertLead(pipeline_service_pb2.ConvertLeadRequest(
            lead_id=lead.lead_id, expected_version=1, request_id=unique("req"),
            opportunity=pipeline_pb2.Opportunity(
                pipeline_id=pipeline_id, currency_code="eur",
                lines=[pipeline_pb2.ProductLine(product_id="pro", quantity=20,
                                                unit_price_minor=9900)],
                expected_close_date=common_pb2.Date(year=2027, month=2, day=15))),
            metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual(converted.lead.status, pipeline_pb2.LEAD_STATUS_CONVERTED)
        opportunity = converted.opportunity
        self.assertEqual(converted.lead.opportunity_id, opportunity.opportunity_id)
        self.assertEqual((opportunity.display_name, opportunity.currency_code,
                          opportunity.amount_minor, opportunity.stage_id, opportunity.region,
                          opportunity.lead_id),
                         ("Hopper Inc", "EUR", 198_000, "discovery", "south", lead.lead_id))
        # The account and the contact exist in contact-service.
        account = self.contacts.GetAccount(contact_service_pb2.GetAccountRequest(
            account_id=converted.lead.account_id), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual(account.display_name, "Hopper Inc")
        contact = self.contacts.GetContact(contact_service_pb2.GetContactRequest(
            contact_id=converted.lead.contact_id), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual((contact.given_name, contact.account_id, contact.lifecycle_stage),
                         ("Grace", account.account_id, contact_pb2.LIFECYCLE_STAGE_PROSPECT))
        self.assertEqual(opportunity.contact_id, contact.contact_id)

    def test_opportunities_open_update_move_close_reopen_get_list(self):
        pipeline_id = self.shared_pipeline()
        contact_id = self.shared_contact()
        owner = unique("owner")
        opened = self.pipeline.OpenOpportunity(pipeline_service_pb2.OpenOpportunityRequest(
            opportunity_id=unique("opp"), request_id=unique("req"), channel="field_sales",
            opportunity=pipeline_pb2.Opportunity(
                display_name="Acme - 50 seats", pipeline_id=pipeline_id, currency_code="EUR",
                owner_id=owner, contact_id=contact_id, region="south",
                lines=[pipeline_pb2.ProductLine(product_id="pro", quantity=50,
                                                unit_price_minor=12000),
                       pipeline_pb2.ProductLine(product_id="onboarding", quantity=1,
                                                unit_price_minor=250000)])),
            metadata=self.rep, timeout=TIMEOUT)
        opportunity_id = opened.opportunity_id
        self.assertEqual((opened.status, opened.stage_id, opened.stage_probability_bps,
                          opened.pipeline_revision),
                         (pipeline_pb2.OPPORTUNITY_STATUS_OPEN, "discovery", 1000, 1))
        self.assertEqual([l.amount_minor for l in opened.lines], [600_000, 250_000])
        self.assertEqual(opened.amount_minor, 850_000)
        opened_at = opened.create_time

        updated = self.pipeline.UpdateOpportunity(pipeline_service_pb2.UpdateOpportunityRequest(
            opportunity=pipeline_pb2.Opportunity(
                opportunity_id=opportunity_id,
                lines=[pipeline_pb2.ProductLine(product_id="pro", quantity=60,
                                                unit_price_minor=11500)],
                expected_close_date=common_pb2.Date(year=2027, month=2, day=28)),
            update_mask=field_mask_pb2.FieldMask(paths=["lines", "expected_close_date"]),
            expected_version=1, request_id=unique("req")), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual((updated.amount_minor, updated.version), (690_000, 2))
        self.assertEqual(updated.expected_close_date, common_pb2.Date(year=2027, month=2, day=28))

        moved = self.pipeline.MoveOpportunityStage(
            pipeline_service_pb2.MoveOpportunityStageRequest(
                opportunity_id=opportunity_id, stage_id="proposal", expected_version=2,
                request_id=unique("req")), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual((moved.stage_id, moved.stage_probability_bps), ("proposal", 5000))
        closed = self.pipeline.CloseOpportunity(pipeline_service_pb2.CloseOpportunityRequest(
            opportunity_id=opportunity_id, outcome=pipeline_pb2.OPPORTUNITY_STATUS_LOST,
            reason="Went with a competitor", expected_version=3, request_id=unique("req")),
            metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual((closed.status, closed.close_reason),
                         (pipeline_pb2.OPPORTUNITY_STATUS_LOST, "Went with a competitor"))
        reopened = self.pipeline.ReopenOpportunity(
            pipeline_service_pb2.ReopenOpportunityRequest(
                opportunity_id=opportunity_id, stage_id="negotiation", expected_version=4,
                request_id=unique("req")), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual((reopened.status, reopened.stage_id, reopened.version),
                         (pipeline_pb2.OPPORTUNITY_STATUS_OPEN, "negotiation", 5))
        won = self.pipeline.CloseOpportunity(pipeline_service_pb2.CloseOpportunityRequest(
            opportunity_id=opportunity_id, outcome=pipeline_pb2.OPPORTUNITY_STATUS_WON,
            expected_version=5, request_id=unique("req")), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual(won.status, pipeline_pb2.OPPORTUNITY_STATUS_WON)

        got = self.pipeline.GetOpportunity(pipeline_service_pb2.GetOpportunityRequest(
            opportunity_id=opportunity_id), metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual((got.status, got.amount_minor, got.version),
                         (pipeline_pb2.OPPORTUNITY_STATUS_WON, 690_000, 6))
        as_opened = self.pipeline.GetOpportunity(pipeline_service_pb2.GetOpportunityRequest(
            opportunity_id=opportunity_id, as_of_time=opened_at), metadata=self.rep,
            timeout=TIMEOUT)
        self.assertEqual((as_opened.version, as_opened.amount_minor, as_opened.status),
                         (1, 850_000, pipeline_pb2.OPPORTUNITY_STATUS_OPEN))

        # Pagination: 6 more of the owner, each exactly once; the status filter.
        ids = [opportunity_id] + [self.pipeline.OpenOpportunity(
            pipeline_service_pb2.OpenOpportunityRequest(
                opportunity_id=unique("opp"), request_id=unique("req"),
                opportunity=pipeline_pb2.Opportunity(
                    display_name=f"Deal {i}", pipeline_id=pipeline_id, currency_code="USD",
                    owner_id=owner)), metadata=self.rep, timeout=TIMEOUT).opportunity_id
            for i in range(6)]
        listed, pages = page_through(
            self, lambda r: self.pipeline.ListOpportunities(r, metadata=self.rep,
                                                            timeout=TIMEOUT),
            pipeline_service_pb2.ListOpportunitiesRequest(owner_id=owner, page_size=3),
            lambda r: r.opportunities)
        listed_ids = [o.opportunity_id for o in listed]
        self.assertEqual(sorted(listed_ids), sorted(ids))
        self.assertEqual(len(listed_ids), len(set(listed_ids)))
        self.assertGreaterEqual(pages, 3)
        open_ones, _ = page_through(
            self, lambda r: self.pipeline.ListOpportunities(r, metadata=self.rep,
                                                            timeout=TIMEOUT),
            pipeline_service_pb2.ListOpportunitiesRequest(
                owner_id=owner, status=pipeline_pb2.OPPORTUNITY_STATUS_OPEN, page_size=4),
            lambda r: r.opportunities)
        self.assertEqual(sorted(o.opportunity_id for o in open_ones), sorted(ids[1:]))

    def test_pipeline_validate_references(self):
        pipeline_id = self.shared_pipeline()
        lead = self.pipeline.CaptureLead(pipeline_service_pb2.CaptureLeadRequest(
            lead_id=unique("lead"), request_id=unique("req"), channel="chat",
            lead=pipeline_pb2.Lead(source="partner", region="north",
                                   company=pipeline_pb2.LeadCompany(display_name="Co"))),
            metadata=self.rep, timeout=TIMEOUT)
        opportunity = self.pipeline.OpenOpportunity(pipeline_service_pb2.OpenOpportunityRequest(
            opportunity_id=unique("opp"), request_id=unique("req"),
            opportunity=pipeline_pb2.Opportunity(display_name="Refs", pipeline_id=pipeline_id,
                                                 currency_code="EUR", region="north")),
            metadata=self.rep, timeout=TIMEOUT)
        answer = self.pipeline.ValidateReferences(pipeline_service_pb2.ValidateReferencesRequest(
            lead_ids=[lead.lead_id, "l-nobody"],
            opportunity_ids=["o-nobody", opportunity.opportunity_id, "bad id/"]),
            metadata=self.rep, timeout=TIMEOUT)
        self.assertEqual([(l.lead_id, l.exists) for l in answer.leads],
                         [(lead.lead_id, True), ("l-nobody", False)])
        self.assertEqual((answer.leads[0].status, answer.leads[0].source,
                          answer.leads[0].channel, answer.leads[0].region,
                          answer.leads[0].owner_id),
                         (pipeline_pb2.LEAD_STATUS_NEW, "partner", "chat", "north", self.rep_id))
        self.assertEqual([(o.opportunity_id, o.exists) for o in answer.opportunities],
                         [("o-nobody", False), (opportunity.opportunity_id, True),
                          ("bad id/", False)])
        found = answer.opportunities[1]
        self.assertEqual((found.status, found.pipeline_id, found.stage_id, found.region),
                         (pipeline_pb2.OPPORTUNITY_STATUS_OPEN, pipeline_id, "discovery",
                          "north"))

    # --- metrics-service ---------------------------------------------------------------------

    def test_metrics_definitions_kpi_scorecard_dashboard_status_rebuild(self):
        definitions = self.metrics.ListKpiDefinitions(
            metrics_service_pb2.ListKpiDefinitionsRequest(), metadata=self.rep, timeout=TIMEOUT)
        by_name = {d.name: d for d in definitions.definitions}
        self.assertEqual(set(by_name), KPI_NAMES)
        self.assertEqual(list(by_name["activities_logged"].dimensions), ["rep", "channel", "type"])
        self.assertEqual(by_name["win_rate"].category, metrics_service_pb2.KPI_CATEGORY_BUSINESS)
        self.assertEqual(by_name["active_reps"].category,
                         metrics_service_pb2.KPI_CATEGORY_BEHAVIOUR)
        self.assertTrue(all(d.rule and d.version >= 1 and d.measures
                            for d in definitions.definitions))

        # A visit and a lead of a rep of this test, then read back with read-your-writes.
        rep_id = unique("kpi-rep")
        rep = metadata(token(rep_id, REP_SCOPES))
        contact_id = self.shared_contact()
        visit = self.activities.LogActivity(activity_service_pb2.LogActivityRequest(
            activity_id=unique("act"), request_id=unique("req"), channel="field_sales",
            activity=activity_pb2.Activity(type=activity_pb2.ACTIVITY_TYPE_VISIT,
                                           contact_id=contact_id, body="report")),
            metadata=rep, timeout=TIMEOUT)
        lead = self.pipeline.CaptureLead(pipeline_service_pb2.CaptureLeadRequest(
            lead_id=unique("lead"), request_id=unique("req"), channel="web_form",
            lead=pipeline_pb2.Lead(source="kpi_source",
                                   person=pipeline_pb2.LeadPerson(given_name="K"))),
            metadata=rep, timeout=TIMEOUT)
        consistency = metrics_service_pb2.Consistency(
            min_versions=[metrics_service_pb2.StreamVersion(
                              stream=f"activity/{visit.activity_id}", version=visit.version),
                          metrics_service_pb2.StreamVersion(
                              stream=f"lead/{lead.lead_id}", version=lead.version)],
            max_wait=duration_pb2.Duration(seconds=30))

        moment = now()
        answer = self.metrics.QueryKpi(metrics_service_pb2.QueryKpiRequest(
            kpi="activities_logged", period_kind=metrics_service_pb2.PERIOD_KIND_ISO_WEEK,
            start_time=timestamp(moment - datetime.timedelta(days=1)),
            end_time=timestamp(moment + datetime.timedelta(minutes=1)),
            filters=[metrics_service_pb2.DimensionFilter(dimension="rep", values=[rep_id])],
            group_by=["type"], consistency=consistency),
            metadata=self.rep, timeout=40)
        self.assertEqual(answer.result.definition.name, "activities_logged")
        rows = [([d.value for d in row.dimensions], [m.count for m in row.measures])
                for row in answer.result.rows]
        self.assertEqual(rows, [(["visit"], [1])])
        self.assertTrue(answer.receipt.positions)

        scorecard = self.metrics.GetAdoptionScorecard(
            metrics_service_pb2.GetAdoptionScorecardRequest(
                period_kind=metrics_service_pb2.PERIOD_KIND_MONTH, time=timestamp(moment),
                consistency=consistency), metadata=self.rep, timeout=40)
        self.assertEqual(scorecard.period.kind, metrics_service_pb2.PERIOD_KIND_MONTH)
        self.assertLessEqual(scorecard.period.start_time.seconds, int(moment.timestamp()))
        reps = {r.rep_id: {m.name: m for m in r.measures} for r in scorecard.reps}
        self.assertIn(rep_id, reps)
        self.assertEqual(reps[rep_id]["activities_logged.count"].count, 1)
        self.assertTrue(scorecard.team)

        dashboard = self.metrics.GetBusinessDashboard(
            metrics_service_pb2.GetBusinessDashboardRequest(
                period_kind=metrics_service_pb2.PERIOD_KIND_MONTH, consistency=consistency),
            metadata=self.rep, timeout=40)
        kpis = {k.definition.name: k for k in dashboard.kpis}
        self.assertLessEqual({"leads_captured", "win_rate", "won_revenue", "open_cases"},
                             set(kpis))
        leads = {tuple(d.value for d in row.dimensions): sum(m.count for m in row.measures)
                 for row in kpis["leads_captured"].rows}
        self.assertGreaterEqual(leads.get(("kpi_source",), 0), 1)

        status = self.metrics.GetProjectionStatus(metrics_service_pb2.GetProjectionStatusRequest(),
                                                  metadata=self.rep, timeout=TIMEOUT)
        self.assertGreater(status.applied_events, 0)
        rebuild = self.metrics.RebuildProjections(metrics_service_pb2.RebuildProjectionsRequest(),
                                                  metadata=self.admin, timeout=TIMEOUT)
        self.assertGreater(rebuild.generation, status.receipt.generation)

        def swapped():
            current = self.metrics.GetProjectionStatus(
                metrics_service_pb2.GetProjectionStatusRequest(), metadata=self.rep,
                timeout=TIMEOUT)
            return current if current.receipt.generation == rebuild.generation else None
        after = harness.wait_until(swapped, timeout=60, interval=0.2,
                                   what="the rebuilt generation to go live")
        self.assertGreater(after.applied_events, 0)
        # The rebuilt projection answers the same.
        again = self.metrics.QueryKpi(metrics_service_pb2.QueryKpiRequest(
            kpi="activities_logged", period_kind=metrics_service_pb2.PERIOD_KIND_ISO_WEEK,
            start_time=timestamp(moment - datetime.timedelta(days=1)),
            end_time=timestamp(moment + datetime.timedelta(minutes=1)),
            filters=[metrics_service_pb2.DimensionFilter(dimension="rep", values=[rep_id])],
            group_by=["type"], consistency=consistency), metadata=self.rep, timeout=40)
        self.assertEqual(again.result.rows, answer.result.rows)
        self.assertEqual(again.receipt.generation, rebuild.generation)

    # --- coverage: runs last -----------------------------------------------------------------

    def test_zz_every_method_was_called(self):
        expected = all_methods()
        self.assertEqual(len(expected), 16 + 21 + 17 + 6)
        missing = sorted(expected - self.recorder.succeeded)
        if missing:
            self.fail(f"{len(missing)} of {len(expected)} methods were never called "
                      f"successfully: {', '.join(missing)}")


if __name__ == "__main__":
    unittest.main()
