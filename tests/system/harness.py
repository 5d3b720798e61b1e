"""The whole system as processes, for the system tests.

`System` starts the dev broker and the four service binaries from the build folder on free
loopback ports with a fresh data folder, and gives tests what a user has: gRPC channels
(Python grpcio with stubs generated from proto/), tokens, the topics through `kcat`, and the
`/metrics` pages. Processes can be killed (SIGKILL), stopped and restarted on the same ports
and data, and the broker can be taken down and brought back.

Nothing here imports our C++ code: the clients are grpcio, kcat and promtool.
"""

import base64
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import grpc

from crm.events.v1 import envelope_pb2

BUILD_DIR = os.environ.get("CRM_BUILD_DIR", "build")
SECRET = "system-test-secret-0123456789abcdef"
ISSUER = "crm-dev"
AUDIENCE = "crm"
TOPICS = {
    "contact": "crm.contact.events.v1",
    "activity": "crm.activity.events.v1",
    "pipeline": "crm.pipeline.events.v1",
}


def wait_until(condition, timeout=30.0, interval=0.05, what="condition"):
    """Polls `condition` until it returns a truthy value (returned) or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(subject="system-test", scopes=("admin",), ttl=3600, issuer=ISSUER, audience=AUDIENCE,
          secret=SECRET, kind=None):
    """An HS256 JWT as DESIGN.md specifies (sub, scope, exp, iss, aud, optional kind)."""
    now = int(time.time())
    claims = {"sub": subject, "scope": " ".join(scopes), "iss": issuer, "aud": audience,
              "iat": now, "exp": now + ttl}
    if kind:
        claims["kind"] = kind
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(signature)}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """One binary; its stderr goes straight to a log file, which is watched for the JSON
    "serving" line. (No pipe through this process: a Python loop copying every log line costs
    CPU the benchmarks share with the services.)"""

    def __init__(self, name, args, log_path):
        self.name = name
        self.args = args
        self.log_path = log_path
        self.popen = None
        self._ready_marker = None
        self._log_start = 0

    def start(self, ready_marker=None):
        self._ready_marker = ready_marker
        with open(self.log_path, "ab") as log:
            self._log_start = log.tell()  # a restart appends: its own lines begin here
            self.popen = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=log)

    def wait_ready(self, timeout=30.0):
        def ready():
            if self.popen.poll() is not None:
                raise AssertionError(f"{self.name} exited ({self.popen.returncode}) before "
                                     f"serving; log:\n{self.log_tail()}")
            with open(self.log_path, "rb") as f:
                f.seek(self._log_start)
                return self._ready_marker in f.read()
        try:
            wait_until(ready, timeout=timeout, interval=0.02, what=f"{self.name} to serve")
        except AssertionError as e:
            if "timed out" not in str(e):
                raise
            raise AssertionError(f"{self.name} did not start; log:\n{self.log_tail()}") from None

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, "rb") as f:
                return b"".join(f.readlines()[-lines:]).decode(errors="replace")
        except OSError:
            return ""

    def running(self):
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig):
        if self.running():
            self.popen.send_signal(sig)

    def wait(self, timeout=30.0):
        if self.popen is None:
            return None
        return self.popen.wait(timeout)


class System:
    """The dev broker and the four services. Use as a context manager."""

    SERVICES = ("contact", "pipeline", "activity", "metrics")

    def __init__(self, data_dir=None):
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="crm-system-")
        self._own_dir = data_dir is None
        self.broker = None
        self.bootstrap = None
        self.control_port = None
        self.services = {}
        self.grpc_ports = {}
        self.metrics_ports = {}
        self._channels = {}

    # --- lifecycle ---------------------------------------------------------------------------

    def __enter__(self):
        try:
            self.start_broker()
            for name in self.SERVICES:
                self.start(name)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()
        for name in reversed(list(self.services)):
            self.stop(name)
        if self.broker is not None:
            self.broker.signal(signal.SIGTERM)
            try:
                self.broker.wait(30)
            except subprocess.TimeoutExpired:
                self.broker.signal(signal.SIGKILL)
        if self._own_dir and not os.environ.get("CRM_KEEP_SYSTEM_DATA"):
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def start_broker(self):
        addr_file = os.path.join(self.data_dir, "broker.addr")
        control_file = os.path.join(self.data_dir, "broker.control")
        self.broker = Process("devbroker", [
            os.path.join(BUILD_DIR, "tools/devbroker/devbroker"), "--brokers", "1",
            "--partitions", "3", "--addr-file", addr_file, "--control-file", control_file,
        ], os.path.join(self.data_dir, "devbroker.log"))
        self.broker.start()
        wait_until(lambda: os.path.exists(addr_file) and os.path.getsize(addr_file) > 0 and
                   os.path.exists(control_file) and os.path.getsize(control_file) > 0,
                   what="the dev broker's address")
        with open(addr_file) as f:
            self.bootstrap = f.read().strip()
        with open(control_file) as f:
            self.control_port = int(f.read().strip())

    def _args(self, name):
        grpc_port = self.grpc_ports.setdefault(name, free_port())
        metrics_port = self.metrics_ports.setdefault(name, free_port())
        args = [os.path.join(BUILD_DIR, f"services/{name}/{name}-service"), "--plaintext",
                "--jwt-hs256-secret", SECRET, "--kafka-bootstrap", self.bootstrap,
                "--grpc-listen", f"127.0.0.1:{grpc_port}",
                "--metrics-listen", f"127.0.0.1:{metrics_port}",
                "--data-dir", os.path.join(self.data_dir, name)]
        if name in ("pipeline", "activity"):
            args += ["--contact-service", self.address("contact"),
                     "--contact-service-plaintext"]
        if name == "activity":
            args += ["--pipeline-service", self.address("pipeline"),
                     "--pipeline-service-plaintext"]
        if name == "metrics":
            args += ["--consumer-session-timeout-ms", "4000"]
        return args

    def start(self, name):
        """Starts (or restarts, on the same ports and data) a service; waits until it serves."""
        process = Process(name, self._args(name), os.path.join(self.data_dir, f"{name}.log"))
        self.services[name] = process
        process.start(ready_marker=b'"msg":"serving"')
        process.wait_ready()
        wait_until(lambda: self.health(name) == "SERVING", what=f"{name} to be SERVING")

    def stop(self, name):
        """SIGTERM: the graceful path (drain, flush the relay, close RocksDB)."""
        process = self.services.get(name)
        if process is None or not process.running():
            return
        process.signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.signal(signal.SIGKILL)
            process.wait(10)

    def kill(self, name):
        """SIGKILL: no shutdown code runs. Channels stay: they reconnect to the restarted
        process on the same port, as a real client's would."""
        process = self.services[name]
        process.signal(signal.SIGKILL)
        process.wait(10)

    def broker_control(self, command):
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=5) as s:
            s.sendall(command.encode() + b"\n")
            s.shutdown(socket.SHUT_WR)
            return s.recv(4096).decode()

    # --- clients -----------------------------------------------------------------------------

    def address(self, name):
        return f"127.0.0.1:{self.grpc_ports[name]}"

    def channel(self, name):
        if name not in self._channels:
            self._channels[name] = grpc.insecure_channel(self.address(name))
        return self._channels[name]

    def health(self, name):
        from stdproto import health_pb2, health_pb2_grpc
        stub = health_pb2_grpc.HealthStub(self.channel(name))
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
        except grpc.RpcError:
            return None
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)

    def metrics_page(self, name):
        url = f"http://127.0.0.1:{self.metrics_ports[name]}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.read().decode()

    def read_topic(self, service):
        """Every record of the service's topic, as (partition, offset, EventEnvelope), read with
        kcat to the end of each partition."""
        topic = TOPICS[service]
        result = subprocess.run(
            ["kcat", "-C", "-b", self.bootstrap, "-t", topic, "-o", "beginning", "-e", "-q",
             "-f", "%p %o %S\n%s"],
            capture_output=True, timeout=60, check=True)
        return parse_kcat(result.stdout)


def parse_kcat(output):
    """Parses kcat's "-f '%p %o %S\\n%s'" records: a header line with partition, offset and the
    value's size, then exactly that many bytes of value."""
    records = []
    position = 0
    while position < len(output):
        end = output.index(b"\n", position)
        partition, offset, size = (int(part) for part in output[position:end].split())
        value = output[end + 1:end + 1 + size]
        position = end + 1 + size
        envelope = envelope_pb2.EventEnvelope()
        envelope.ParseFromString(value)
        records.append((partition, offset, envelope))
    return records


def metric_sum(page, name):
    """The sum of a metric's samples on a /metrics page (0 when it has none)."""
    total = 0.0
    for line in page.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def metadata(access_token):
    return (("authorization", f"Bearer {access_token}"),)
