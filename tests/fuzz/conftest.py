import os

from fuzzing import write_stats


def pytest_sessionfinish(session, exitstatus):  # the last counters of this process
    path = os.environ.get("FLINKWIRE_FUZZ_STATS")
    if path:
        write_stats(path)
