#!/usr/bin/env python3
"""Renders Google Benchmark JSON files into docs/benchmarks.md (used by `make bench`)."""

import argparse
import datetime
import json
import platform
import re
import subprocess


def machine(tmpdir):
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    fs = subprocess.run(["df", "-T", tmpdir], capture_output=True, text=True).stdout.splitlines()[-1].split()
    return (f"{model}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores, "
            f"{mem_kib / 1024 / 1024:.0f} GiB RAM; stores on {fs[1]} ({fs[0]}); {platform.platform()}")


def event_store_section(lines, get, rate, ms):
    """The event store table and its ratios to the raw RocksDB limits."""
    lines += ["## Event store (1 KiB events, WAL synced before acknowledgement)", "",
              "| what | events/s | p50 ms | p99 ms | commands per fsync |", "|---|---:|---:|---:|---:|"]
    raw_write = get("BM_RawSyncedWrite")
    lines.append(f"| raw: one synced RocksDB put, 1 writer | {rate(raw_write)} | | | 1 |")
    for n in (16, 64):
        lines.append(f"| raw: synced RocksDB batch of {n} puts, no store logic | {rate(get('BM_RawSyncedBatch', str(n)))} | | | {n} |")
    def per_fsync(b):
        return f"{b['commands_per_fsync']:.1f}" if b and "commands_per_fsync" in b else ""

    for n in (1, 16, 64):
        b = get("BM_AppendInFlight", str(n))
        lines.append(f"| EventStore::AppendAsync, {n} writer{'s' if n > 1 else ''} in flight (how services call it) | {rate(b)} | {ms(b, 'p50_ms')} | {ms(b, 'p99_ms')} | {per_fsync(b)} |")
    for t in (1, 16, 64):
        b = get("BM_Append", "", t)
        lines.append(f"| EventStore::Append, {t} blocking writer thread{'s' if t > 1 else ''} | {rate(b)} | {ms(b, 'p50_ms')} | {ms(b, 'p99_ms')} | {per_fsync(b)} |")
    shaped = get("BM_AppendContactShaped", "64")
    if shaped:
        lines.append(f"| EventStore::AppendAsync, a contact create's writes (a 400 B event, state, 8 index keys, request id), 64 in flight, WAL not synced: the writer thread's CPU is the limit | {rate(shaped)} | | | |")

    lines += ["", "Ratios to the raw limits (same run):", ""]
    ours1, raw1 = get("BM_AppendInFlight", "1"), raw_write
    raw64 = get("BM_RawSyncedBatch", "64")
    if ours1 and raw1:
        lines.append(f"- 1 writer vs one synced put: {ours1['items_per_second'] / raw1['items_per_second']:.0%}")
    for label, ours in (("64 writers in flight", get("BM_AppendInFlight", "64")),
                        ("64 blocking threads", get("BM_Append", "", 64))):
        if ours and raw64:
            ratio = ours["items_per_second"] / raw64["items_per_second"]
            verdict = "met" if ratio >= 0.5 else "missed"
            lines.append(f"- {label} vs synced batches of 64: {ratio:.0%} (target >= 50%: {verdict})")
    lines += ["", "64 blocking threads on 2 cores spend most of their time in context switches (perf: "
              "futex wake/wait, `finish_task_switch`); services never block a thread per call, they call "
              "`AppendAsync` from gRPC callback reactors, which is the in-flight row."]

def short_name(name):
    """BM_Append/min_time:2.000/real_time/threads:16 -> ("BM_Append", "16 threads")."""
    parts = name.split("/")
    args = [p for p in parts[1:] if not p.startswith(("min_time", "real_time", "threads"))]
    threads = re.search(r"threads:(\d+)", name)
    return parts[0], "/".join(args), int(threads.group(1)) if threads else 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--tmpdir", default="/tmp")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()

    rows = {}
    for path in args.files:
        with open(path) as f:
            for b in json.load(f)["benchmarks"]:
                if b.get("run_type") == "aggregate" or "error_message" in b or "error_occurred" in b:
                    continue
                rows[short_name(b["name"])] = b

    def get(name, arg="", threads=1):
        return rows.get((name, arg, threads))

    def rate(b):
        return f"{b['items_per_second']:,.0f}" if b else "n/a"

    def ms(b, key):
        return f"{b[key]:.2f}" if b and key in b else ""

    lines = [
        "# Benchmarks",
        "",
        "Produced by `make bench` (tests/bench/run.sh); numbers from one run on the machine below.",
        "Compare ratios within one run: machines here are noisy. What the profiles showed, what "
        "was changed and the figures before and after: [performance.md](performance.md).",
        "",
        f"- Machine: {machine(args.tmpdir)}",
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
    ]
    if any(key[0].startswith(("BM_Raw", "BM_Append")) for key in rows):  # the event store ran
        event_store_section(lines, get, rate, ms)


    throughput = next((b for key, b in rows.items() if key[0] == "BM_RelayThroughput"), None)
    latency = next((b for key, b in rows.items() if key[0] == "BM_RelayPublishLatency"), None)
    round_trip = next((b for key, b in rows.items() if key[0] == "BM_BrokerRoundTrip"), None)
    if throughput or latency or round_trip:
        lines += ["", "## Outbox relay to the dev broker (librdkafka mock cluster, loopback)", "",
                  "| what | value |", "|---|---:|"]
        if throughput:
            lines.append(f"| relay throughput, 1 KiB events already in the log | {rate(throughput)} events/s |")
        if latency:
            lines.append(f"| append to confirmed checkpoint, idle relay, p50 / p99 | "
                         f"{latency['p50_us'] / 1000:.2f} / {latency['p99_us'] / 1000:.2f} ms |")
        if round_trip:
            lines.append(f"| raw: one 1 KiB record produced (acks=all) until a consumer has it "
                         f"(`fetch.wait.max.ms=5`, as metrics-service), p50 / p99 | "
                         f"{round_trip['p50_us'] / 1000:.2f} / {round_trip['p99_us'] / 1000:.2f} ms |")

    def service_table(title, calls):
        """A table of calls (label, benchmark name) at 1, 16 and 64 callers; the rows found."""
        found = {label: {t: get(name, "", t) for t in (1, 16, 64)} for label, name in calls}
        if not any(b for by_threads in found.values() for b in by_threads.values()):
            return found
        lines.extend(["", f"## {title}", "",
                      "Client and services share the machine's 2 cores; every call carries a bearer token.", "",
                      "| call | callers | ops/s | p50 ms | p99 ms |", "|---|---:|---:|---:|---:|"])
        for label, by_threads in found.items():
            for t, b in by_threads.items():
                if b:
                    lines.append(f"| {label} | {t} | {rate(b)} | {ms(b, 'p50_ms')} | {ms(b, 'p99_ms')} |")
        return found

    contact = service_table("contact-service over gRPC (the real binary on loopback, synced durability)",
                            (("CreateContact", "BM_CreateContact"), ("GetContact", "BM_GetContact")))
    creates = contact["CreateContact"]
    if creates[64]:
        store64 = get("BM_AppendInFlight", "64")
        if store64:
            lines.append("")
            lines.append(f"- CreateContact at 64 callers vs the store's synced append at 64 in flight: "
                         f"{creates[64]['items_per_second'] / store64['items_per_second']:.0%}")
        footprint = next((b for key, b in rows.items() if key[0] == "BM_FootprintAfterContacts"), None)
        if footprint:
            lines.append(f"- After {footprint['contacts']:,.0f} contacts: service resident memory "
                         f"{footprint['rss_mib']:,.0f} MiB, RocksDB folder {footprint['disk_mib']:,.0f} MiB")

    pipeline = service_table(
        "pipeline-service over gRPC (real binaries: pipeline-service and the contact-service it calls)",
        (("CaptureLead", "BM_CaptureLead"), ("MoveOpportunityStage", "BM_MoveStage"),
         ("ConvertLead", "BM_ConvertLead")))
    if pipeline["ConvertLead"][64] and pipeline["CaptureLead"][64]:
        lines.append("")
        lines.append("- ConvertLead is two idempotent creates in contact-service (each a synced append "
                     "there) and two synced appends here: at 64 callers it runs at "
                     f"{pipeline['ConvertLead'][64]['items_per_second'] / pipeline['CaptureLead'][64]['items_per_second']:.0%}"
                     " of CaptureLead (one append).")

    activity = service_table(
        "activity-service over gRPC (real binaries: activity-service, and the contact-service it asks "
        "about every contact)",
        (("LogActivity (asks contact-service)", "BM_LogActivity"),
         ("LogActivity, contact cache on", "BM_LogActivityCachedContact"),
         ("contact-service ValidateReferences, 1 id", "BM_ValidateOneContact"),
         ("contact-service ValidateReferences, 64 ids", "BM_ValidateBatchOf64")))
    plain, cached = activity["LogActivity (asks contact-service)"], activity["LogActivity, contact cache on"]
    one, batch = (activity["contact-service ValidateReferences, 1 id"],
                  activity["contact-service ValidateReferences, 64 ids"])
    notes = []
    for t in (1, 16, 64):
        if plain[t] and cached[t]:
            notes.append(f"- {t} caller{'s' if t > 1 else ''}: the validation call costs "
                         f"{plain[t]['p50_ms'] - cached[t]['p50_ms']:.2f} ms of LogActivity's p50; "
                         f"with the cache LogActivity runs at "
                         f"{cached[t]['items_per_second'] / plain[t]['items_per_second']:.2f}x the ops/s.")
    for t in (1, 16, 64):
        if one[t] and batch[t]:
            notes.append(f"- Batching at {t} caller{'s' if t > 1 else ''}: 64 ids per call check "
                         f"{64 * batch[t]['items_per_second']:,.0f} ids/s against "
                         f"{one[t]['items_per_second']:,.0f} ids/s one per call "
                         f"({64 * batch[t]['items_per_second'] / one[t]['items_per_second']:.0f}x).")
    if notes:
        lines += [""] + notes

    lines += ["", "Reproduce: `make bench` (set `BENCH_TMPDIR` to put the stores on another disk).", ""]
    with open(args.out, "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
