#!/usr/bin/env python3
"""make demo: a simulated sales organisation's traffic through the CRM's public gRPC APIs.

With the system running (`make run`), this generates a seeded, reproducible history (reps in
regions, accounts, contacts, and weeks of leads, calls, visits, tasks, opportunities and cases),
sends it as commands with business times (`occurred_at`) in the simulated past and the channel
each came through, each rep acting with a token of their own, then prints metrics-service's
adoption scorecard and business dashboard. See tools/demo/README.md.

Run: PYTHONPATH=build/python /usr/bin/python3 tools/demo/demo.py [--seed N] [--scale F] ...
"""

import argparse
import base64
import collections
import concurrent.futures
import datetime
import hashlib
import hmac
import json
import math
import os
import random
import sys
import threading
import time
import traceback

EXIT_OK = 0
EXIT_FATAL = 1  # the system is not running, bad flags, wrong secret, ...
EXIT_PARTIAL = 2  # the run finished but some commands failed
EXIT_INTERRUPTED = 130

MINUTE = 60
HOUR = 3600
DAY = 86400
WEEK = 7 * DAY

DEFAULTS = {"reps": 40, "accounts": 5000, "contacts": 20000}
REGIONS = ["north", "south", "east", "west"]
# Landline prefix and digits after it, per region (Hamburg, Munich, Berlin, Cologne).
REGION_PHONES = {"north": ("+4940", 8), "south": ("+4989", 8), "east": ("+4930", 8),
                 "west": ("+49221", 7)}
MOBILE_PHONES = [("+49151", 8), ("+49160", 7), ("+49170", 7), ("+49176", 8)]
REGION_CITIES = {"north": ["Hamburg", "Bremen", "Kiel", "Hannover"],
                 "south": ["Muenchen", "Stuttgart", "Nuernberg", "Augsburg"],
                 "east": ["Berlin", "Leipzig", "Dresden", "Potsdam"],
                 "west": ["Koeln", "Duesseldorf", "Essen", "Dortmund"]}
CURRENCY = "EUR"

GIVEN = ["Anna", "Ben", "Clara", "David", "Elena", "Felix", "Greta", "Hannah", "Jonas", "Julia",
         "Karl", "Laura", "Lukas", "Marie", "Max", "Mia", "Niklas", "Nina", "Paul", "Sophie",
         "Tim", "Lea", "Jan", "Lena", "Tom", "Sara", "Moritz", "Emma", "Leon", "Johanna", "Finn",
         "Ida", "Erik", "Paula", "Simon", "Frieda", "Oskar", "Carla", "Anton", "Helena", "Theo",
         "Luisa", "Jakob", "Amelie", "Emil", "Marta", "Milan", "Vera", "Noah", "Ines"]
FAMILY = ["Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
          "Hoffmann", "Koch", "Richter", "Klein", "Wolf", "Schroeder", "Neumann", "Schwarz",
          "Braun", "Zimmermann", "Hartmann", "Krause", "Lange", "Werner", "Lehmann", "Koehler",
          "Maier", "Walter", "Peters", "Frank", "Berger", "Fuchs", "Vogel", "Keller", "Jung",
          "Roth", "Beck", "Lorenz", "Baumann", "Franke", "Albrecht", "Graf", "Kuhn", "Ludwig",
          "Sommer", "Winter", "Brandt", "Haas", "Schreiber", "Kaiser", "Seidel", "Arnold"]
COMPANY_HEAD = ["Nord", "Alpen", "Rhein", "Elb", "Spree", "Main", "Isar", "Hansa", "Berg",
                "Stern", "Blau", "Gruen", "Licht", "Stahl", "Holz", "Kraft", "Wind", "Sonnen",
                "Fels", "Quell", "Mosel", "Weser", "Oder", "Donau", "Falken"]
COMPANY_TAIL = ["tech", "werk", "logistik", "medic", "bau", "energie", "handel", "data",
                "systeme", "foods", "mobil", "pharma", "consult", "textil", "druck", "metall",
                "solar", "chemie", "soft", "care"]
COMPANY_FORM = ["GmbH", "AG", "KG", "SE", "GmbH"]
INDUSTRIES = ["manufacturing", "retail", "logistics", "healthcare", "finance", "software",
              "energy", "construction", "hospitality", "public_sector"]
JOB_TITLES = ["Head of Sales", "CFO", "IT Manager", "Operations Lead", "CEO", "Procurement",
              "Marketing Manager", "Service Manager", "Office Manager", "CTO"]

# Pipelines: ordered stages and their win probability (basis points).
PIPELINES = {
    "new-business": ("New business", [("discovery", "Discovery", 1000),
                                      ("qualification", "Qualification", 2500),
                                      ("proposal", "Proposal", 5000),
                                      ("negotiation", "Negotiation", 7500)]),
    "expansion": ("Expansion (existing customers)", [("scoping", "Scoping", 2000),
                                                     ("proposal", "Proposal", 5000),
                                                     ("commit", "Commit", 8000)]),
}
# product id -> (unit price in cents, quantity range): per seat and year, or per day / flat.
PRODUCTS = {
    "crm-core": (54000, (10, 250)),
    "analytics": (18000, (10, 150)),
    "field-app": (24000, (5, 120)),
    "premium-support": (900000, (1, 2)),
    "onboarding": (120000, (3, 30)),
}
LEAD_SOURCES = [
    # source, channel, captured by, weight, qualification probability, campaigns
    ("website", "web_form", "web-forms", 30, 0.45, []),
    ("webinar", "web_form", "marketing-automation", 18, 0.55,
     ["webinar-field-sales-2026", "webinar-analytics-q4"]),
    ("email_campaign", "email", "marketing-automation", 15, 0.35,
     ["autumn-upgrade-2026", "newsletter-nov-2026"]),
    ("partner_referral", "partner_api", "partner-portal", 12, 0.75, []),
    ("inbound_call", "phone", None, 10, 0.65, []),
    ("trade_show", "field_sales", None, 0, 0.5, ["industry-expo-2026"]),  # one week only
]
DISQUALIFY_REASONS = ["no budget", "not a decision maker", "already uses a competitor",
                      "no business need", "duplicate enquiry", "contact data unusable"]
LOSS_REASONS = ["price", "chose a competitor", "no decision", "timing: next fiscal year",
                "budget cut", "missing feature"]
WIN_REASONS = ["best fit for field teams", "price and support", "existing relationship",
               "fast onboarding"]
CASE_SUBJECTS = ["Cannot log in", "Sync of the field app fails", "Invoice question",
                 "Export to Excel broken", "Add users to the licence", "Report shows wrong totals",
                 "Password reset", "Slow dashboard", "Data import help", "Calendar integration"]
TASK_TITLES = ["Call back", "Send the quote", "Prepare the visit", "Send product sheet",
               "Update contact details", "Follow up on the demo", "Check the contract renewal",
               "Book the onboarding workshop"]
TOPICS = ["licence renewal", "the field app roll-out", "analytics add-on", "pricing for 2027",
          "onboarding plan", "support experience", "integration with their ERP",
          "expansion to a second site"]
NEXT_STEPS = ["send a proposal", "book a demo", "call back next week", "involve IT",
              "meet the CFO", "prepare a pilot", "wait for the budget decision"]
PRIORITIES = [("CASE_PRIORITY_LOW", 30), ("CASE_PRIORITY_NORMAL", 45), ("CASE_PRIORITY_HIGH", 18),
              ("CASE_PRIORITY_URGENT", 7)]
# Median resolution time (hours) by priority.
RESOLUTION_HOURS = {"CASE_PRIORITY_LOW": 60, "CASE_PRIORITY_NORMAL": 26,
                    "CASE_PRIORITY_HIGH": 9, "CASE_PRIORITY_URGENT": 3}

# Scopes of the tokens the demo signs.
REP_SCOPES = ["contacts:read", "contacts:write", "activities:read", "activities:write",
              "pipeline:read", "pipeline:write"]
INTEGRATIONS = {
    # id: (scopes, what it is)
    "crm-import": (["contacts:read", "contacts:write"], "migration of the legacy CRM"),
    "web-forms": (["contacts:read", "contacts:write", "pipeline:read", "pipeline:write"],
                  "website forms"),
    "marketing-automation": (["pipeline:read", "pipeline:write"], "campaigns and webinars"),
    "partner-portal": (["pipeline:read", "pipeline:write"], "partner referrals"),
    "service-desk": (["contacts:read", "activities:read", "activities:write", "pipeline:read"],
                     "customer service desk"),
    "sales-ops": (["pipeline:read", "pipeline:write"], "pipeline set-up"),
    "demo-reporting": (["metrics:read"], "reads the KPIs at the end"),
}

pb = None  # the generated modules, loaded by load_stubs()
grpc = None


def die(message, code=EXIT_FATAL):
    print(f"demo: error: {message}", file=sys.stderr)
    sys.exit(code)


def load_stubs():
    """Imports grpcio and the stubs the build generates into build/python, with clear errors."""
    global grpc, pb
    try:
        import grpc as grpc_module
    except ImportError:
        die("Python grpcio is not installed: run `make deps` (Debian package python3-grpcio) "
            "and use /usr/bin/python3")
    try:
        from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2
        from crm.activity.v1 import activity_pb2, activity_service_pb2, activity_service_pb2_grpc
        from crm.common.v1 import common_pb2
        from crm.contact.v1 import contact_pb2, contact_service_pb2, contact_service_pb2_grpc
        from crm.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
        from crm.pipeline.v1 import pipeline_pb2, pipeline_service_pb2, pipeline_service_pb2_grpc
    except ImportError as error:
        die(f"the generated Python stubs are missing ({error}): build first (`make build`) and "
            "run with PYTHONPATH=build/python (as `make demo` does)")
    grpc = grpc_module
    pb = argparse.Namespace(
        Timestamp=timestamp_pb2.Timestamp, Duration=duration_pb2.Duration,
        FieldMask=field_mask_pb2.FieldMask, common=common_pb2, act=activity_pb2,
        acts=activity_service_pb2, acts_grpc=activity_service_pb2_grpc, con=contact_pb2,
        cons=contact_service_pb2, cons_grpc=contact_service_pb2_grpc,
        met=metrics_service_pb2, met_grpc=metrics_service_pb2_grpc, pipe=pipeline_pb2,
        pipes=pipeline_service_pb2, pipes_grpc=pipeline_service_pb2_grpc)


# --- tokens -------------------------------------------------------------------------------

def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_token(secret, subject, scopes, kind, ttl_seconds, issuer, audience):
    """An HS256 JWT as DESIGN.md specifies: sub, scope (space separated), iss, aud, iat, exp,
    kind (user or service)."""
    now = int(time.time())
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {"sub": subject, "scope": " ".join(scopes), "iss": issuer, "aud": audience,
              "iat": now, "exp": now + ttl_seconds, "kind": kind}
    signing_input = ".".join(_b64url(json.dumps(part, separators=(",", ":")).encode())
                             for part in (header, claims))
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}"


def load_secret(data_dir):
    secret = os.environ.get("CRM_JWT_HS256_SECRET", "")
    if secret:
        return secret, "$CRM_JWT_HS256_SECRET"
    path = os.path.join(data_dir, "jwt.secret")
    try:
        with open(path, encoding="utf-8") as file:
            secret = file.read().strip()
    except OSError as error:
        die(f"no token secret: {path} is not readable ({error.strerror}) and "
            "CRM_JWT_HS256_SECRET is not set. Start the system with `make run` (it writes the "
            "secret there), or pass --data-dir / set CRM_JWT_HS256_SECRET to the services' secret")
    if not secret:
        die(f"{path} is empty")
    return secret, path


class Actor:
    """Someone who sends commands: a rep (kind user) or an integration (kind service)."""
    __slots__ = ("id", "kind", "metadata")

    def __init__(self, actor_id, kind):
        self.id = actor_id
        self.kind = kind
        self.metadata = None

    def sign(self, secret, scopes, ttl, issuer, audience):
        token = sign_token(secret, self.id, scopes, self.kind, ttl, issuer, audience)
        self.metadata = (("authorization", f"Bearer {token}"),)


# --- time helpers -------------------------------------------------------------------------

def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def parse_time(text):
    try:
        value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return int(value.timestamp())


def ts(t):
    return pb.Timestamp(seconds=int(t))


def weekday(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).weekday()  # Monday = 0


def is_working(t):
    return weekday(t) < 5 and 7 * HOUR <= t % DAY < 17 * HOUR


def to_working(t, rng):
    """t, or the next weekday working-hours moment (07:00-17:00 UTC) after it."""
    if is_working(t):
        return t
    day = t - t % DAY
    if t % DAY >= 7 * HOUR:
        day += DAY
    while weekday(day) >= 5:
        day += DAY
    return day + 7 * HOUR + rng.randint(0, 90 * MINUTE)


def work_moment(day, rng):
    return day + 7 * HOUR + rng.randint(0, 10 * HOUR - 1)


def lognormal_hours(rng, median_hours, sigma=0.8):
    return median_hours * math.exp(rng.gauss(0, sigma)) * HOUR


def iso_week_start(t):
    day = t - t % DAY
    return day - weekday(day) * DAY


def date_of(t):
    d = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    return pb.common.Date(year=d.year, month=d.month, day=d.day)


# --- the simulated world ------------------------------------------------------------------

class Ref:
    """A value a chain learns from an earlier answer (the contact a lead conversion created)."""
    __slots__ = ("key",)

    def __init__(self, key):
        self.key = key


def value(x, ctx):
    return ctx[x.key] if isinstance(x, Ref) else x


class Cmd:
    """One command: where it goes, who sends it, its business time and request id, and how to
    build it from what its chain learnt so far: build(ctx, cmd) -> request."""
    __slots__ = ("t", "rid", "service", "method", "actor", "build", "key", "after")

    def __init__(self, t, service, method, actor, build, key=None, after=None):
        self.t = t
        self.rid = ""
        self.service = service
        self.method = method
        self.actor = actor
        self.build = build
        self.key = key  # (stream type, id): the answer's `version` is kept under it
        self.after = after  # (ctx, answer) -> None


class Chain:
    """Commands that must run in order (one record's story). Business time never goes
    backwards within a chain and nothing after `end` is kept. Child chains start once the
    command they hang on succeeded (activities on a deal once the deal exists), with a copy of
    what the parent learnt; otherwise chains are independent and run concurrently."""
    __slots__ = ("cmds", "init", "end", "last_t", "closed", "children")

    def __init__(self, end, init=None, last_t=0):
        self.cmds = []
        self.init = init
        self.end = end
        self.last_t = last_t
        self.closed = False
        self.children = None  # index of the parent's command -> [Chain]

    def add(self, cmd):
        if self.closed:
            return False
        cmd.t = max(int(cmd.t), self.last_t)
        if cmd.t > self.end:
            self.closed = True
            return False
        self.last_t = cmd.t
        self.cmds.append(cmd)
        return True

    def child(self):
        """A chain that starts after this chain's last command so far."""
        assert self.cmds, "a child hangs on a command"
        kid = Chain(self.end, last_t=self.cmds[-1].t)
        if self.children is None:
            self.children = {}
        self.children.setdefault(len(self.cmds) - 1, []).append(kid)
        return kid

    def size(self, from_index=0):
        """Commands of this chain from `from_index` on, with the children hanging there."""
        n = len(self.cmds) - from_index
        if self.children:
            for index, kids in self.children.items():
                if index >= from_index:
                    n += sum(kid.size() for kid in kids)
        return n

    def walk(self):
        yield self
        if self.children:
            for kids in self.children.values():
                for kid in kids:
                    yield from kid.walk()


class Rep:
    __slots__ = ("id", "name", "region", "archetype", "discipline", "response_hours",
                 "punctuality", "win_skill", "activity", "neglect", "actor", "accounts",
                 "contacts", "incomplete")


class Account:
    __slots__ = ("id", "name", "domain", "industry", "region", "owner", "contacts")


class Contact:
    __slots__ = ("id", "given", "family", "email", "phone", "account", "owner", "region",
                 "stage", "consent")


def opportunity_key(opportunity):
    return lambda ctx: ("opportunity", value(opportunity, ctx))


def keep_version(key_of):
    def after(ctx, answer):
        ctx[key_of(ctx)] = answer.version
    return after


class World:
    """Generates everything from the seed: the same seed, scale and end time give the same
    commands (ids, request ids, times, payloads)."""

    def __init__(self, args, start, end, prefix):
        self.args = args
        self.seed = args.seed
        self.start = start
        self.end = end
        self.prefix = prefix
        self.import_time = start - 10 * DAY
        self.seq = 0
        self.counters = collections.Counter()
        self.planned = collections.Counter()
        self.integrations = {name: Actor(name, "service") for name in INTEGRATIONS}
        self.reps = []
        self.accounts = []
        self.contacts = []
        self.reps_by_region = {}
        self.routing = collections.Counter()
        self.merge_pool = []
        self.account_chains = []
        self.contact_chains = []
        self.story_chains = []

    def rng(self, name):
        return random.Random(f"{self.seed}:{name}")

    def new_id(self, kind, width=5):
        self.counters[kind] += 1
        return f"{self.prefix}-{kind}-{self.counters[kind]:0{width}d}"

    def add(self, chain, t, service, method, actor, build, key=None, after=None):
        """Adds a command to `chain` (False when it falls after the end); its request id is
        the next of the run's sequence."""
        cmd = Cmd(t, service, method, actor, build, key, after)
        if not chain.add(cmd):
            return False
        self.seq += 1
        cmd.rid = f"{self.prefix}:{self.seq}"
        return True

    def days(self):
        day = self.start - self.start % DAY
        while day < self.end:
            yield day
            day += DAY

    def route(self, region):
        """Lead and sign-up routing: round robin over the region's reps."""
        reps = self.reps_by_region[region]
        rep = reps[self.routing[region] % len(reps)]
        self.routing[region] += 1
        return rep

    def new_chain(self, init=None):
        chain = Chain(self.end, init)
        self.story_chains.append(chain)
        return chain

    # --- organisation ---

    def build_org(self):
        rng = self.rng("org")
        n_reps, n_accounts, n_contacts = self.args.reps, self.args.accounts, self.args.contacts
        regions = REGIONS[:max(1, min(len(REGIONS), n_reps))]
        archetypes = [("star", 20), ("solid", 50), ("struggling", 30)]
        per_region = collections.Counter()
        used_names = set()
        for i in range(n_reps):
            rep = Rep()
            rep.region = regions[i % len(regions)]
            per_region[rep.region] += 1
            rep.id = f"{self.prefix}-rep-{rep.region}-{per_region[rep.region]:02d}"
            for _ in range(50):
                rep.name = f"{rng.choice(GIVEN)} {rng.choice(FAMILY)}"
                if rep.name not in used_names:
                    break
            used_names.add(rep.name)
            rep.archetype = rng.choices([a for a, _ in archetypes], [w for _, w in archetypes])[0]
            u = rng.uniform
            if rep.archetype == "star":
                rep.discipline, rep.response_hours = u(0.88, 0.98), u(0.3, 2)
                rep.punctuality, rep.win_skill = u(0.85, 0.97), u(0.45, 0.6)
                rep.activity, rep.neglect = u(1.1, 1.4), 0.05
            elif rep.archetype == "solid":
                rep.discipline, rep.response_hours = u(0.65, 0.88), u(1.5, 8)
                rep.punctuality, rep.win_skill = u(0.65, 0.85), u(0.3, 0.45)
                rep.activity, rep.neglect = u(0.85, 1.1), 0.15
            else:
                rep.discipline, rep.response_hours = u(0.25, 0.6), u(8, 40)
                rep.punctuality, rep.win_skill = u(0.35, 0.65), u(0.15, 0.3)
                rep.activity, rep.neglect = u(0.6, 0.9), 0.35
            rep.actor = Actor(rep.id, "user")
            rep.accounts, rep.contacts, rep.incomplete = [], [], []
            self.reps.append(rep)
            self.reps_by_region.setdefault(rep.region, []).append(rep)

        names = set()
        for _ in range(n_accounts):
            a = Account()
            a.id = self.new_id("acc")
            a.region = rng.choice(regions)
            a.owner = rng.choice(self.reps_by_region[a.region])
            city = rng.choice(REGION_CITIES[a.region])
            for attempt in range(12):
                base = f"{rng.choice(COMPANY_HEAD)}{rng.choice(COMPANY_TAIL)}"
                name = base if attempt < 3 else f"{base} {city}"
                if name not in names:
                    break
            else:
                name = f"{base} {city} {len(names)}"
            names.add(name)
            a.name = f"{name} {rng.choice(COMPANY_FORM)}"
            a.domain = name.lower().replace(" ", "-") + ".example"
            a.industry = rng.choice(INDUSTRIES)
            a.contacts = []
            a.owner.accounts.append(a)
            self.accounts.append(a)

        # One contact per account first, the rest where they cluster (bigger customers).
        weights = [rng.paretovariate(1.5) for _ in self.accounts]
        for i in range(n_contacts):
            c = Contact()
            c.id = self.new_id("con", 6)
            c.given, c.family = rng.choice(GIVEN), rng.choice(FAMILY)
            if not self.accounts or rng.random() < 0.04:
                c.account = None
                c.region = rng.choice(regions)
                c.owner = rng.choice(self.reps_by_region[c.region])
                domain = rng.choice(["mail.example", "web.example", "post.example"])
            else:
                c.account = (self.accounts[i] if i < len(self.accounts)
                             else rng.choices(self.accounts, weights)[0])
                c.region, c.owner, domain = c.account.region, c.account.owner, c.account.domain
                c.account.contacts.append(c)
            c.email = (f"{c.given}.{c.family}.{i + 1}@{domain}".lower()
                       if rng.random() < 0.95 else None)
            c.phone = self.phone(rng, c.region) if rng.random() < 0.72 else None
            c.stage = rng.choices(["LIFECYCLE_STAGE_CUSTOMER", "LIFECYCLE_STAGE_PROSPECT",
                                   "LIFECYCLE_STAGE_LEAD"], [60, 30, 10])[0]
            c.consent = rng.random() < 0.55
            self.contacts.append(c)
            if c.account is not None:
                c.owner.contacts.append(c)
        # A few contacts sign up again through the website (duplicates for the reps to merge);
        # nothing else changes them. Those with gaps are for their reps to complete.
        for c in self.contacts:
            if c.email and c.account is not None and rng.random() < 0.03:
                self.merge_pool.append(c)
            elif (c.phone is None or c.email is None) and c.account is not None:
                c.owner.incomplete.append(c)

    @staticmethod
    def phone(rng, region):
        prefix, digits = (REGION_PHONES[region] if rng.random() < 0.6
                          else rng.choice(MOBILE_PHONES))
        return prefix + str(rng.randint(2, 9)) + "".join(
            str(rng.randint(0, 9)) for _ in range(digits - 1))

    # --- the import: accounts, then contacts ---

    def build_import(self):
        importer = self.integrations["crm-import"]
        for i, a in enumerate(self.accounts):
            chain = Chain(self.end)
            account = pb.con.Account(display_name=a.name, domain=a.domain, industry=a.industry,
                                     owner_id=a.owner.id, region=a.region)
            self.add(chain, self.import_time + i // 50, "contact", "CreateAccount", importer,
                     lambda ctx, cmd, a=a, m=account: pb.cons.CreateAccountRequest(
                         account_id=a.id, account=m, request_id=cmd.rid,
                         occurred_at=ts(cmd.t), channel="import"),
                     key=("account", a.id))
            self.account_chains.append(chain)
        self.planned["accounts imported"] = len(self.accounts)

        for i, c in enumerate(self.contacts):
            chain = Chain(self.end)
            contact = pb.con.Contact(
                given_name=c.given, family_name=c.family, emails=[c.email] if c.email else [],
                phones=[c.phone] if c.phone else [], account_id=c.account.id if c.account else "",
                owner_id=c.owner.id, region=c.region, lifecycle_stage=c.stage,
                source_channel="import", marketing_consent=c.consent, tags=["imported"],
                attributes={"legacy_system": "crm-classic"})
            self.add(chain, self.import_time + HOUR + i // 50, "contact", "CreateContact",
                     importer,
                     lambda ctx, cmd, c=c, m=contact: pb.cons.CreateContactRequest(
                         contact_id=c.id, contact=m, request_id=cmd.rid,
                         occurred_at=ts(cmd.t), channel="import"),
                     key=("contact", c.id))
            self.contact_chains.append(chain)
        self.planned["contacts imported"] = len(self.contacts)

    # --- the simulated weeks ---

    def build_stories(self):
        self.gen_rep_weeks()
        self.gen_leads()
        self.gen_expansion_deals()
        self.gen_cases()
        self.gen_signups()
        self.rng("order").shuffle(self.story_chains)

    # Activities.

    def log_activity(self, chain, t, rep, kind, channel, rng, contact=None, lead=None,
                     opportunity=None, case=None, subject="", scheduled_from=None):
        """A call, email, visit, meeting, note or chat. Visits and meetings carry a report,
        written on time or days later (or never) depending on the rep. scheduled_from: the
        activity was planned then (SCHEDULED) and is completed (or cancelled) at t."""
        aid = self.new_id("act", 6)
        key = ("activity", aid)
        type_name = f"ACTIVITY_TYPE_{kind.upper()}"
        outcome, duration = {
            "call": (rng.choice(["connected", "connected", "left_voicemail", "no_answer"]),
                     rng.randint(60, 1800)),
            "email": (rng.choice(["sent", "replied"]), 0),
            "visit": (rng.choice(["positive", "neutral", "follow_up_needed"]),
                      rng.randint(1800, 7200)),
            "meeting": (rng.choice(["positive", "neutral", "demo_booked"]),
                        rng.randint(1800, 3600)),
            "note": ("", 0),
            "chat": (rng.choice(["answered", "escalated"]), rng.randint(120, 900)),
        }[kind]
        body_now, late_report, late_at = "", "", None
        if kind in ("visit", "meeting"):
            report = (f"Talked about {rng.choice(TOPICS)}. Decision makers present: "
                      f"{rng.choice(['yes', 'no', 'partly'])}. Next step: "
                      f"{rng.choice(NEXT_STEPS)}.")
            if rng.random() < rep.discipline:
                body_now = report
            elif rng.random() < 0.75:
                late_report, late_at = report, t + rng.uniform(2.1, 7) * DAY
            else:
                self.planned["visit reports never written"] += 1
        elif kind == "note":
            body_now = f"Note: {rng.choice(TOPICS)}"
        subject = subject or kind.capitalize()
        contact_id, lead_id, opportunity_id, case_id = contact, lead, opportunity, case

        def fields(ctx, body, done):
            return pb.act.Activity(
                type=type_name, channel=channel, owner_id=rep.id,
                contact_id=value(contact_id, ctx) if contact_id else "",
                lead_id=value(lead_id, ctx) if lead_id else "",
                opportunity_id=value(opportunity_id, ctx) if opportunity_id else "",
                case_id=value(case_id, ctx) if case_id else "", subject=subject, body=body,
                outcome=outcome if done else "", duration_seconds=duration if done else 0)

        if scheduled_from is not None:
            planned_for = t
            if not self.add(chain, scheduled_from, "activity", "LogActivity", rep.actor,
                            lambda ctx, cmd: pb.acts.LogActivityRequest(
                                activity_id=aid, activity=fields(ctx, "", False),
                                scheduled_time=ts(planned_for), request_id=cmd.rid,
                                occurred_at=ts(cmd.t), channel=channel), key=key):
                return
            self.planned["activities planned ahead"] += 1
            if rng.random() < 0.08:  # did not take place
                if self.add(chain, t - rng.randint(HOUR, DAY), "activity", "CancelActivity",
                            rep.actor, lambda ctx, cmd: pb.acts.CancelActivityRequest(
                                activity_id=aid, reason="customer rescheduled",
                                expected_version=ctx[key], request_id=cmd.rid,
                                occurred_at=ts(cmd.t), channel=channel), key=key):
                    self.planned["activities cancelled"] += 1
                return
            if not self.add(chain, t, "activity", "CompleteActivity", rep.actor,
                            lambda ctx, cmd: pb.acts.CompleteActivityRequest(
                                activity_id=aid, outcome=outcome, body=body_now,
                                duration_seconds=duration, expected_version=ctx[key],
                                request_id=cmd.rid, occurred_at=ts(cmd.t), channel=channel),
                            key=key):
                return
        elif not self.add(chain, t, "activity", "LogActivity", rep.actor,
                          lambda ctx, cmd: pb.acts.LogActivityRequest(
                              activity_id=aid, activity=fields(ctx, body_now, True),
                              request_id=cmd.rid, occurred_at=ts(cmd.t), channel=channel),
                          key=key):
            return
        self.planned[f"activities: {kind}"] += 1
        if late_at is not None and self.add(
                chain, late_at, "activity", "UpdateActivity", rep.actor,
                lambda ctx, cmd: pb.acts.UpdateActivityRequest(
                    activity=pb.act.Activity(activity_id=aid, body=late_report),
                    update_mask=pb.FieldMask(paths=["body"]), expected_version=ctx[key],
                    request_id=cmd.rid, occurred_at=ts(cmd.t), channel="field_sales"),
                key=key):
            self.planned["visit reports written late"] += 1

    @staticmethod
    def pick(rng, weights):
        return rng.choices(list(weights), list(weights.values()))[0]

    @staticmethod
    def channel_for(kind, rng):
        return {"call": "phone", "email": "email", "visit": "field_sales",
                "meeting": rng.choice(["video", "field_sales"]), "note": "web_app",
                "chat": "chat"}[kind]

    @staticmethod
    def subject(kind, contact):
        who = f"{contact.given} {contact.family}"
        company = contact.account.name if contact.account else "private customer"
        return {"call": f"Call with {who}", "email": f"Email to {who}",
                "visit": f"Visit at {company}", "meeting": f"Meeting with {who} ({company})",
                "note": f"Note on {who}", "chat": f"Chat with {who}"}[kind]

    def gen_rep_weeks(self):
        """Every rep's working days: account care (calls, emails, visits, meetings, notes,
        chats), follow-up tasks, and completing contact data."""
        rng = self.rng("reps")
        kinds = {"call": 40, "email": 25, "visit": 15, "meeting": 10, "note": 5, "chat": 5}
        for day in self.days():
            if weekday(day) >= 5:
                continue
            for rep in self.reps:
                if not rep.contacts or rng.random() < 0.04:  # no customers, or out of office
                    continue
                for _ in range(max(0, round(rng.gauss(2.8 * rep.activity, 1.0)))):
                    t = work_moment(day, rng)
                    contact = rng.choice(rep.contacts)
                    kind = self.pick(rng, kinds)
                    planned = (max(self.start, t - rng.randint(1, 10) * DAY)
                               if kind == "meeting" and rng.random() < 0.6 else None)
                    self.log_activity(self.new_chain(), t, rep, kind, self.channel_for(kind, rng),
                                      rng, contact=contact.id, subject=self.subject(kind, contact),
                                      scheduled_from=planned)
                for _ in range(max(0, round(rng.gauss(1.2 * rep.activity, 0.8)))):
                    self.gen_task(self.new_chain(), rng, rep, work_moment(day, rng),
                                  contact=rng.choice(rep.contacts).id)
                if rep.incomplete and rng.random() < 0.55 * rep.discipline:
                    self.gen_enrichment(rng, rep, work_moment(day, rng))

    def gen_task(self, chain, rng, rep, t, contact=None, opportunity=None, title=None):
        """Scheduled, then done before its due time, late, never, cancelled or handed over."""
        tid = self.new_id("task")
        key = ("task", tid)
        due = to_working(t + rng.uniform(1, 5) * DAY, rng)
        due = due - due % DAY + 16 * HOUR
        title = title or rng.choice(TASK_TITLES)
        if not self.add(chain, t, "activity", "ScheduleTask", rep.actor,
                        lambda ctx, cmd: pb.acts.ScheduleTaskRequest(
                            task_id=tid, task=pb.act.Task(
                                title=title, assignee_id=rep.id, due_time=ts(due),
                                contact_id=contact or "",
                                opportunity_id=value(opportunity, ctx) if opportunity else ""),
                            request_id=cmd.rid, occurred_at=ts(cmd.t), channel="web_app"),
                        key=key):
            return
        self.planned["tasks"] += 1
        doer = rep
        roll = rng.random()
        if roll < 0.04:
            if self.add(chain, t + (due - t) / 2, "activity", "CancelTask", rep.actor,
                        lambda ctx, cmd: pb.acts.CancelTaskRequest(
                            task_id=tid, reason="no longer needed", expected_version=ctx[key],
                            request_id=cmd.rid, occurred_at=ts(cmd.t), channel="web_app"),
                        key=key):
                self.planned["tasks cancelled"] += 1
            return
        if roll < 0.07 and len(self.reps_by_region[rep.region]) > 1:
            doer = rng.choice([r for r in self.reps_by_region[rep.region] if r is not rep])
            if self.add(chain, t + rng.randint(10 * MINUTE, 4 * HOUR), "activity",
                        "ReassignTask", rep.actor,
                        lambda ctx, cmd: pb.acts.ReassignTaskRequest(
                            task_id=tid, assignee_id=doer.id, expected_version=ctx[key],
                            request_id=cmd.rid, occurred_at=ts(cmd.t), channel="web_app"),
                        key=key):
                self.planned["tasks handed over"] += 1
        if rng.random() < doer.punctuality:
            done = t + (due - t) * rng.uniform(0.2, 1.0)
        elif rng.random() < 0.75:
            done = due + rng.uniform(0.3, 5) * DAY
        else:
            self.planned["tasks never done"] += 1
            return
        if self.add(chain, done, "activity", "CompleteTask", doer.actor,
                    lambda ctx, cmd: pb.acts.CompleteTaskRequest(
                        task_id=tid, expected_version=ctx[key], request_id=cmd.rid,
                        occurred_at=ts(cmd.t), channel="web_app"),
                    key=key):
            self.planned["tasks done on time" if done <= due else "tasks done late"] += 1

    def gen_enrichment(self, rng, rep, t):
        """The rep completes a contact's missing phone or email (imported at version 1, and
        nothing else changes it)."""
        c = rep.incomplete.pop(rng.randrange(len(rep.incomplete)))
        key = ("contact", c.id)
        patch, paths = pb.con.Contact(contact_id=c.id), []
        if c.phone is None:
            patch.phones.append(self.phone(rng, c.region))
            paths.append("phones")
        if c.email is None:
            patch.emails.append(f"{c.given}.{c.family}.{c.id[-6:]}@{c.account.domain}".lower())
            paths.append("emails")
        channel = rng.choice(["field_sales", "web_app"])
        if self.add(self.new_chain(init={key: 1}), t, "contact", "UpdateContact", rep.actor,
                    lambda ctx, cmd: pb.cons.UpdateContactRequest(
                        contact=patch, update_mask=pb.FieldMask(paths=paths),
                        expected_version=ctx[key], request_id=cmd.rid, occurred_at=ts(cmd.t),
                        channel=channel),
                    key=key):
            self.planned["contacts completed by reps"] += 1

    # Leads.

    def gen_leads(self):
        """Leads from web forms, webinars and email campaigns (marketing automation), partners,
        inbound calls, and one trade show where every rep scans badges."""
        rng = self.rng("leads")
        per_day = 4 * len(self.reps) / 7 * self.args.lead_factor
        weeks = max(1, (self.end - self.start) // WEEK)
        expo = iso_week_start(self.start + (weeks // 2) * WEEK) + DAY  # a Tuesday
        if expo < self.start:
            expo += WEEK
        regions = sorted(self.reps_by_region)
        sources = [s for s in LEAD_SOURCES if s[3] > 0]
        trade_show = [s for s in LEAD_SOURCES if s[0] == "trade_show"][0]
        for day in self.days():
            weekend = weekday(day) >= 5
            mean = per_day * (0.4 if weekend else 1.24)
            for _ in range(max(0, round(rng.gauss(mean, mean ** 0.5)))):
                source = rng.choices(sources, [s[3] for s in sources])[0]
                if source[2] is None and weekend:  # reps take calls on weekdays only
                    source = sources[0]
                t = (day + rng.randint(6 * HOUR, 22 * HOUR) if source[2]
                     else work_moment(day, rng))
                self.gen_lead(rng, t, source, rng.choice(regions))
            if expo <= day < expo + 3 * DAY:
                for rep in self.reps:
                    for _ in range(rng.randint(1, 3)):
                        self.gen_lead(rng, work_moment(day, rng), trade_show, rep.region,
                                      captor=rep)

    def gen_lead(self, rng, t, source, region, captor=None):
        """Captured; answered by its rep (call or email) after the rep's usual delay;
        qualified or disqualified; a share of the qualified converted into a new-business deal."""
        name, channel, integration, _, qualify_p, campaigns = source
        rep = captor or self.route(region)
        actor = self.integrations[integration] if integration else rep.actor
        lid = self.new_id("lead")
        key = ("lead", lid)
        given, family = rng.choice(GIVEN), rng.choice(FAMILY)
        existing = None
        if rng.random() < 0.2 and rep.accounts:  # interest from an existing customer
            existing = rng.choice(rep.accounts)
            company, domain = existing.name, existing.domain
        else:
            head, tail = rng.choice(COMPANY_HEAD), rng.choice(COMPANY_TAIL)
            city = rng.choice(REGION_CITIES[region])
            company = f"{head}{tail} {city} {rng.choice(COMPANY_FORM)}"
            domain = f"{head}{tail}-{city}".lower() + ".example"
        lead = pb.pipe.Lead(
            source=name, channel=channel, campaign=rng.choice(campaigns) if campaigns else "",
            person=pb.pipe.LeadPerson(
                given_name=given, family_name=family,
                email=f"{given}.{family}.{lid[-5:]}@{domain}".lower(),
                phone=self.phone(rng, region) if rng.random() < 0.7 else "",
                job_title=rng.choice(JOB_TITLES)),
            company=pb.pipe.LeadCompany(display_name=company, domain=domain),
            owner_id=rep.id, region=region)
        chain = self.new_chain()
        if not self.add(chain, t, "pipeline", "CaptureLead", actor,
                        lambda ctx, cmd: pb.pipes.CaptureLeadRequest(
                            lead_id=lid, lead=lead, request_id=cmd.rid, occurred_at=ts(cmd.t),
                            channel=channel),
                        key=key):
            return
        self.planned["leads"] += 1
        if rng.random() < 0.03 + 0.15 * (1 - rep.discipline):
            self.planned["leads never answered"] += 1
            return
        t = to_working(t + lognormal_hours(rng, rep.response_hours), rng)
        kind = "call" if rng.random() < 0.6 else "email"
        self.log_activity(chain, t, rep, kind, "phone" if kind == "call" else "email", rng,
                          lead=lid, subject=f"First contact: {name.replace('_', ' ')} enquiry")
        t = to_working(t + rng.uniform(0.05, 3) * DAY, rng)
        if rng.random() >= min(0.95, qualify_p * (0.8 + 0.4 * rep.discipline)):
            reason = rng.choice(DISQUALIFY_REASONS)
            if self.add(chain, t, "pipeline", "DisqualifyLead", rep.actor,
                        lambda ctx, cmd: pb.pipes.DisqualifyLeadRequest(
                            lead_id=lid, reason=reason, expected_version=ctx[key],
                            request_id=cmd.rid, occurred_at=ts(cmd.t), channel="phone"),
                        key=key):
                self.planned["leads disqualified"] += 1
            return
        if not self.add(chain, t, "pipeline", "QualifyLead", rep.actor,
                        lambda ctx, cmd: pb.pipes.QualifyLeadRequest(
                            lead_id=lid, expected_version=ctx[key], request_id=cmd.rid,
                            occurred_at=ts(cmd.t), channel="phone"),
                        key=key):
            return
        self.planned["leads qualified"] += 1
        if rng.random() >= 0.65:
            return
        t = to_working(t + rng.uniform(1, 7) * DAY, rng)
        lines = self.product_lines(rng, "new-business")
        close = t + rng.randint(30, 90) * DAY
        opportunity = pb.pipe.Opportunity(
            pipeline_id="new-business", display_name=f"{company}: {lines[0].product_id}",
            currency_code=CURRENCY, lines=lines, expected_close_date=date_of(close),
            owner_id=rep.id,
            region=existing.region if existing else region)

        def converted(ctx, answer):
            ctx[key] = answer.lead.version
            ctx["opportunity"] = answer.lead.opportunity_id
            ctx["contact"] = answer.lead.contact_id
            # The deal was just opened: version 1. (Not the answer's: a replayed ConvertLead
            # answers with the deal as it is now, which would change the next requests.)
            ctx[("opportunity", answer.lead.opportunity_id)] = 1

        if not self.add(chain, t, "pipeline", "ConvertLead", rep.actor,
                        lambda ctx, cmd: pb.pipes.ConvertLeadRequest(
                            lead_id=lid, expected_version=ctx[key],
                            account_id=existing.id if existing else "", opportunity=opportunity,
                            request_id=cmd.rid, occurred_at=ts(cmd.t), channel="web_app"),
                        after=converted):
            return
        self.planned["leads converted"] += 1
        self.opportunity_story(chain, rng, rep, t, "new-business", Ref("opportunity"),
                               Ref("contact"), lines, close)

    def product_lines(self, rng, pipeline):
        if pipeline == "new-business":
            products = ["crm-core"] + rng.sample(
                ["analytics", "field-app", "premium-support", "onboarding"], rng.randint(0, 2))
        else:
            products = rng.sample(["analytics", "field-app", "premium-support", "crm-core"],
                                  rng.randint(1, 2))
        lines = []
        for product in products:
            unit, (low, high) = PRODUCTS[product]
            discount = rng.choice([1.0, 1.0, 0.9, 0.85])
            lines.append(pb.pipe.ProductLine(product_id=product, quantity=rng.randint(low, high),
                                             unit_price_minor=int(unit * discount)))
        return lines

    def opportunity_story(self, chain, rng, rep, t, pipeline, opp, contact, lines, close):
        """After the deal opened (the chain's last command): its stages, each with calls,
        meetings and visits on the deal (child chains, so that a report written late does not
        hold up the deal), a proposal task, sometimes a revised quote or a slipped close date;
        then won or lost, and now and then reopened."""
        anchor = chain
        stages = [s for s, _, _ in PIPELINES[pipeline][1]]
        win_p = rep.win_skill * (1.4 if pipeline == "expansion" else 1.0)
        lost_at = None if rng.random() < min(0.9, win_p) else rng.choices(
            range(len(stages)), [4, 3, 2, 1][:len(stages)])[0]
        neglected = rng.random() < rep.neglect
        median_days = ((4 if pipeline == "expansion" else 6)
                       * (1.4 if rep.archetype == "struggling" else 1.0))
        key_of = opportunity_key(opp)
        slipped = reopened = False
        stage = 0
        while True:
            dwell = max(DAY, lognormal_hours(rng, median_days * 24, 0.6))
            stage_end = t + dwell
            gap = (rng.uniform(14, 24) if neglected else rng.uniform(3, 8)) * DAY
            at = t + rng.uniform(0.2, 1) * gap
            while at < stage_end:
                kind = self.pick(rng, {"call": 45, "email": 25, "meeting": 20, "visit": 10})
                self.log_activity(anchor.child(), to_working(at, rng), rep, kind,
                                  self.channel_for(kind, rng), rng, contact=contact,
                                  opportunity=opp, subject=f"{stages[stage]}: {kind}")
                at += gap * rng.uniform(0.7, 1.3)
            if stages[stage] == "proposal":
                self.gen_task(anchor.child(), rng, rep, to_working(t + HOUR, rng),
                              opportunity=opp, title="Send the proposal")
                if rng.random() < 0.4:  # a revised quote
                    revised = [pb.pipe.ProductLine(
                        product_id=line.product_id,
                        quantity=max(1, int(line.quantity * rng.uniform(0.8, 1.3))),
                        unit_price_minor=int(line.unit_price_minor * rng.choice([1.0, 0.95, 0.9])))
                        for line in lines]
                    if revised == list(lines):  # an update that changes nothing records nothing
                        revised[0].quantity += 1
                    lines = revised
                    self.add(chain, to_working(t + dwell / 2, rng), "pipeline",
                             "UpdateOpportunity", rep.actor,
                             lambda ctx, cmd, revised=revised: pb.pipes.UpdateOpportunityRequest(
                                 opportunity=pb.pipe.Opportunity(
                                     opportunity_id=value(opp, ctx), lines=revised),
                                 update_mask=pb.FieldMask(paths=["lines"]),
                                 expected_version=ctx[key_of(ctx)], request_id=cmd.rid,
                                 occurred_at=ts(cmd.t), channel="web_app"),
                             after=keep_version(key_of))
            if not slipped and rng.random() < 0.15:  # the customer needs more time
                slipped = True
                at = to_working(t + dwell / 3, rng)
                close = max(close, at) + rng.randint(14, 60) * DAY  # always a later date
                self.add(chain, at, "pipeline", "UpdateOpportunity", rep.actor,
                         lambda ctx, cmd, close=close: pb.pipes.UpdateOpportunityRequest(
                             opportunity=pb.pipe.Opportunity(
                                 opportunity_id=value(opp, ctx),
                                 expected_close_date=date_of(close)),
                             update_mask=pb.FieldMask(paths=["expected_close_date"]),
                             expected_version=ctx[key_of(ctx)], request_id=cmd.rid,
                             occurred_at=ts(cmd.t), channel="web_app"),
                         after=keep_version(key_of))
            t = to_working(stage_end, rng)
            if lost_at == stage:
                reason = rng.choice(LOSS_REASONS)
                if not self.add(chain, t, "pipeline", "CloseOpportunity", rep.actor,
                                lambda ctx, cmd, reason=reason: pb.pipes.CloseOpportunityRequest(
                                    opportunity_id=value(opp, ctx),
                                    outcome="OPPORTUNITY_STATUS_LOST", reason=reason,
                                    expected_version=ctx[key_of(ctx)], request_id=cmd.rid,
                                    occurred_at=ts(cmd.t), channel="web_app"),
                                after=keep_version(key_of)):
                    return
                self.planned["deals lost"] += 1
                if reopened or rng.random() >= 0.05:
                    return
                reopened = True  # the customer comes back
                t = to_working(t + rng.uniform(7, 20) * DAY, rng)
                if not self.add(chain, t, "pipeline", "ReopenOpportunity", rep.actor,
                                lambda ctx, cmd: pb.pipes.ReopenOpportunityRequest(
                                    opportunity_id=value(opp, ctx),
                                    expected_version=ctx[key_of(ctx)], request_id=cmd.rid,
                                    occurred_at=ts(cmd.t), channel="web_app"),
                                after=keep_version(key_of)):
                    return
                self.planned["deals reopened"] += 1
                lost_at = None if rng.random() < 0.4 else len(stages) - 1
                continue
            if stage == len(stages) - 1:
                reason = rng.choice(WIN_REASONS)
                if self.add(chain, t, "pipeline", "CloseOpportunity", rep.actor,
                            lambda ctx, cmd, reason=reason: pb.pipes.CloseOpportunityRequest(
                                opportunity_id=value(opp, ctx),
                                outcome="OPPORTUNITY_STATUS_WON", reason=reason,
                                expected_version=ctx[key_of(ctx)], request_id=cmd.rid,
                                occurred_at=ts(cmd.t), channel="web_app"),
                            after=keep_version(key_of)):
                    self.planned["deals won"] += 1
                return
            target = stage - 1 if stage > 0 and rng.random() < 0.05 else stage + 1
            if not self.add(chain, t, "pipeline", "MoveOpportunityStage", rep.actor,
                            lambda ctx, cmd, s=stages[target]: pb.pipes.MoveOpportunityStageRequest(
                                opportunity_id=value(opp, ctx), stage_id=s,
                                expected_version=ctx[key_of(ctx)], request_id=cmd.rid,
                                occurred_at=ts(cmd.t), channel="web_app"),
                            after=keep_version(key_of)):
                return
            self.planned["stage moves"] += 1
            stage = target

    def gen_expansion_deals(self):
        """Deals reps open with their existing customers (pipeline `expansion`)."""
        rng = self.rng("expansion")
        for day in self.days():
            if weekday(day) >= 5:
                continue
            for rep in self.reps:
                if not rep.accounts or rng.random() >= 0.2 * rep.activity:
                    continue
                candidates = [a for a in rep.accounts if a.contacts]
                if not candidates:
                    continue
                account = rng.choice(candidates)
                contact = rng.choice(account.contacts)
                t = work_moment(day, rng)
                oid = self.new_id("opp")
                lines = self.product_lines(rng, "expansion")
                close = t + rng.randint(20, 60) * DAY
                opportunity = pb.pipe.Opportunity(
                    pipeline_id="expansion", display_name=f"{account.name}: expansion",
                    currency_code=CURRENCY, lines=lines, owner_id=rep.id,
                    account_id=account.id, contact_id=contact.id, region=account.region,
                    expected_close_date=date_of(close))
                chain = self.new_chain()
                if self.add(chain, t, "pipeline", "OpenOpportunity", rep.actor,
                            lambda ctx, cmd, o=opportunity, oid=oid:
                            pb.pipes.OpenOpportunityRequest(
                                opportunity_id=oid, opportunity=o, request_id=cmd.rid,
                                occurred_at=ts(cmd.t), channel="web_app"),
                            key=("opportunity", oid)):
                    self.planned["expansion deals opened"] += 1
                    self.opportunity_story(chain, rng, rep, t, "expansion", oid, contact.id, lines,
                                           close)

    # Cases.

    def gen_cases(self):
        """Cases from email, the service-desk portal, phone and chat (opened and dispatched by
        the service-desk integration), worked and resolved by the account's rep; a few reopen."""
        rng = self.rng("cases")
        with_contacts = [a for a in self.accounts if a.contacts]
        if not with_contacts:
            return
        per_day = max(0.3, len(self.accounts) / 100 / 7) * self.args.case_factor
        for day in self.days():
            mean = per_day * (0.3 if weekday(day) >= 5 else 1.28)
            for _ in range(max(0, round(rng.gauss(mean, mean ** 0.5)))):
                account = rng.choice(with_contacts)
                self.gen_case(rng, day + rng.randint(6 * HOUR, 21 * HOUR), account,
                              rng.choice(account.contacts))

    def gen_case(self, rng, t, account, contact):
        desk = self.integrations["service-desk"]
        rep = account.owner
        channel = rng.choices(["email", "service_desk", "phone", "chat"], [40, 25, 20, 15])[0]
        priority = rng.choices([p for p, _ in PRIORITIES], [w for _, w in PRIORITIES])[0]
        cid = self.new_id("case")
        key = ("case", cid)
        subject = rng.choice(CASE_SUBJECTS)
        record = pb.act.Case(subject=subject, priority=priority, contact_id=contact.id,
                             channel=channel, description=f"{subject} (reported by "
                                                          f"{contact.given} {contact.family})")
        chain = self.new_chain()
        if not self.add(chain, t, "activity", "OpenCase", desk,
                        lambda ctx, cmd: pb.acts.OpenCaseRequest(
                            case_id=cid, case=record, request_id=cmd.rid, occurred_at=ts(cmd.t),
                            channel=channel),
                        key=key):
            return
        self.planned["cases opened"] += 1
        self.add(chain, t + rng.randint(5 * MINUTE, 90 * MINUTE), "activity", "AssignCase", desk,
                 lambda ctx, cmd: pb.acts.AssignCaseRequest(
                     case_id=cid, assignee_id=rep.id, expected_version=ctx[key],
                     request_id=cmd.rid, occurred_at=ts(cmd.t), channel="service_desk"),
                 key=key)
        slow = {"star": 0.6, "solid": 1.0, "struggling": 1.8}[rep.archetype]
        resolve_in = lognormal_hours(rng, RESOLUTION_HOURS[priority] * slow, 0.7)
        if rng.random() < 0.6:
            self.log_activity(chain, t + resolve_in * rng.uniform(0.1, 0.5), rep, "call", "phone",
                              rng, contact=contact.id, case=cid, subject=f"Case: {subject}")
        self.add(chain, t + resolve_in * rng.uniform(0.5, 0.9), "activity", "AddCaseNote",
                 rep.actor,
                 lambda ctx, cmd: pb.acts.AddCaseNoteRequest(
                     case_id=cid, text="Reproduced; working on a fix.", expected_version=ctx[key],
                     request_id=cmd.rid, occurred_at=ts(cmd.t), channel="service_desk"),
                 key=key)
        at = t + resolve_in
        reopens = rng.random() < 0.07
        for round_ in range(2 if reopens else 1):
            if not self.add(chain, at, "activity", "ResolveCase", rep.actor,
                            lambda ctx, cmd: pb.acts.ResolveCaseRequest(
                                case_id=cid, resolution="fixed and confirmed by the customer",
                                expected_version=ctx[key], request_id=cmd.rid,
                                occurred_at=ts(cmd.t), channel="service_desk"),
                            key=key):
                return
            self.planned["cases resolved"] += 1
            if round_ == 1 or not reopens:
                return
            at += rng.uniform(1, 4) * DAY
            if not self.add(chain, at, "activity", "ReopenCase", desk,
                            lambda ctx, cmd: pb.acts.ReopenCaseRequest(
                                case_id=cid, reason="customer: still broken",
                                expected_version=ctx[key], request_id=cmd.rid,
                                occurred_at=ts(cmd.t), channel=channel),
                            key=key):
                return
            self.planned["cases reopened"] += 1
            at += lognormal_hours(rng, RESOLUTION_HOURS[priority] * slow, 0.7)

    # Website sign-ups (some are people the CRM already knows: duplicates to merge).

    def gen_signups(self):
        rng = self.rng("signups")
        per_day = 1.5 * len(self.reps) / 7
        regions = sorted(self.reps_by_region)
        pool = list(self.merge_pool)
        rng.shuffle(pool)
        for day in self.days():
            for _ in range(max(0, round(rng.gauss(per_day, per_day ** 0.5)))):
                duplicate = pool.pop() if pool and rng.random() < 0.1 else None
                self.gen_signup(rng, day + rng.randint(0, DAY - 1), duplicate, regions)

    def gen_signup(self, rng, t, duplicate, regions):
        forms = self.integrations["web-forms"]
        if duplicate is not None:
            given, family, email = duplicate.given, duplicate.family, duplicate.email
            region, owner = duplicate.region, duplicate.owner
        else:
            given, family = rng.choice(GIVEN), rng.choice(FAMILY)
            region = rng.choice(regions)
            owner = self.route(region)
            email = f"{given}.{family}.w{self.counters['web'] + 1}@mail.example".lower()
        wid = self.new_id("web")
        key = ("contact", wid)
        contact = pb.con.Contact(
            given_name=given, family_name=family, emails=[email], owner_id=owner.id,
            region=region, lifecycle_stage="LIFECYCLE_STAGE_SUBSCRIBER",
            source_channel="web_form", marketing_consent=True, tags=["newsletter"])
        chain = self.new_chain()
        if not self.add(chain, t, "contact", "CreateContact", forms,
                        lambda ctx, cmd: pb.cons.CreateContactRequest(
                            contact_id=wid, contact=contact, request_id=cmd.rid,
                            occurred_at=ts(cmd.t), channel="web_form"),
                        key=key):
            return
        self.planned["website sign-ups"] += 1
        at = to_working(t + rng.uniform(0.5, 5) * DAY, rng)
        if duplicate is not None:
            if rng.random() < 0.5 + 0.5 * owner.discipline and self.add(
                    chain, at, "contact", "MergeContacts", owner.actor,
                    lambda ctx, cmd: pb.cons.MergeContactsRequest(
                        winner_contact_id=duplicate.id, loser_contact_id=wid,
                        winner_expected_version=1, loser_expected_version=ctx[key],
                        request_id=cmd.rid, occurred_at=ts(cmd.t), channel="web_app")):
                self.planned["duplicates merged"] += 1
        elif rng.random() < 0.02 and self.add(
                chain, at, "contact", "ArchiveContact", owner.actor,
                lambda ctx, cmd: pb.cons.ArchiveContactRequest(
                    contact_id=wid, expected_version=ctx[key], request_id=cmd.rid,
                    occurred_at=ts(cmd.t), channel="web_app"),
                key=key):
            self.planned["spam sign-ups archived"] += 1


# --- running the commands -----------------------------------------------------------------

class Progress:
    """A progress bar on stderr: commands done, rate, ETA, errors."""

    def __init__(self, total, stream=sys.stderr):
        self.total = total
        self.done = 0
        self.errors = 0
        self.phase = ""
        self.stream = stream
        self.tty = stream.isatty()
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.samples = collections.deque(maxlen=40)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.last_len = 0

    def add(self, n=1, errors=0):
        with self.lock:
            self.done += n
            self.errors += errors

    def start(self):
        self.thread.start()

    def loop(self):
        interval = 0.25 if self.tty else 5.0
        while not self.stop_event.wait(interval):
            self.render()

    def finish(self):
        self.stop_event.set()
        self.thread.join()
        self.render(final=True)

    def line(self, final=False):
        now = time.monotonic()
        with self.lock:
            done, errors = self.done, self.errors
        self.samples.append((now, done))
        first_t, first_done = self.samples[0]
        if final or now - first_t < 1.0:  # the average since the start
            first_t, first_done = self.started, 0
        rate = (done - first_done) / (now - first_t) if now - first_t > 0.5 else 0.0
        fraction = done / self.total if self.total else 1.0
        width = 30
        filled = int(width * fraction)
        bar = "#" * filled + "." * (width - filled)
        eta = (self.total - done) / rate if rate > 0 else None
        eta_text = f"ETA {format_duration(eta)}" if eta is not None and not final else ""
        error_text = f"  {errors:,} failed" if errors else ""
        return (f"{self.phase:<9} [{bar}] {fraction * 100:5.1f}%  {done:,}/{self.total:,} commands"
                f"  {rate:,.0f}/s  {eta_text + '  ' if eta_text else ''}elapsed "
                f"{format_duration(now - self.started)}{error_text}")

    def render(self, final=False):
        text = self.line(final)
        if self.tty:
            pad = max(0, self.last_len - len(text))
            self.stream.write("\r" + text + " " * pad + ("\n" if final else ""))
            self.last_len = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def format_duration(seconds):
    if seconds is None:
        return "--"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Runner:
    def __init__(self, channels, concurrency, timeout, progress):
        self.stubs = {
            "contact": pb.cons_grpc.ContactServiceStub(channels["contact"]),
            "activity": pb.acts_grpc.ActivityServiceStub(channels["activity"]),
            "pipeline": pb.pipes_grpc.PipelineServiceStub(channels["pipeline"]),
        }
        self.concurrency = concurrency
        self.timeout = timeout
        self.progress = progress
        self.lock = threading.Lock()
        self.ok = collections.Counter()
        self.failed = collections.Counter()
        self.failures = []
        self.retries = 0
        self.latest = {}  # stream type -> (stream, version): for the metrics' read-your-writes
        self.stopping = threading.Event()
        self.methods = {}
        self.pool = None
        self.pending = 0  # chains submitted and not finished
        self.idle = threading.Condition()

    def method(self, service, name):
        key = (service, name)
        fn = self.methods.get(key)
        if fn is None:
            fn = self.methods[key] = getattr(self.stubs[service], name)
        return fn

    def call(self, cmd, request):
        fn = self.method(cmd.service, cmd.method)
        delay = 0.05
        for attempt in range(8):
            try:
                return fn(request, metadata=cmd.actor.metadata, timeout=self.timeout)
            except grpc.RpcError as error:
                code = error.code()
                retriable = code in (grpc.StatusCode.UNAVAILABLE,
                                     grpc.StatusCode.DEADLINE_EXCEEDED) or (
                    code == grpc.StatusCode.RESOURCE_EXHAUSTED
                    and "overloaded" in (error.details() or ""))
                if not retriable or attempt == 7 or self.stopping.is_set():
                    raise
                with self.lock:
                    self.retries += 1
                time.sleep(delay)  # same request_id: a retry is answered once
                delay = min(delay * 2, 2.0)

    def run_chain(self, chain, inherited=None):
        try:
            self._run_chain(chain, inherited)
        finally:
            with self.idle:
                self.pending -= 1
                if self.pending == 0:
                    self.idle.notify_all()

    def _run_chain(self, chain, inherited):
        ctx = dict(inherited) if inherited else {}
        if chain.init:
            ctx.update(chain.init)
        cmds = chain.cmds
        for i, cmd in enumerate(cmds):
            if self.stopping.is_set():
                return
            try:
                answer = self.call(cmd, cmd.build(ctx, cmd))
                if cmd.key is not None:
                    ctx[cmd.key] = answer.version
                if cmd.after is not None:
                    cmd.after(ctx, answer)
            except Exception as error:  # noqa: BLE001: any failure is reported, the run goes on
                self.fail(cmd, error, chain.size(i))
                return
            with self.lock:
                self.ok[(cmd.service, cmd.method)] += 1
                if cmd.key is not None:
                    self.latest[cmd.key[0]] = (f"{cmd.key[0]}/{cmd.key[1]}", answer.version)
            self.progress.add(1)
            if chain.children and i in chain.children:
                snapshot = dict(ctx)  # this chain goes on changing its own
                for kid in chain.children[i]:
                    self.submit(kid, snapshot)

    def fail(self, cmd, error, count):
        """The failed command, the rest of its chain and the chains hanging on them (they
        depend on it) are counted as done."""
        if isinstance(error, grpc.RpcError):
            what = f"{error.code().name}: {error.details()}"
        else:
            what = "client error: " + "".join(
                traceback.format_exception_only(type(error), error)).strip()
        with self.lock:
            self.failed[(cmd.service, cmd.method)] += 1
            if len(self.failures) < 10:
                self.failures.append(f"{cmd.service}.{cmd.method} ({cmd.rid}, business time "
                                     f"{iso(cmd.t)}, by {cmd.actor.id}): {what}")
        self.progress.add(count, errors=1)

    def submit(self, chain, inherited=None):
        with self.idle:
            self.pending += 1
        try:
            self.pool.submit(self.run_chain, chain, inherited)
        except RuntimeError:  # shutting down
            with self.idle:
                self.pending -= 1

    def run_phase(self, name, chains):
        """Runs the chains (and the child chains they start) with `concurrency` in flight."""
        self.progress.phase = name
        self.pool = concurrent.futures.ThreadPoolExecutor(self.concurrency)
        try:
            for chain in chains:
                self.submit(chain)
            with self.idle:
                while self.pending > 0:
                    self.idle.wait(0.5)
        except KeyboardInterrupt:
            self.stopping.set()
            self.pool.shutdown(wait=True, cancel_futures=True)
            raise
        self.pool.shutdown(wait=True)


class _Placeholders(dict):
    """What chains learn from answers, faked for --dry-run: versions 0, ids named after the key."""

    def __missing__(self, key):
        return 0 if isinstance(key, tuple) else f"<{key}>"


def fingerprint(phases):
    """SHA-256 over every command (order, service, method, actor, request), answers faked."""
    digest = hashlib.sha256()
    for _, chains in phases:
        for top in chains:
            for chain in top.walk():
                ctx = _Placeholders(chain.init or {})
                for cmd in chain.cmds:
                    request = cmd.build(ctx, cmd)
                    digest.update(f"{cmd.service}.{cmd.method} {cmd.actor.id} ".encode())
                    digest.update(request.SerializeToString(deterministic=True))
    return digest.hexdigest()[:16]


def define_pipelines(stub, actor, t, prefix):
    """The two pipelines, before anything else (an identical definition adds nothing). Dated
    before the simulated weeks; when the pipeline already has a later revision, dated now."""
    for pipeline_id, (display, stages) in PIPELINES.items():
        request = pb.pipes.DefinePipelineRequest(
            pipeline_id=pipeline_id, display_name=display,
            stages=[pb.pipe.Stage(stage_id=s, display_name=n, probability_bps=p)
                    for s, n, p in stages],
            request_id=f"{prefix}:pipeline/{pipeline_id}", occurred_at=ts(t), channel="web_app")
        try:
            stub.DefinePipeline(request, metadata=actor.metadata, timeout=30)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.FAILED_PRECONDITION:
                die(f"pipeline-service: DefinePipeline {pipeline_id}: {error.code().name}: "
                    f"{error.details()}")
            request.ClearField("occurred_at")
            request.request_id += "/now"
            try:
                stub.DefinePipeline(request, metadata=actor.metadata, timeout=30)
            except grpc.RpcError as again:
                die(f"pipeline-service: DefinePipeline {pipeline_id}: {again.code().name}: "
                    f"{again.details()}")


def check_health(channels, addresses, timeout):
    """grpc.health.v1.Health/Check on every service (raw bytes: the request is empty and the
    answer's field 1 is the status, 1 = SERVING)."""
    problems = []
    for name, channel in channels.items():
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        try:
            answer = check(b"", timeout=timeout)
        except grpc.RpcError as error:
            problems.append(f"{name}-service at {addresses[name]}: {error.code().name} "
                            f"({error.details()})")
            continue
        if answer != b"\x08\x01":
            problems.append(f"{name}-service at {addresses[name]}: not SERVING")
    return problems


# --- metrics and the report ---------------------------------------------------------------

def wait_for_metrics(stub, metadata, latest, timeout):
    """Read-your-writes: waits until metrics-service includes the last version of a stream of
    every type the demo wrote, then until its consumer lag is 0. Returns the consistency to
    pass to the reads, and the seconds waited."""
    started = time.monotonic()
    consistency = pb.met.Consistency(
        min_versions=[pb.met.StreamVersion(stream=s, version=v)
                      for s, v in sorted(latest.values())],
        max_wait=pb.Duration(seconds=30))
    deadline = started + timeout
    while True:
        try:
            stub.GetProjectionStatus(pb.met.GetProjectionStatusRequest(), metadata=metadata,
                                     timeout=10)
            stub.QueryKpi(pb.met.QueryKpiRequest(
                kpi="active_reps", period_kind="PERIOD_KIND_ISO_WEEK",
                start_time=ts(time.time() - DAY), end_time=ts(time.time() + DAY),
                consistency=consistency), metadata=metadata, timeout=35)
            break
        except grpc.RpcError as error:
            if error.code() not in (grpc.StatusCode.DEADLINE_EXCEEDED,
                                    grpc.StatusCode.UNAVAILABLE) or time.monotonic() > deadline:
                raise
    caught_up = 0
    while time.monotonic() < deadline and caught_up < 2:
        status = stub.GetProjectionStatus(pb.met.GetProjectionStatusRequest(), metadata=metadata,
                                          timeout=10)
        caught_up = caught_up + 1 if status.receipt.lag_events == 0 else 0
        time.sleep(0.5)
    return consistency, time.monotonic() - started


SUMMARY_GROUPS = [
    ("import", ["accounts imported", "contacts imported"]),
    ("leads", ["leads", "leads never answered", "leads qualified", "leads disqualified",
               "leads converted"]),
    ("deals", ["expansion deals opened", "stage moves", "deals won", "deals lost",
               "deals reopened"]),
    ("activities", ["activities: call", "activities: email", "activities: visit",
                    "activities: meeting", "activities: note", "activities: chat",
                    "activities planned ahead", "activities cancelled",
                    "visit reports written late", "visit reports never written"]),
    ("tasks", ["tasks", "tasks done on time", "tasks done late", "tasks never done",
               "tasks cancelled", "tasks handed over"]),
    ("cases", ["cases opened", "cases resolved", "cases reopened"]),
    ("contacts", ["contacts completed by reps", "website sign-ups", "duplicates merged",
                  "spam sign-ups archived"]),
]


def print_planned(planned, out):
    """What the simulated weeks were made of (as generated; failures are reported apart)."""
    print("  what happened (generated):", file=out)
    for group, names in SUMMARY_GROUPS:
        parts = []
        for name in names:
            label = name[len(group):].strip(" :") if name.startswith(group) else name
            parts.append(f"{label or 'total'} {planned.get(name, 0):,}")
        print(f"    {group:<11} " + ", ".join(parts), file=out)


def money(amount, currency):
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    return f"{currency} {sign}{amount // 100:,}.{amount % 100:02d}"


def seconds_text(value):
    if value < 90:
        return f"{value:.0f}s"
    if value < 90 * 60:
        return f"{value / 60:.0f}m"
    if value < 48 * 3600:
        return f"{value / 3600:.1f}h"
    return f"{value / 86400:.1f}d"


def measure_text(measure, short=False):
    which = measure.WhichOneof("value")
    name = measure.name.split(".")[-1]
    if which == "count":
        return f"{measure.count:,}"
    if which == "amount_minor":
        return money(measure.amount_minor, measure.currency_code)
    if which == "ratio":
        r = measure.ratio
        if not r.HasField("value"):
            return "-"
        if name == "per_100":
            return f"{r.value:.1f}"
        if measure.currency_code:  # a ratio of amounts
            return (f"{r.value * 100:.1f}% of "
                    f"{money(r.denominator, measure.currency_code)}")
        if short:
            return f"{r.value * 100:.0f}% {r.numerator}/{r.denominator}"
        return f"{r.value * 100:.1f}% ({r.numerator:,}/{r.denominator:,})"
    if which == "quantile":
        q = measure.quantile
        if name.endswith("_seconds"):
            return seconds_text(q.value)
        if name.endswith("_days"):
            return f"{q.value:.0f}d"
        return f"{q.value:,.1f}"
    return "-"


def table(headers, rows, indent="  "):
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    def fmt(cells):
        out = []
        for i, cell in enumerate(cells):
            out.append(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]))
        return indent + "  ".join(out).rstrip()
    lines = [fmt(headers), indent + "  ".join("-" * w for w in widths)]
    lines.extend(fmt(row) for row in rows)
    return "\n".join(lines)


SCORECARD_COLUMNS = [
    ("activities_logged.count", "activities"),
    ("visit_report_compliance.ratio", "visit reports <=48h"),
    ("logging_delay_seconds.p50_seconds", "log delay p50"),
    ("logging_delay_seconds.within_24h", "logged <=24h"),
    ("tasks_on_time_ratio.ratio", "tasks on time"),
    ("open_deal_coverage.ratio", "deal coverage 7d"),
    ("stale_opportunities.count", "stale deals"),
    ("contact_completeness_ratio.ratio", "contacts complete"),
]


def period_label(period):
    return (f"{period.label} ({iso(period.start_time.seconds)[:10]} to "
            f"{iso(period.end_time.seconds - 1)[:10]})")


def print_scorecard(card, rep_names, out):
    """Per rep of this run (other runs' reps are counted, not listed), then team-wide."""
    print(f"\nADOPTION SCORECARD  {period_label(card.period)}", file=out)
    rows = []
    others = 0
    for rep in card.reps:
        if rep.rep_id not in rep_names:
            others += 1
            continue
        measures = {m.name: m for m in rep.measures}
        row = [f"{rep.rep_id} {rep_names[rep.rep_id]}"]
        for name, _ in SCORECARD_COLUMNS:
            # A per-currency or absent measure: show what is there.
            if name in measures:
                row.append(measure_text(measures[name], short=True))
            else:  # no row: nothing counted (a count is 0, a ratio has no data)
                row.append("0" if name.endswith(".count") else "-")
        rows.append(row)
    if rows:
        print(table(["rep"] + [h for _, h in SCORECARD_COLUMNS], rows), file=out)
    else:
        print("  (no rep of this run has data in this period)", file=out)
    if others:
        print(f"  ({others} more reps or owners from other runs have data in this period; the "
              "team figures below include them)", file=out)
    print("\n  Team:", file=out)
    for result in card.team:
        for row in result.rows:
            parts = ", ".join(f"{m.name}={measure_text(m)}" for m in row.measures)
            print(f"  {result.definition.name:<28} {parts}", file=out)
        if not result.rows:
            print(f"  {result.definition.name:<28} no data", file=out)


def print_dashboard(board, out):
    print(f"\nBUSINESS DASHBOARD  {period_label(board.period)}", file=out)
    for result in board.kpis:
        d = result.definition
        if not result.rows:
            print(f"\n  {d.name}: no data", file=out)
            continue
        measures = []
        for row in result.rows:  # measure names in order of appearance (with currency)
            for m in row.measures:
                label = f"{m.name} {m.currency_code}".strip() if m.currency_code else m.name
                if label not in measures:
                    measures.append(label)
        dims = [dim.name for dim in result.rows[0].dimensions]
        rows = []
        for row in result.rows:
            by = {(f"{m.name} {m.currency_code}".strip() if m.currency_code else m.name): m
                  for m in row.measures}
            rows.append([" / ".join(dim.value or "(none)" for dim in row.dimensions) or "all"] +
                        [measure_text(by[label]) if label in by else "-" for label in measures])
        print(f"\n  {d.name}", file=out)
        print(table([" / ".join(dims) or "all"] + measures, rows, indent="    "), file=out)


def print_trend(stub, metadata, consistency, start, end, out):
    """A few KPIs per ISO week over the simulated weeks."""
    kpis = [("leads_captured", "count", "leads"),
            ("lead_conversion_rate", "ratio", "converted"),
            ("activities_logged", "count", "activities"),
            ("tasks_on_time_ratio", "ratio", "tasks on time"),
            ("win_rate", "ratio", "win rate"),
            ("won_revenue", "amount", "won revenue"),
            ("case_resolution_seconds", "p50_seconds", "case p50")]
    columns = {}
    labels = []
    for kpi, measure, header in kpis:
        answer = stub.QueryKpi(pb.met.QueryKpiRequest(
            kpi=kpi, period_kind="PERIOD_KIND_ISO_WEEK", start_time=ts(start), end_time=ts(end),
            consistency=consistency), metadata=metadata, timeout=60)
        for row in answer.result.rows:
            label = row.period.label
            if label not in labels:
                labels.append(label)
            texts = [measure_text(m, short=True) for m in row.measures if m.name == measure]
            columns[(label, header)] = " + ".join(texts) if texts else "-"
    labels.sort()
    print("\nWEEK BY WEEK (business time; KPIs by the week the facts happened in)", file=out)
    rows = [[label] + [columns.get((label, header), "-") for _, _, header in kpis]
            for label in labels]
    print(table(["week"] + [h for _, _, h in kpis], rows), file=out)


# --- main -----------------------------------------------------------------------------------

def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="demo.py",
        description="Feeds a simulated sales organisation's traffic (leads, calls, visits, tasks, "
                    "opportunities, cases) through the CRM's public gRPC APIs, then prints the "
                    "adoption scorecard and the business dashboard. Start the system first "
                    "(make run).")
    parser.add_argument("--seed", type=int, default=42,
                        help="random seed: the same seed and --end-time give the same commands "
                             "(default 42)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiplies the default reps, accounts and contacts (0.1 for a "
                             "quick run); explicit --reps/--accounts/--contacts win (default 1)")
    parser.add_argument("--reps", type=int, help=f"sales reps (default {DEFAULTS['reps']})")
    parser.add_argument("--accounts", type=int,
                        help=f"accounts (default {DEFAULTS['accounts']:,})")
    parser.add_argument("--contacts", type=int,
                        help=f"contacts imported at the start (default {DEFAULTS['contacts']:,})")
    parser.add_argument("--weeks", type=int, default=12,
                        help="simulated weeks, ending at --end-time (default 12, at most 52)")
    parser.add_argument("--end-time", type=parse_time,
                        help="end of the simulated period, ISO 8601 (default: now, to the "
                             "minute); pass the value a run printed to replay it exactly")
    parser.add_argument("--id-prefix",
                        help="prefix of every id and request id (default demo<seed>, plus a "
                             "tag of the sizes when they are not the defaults)")
    parser.add_argument("--lead-factor", type=float, default=1.0,
                        help="multiplies lead volume (default 1: about 4 per rep and week)")
    parser.add_argument("--case-factor", type=float, default=1.0,
                        help="multiplies case volume (default 1: about 1 per 100 accounts and "
                             "week)")
    parser.add_argument("--contact", default="127.0.0.1:7001",
                        help="contact-service address (default %(default)s)")
    parser.add_argument("--activity", default="127.0.0.1:7002",
                        help="activity-service address (default %(default)s)")
    parser.add_argument("--pipeline", default="127.0.0.1:7003",
                        help="pipeline-service address (default %(default)s)")
    parser.add_argument("--metrics", default="127.0.0.1:7004",
                        help="metrics-service address (default %(default)s)")
    parser.add_argument("--data-dir", default=os.environ.get("CRM_DATA_DIR", "data"),
                        help="where jwt.secret is (default $CRM_DATA_DIR or ./data); "
                             "$CRM_JWT_HS256_SECRET wins")
    parser.add_argument("--concurrency", type=int, default=32,
                        help="commands in flight (threads; default 32)")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="deadline of each call in seconds (default 30)")
    parser.add_argument("--metrics-wait", type=float, default=180.0,
                        help="how long to wait for metrics-service to include the demo's "
                             "writes, in seconds (default 180)")
    parser.add_argument("--scorecard-period", choices=["week", "month"], default="week",
                        help="period of the adoption scorecard: the ISO week or month of the "
                             "end time (default week)")
    parser.add_argument("--dashboard-period", choices=["week", "month"], default="month",
                        help="period of the business dashboard (default month)")
    parser.add_argument("--no-report", action="store_true",
                        help="send the traffic only, print no KPI tables")
    parser.add_argument("--dry-run", action="store_true",
                        help="generate and count the commands, send nothing")
    args = parser.parse_args(argv)
    for name, default in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, max(1, round(default * args.scale)))
    args.reps = max(1, args.reps)
    if args.accounts < 0 or args.contacts < 0:
        parser.error("--accounts and --contacts must not be negative")
    if not 1 <= args.weeks <= 52:
        parser.error("--weeks must be 1 to 52 (business time may be at most 400 days back)")
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    if args.id_prefix is None:  # one prefix per generated world
        shape = (args.reps, args.accounts, args.contacts, args.weeks, args.lead_factor,
                 args.case_factor)
        default = (DEFAULTS["reps"], DEFAULTS["accounts"], DEFAULTS["contacts"], 12, 1.0, 1.0)
        args.id_prefix = f"demo{args.seed}" + (
            "" if shape == default else "-" + hashlib.sha256(repr(shape).encode()).hexdigest()[:4])
    if not all(ch.isalnum() or ch in "-_" for ch in args.id_prefix) or len(args.id_prefix) > 40:
        parser.error("--id-prefix: letters, digits, '-' and '_', at most 40")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    load_stubs()
    now = int(time.time())
    end = args.end_time if args.end_time is not None else now - now % MINUTE
    if end > now + 4 * MINUTE:
        die(f"--end-time {iso(end)} is in the future (business time may be at most a few "
            "minutes ahead)")
    start = end - args.weeks * WEEK
    if start - 12 * DAY < now - 399 * DAY:
        die("--end-time and --weeks reach more than 400 days back (the services' limit)")

    if not args.dry_run:  # fail fast when the system is not there
        addresses = {"contact": args.contact, "activity": args.activity, "pipeline": args.pipeline,
                     "metrics": args.metrics}
        options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        channels = {name: grpc.insecure_channel(address, options=options)
                    for name, address in addresses.items()}
        problems = check_health(channels, addresses, timeout=3)
        if problems:
            die("the CRM system is not running or not healthy:\n  " + "\n  ".join(problems) +
                "\nStart it with `make run` (in another terminal) and run `make demo` again.")

        secret, secret_from = load_secret(args.data_dir)
        issuer = os.environ.get("CRM_JWT_ISSUER", "crm-dev")
        audience = os.environ.get("CRM_JWT_AUDIENCE", "crm")
        ttl = 12 * HOUR
        probe = Actor("demo-reporting", "service")
        probe.sign(secret, INTEGRATIONS["demo-reporting"][0], ttl, issuer, audience)
        metrics = pb.met_grpc.MetricsServiceStub(channels["metrics"])
        try:
            metrics.GetProjectionStatus(pb.met.GetProjectionStatusRequest(),
                                        metadata=probe.metadata, timeout=10)
        except grpc.RpcError as error:
            if error.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                die(f"the services reject the demo's tokens ({error.details()}): the secret from "
                    f"{secret_from} is not theirs. Pass --data-dir of the running system or set "
                    "CRM_JWT_HS256_SECRET")
            die(f"metrics-service: {error.code().name}: {error.details()}")

    t0 = time.monotonic()
    world = World(args, start, end, args.id_prefix)
    world.build_org()
    world.build_import()
    world.build_stories()
    phases = [("accounts", world.account_chains), ("contacts", world.contact_chains),
              ("weeks", world.story_chains)]
    total = sum(chain.size() for _, chains in phases for chain in chains)
    by_method = collections.Counter(
        (cmd.service, cmd.method) for _, chains in phases for top in chains
        for chain in top.walk() for cmd in chain.cmds)
    n_chains = sum(1 for _, chains in phases for top in chains for _ in top.walk())
    generated_in = time.monotonic() - t0

    out = sys.stdout
    print(f"CRM demo: seed {args.seed}, id prefix {args.id_prefix}, {len(world.reps)} reps in "
          f"{len(world.reps_by_region)} regions, {len(world.accounts):,} accounts, "
          f"{len(world.contacts):,} contacts", file=out)
    end_text = datetime.datetime.fromtimestamp(end, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    print(f"  simulated {iso(start)} to {iso(end)} ({args.weeks} weeks; replay with the same "
          f"flags and --end-time {end_text})", file=out)
    print(f"  {total:,} commands in {n_chains:,} chains "
          f"(generated in {generated_in:.1f}s)", file=out)
    print(f"  commands fingerprint {fingerprint(phases)} (the same seed, sizes and end time "
          "give the same)", file=out)
    if args.dry_run:
        for (service, method), n in sorted(by_method.items()):
            print(f"    {service}.{method:<22} {n:>8,}", file=out)
        for what, n in sorted(world.planned.items()):
            print(f"    {what:<34} {n:>8,}", file=out)
        return EXIT_OK
    out.flush()

    for rep in world.reps:
        rep.actor.sign(secret, REP_SCOPES, ttl, issuer, audience)
    for name, actor in world.integrations.items():
        actor.sign(secret, INTEGRATIONS[name][0], ttl, issuer, audience)
    reporting = world.integrations["demo-reporting"].metadata
    metrics = pb.met_grpc.MetricsServiceStub(channels["metrics"])
    contacts = pb.cons_grpc.ContactServiceStub(channels["contact"])
    # An earlier run with this prefix? The same commands replay (idempotent); others collide.
    if world.accounts:
        first = world.accounts[0]
        try:
            found = contacts.GetAccount(pb.cons.GetAccountRequest(account_id=first.id),
                                        metadata=world.integrations["crm-import"].metadata,
                                        timeout=10)
            if (found.create_time.seconds, found.display_name, found.owner_id) != (
                    world.import_time, first.name, first.owner.id):
                made = found.create_time.seconds + 10 * DAY + args.weeks * WEEK
                die(f"this system already holds a demo run with id prefix {args.id_prefix} "
                    f"(simulated up to about {iso(made)}). Use another --seed or --id-prefix, "
                    "or replay that run exactly with the same --end-time (and the same scale)")
            print("  an earlier run with the same seed and end time is there: replaying it "
                  "(the services answer each request from their idempotency records)", file=out)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                die(f"contact-service: {error.code().name}: {error.details()}")

    define_pipelines(pb.pipes_grpc.PipelineServiceStub(channels["pipeline"]),
                     world.integrations["sales-ops"], world.import_time - DAY, args.id_prefix)

    progress = Progress(total)
    runner = Runner(channels, args.concurrency, args.timeout, progress)
    progress.start()
    run_started = time.monotonic()
    try:
        for name, chains in phases:
            runner.run_phase(name, chains)
    except KeyboardInterrupt:
        progress.finish()
        print("\ndemo: interrupted; what was sent stays (run again with the same flags and "
              "--end-time to finish: done commands are answered from idempotency records)",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    progress.finish()
    elapsed = time.monotonic() - run_started
    done = sum(runner.ok.values())
    failed = sum(runner.failed.values())

    skipped = total - done - failed
    print(f"\nSent {done:,} commands in {format_duration(elapsed)} ({done / elapsed:,.0f}/s, "
          f"concurrency {args.concurrency}); {failed:,} failed"
          f"{f', {skipped:,} skipped after a failure in their chain' if skipped else ''}"
          f"{f', {runner.retries:,} retries' if runner.retries else ''}.", file=out)
    per_service = collections.Counter()
    for (service, _), n in runner.ok.items():
        per_service[service] += n
    print("  by service: " + ", ".join(f"{s} {n:,}" for s, n in sorted(per_service.items())),
          file=out)
    print_planned(world.planned, out)
    integrations = ", ".join(f"{n} ({INTEGRATIONS[n][1]})" for n in INTEGRATIONS
                             if n != "demo-reporting")
    print(f"  actors: {len(world.reps)} reps (kind user, sub = rep id); integrations (kind "
          f"service): {integrations}", file=out)
    if runner.failures:
        print("  first failures:", file=out)
        for line in runner.failures:
            print(f"    {line}", file=out)
        for (service, method), n in sorted(runner.failed.items()):
            print(f"    {service}.{method}: {n:,} failed", file=out)

    if args.no_report:
        return EXIT_PARTIAL if failed else EXIT_OK
    try:
        consistency, waited = wait_for_metrics(metrics, reporting, runner.latest,
                                               args.metrics_wait)
        kinds = {"week": "PERIOD_KIND_ISO_WEEK", "month": "PERIOD_KIND_MONTH"}
        report_time = ts(end - 1)
        card = metrics.GetAdoptionScorecard(pb.met.GetAdoptionScorecardRequest(
            period_kind=kinds[args.scorecard_period], time=report_time, consistency=consistency),
            metadata=reporting, timeout=60)
        board = metrics.GetBusinessDashboard(pb.met.GetBusinessDashboardRequest(
            period_kind=kinds[args.dashboard_period], time=report_time, consistency=consistency),
            metadata=reporting, timeout=60)
        status = metrics.GetProjectionStatus(pb.met.GetProjectionStatusRequest(),
                                             metadata=reporting, timeout=10)
    except grpc.RpcError as error:
        die(f"metrics-service did not answer ({error.code().name}: {error.details()}); the "
            "traffic was sent, query it later with crmctl", EXIT_PARTIAL)
    print(f"\nmetrics-service included the demo's writes after {waited:.1f}s "
          f"(applied {status.applied_events:,} events, lag {status.receipt.lag_events}, "
          f"definition version {status.receipt.definition_version}, generation "
          f"{status.receipt.generation})", file=out)
    rep_names = {rep.id: f"({rep.name}, {rep.archetype})" for rep in world.reps}
    print_scorecard(card, rep_names, out)
    print("\n  Note: activities_logged, tasks and deals follow business time (occurred_at). "
          "active_reps, log delay and visit-report\n  compliance follow record time "
          "(recorded_at, set by the services: now), so in simulated weeks only the last 48 h\n"
          "  can be on time; late reps' recent visits still lack their reports.", file=out)
    print_dashboard(board, out)
    try:
        print_trend(metrics, reporting, consistency, start, end, out)
    except grpc.RpcError as error:
        print(f"\n(week-by-week table unavailable: {error.code().name}: {error.details()})",
              file=out)
    positions = ", ".join(f"{p.topic.split('.')[1]}/{p.partition}@{p.next_offset}"
                          for p in board.receipt.positions)
    print(f"\nReceipt: definition version {board.receipt.definition_version}, positions "
          f"{positions}", file=out)
    print(f"\nDone in {format_duration(time.monotonic() - t0)}.", file=out)
    return EXIT_PARTIAL if failed else EXIT_OK


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ndemo: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        sys.exit(EXIT_FATAL)
