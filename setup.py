"""Packaging for memesh: one shared MCP / knowledge-graph daemon per user."""
import pathlib
import re

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent
VERSION = re.search(r'^__version__ = "([^"]+)"', (HERE / "memesh" / "_version.py").read_text(), re.M).group(1)

# Team storage on PostgreSQL (storage.url = postgresql://...): psycopg 3 and its pool.
POSTGRES_REQUIRES = ["psycopg[binary,pool]>=3.1"]

TEST_REQUIRES = [
    "pytest>=8",
    "hypothesis>=6.100",
    # A hung test fails on its own instead of eating the CI budget.
    "pytest-timeout>=2.2",
    # The official MCP client, used by the end-to-end tests as a real peer.
    "mcp==2.3.0",
    # Build the two real installations of the upgrade tests without build isolation: venvs
    # of Python 3.12+ come without setuptools, and setuptools < 70 needs wheel.
    "setuptools>=61",
    "wheel>=0.40",
    # Two test processes: most tests wait on real daemons and windows, so two workers on
    # two cores cut the suite from ~7 to ~4.5 minutes and CI runs it on two Pythons.
    "pytest-xdist>=3.5",
    # The PostgreSQL backend is tested too (against a real server the tests start).
    *POSTGRES_REQUIRES,
]

setup(
    name="memesh",
    version=VERSION,
    description="One shared, long-lived memory daemon (MCP server, knowledge graph, A2A) for all AI coding sessions of a user",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["memesh", "memesh.*"]),
    install_requires=[
        "psutil>=5.9",
        "filelock>=3.12",
        "pyyaml>=6.0",
        "argh>=0.30",
        "colorlog>=6.7",
        # Progress bars for `memesh graph import` on a terminal (not hand-drawn).
        "tqdm>=4.60",
        # PEP 440 versions (0.2.0rc1, 0.2.0.post1) compared as pip compares them.
        "packaging>=22",
        # The A2A front door: the official A2A SDK's server side (JSON-RPC, SSE, types) and
        # a real ASGI server for it, imported by the daemon only after it is ready.
        "a2a-sdk[http-server]==1.3.0",
        "uvicorn>=0.30",
    ],
    extras_require={"test": TEST_REQUIRES, "postgres": POSTGRES_REQUIRES},
    entry_points={"console_scripts": ["memesh=memesh.cli.main:main"]},
    classifiers=[
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Operating System :: POSIX :: Linux",
        "Operating System :: MacOS",
    ],
)
