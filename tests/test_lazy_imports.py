"""What an analysis loads: every CLI call and notebook pays for each module imported.

The modules below are needed only by some paths (X.509 once a certificate is seen,
PyYAML once a config file is read, process pools for shards, plots and HTML for those
outputs), so analysing a plaintext capture without a config must not load them.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT / "captures"

ON_DEMAND = ("cryptography", "yaml", "multiprocessing", "matplotlib", "jinja2", "tqdm",
             "pyshark", "scapy", "dask", "flinkwire.protocols.x509", "flinkwire.tables.shard")


def _loaded(code: str) -> list[str]:
    """The ON_DEMAND modules loaded after running `code` in a fresh interpreter."""
    probe = f"{code}\nimport sys; print(' '.join(m for m in {ON_DEMAND!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    return done.stdout.split()


def test_a_plaintext_capture_loads_none_of_the_on_demand_modules():
    code = f"import flinkwire; flinkwire.analyze({str(CAPTURES / 's1-plaintext.pcap')!r})"
    assert _loaded(code) == []


def test_a_certificate_and_a_config_file_load_what_they_need():
    capture = CAPTURES / "s2-internal-tls.pcap"
    config = CAPTURES / "s2-internal-tls.config.yaml"
    code = (f"import flinkwire; a = flinkwire.analyze({str(capture)!r}, config={str(config)!r}); "
            "assert a.tls['server_cert_subject'].notna().any()")
    assert _loaded(code) == ["cryptography", "yaml", "flinkwire.protocols.x509"]


def test_cli_help_does_not_load_pandas():
    code = ("import sys; from flinkwire.faces import cli\n"
            "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'pandas' not in sys.modules, 'pandas loaded'")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, check=True)


def test_the_demo_on_the_terminal_does_not_load_matplotlib():
    code = ("import contextlib, io; from flinkwire.faces import cli\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    assert cli.main(['demo', '--quiet']) == 0")
    assert "matplotlib" not in _loaded(code)
