"""The ``stimgen`` command: thin argparse front end over the library.

Each subcommand is registered with :func:`command`; its function adds its arguments to the
subparser and returns the handler that runs it. Handlers return an exit status. A
``ValueError`` or ``OSError`` becomes one line on stderr and exit status 2, never a
traceback. Subcommands that report numbers take ``--json`` and then print exactly one JSON
object on stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from typing import Any

from ._version import __version__

Handler = Callable[[argparse.Namespace], int]
_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], Handler]]] = {}


def command(name: str, help: str) -> Callable:
    """Register a subcommand: the decorated function configures its parser, returns a handler."""

    def decorator(configure: Callable[[argparse.ArgumentParser], Handler]):
        _COMMANDS[name] = (help, configure)
        return configure

    return decorator


# -- shared helpers for subcommands ------------------------------------------------------
def jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, tuples and non-finite floats into JSON-ready values."""
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def print_json(obj: Any) -> None:
    """Print one JSON object on stdout."""
    print(json.dumps(jsonable(obj), indent=2))


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def add_geometry_args(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """``--ppd P`` or the three screen flags."""
    g = parser.add_argument_group("viewing geometry (give --ppd or the three screen flags)")
    g.add_argument("--ppd", type=float, help="pixels per degree")
    g.add_argument("--distance-cm", type=float, help="viewing distance in cm")
    g.add_argument("--screen-width-cm", type=float, help="visible screen width in cm")
    g.add_argument("--screen-width-px", type=int, help="horizontal screen resolution in px")
    parser.set_defaults(_geometry_required=required)


def geometry_from_args(args: argparse.Namespace):
    """Build the ViewingGeometry the user asked for, or None when optional and absent."""
    from .geometry import ViewingGeometry

    screen = (args.distance_cm, args.screen_width_cm, args.screen_width_px)
    if args.ppd is not None:
        if any(x is not None for x in screen):
            raise ValueError("give either --ppd or the screen flags, not both")
        return ViewingGeometry.from_ppd(args.ppd)
    if all(x is not None for x in screen):
        return ViewingGeometry(*screen)
    if any(x is not None for x in screen):
        raise ValueError(
            "the screen needs all of --distance-cm, --screen-width-cm and --screen-width-px"
        )
    if getattr(args, "_geometry_required", True):
        raise ValueError("give --ppd or --distance-cm, --screen-width-cm and --screen-width-px")
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stimgen",
        description="Band-limited noise stimuli for vision science, in cycles per degree.",
    )
    parser.add_argument("--version", action="version", version=f"stimgen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, configure) in _COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_handler=configure(p))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``stimgen`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_handler", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args._handler(args) or 0)
    except (ValueError, OSError) as exc:
        msg = " ".join(str(exc).split()) or type(exc).__name__
        print(f"stimgen {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"stimgen {args.command}: interrupted", file=sys.stderr)
        return 130


# == subcommands ========================================================================
# Each block below registers one subcommand. Blocks are appended in this file; keep each
# one thin: parse, call the library, print.


@command("geometry", "viewing geometry: ppd, Nyquist frequency and screen width in degrees")
def _geometry(p: argparse.ArgumentParser) -> Handler:
    add_geometry_args(p)
    add_json_flag(p)

    def run(args: argparse.Namespace) -> int:
        g = geometry_from_args(args)
        d = g.to_dict()
        if args.json:
            print_json(d)
        else:
            print(f"ppd (central degree): {d['ppd']:.4f} px/deg")
            print(f"Nyquist:              {d['nyquist_cpd']:.4f} cpd")
            if "screen_width_deg" in d:
                print(f"screen width:         {d['screen_width_deg']:.4f} deg")
                print(f"screen-average ppd:   {d['mean_ppd']:.4f} px/deg (not the central ppd)")
        return 0

    return run
