"""`make demo` against a running system: a small seeded organisation goes through the public
APIs with no failed command, the report shows the scorecard and dashboard with the demo's reps,
and the same seed gives the same commands."""

import os
import re
import subprocess
import unittest

import harness

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = ["--reps", "6", "--accounts", "40", "--contacts", "150", "--weeks", "3",
         "--concurrency", "8"]


def demo(system, *args):
    env = dict(os.environ, CRM_JWT_HS256_SECRET=harness.SECRET)
    return subprocess.run(
        ["/usr/bin/python3", os.path.join(ROOT, "tools/demo/demo.py"), *SMALL,
         "--contact", system.address("contact"), "--activity", system.address("activity"),
         "--pipeline", system.address("pipeline"), "--metrics", system.address("metrics"),
         *args], env=env, capture_output=True, text=True, timeout=600)


class DemoTest(unittest.TestCase):
    def test_a_small_demo_runs_clean_and_reports_the_kpis(self):
        with harness.System() as system:
            dry = demo(system, "--seed", "7", "--end-time", "2026-11-20T12:00:00Z", "--dry-run")
            self.assertEqual(dry.returncode, 0, dry.stderr)
            again = demo(system, "--seed", "7", "--end-time", "2026-11-20T12:00:00Z",
                         "--dry-run")
            fingerprint = re.search(r"fingerprint\W+(\w+)", dry.stdout + dry.stderr)
            self.assertIsNotNone(fingerprint, dry.stdout + dry.stderr)
            self.assertIn(fingerprint.group(1), again.stdout + again.stderr)

            run = demo(system, "--seed", "7")
            self.assertEqual(run.returncode, 0, run.stdout[-3000:] + run.stderr[-3000:])
            report = run.stdout
            self.assertRegex(report, r"(?i)scorecard")
            self.assertRegex(report, r"(?i)dashboard")
            # The demo's reps are on the scorecard, and its deals reached the dashboard.
            self.assertGreaterEqual(len(re.findall(r"rep-\w+", report)), 6, report[-3000:])
            self.assertRegex(report, r"(?i)win_rate|win rate")
