"""`make run`'s script (deploy/run-local.sh) as a newcomer uses it: it starts the dev broker and
the four services on the configured ports and data folder, prints how to reach them, stops
everything cleanly on Ctrl-C, and the data survives a restart."""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import unittest

import grpc

from crm.contact.v1 import contact_pb2, contact_service_pb2, contact_service_pb2_grpc
from stdproto import health_pb2, health_pb2_grpc

import harness
from harness import metadata, token

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVICES = ("contact", "activity", "pipeline", "metrics")


class LocalRun:
    """deploy/run-local.sh in its own process group, as a terminal runs it."""

    def __init__(self, data_dir, ports):
        self.env = dict(os.environ, BUILD_DIR=os.path.abspath(harness.BUILD_DIR),
                        CRM_DATA_DIR=data_dir, CRM_JWT_HS256_SECRET=harness.SECRET)
        for name in SERVICES:
            self.env[f"CRM_{name.upper()}_PORT"] = str(ports[name][0])
            self.env[f"CRM_{name.upper()}_METRICS_PORT"] = str(ports[name][1])
        self.output = []
        self.up = threading.Event()
        self.popen = subprocess.Popen([os.path.join(ROOT, "deploy/run-local.sh")], env=self.env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.popen.stdout:
            self.output.append(line.decode(errors="replace"))
            if b"Press Ctrl-C to stop." in line:
                self.up.set()
        self.popen.stdout.close()

    def text(self):
        return "".join(self.output)

    def ctrl_c(self):
        """What a terminal does on Ctrl-C: SIGINT to the whole foreground process group."""
        os.killpg(self.popen.pid, signal.SIGINT)
        return self.popen.wait(90)


def serving(port):
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            return health_pb2.HealthCheckResponse.ServingStatus.Name(
                health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                          timeout=2).status)
        except grpc.RpcError as error:
            return error.code().name


class LocalRunTest(unittest.TestCase):
    def setUp(self):
        self.data_dir = tempfile.mkdtemp(prefix="crm-local-run-")
        self.ports = {name: (harness.free_port(), harness.free_port()) for name in SERVICES}

    def tearDown(self):
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def start(self):
        run = LocalRun(self.data_dir, self.ports)
        if not run.up.wait(120):
            os.killpg(run.popen.pid, signal.SIGKILL)
            self.fail("run-local.sh did not come up:\n" + run.text())
        return run

    def test_starts_everything_prints_how_to_reach_it_stops_on_ctrl_c_and_keeps_data(self):
        run = self.start()
        printed = run.text()
        for name in SERVICES:
            self.assertIn(f"{name}-service:", printed)
            self.assertIn(f"127.0.0.1:{self.ports[name][0]}", printed)
            self.assertEqual(serving(self.ports[name][0]), "SERVING", name)
        self.assertRegex(printed, r"export CRM_TOKEN=\S+")
        self.assertTrue(os.path.getsize(os.path.join(self.data_dir, "broker.addr")) > 0)

        # The printed token works.
        printed_token = re.search(r"export CRM_TOKEN=(\S+)", printed).group(1)
        with grpc.insecure_channel(f"127.0.0.1:{self.ports['contact'][0]}") as channel:
            contacts = contact_service_pb2_grpc.ContactServiceStub(channel)
            created = contacts.CreateContact(contact_service_pb2.CreateContactRequest(
                contact_id="kept-1", request_id="kept-1", channel="web_form",
                contact=contact_pb2.Contact(given_name="Kept", emails=["kept@example.com"])),
                metadata=metadata(printed_token), timeout=10)
        self.assertEqual(created.version, 1)

        self.assertEqual(run.ctrl_c(), 0, run.text())
        self.assertIn("stopping", run.text())
        for name in SERVICES:
            self.assertEqual(serving(self.ports[name][0]), "UNAVAILABLE", f"{name} still up")

        # Same data folder: the contact is still there.
        run = self.start()
        try:
            with grpc.insecure_channel(f"127.0.0.1:{self.ports['contact'][0]}") as channel:
                contacts = contact_service_pb2_grpc.ContactServiceStub(channel)
                kept = contacts.GetContact(
                    contact_service_pb2.GetContactRequest(contact_id="kept-1"),
                    metadata=metadata(token("reader", ("contacts:read",))), timeout=10)
            self.assertEqual(kept.given_name, "Kept")
        finally:
            self.assertEqual(run.ctrl_c(), 0, run.text())
