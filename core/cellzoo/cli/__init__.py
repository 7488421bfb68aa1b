"""The ``cellzoo`` command line.

Each command lives in a module named for what it does; adding one is an import and an
``add_command`` line below. Command modules import only click at module level, so that
``cellzoo --help``, ``list``, ``info`` and ``plugins`` import neither torch nor scanpy.
"""

from __future__ import annotations

from ._app import main
from .bench import bench_command
from .catalog import info_command, list_command, plugins_command
from .deploy import export_command, run_command
from .hub import build_command, bundle_command, pull_command, push_command
from .models import predict_command, sample_command, train_command, upscale_command, verify_command
from .newplugin import new_plugin_command

main.add_command(list_command)
main.add_command(info_command)
main.add_command(plugins_command)
main.add_command(train_command)
main.add_command(predict_command)
main.add_command(sample_command)
main.add_command(upscale_command)
main.add_command(verify_command)
main.add_command(export_command)
main.add_command(run_command)
main.add_command(bench_command)
main.add_command(new_plugin_command)
main.add_command(pull_command)
main.add_command(push_command)
main.add_command(build_command)
main.add_command(bundle_command)

__all__ = ["main"]
