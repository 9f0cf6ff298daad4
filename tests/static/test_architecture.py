"""The layout's promises that a linter cannot see: no import cycle between any two modules, and
``core`` importable without Flask (``make lint`` checks the rest of the contract in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys

import grimp

from tests.static.dockerfile import ROOT


def test_no_module_imports_itself_through_others():
    graph = grimp.build_graph("core", "api")
    cycles = sorted(
        (importer, imported)
        for importer in graph.modules
        for imported in graph.find_modules_directly_imported_by(importer)
        if imported in graph.modules and graph.chain_exists(importer=imported, imported=importer)
    )
    assert cycles == []


def test_the_framework_imports_neither_flask_nor_the_service_settings():
    """Not even the command line: it reads ``core.settings``, which ``config`` builds on."""
    code = (
        "import sys, core, core.artifacts.install, core.artifacts.optimize, core.serving.holder, core.cli, core.settings; "
        "leaked = {m.split('.')[0] for m in sys.modules} & {'flask', 'api', 'config'}; sys.exit(str(leaked) if leaked else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_settings_import_neither_metrics_nor_tensorflow():
    """gunicorn's master reads config before it sets PROMETHEUS_MULTIPROC_DIR: had it imported
    prometheus_client, every worker would count in private memory and /metrics would add nothing up."""
    code = (
        "import sys, config; "
        "leaked = {'prometheus_client', 'tensorflow', 'flask'} & set(sys.modules); sys.exit(str(leaked) if leaked else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_the_worker_class_imports_neither_metrics_nor_flask():
    """gunicorn's master imports the worker class before ``on_starting`` sets PROMETHEUS_MULTIPROC_DIR,
    so ``api.server.worker`` imports the HTTP layer only inside the worker process."""
    code = (
        "import sys, api.server.worker; "
        "leaked = {'prometheus_client', 'tensorflow', 'flask'} & {m.split('.')[0] for m in sys.modules}; "
        "leaked |= {m for m in sys.modules if m.startswith('api.') and not m.startswith('api.server')}; "
        "sys.exit(str(leaked) if leaked else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
