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
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from ._json import jsonable, print_json
from ._version import __version__

Handler = Callable[[argparse.Namespace], int]
# order of the subcommands in --help: the main job first, analysis tools last
_HELP_ORDER = ("run", "verify", "regenerate", "report", "export", "noise", "target", "spectrum",
               "design", "geometry", "display", "stats", "flow", "colorize")
_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], Handler]]] = {}


def command(name: str, help: str) -> Callable:
    """Register a subcommand: the decorated function configures its parser, returns a handler."""

    def decorator(configure: Callable[[argparse.ArgumentParser], Handler]):
        _COMMANDS[name] = (help, configure)
        return configure

    return decorator


# -- shared helpers for subcommands ------------------------------------------------------
def _interrupt_in_chain(exc: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt (or SIGTERM/SIGHUP ``Terminated``) that caused ``exc``, if any."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def _num_or_na(x: Any) -> str:
    """A measured number in 3 significant digits, or "n/a" where it could not be measured."""
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.3g}"


def _one_line(text: Any) -> str:
    """``text`` with every run of whitespace (newlines included) made one space."""
    return " ".join(str(text).split())


def _num(x: float, digits: int = 4) -> str:
    """``x`` with ``digits`` decimals, or in ``g`` notation when that would hide it
    (below 1e-3 or above 1e9 in magnitude: ``1.5e-07`` rather than ``0.0000``)."""
    if x != 0 and math.isfinite(x) and not 1e-3 <= abs(x) < 1e9:
        return f"{x:.{digits}g}"
    return f"{x:.{digits}f}"


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
    """Build the ViewingGeometry the user asked for, or None when optional and absent.

    Refuses screens whose numbers float64 cannot carry (ppd, its Nyquist frequency, the
    screen's angle and average ppd), naming the flags; shared by every subcommand.
    """
    from .geometry import PPD_MAX, PPD_MIN, GeometryRangeError, ViewingGeometry

    screen = (args.distance_cm, args.screen_width_cm, args.screen_width_px)
    flags = ("--ppd" if args.ppd is not None
             else "--distance-cm, --screen-width-cm and --screen-width-px")
    try:
        if args.ppd is not None:
            if any(x is not None for x in screen):
                raise ValueError("give either --ppd or the screen flags, not both")
            g = ViewingGeometry.from_ppd(args.ppd)
        elif all(x is not None for x in screen):
            g = ViewingGeometry(*screen)
        elif any(x is not None for x in screen):
            raise ValueError(
                "the screen needs all of --distance-cm, --screen-width-cm and --screen-width-px"
            )
        elif getattr(args, "_geometry_required", True):
            raise ValueError("give --ppd or --distance-cm, --screen-width-cm and --screen-width-px")
        else:
            return None
        checked = [g.ppd, *(x for x in g.to_dict().values() if isinstance(x, float))]
    except GeometryRangeError as exc:
        raise ValueError(f"{flags}: the viewing geometry gives {exc.quantity} {exc.value:g} px/deg, "
                         f"which is not a usable finite number > 0 (it cannot be computed in "
                         f"float64; allowed: [{PPD_MIN:.4g}, {PPD_MAX:.4g}] px/deg); give realistic "
                         "values") from None
    except (ArithmeticError, OverflowError) as exc:
        raise ValueError(f"{flags}: the viewing geometry cannot be computed in float64 "
                         f"({_one_line(exc) or type(exc).__name__}); give realistic values") from None
    tiny = sys.float_info.min  # below it, float64 loses precision (subnormal numbers)
    if not all(math.isfinite(x) and (x == 0 or abs(x) >= tiny) for x in checked):
        raise ValueError(f"{flags}: the viewing geometry gives ppd {g.ppd:g} px/deg, which is "
                         "not a usable finite number > 0; give realistic values")
    return g


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors on one line (exit 2), like every other stimgen error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number_or_fraction(text: str) -> float:
    """``0.5``, ``1e-3`` or a fraction such as ``1/65535``."""
    try:
        if "/" in text:
            num, den = text.split("/", 1)
            return float(num) / float(den)
        return float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected a number or a fraction like 1/255, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="stimgen",
        description="Band-limited noise stimuli for vision science, in cycles per degree.",
    )
    parser.add_argument("--version", action="version", version=f"stimgen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    order = {name: i for i, name in enumerate(_HELP_ORDER)}
    for name, (help_text, configure) in sorted(_COMMANDS.items(), key=lambda kv: order.get(kv[0], 99)):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_handler=configure(p))
    return parser


def _hidden_temporary(path: str) -> bool:
    """True for the hidden working names stimgen writes before renaming into place
    (``.NAME.*.tmp``, ``.NAME.*.partial``): names the user never chose."""
    import os

    name = os.path.basename(os.fspath(path).rstrip("/\\"))
    return name.startswith(".") and (".tmp" in name or ".partial" in name)


def _error_text(exc: BaseException) -> str:
    """One line for an error; an ``OSError`` on a hidden temporary file names the folder
    the user chose instead (the temporary name means nothing to them)."""
    import os

    if isinstance(exc, OSError) and exc.filename is not None and _hidden_temporary(
        str(exc.filename)
    ):
        folder = os.path.dirname(os.path.abspath(os.fspath(exc.filename)))
        reason = exc.strerror or type(exc).__name__
        return _one_line(f"cannot write in the folder {folder}: {reason}")
    return _one_line(getattr(exc, "cli_message", exc)) or type(exc).__name__


def _show_warning(message: Any, category: type, filename: str, lineno: int,
                  file: Any = None, line: str | None = None, *, command: str = "") -> None:
    """Print a Python warning as one ``stimgen CMD: warning: ...`` line (no source line)."""
    where = f"stimgen {command}" if command else "stimgen"
    print(f"{where}: warning: {_one_line(message)}", file=sys.stderr if file is None else file)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``stimgen`` command; returns the exit status.

    Errors in the user's input (``ValueError``, ``OSError``), and requests that exceed the
    memory or the recursion limit, print one line and return 2; Python warnings print as
    one ``stimgen CMD: warning: ...`` line each, without source lines.
    """
    import functools
    import warnings

    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_handler", None) is None:
        parser.print_help()
        return 2
    with warnings.catch_warnings():
        # the command's own behaviour, whatever filters the caller set: each distinct
        # warning once, as one line; deprecations are for developers, not users
        warnings.simplefilter("default")
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        warnings.showwarning = functools.partial(_show_warning, command=args.command)
        return _run_handler(args)


def _run_handler(args: argparse.Namespace) -> int:
    from ._procs import Terminated, signals_as_interrupt

    try:
        with signals_as_interrupt():  # SIGTERM and SIGHUP clean up like Ctrl-C
            return int(args._handler(args) or 0)
    except BrokenPipeError:  # e.g. `stimgen ... --json | head`: the reader left, not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (ValueError, OSError) as exc:
        msg = _error_text(exc)
        print(f"stimgen {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except MemoryError as exc:
        msg = _one_line(exc) or ("not enough memory for this request; ask for less (smaller "
                                 "images, fewer of them) or free memory")
        print(f"stimgen {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except RecursionError:
        print(f"stimgen {args.command}: error: the input is nested too deeply to process",
              file=sys.stderr)
        return 2
    except Terminated as exc:
        print(f"stimgen {args.command}: {exc}; nothing was left half-written", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print(f"stimgen {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not bad input: still one line, unless debugging
        import os

        stop = _interrupt_in_chain(exc)
        if isinstance(stop, Terminated):  # a signal that arrived inside a library's import or
            # C code surfaces wrapped in another error (numpy: ImportError): it is still the signal
            print(f"stimgen {args.command}: {stop}; nothing was left half-written", file=sys.stderr)
            return 128 + stop.signum
        if stop is not None:
            print(f"stimgen {args.command}: interrupted", file=sys.stderr)
            return 130
        if os.environ.get("STIMGEN_DEBUG"):
            raise
        msg = _one_line(exc)
        print(f"stimgen {args.command}: internal error: {type(exc).__name__}: {msg} "
              "(run with STIMGEN_DEBUG=1 for the traceback, and please report it)", file=sys.stderr)
        return 1


# == subcommands ========================================================================
# Each block below registers one subcommand. Blocks are appended in this file; keep each
# one thin: parse, call the library, print.


@command("geometry", "viewing geometry: ppd, Nyquist frequency and screen width in degrees")
def _geometry(p: argparse.ArgumentParser) -> Handler:
    add_geometry_args(p)
    add_json_flag(p)

    def run(args: argparse.Namespace) -> int:
        g = _checked_geometry(args)
        d = g.to_dict()
        if args.json:
            print_json(d)
        else:
            print(f"ppd (central degree): {_num(d['ppd'])} px/deg")
            print(f"Nyquist:              {_num(d['nyquist_cpd'])} cpd")
            if "screen_width_deg" in d:
                print(f"screen width:         {_num(d['screen_width_deg'])} deg")
                print(f"screen-average ppd:   {_num(d['mean_ppd'])} px/deg (not the central ppd)")
        return 0

    return run


def _flow_levels(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--levels must be 'auto' or an integer >= 1, got {text!r}") from None


@command("flow", "dense Lucas-Kanade optical flow between two frames (px/frame, deg/s)")
def _flow(p: argparse.ArgumentParser) -> Handler:
    p.add_argument("frame0", help="reference frame: .npy or grayscale image file")
    p.add_argument("frame1", help="moving frame, same shape")
    p.add_argument("--fps", type=float, help="frame rate in Hz; with a geometry, adds deg/s")
    p.add_argument("--sigma-window", type=float, default=4.0, help="window sigma in px")
    p.add_argument("--derivative", choices=["gaussian", "sobel"], default="gaussian")
    p.add_argument("--levels", type=_flow_levels, default="auto", help="pyramid levels or auto")
    p.add_argument("--iterations", type=int, default=3, help="warps per level")
    p.add_argument("--min-eigenvalue", type=float, help="absolute threshold (default relative)")
    p.add_argument("--normalize", choices=["global", "none"], default="global",
                   help="global (default): a global gain and offset between the frames "
                   "create no flow; none: raw brightness constancy")
    p.add_argument("--no-consistency", dest="consistency", action="store_false",
                   help="reliable = well conditioned only (no forward-backward check; half "
                   "the time)")
    p.add_argument("--consistency-px", type=float, default=0.5,
                   help="largest forward-backward error of a reliable pixel, px (default 0.5)")
    p.add_argument("--plot", metavar="FILE.png", help="write a quiver + colour-wheel figure")
    add_geometry_args(p, required=False)
    add_json_flag(p)

    def gray(path: str):
        from .io import read_image

        a = read_image(path)
        if a.ndim == 3 and (a == a[..., :1]).all():
            a = a[..., 0]  # gray stored as RGB
        if a.ndim != 2:
            raise ValueError(f"{path}: flow needs a grayscale frame, got shape {a.shape}")
        return a

    def run(args: argparse.Namespace) -> int:
        from .flow import lucas_kanade

        g = geometry_from_args(args)
        if (g is None) != (args.fps is None):
            raise ValueError("deg/s needs both --fps and --ppd (or the screen flags)")
        f0, f1 = gray(args.frame0), gray(args.frame1)
        res = lucas_kanade(
            f0, f1, sigma_window=args.sigma_window, derivative=args.derivative,
            levels=args.levels, iterations=args.iterations, min_eigenvalue=args.min_eigenvalue,
            normalize=None if args.normalize == "none" else args.normalize,
            consistency=args.consistency, consistency_px=args.consistency_px,
        )
        d = res.summary(ppd=g, fps=args.fps)
        if args.plot:
            from . import plotting

            plotting.save(plotting.plot_flow(res, reference_image=f0), args.plot)
            d["plot"] = args.plot
        if args.json:
            print_json(d)
            return 0
        print(f"median u: {d['median_u_px_per_frame']:+.4f} px/frame (x, rightwards positive)")
        print(f"median v: {d['median_v_px_per_frame']:+.4f} px/frame (y, downwards positive)")
        if "speed_deg_per_s" in d:
            print(f"median u, v: {d['median_u_deg_per_s']:+.4f}, "
                  f"{d['median_v_deg_per_s']:+.4f} deg/s")
            print(f"speed: {d['speed_deg_per_s']:.4f} deg/s, direction "
                  f"{d['direction_deg']:.1f} deg (counter-clockwise from rightwards)")
        meaning = ("well conditioned, in frame and forward-backward consistent within "
                   f"{d['consistency_px']:g} px" if d["consistency_px"] is not None
                   else "well conditioned and in frame; no consistency check")
        print(f"reliable: {100 * d['reliable_fraction']:.1f} % of pixels ({meaning}); normal "
              f"flow only (aperture problem): {100 * d['aperture_fraction']:.1f} %")
        if d["normalize"] == "global":
            print(f"brightness: moving = {d['brightness_gain']:.4g} x reference "
                  f"{d['brightness_offset']:+.4g} (removed before measuring)")
        print(f"levels {d['levels']}, iterations {d['iterations']}, window sigma "
              f"{d['sigma_window_px']:g} px, {d['derivative']} derivatives")
        return 0

    return run


# -- noise and spectrum ------------------------------------------------------------------
def _add_band_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--band-cpd", nargs=2, type=float, metavar=("LO", "HI"), help="band edges in cpd")
    p.add_argument("--peak-cpd", type=float, help="peak frequency in cpd (with --octaves)")
    p.add_argument("--octaves", type=float, help="bandwidth in octaves (with --peak-cpd)")
    p.add_argument("--level", default="half_amplitude", choices=["half_amplitude", "half_power"],
                   help="amplitude level of the band edges (default half_amplitude)")


@command("noise", "generate band-limited noise stimuli (float .npy, optional PNG) with a record")
def _noise(p: argparse.ArgumentParser) -> Handler:
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument("--size-px", nargs=2, type=int, metavar=("H", "W"), help="size in pixels")
    size.add_argument("--size-deg", nargs=2, type=float, metavar=("H", "W"), help="size in degrees")
    add_geometry_args(p)
    _add_band_args(p)
    p.add_argument("--family", default="dog",
                   help="dog (default; at least 1.76 octaves wide), log_gaussian (any width), "
                        "butterworth, ideal, white, pink, brown or power_law; critical-band "
                        "noise: lowpass and highpass (--cutoff-cpd), notch (--band-cpd: the stop band)")
    p.add_argument("--order", type=int, default=None,
                   help="Butterworth order (default 4; 8 for --family notch)")
    p.add_argument("--cutoff-cpd", type=float, help="cutoff of lowpass/highpass in cpd, at --level")
    p.add_argument("--rolloff", default="butterworth", choices=["butterworth", "gaussian"],
                   help="shape of lowpass/highpass (default butterworth of --order)")
    p.add_argument("--alpha", type=float, default=None, help="power-law exponent (pink 1, brown 2)")
    p.add_argument("--orientation-deg", type=float, help="orientation window centre (deg from vertical)")
    p.add_argument("--orientation-bandwidth-deg", type=float, default=30.0, help="window width (deg)")
    p.add_argument("--rms-contrast", type=float, default=0.2, help="RMS contrast in (0, 1] (default 0.2)")
    p.add_argument("--kind", default="gaussian", help="white noise: gaussian, uniform, binary, flat")
    p.add_argument("--seed", type=int, help="seed (default: fresh entropy, recorded)")
    p.add_argument("--count", type=int, default=1, help="number of stimuli (default 1)")
    p.add_argument("--png", choices=["8", "16"], help="also write PNGs of this bit depth")
    p.add_argument("--dither", default="none", choices=["none", "noisy-bit"],
                   help="PNG quantization: none rounds (default, as in experiment files); "
                        "noisy-bit keeps every pixel's expected value (low contrast)")
    p.add_argument("--out", required=True,
                   help="FILE.npy (one stack, with FILE.json holding the record and FILE_0000.png... "
                        "with --png) or DIR (one file per stimulus and record.json)")
    p.add_argument("--force", action="store_true", help="replace existing output")
    add_json_flag(p)

    def run(args: argparse.Namespace) -> int:
        import os
        from pathlib import Path

        import numpy as np

        from .contrast import quantize
        from .io import atomic_directory, stimulus_set_of, write_png
        from .noise import bandpass_noise

        g = geometry_from_args(args)
        if args.count < 1:
            raise ValueError(f"--count must be an integer >= 1, got {args.count}")
        if args.seed is not None and args.seed < 0:
            raise ValueError(f"--seed must be an integer >= 0, got {args.seed}")
        family, alpha = args.family, args.alpha
        aliases = {"pink": 1.0, "brown": 2.0}
        from .noise import NOISE_FAMILIES

        # the choices in the order of the help text: band-pass, critical-band, white and 1/f
        names = [f for f in NOISE_FAMILIES if f != "white"] + ["white", *aliases]
        if family not in names:
            raise ValueError(f"--family must be one of {', '.join(names)}; got {family!r}")
        if family in aliases:
            family, alpha = "power_law", aliases[family] if alpha is None else alpha
        images, record = bandpass_noise(
            size_px=args.size_px, size_deg=args.size_deg, ppd=g, band_cpd=args.band_cpd,
            peak_cpd=args.peak_cpd, octaves=args.octaves, family=family, level=args.level,
            order=args.order,
            cutoff_cpd=args.cutoff_cpd, rolloff=args.rolloff, orientation_deg=args.orientation_deg,
            orientation_bandwidth_deg=args.orientation_bandwidth_deg,
            alpha=1.0 if alpha is None else alpha, rms_contrast=args.rms_contrast,
            kind=args.kind, n=args.count, rng=args.seed,
        )
        if record["fraction_outside_range"] > 1e-3:
            print(f"stimgen noise: warning: {record['fraction_outside_range']:.2%} of the pixels lie "
                  "outside the display range [-1, 1] at this RMS contrast; lower --rms-contrast",
                  file=sys.stderr)
        pngs: list = []
        if args.png:
            # one dither stream for all images, a child of the noise seed: reproducible and
            # independent of the noise and between images
            dither_seed = {"entropy": record["seed"]["entropy"], "spawn_key": [1]}
            gen = np.random.default_rng(np.random.SeedSequence(dither_seed["entropy"], spawn_key=(1,)))
            clipped = 0.0
            for img in images:
                q, frac = quantize(img, int(args.png), dither=args.dither, rng=gen)
                pngs.append(q)
                clipped = max(clipped, frac)
            record["png"] = {"bits": int(args.png), "dither": args.dither, "dither_seed": dither_seed,
                             "clipped_fraction": clipped}
            if clipped > 1e-3:
                print(f"stimgen noise: warning: {clipped:.2%} of the pixels of some image were "
                      "clipped to [-1, 1] in the PNG; lower --rms-contrast", file=sys.stderr)
        out = Path(args.out)
        if out.suffix == ".npy":
            files = _write_noise_files(out, images, pngs, record, force=args.force)
        else:
            files = []
            names = [f"noise_{i:04d}.{ext}" for i in range(len(images))
                     for ext in (("npy", "png") if pngs else ("npy",))] + ["record.json"]
            inside = stimulus_set_of(Path(os.path.abspath(out)).parent)
            if inside is not None:
                raise ValueError(f"--out {out} is inside the stimulus set {inside}; write the "
                                 "noise elsewhere")
            with atomic_directory(out, force=args.force, kinds=("record.json",)) as tmp:
                for i, img in enumerate(images):
                    np.save(tmp / f"noise_{i:04d}.npy", img)
                    if pngs:
                        write_png(tmp / f"noise_{i:04d}.png", pngs[i])
                (tmp / "record.json").write_text(
                    json.dumps(jsonable({**record, "files": names}), indent=2))
            files = [str(out / n) for n in names]
        if args.json:
            print_json({"files": files, "record": record})
            return 0
        h, w = record["shape_px"]
        print(f"wrote {len(images)} {'stimulus' if len(images) == 1 else 'stimuli'} of {h}x{w} px to {out}")
        d = record["design"]
        if family == "power_law":
            lo, hi = (d or {}).get("band_cpd", [0.0, float("inf")])
            print(f"design: power spectrum ~ 1/f^{record['alpha']:g} (amplitude ~ 1/f^"
                  f"{record['alpha'] / 2:g}), limits {lo:.3f}-{hi:.3f} cpd")
        elif d and d["kind"] in ("lowpass", "highpass"):
            edge = d["band_cpd"][1 if d["kind"] == "lowpass" else 0]
            print(f"design: {d['kind']}, cutoff {edge:.3f} cpd at {d['level']}")
        elif d and d["kind"] == "notch":
            lo, hi = d["band_cpd"]
            print(f"design: notch (stop band) {lo:.3f}-{hi:.3f} cpd ({d['octaves']:.3f} octaves at "
                  f"{d['level']}), centre {d['center_cpd']:.3f} cpd")
        elif d:
            lo, hi = d["band_cpd"]
            print(f"design: peak {d['peak_cpd']:.3f} cpd, band {lo:.3f}-{hi:.3f} cpd "
                  f"({d['octaves']:.3f} octaves at {d['level']})")
        else:
            print("design: white noise (flat spectrum up to Nyquist)")
        return 0

    return run


def _write_noise_files(out, images, pngs, record: dict[str, Any], *, force: bool) -> list[str]:
    """``stimgen noise --out FILE.npy``: the stack, FILE.json and FILE_NNNN.png, all or nothing.

    With ``--force`` only files that the old record FILE.json lists as its own are
    replaced, and those of them the new output does not write (PNGs of a larger older
    output) are removed in the same step.
    """
    import os
    from io import BytesIO

    import numpy as np

    from .io import (
        OutputExistsError,
        atomic_files,
        check_output_file,
        noise_record_files,
        png_bytes,
    )

    rec_path = out.with_suffix(".json")
    png_paths = [out.with_name(f"{out.stem}_{i:04d}.png") for i in range(len(pngs))]
    targets = [*png_paths, out, rec_path]  # the record last: it describes the others
    for t in (out, rec_path, *png_paths):  # no fifo, device, folder; not inside a set
        check_output_file(t, force=force)
    existing = [t for t in targets if os.path.lexists(t)]
    replace: list = []
    remove: list = []
    if existing:
        owned: set[str] = set()
        if os.path.lexists(rec_path):
            try:
                owned = noise_record_files(rec_path, layout="file")
            except ValueError as exc:
                raise OutputExistsError(f"refusing to replace {rec_path}: {exc}") from None
        for t in existing:
            if t.name not in owned:
                raise OutputExistsError(
                    f"refusing to replace {t}: it is not listed as stimgen's by a noise record "
                    f"{rec_path.name}")
        replace = existing
        remove = [out.with_name(n) for n in sorted(owned) if "/" not in n
                  and out.with_name(n) not in targets and os.path.lexists(out.with_name(n))]
    names = [t.name for t in targets]
    with atomic_files(targets, replace=replace, remove=remove) as staged:
        buf = BytesIO()
        np.save(buf, images)
        staged[-2].write_bytes(buf.getvalue())
        for path, q in zip(staged, pngs, strict=False):
            path.write_bytes(png_bytes(q))
        staged[-1].write_text(json.dumps(jsonable({**record, "files": names}), indent=2))
    return [str(out), str(rec_path), *map(str, png_paths)]

# -- targets -----------------------------------------------------------------------------
@command("target", "make a target (Gabor patch or grating) and report its contrast energy E in deg^2")
def _target(p: argparse.ArgumentParser) -> Handler:
    kinds = p.add_subparsers(dest="target_kind", metavar="KIND")

    def kind(name: str, help_text: str) -> argparse.ArgumentParser:
        sp = kinds.add_parser(name, help=help_text, description=help_text)
        size = sp.add_mutually_exclusive_group(required=True)
        size.add_argument("--size-px", nargs=2, type=int, metavar=("H", "W"), help="size in pixels")
        size.add_argument("--size-deg", nargs=2, type=float, metavar=("H", "W"), help="size in degrees")
        add_geometry_args(sp)
        sp.add_argument("--sf-cpd", type=float, required=True, help="carrier frequency in cpd")
        sp.add_argument("--orientation-deg", type=float, default=0.0,
                        help="stripe orientation, deg counter-clockwise from vertical (default 0)")
        sp.add_argument("--phase-deg", type=float, default=0.0,
                        help="carrier phase at the centre in deg (0 cosine, default; 90 sine)")
        sp.add_argument("--contrast", type=float, required=True, help="peak contrast in [-1, 1]")
        sp.add_argument("--center-deg", nargs=2, type=float, metavar=("X", "Y"), default=(0.0, 0.0),
                        help="centre in deg from the image centre, x right, y up (default 0 0)")
        sp.add_argument("--noise-rms", type=float,
                        help="also report N and E/N for white noise of this RMS contrast")
        sp.add_argument("--frame-duration-s", type=float,
                        help="with --noise-rms: dynamic noise, one frame this long (N in s deg^2)")
        sp.add_argument("--out", help="write the image to FILE.npy and its record to FILE.json")
        sp.add_argument("--force", action="store_true", help="replace existing output")
        add_json_flag(sp)
        return sp

    gab = kind("gabor", "Gabor patch: a cosine grating in a Gaussian envelope")
    env = gab.add_mutually_exclusive_group(required=True)
    env.add_argument("--sigma-deg", type=float, help="standard deviation of the Gaussian envelope, deg")
    env.add_argument("--fwhm-deg", type=float, help="full width at half maximum of the envelope, deg")
    gr = kind("grating", "cosine grating, optionally in an aperture")
    gr.add_argument("--aperture", choices=["gaussian", "raised_cosine", "disk", "annulus"],
                    help="window the grating (centred on --center-deg)")
    for flag, text in (("--radius-deg", "raised_cosine, disk: radius"), ("--ramp-deg", "raised_cosine, annulus: ramp width"),
                       ("--inner-deg", "annulus: inner radius"), ("--outer-deg", "annulus: outer radius"),
                       ("--aperture-sigma-deg", "gaussian: standard deviation")):  # fmt: skip
        gr.add_argument(flag, type=float, help=f"aperture {text} in deg")

    def run(args: argparse.Namespace) -> int:
        from .energy import noise_psd
        from .targets import gabor, grating

        if args.target_kind is None:
            raise ValueError("choose a target: stimgen target gabor|grating ...")
        g = _checked_geometry(args)
        common = dict(size_px=args.size_px, size_deg=args.size_deg, ppd=g, sf_cpd=args.sf_cpd,
                      orientation_deg=args.orientation_deg, phase_deg=args.phase_deg,
                      contrast=args.contrast, center_deg=args.center_deg)
        if args.target_kind == "gabor":
            img, rec = gabor(sigma_deg=args.sigma_deg, fwhm_deg=args.fwhm_deg, **common)
        else:
            ap = None
            given = {k: getattr(args, k) for k in ("radius_deg", "ramp_deg", "inner_deg", "outer_deg")
                     if getattr(args, k) is not None}
            if args.aperture_sigma_deg is not None:
                given["sigma_deg"] = args.aperture_sigma_deg
            if args.aperture is not None:
                ap = {"kind": args.aperture, **given}
            elif given:
                raise ValueError("aperture sizes need --aperture KIND")
            img, rec = grating(aperture=ap, **common)
        out: dict[str, Any] = {"target": rec, "energy_deg2": rec["energy_deg2"]}
        if args.frame_duration_s is not None and args.noise_rms is None:
            raise ValueError("--frame-duration-s needs --noise-rms")
        if args.noise_rms is not None:
            n = noise_psd(None, ppd=g, rms_contrast=args.noise_rms, frame_duration_s=args.frame_duration_s)
            unit = "deg2" if args.frame_duration_s is None else "s_deg2"
            out["noise"] = {"family": "white", "rms_contrast": args.noise_rms, "psd": n, "unit": unit,
                            "frame_duration_s": args.frame_duration_s}
            out["e_over_n"] = rec["energy_deg2"] / n
            out["ideal_d_prime"] = math.sqrt(2.0 * out["e_over_n"])
        if args.out:
            out["files"] = _write_target_files(args.out, img, rec, force=args.force)
        if args.json:
            print_json(out)
            return 0
        h, w = rec["shape_px"]
        what = (f"gabor {args.sf_cpd:g} cpd, sigma {rec['sigma_deg']:.4g} deg" if args.target_kind == "gabor"
                else f"grating {args.sf_cpd:g} cpd")
        print(f"{what}, contrast {rec['contrast']:g}, orientation {rec['orientation_deg']:g} deg, "
              f"phase {rec['phase_deg']:g} deg; {h}x{w} px at {_num(rec['ppd'])} ppd")
        print(f"  energy E:        {rec['energy_deg2']:.6g} deg^2 (sum of c^2 / ppd^2)")
        if "energy_formula_deg2" in rec:
            print(f"  closed form:     {rec['energy_formula_deg2']:.6g} deg^2 (untruncated Gabor)")
        if "noise" in out:
            unit = "deg^2" if args.frame_duration_s is None else "s deg^2"
            print(f"  white noise N:   {out['noise']['psd']:.6g} {unit} at RMS contrast {args.noise_rms:g}")
            print(f"  E/N:             {out['e_over_n']:.6g} (ideal observer d' = {out['ideal_d_prime']:.4g})")
        if args.out:
            print(f"  wrote:           {', '.join(out['files'])}")
        return 0

    return run


def _write_target_files(out_path: str, image: Any, record: dict[str, Any], *, force: bool) -> list[str]:
    """``stimgen target --out FILE.npy``: the image and FILE.json, both or neither."""
    import os
    from io import BytesIO
    from pathlib import Path

    import numpy as np

    from .io import atomic_files, check_output_file

    out = Path(out_path)
    if out.suffix != ".npy":
        raise ValueError(f"--out must name a .npy file, got {out_path!r}")
    rec_path = out.with_suffix(".json")
    for t in (out, rec_path):
        check_output_file(t, force=force)
    existing = [t for t in (out, rec_path) if os.path.lexists(t)]
    with atomic_files([out, rec_path], replace=existing) as staged:
        buf = BytesIO()
        np.save(buf, image)
        staged[0].write_bytes(buf.getvalue())
        staged[1].write_text(json.dumps(jsonable({**record, "files": [out.name, rec_path.name]}), indent=2))
    return [str(out), str(rec_path)]


@command("spectrum", "measure the radially averaged spectrum of images in cpd (peak, band edges)")
def _spectrum(p: argparse.ArgumentParser) -> Handler:
    p.add_argument("files", nargs="+", help=".npy arrays (H, W) or (N, H, W), or images")
    add_geometry_args(p)
    p.add_argument("--bins-per-octave", type=float, default=24.0, help="spectrum bin density")
    p.add_argument("--plot", help="write a spectrum figure to this PNG file")
    add_json_flag(p)

    def run(args: argparse.Namespace) -> int:
        import numpy as np

        from .io import read_image
        from .spectrum import measure_band, radial_spectrum

        g = geometry_from_args(args)
        arrays = []
        for f in args.files:
            a = read_image(f)
            if np.iscomplexobj(a) or a.dtype.kind not in "biuf":
                raise ValueError(f"{f}: {a.dtype} values; a spectrum needs real numbers (float or "
                                 "integer images)")
            if a.ndim == 3 and a.shape[-1] in (3, 4) and min(a.shape[:2]) > 8:
                raise ValueError(f"{f}: shape {a.shape} looks like a colour image; give one "
                                 "channel, or a stack (N, H, W)")
            arrays.append(a if a.ndim == 3 else a[None])
        shapes = {a.shape[-2:] for a in arrays}
        if len(shapes) != 1:
            raise ValueError(f"all images must have the same size, got {sorted(shapes)}")
        stack = np.concatenate([a.astype(np.float64) for a in arrays])
        spec = radial_spectrum(stack, ppd=g, bins_per_octave=args.bins_per_octave)
        m = measure_band(spec)
        result = m.to_dict()
        result.update(n_images=spec.n_images, shape_px=list(spec.shape_px),
                      freq_cpd=spec.freq_cpd, power=spec.power)
        if args.plot:
            from .plotting import plot_spectrum, save

            floats = all(a.dtype.kind == "f" for a in arrays)
            ax = plot_spectrum(spec, measured=m, units="contrast" if floats else "grey level")
            save(ax.figure, args.plot)
        if args.json:
            print_json(result)
        else:
            print(f"{spec.n_images} image(s) of {spec.shape_px[0]}x{spec.shape_px[1]} px "
                  f"at {g.ppd:.4g} ppd")
            print(f"peak: {m.peak_cpd:.4g} cpd")
            for level in ("half_amplitude", "half_power"):
                lo, hi = m.band_cpd(level)
                why = m.not_measurable.get(level) or {}
                if why:  # never "inf octaves": say which edge cannot be measured, and why
                    print(f"band at {level}: {_num_or_na(lo if 'low' not in why else None)}-"
                          f"{_num_or_na(hi if 'high' not in why else None)} cpd; "
                          + "; ".join(f"{k} edge {r}" for k, r in why.items()))
                    continue
                print(f"band at {level}: {lo:.4g}-{hi:.4g} cpd ({m.octaves(level):.3f} octaves)")
        return 0

    return run


@command("colorize", "colorize a gray image from colour scribbles (Levin et al. 2004)")
def _colorize(p: argparse.ArgumentParser) -> Handler:
    p.add_argument("gray", metavar="GRAY", help="gray image file (grayscale or RGB PNG, .npy)")
    p.add_argument(
        "scribbles", metavar="SCRIBBLES", help="the gray image with colour scribbles (RGB)"
    )
    p.add_argument("--out", required=True, help="output RGB PNG (8 bit); must not exist")
    p.add_argument("--force", action="store_true",
                   help="replace an existing output file (never an input, never inside a stimulus set)")
    p.add_argument("--form", choices=["gaussian", "correlation"], default="gaussian",
                   help="weight form (default: gaussian, the authors' code)")
    p.add_argument("--space", choices=["yiq", "yuv"], default="yiq",
                   help="luminance-chrominance space (default: yiq)")
    p.add_argument("--threshold", type=float, default=0.01,
                   help="sum of |SCRIBBLES - GRAY| over RGB, in [0, 1] units, above which "
                        "a pixel counts as scribbled (default 0.01)")
    add_json_flag(p)

    def run(args: argparse.Namespace) -> int:
        import numpy as np

        from .io import atomic_write_bytes, check_output_file, png_bytes, read_image
        from .levin import colorize, scribble_mask

        def load(path: str) -> np.ndarray:
            import os

            if os.path.exists(path) and not os.path.isfile(path):  # a FIFO would block
                raise ValueError(f"{path}: not a regular file (a FIFO, device or folder "
                                 "cannot be read as an image)")
            a = read_image(path)
            full_scale = {"uint8": 255.0, "uint16": 65535.0}.get(a.dtype.name)
            if full_scale is not None:  # explicit: integer image levels -> [0, 1]
                return a / full_scale
            if a.dtype.kind != "f":
                raise ValueError(f"{path}: unsupported dtype {a.dtype} (8/16-bit images, or "
                                 "float arrays with values in [0, 1])")
            if a.size and not np.isfinite(a).all():
                raise ValueError(f"{path}: contains NaN or infinite values (allowed: [0, 1])")
            lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
            if lo < 0 or hi > 1:  # floats are never rescaled by a guess
                hint = (" (8-bit levels 0..255: save them as uint8, or divide by 255)"
                        if lo >= 0 and hi <= 255 else "")
                raise ValueError(
                    f"{path}: float values must lie in [0, 1], got {lo:g} .. {hi:g}{hint}"
                )
            return a.astype(np.float64)

        if not args.out.lower().endswith(".png"):
            raise ValueError(f"--out must name a .png file (the output is PNG), got {args.out!r}")
        check_output_file(args.out, force=args.force, inputs=(args.gray, args.scribbles))
        gray, marked = load(args.gray), load(args.scribbles)
        if marked.ndim == 2:
            marked = np.repeat(marked[..., None], 3, axis=-1)
        with _flag_names(_COLORIZE_FLAGS):
            rgb = colorize(gray, marked, form=args.form, space=args.space,
                           threshold=args.threshold)
            mask = scribble_mask(gray, marked, threshold=args.threshold)
        check_output_file(args.out, force=args.force, inputs=(args.gray, args.scribbles))
        atomic_write_bytes(args.out, png_bytes(np.round(rgb * 255.0).astype(np.uint8)),
                           replace=args.force)
        info = {
            "out": args.out,
            "shape_px": list(rgb.shape[:2]),
            "scribbled_pixels": int(mask.sum()),
            "form": args.form,
            "space": args.space,
        }
        if args.json:
            print_json(info)
        else:
            h, w = info["shape_px"]
            print(f"wrote {args.out} ({h} x {w} px, {info['scribbled_pixels']} scribbled pixels)")
        return 0

    return run


def _jobs_arg(text: str) -> int | str:
    """``auto`` or a whole number of worker processes >= 1."""
    if text == "auto":
        return text
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a whole number >= 1, got {text!r}")
    return n


_RUN_EPILOG = """\
--jobs auto (the default): one worker process per 16 million pixels of the set
(height x width x frames, summed over its stimuli), at most one per available core; a set
that gets fewer than two runs in this process (starting workers costs more than it saves).

exit status:
  0  the set was written and every stimulus and condition passed its checks
  1  the run failed (a worker died, a disk error, clipping: error); nothing was written
  2  invalid experiment or arguments, an existing output, or a set larger than the
     available memory or free disk (--no-budget-check to try anyway); nothing was written
  3  the set was written but stimuli or conditions failed their checks (the manifest's
     status is "failed"); --allow-fail exits 0 instead
  130 interrupted; nothing was written
"""


@command("run", "generate a stimulus set from a YAML experiment file (manifest, figures)")
def _run(p: argparse.ArgumentParser) -> Handler:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = _RUN_EPILOG
    p.add_argument("experiment", help="experiment file (.yaml)")
    p.add_argument("--out", help="output directory (default: ./<name>); must not exist")
    p.add_argument("--seed", type=int, help="seed entropy overriding the file's seed")
    p.add_argument("--jobs", type=_jobs_arg, default="auto",
                   help="worker processes, or auto (the default; the rule is below)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--force", action="store_true", help="replace an existing output directory")
    p.add_argument("--scheduler", choices=("local", "dask"), default="local",
                   help="where workers run (dask: a dask.distributed scheduler)")
    p.add_argument("--address", help="HOST:PORT of the dask scheduler")
    p.add_argument("--allow-fail", action="store_true",
                   help="exit 0 even when stimuli fail their checks (the set is marked failed either way)")
    p.add_argument("--no-budget-check", action="store_true",
                   help="start even when the set seems to need more memory or disk than available")
    add_json_flag(p)

    def run(args: argparse.Namespace) -> int:
        import warnings

        from .experiment import ExperimentError, RunFailed, _speed_text, run_experiment

        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", UserWarning)
                m = run_experiment(
                    args.experiment, args.out, jobs=args.jobs, seed=args.seed, force=args.force,
                    progress=False if args.no_progress else None, scheduler=args.scheduler,
                    address=args.address, budget_check=not args.no_budget_check,
                )
            for w in caught:
                print(f"stimgen run: warning: {' '.join(str(w.message).split())}", file=sys.stderr)
        except ExperimentError as exc:
            for line in exc.lines:
                print(line, file=sys.stderr)
            n = len(exc.problems)
            print(f"stimgen run: error: {n} problem{'s' * (n != 1)} in {exc.source}; nothing was written",
                  file=sys.stderr)
            return 2
        except RunFailed as exc:
            print(f"stimgen run: error: {' '.join(str(exc).split())}; nothing was written", file=sys.stderr)
            return 1
        failed = m["status"] != "passed"
        code = 3 if failed and not args.allow_fail else 0
        summary = {
            "path": m["path"],
            "status": m["status"],
            "n_stimuli": m["n_stimuli"],
            "n_pass": m["n_pass"],
            "n_fail": m["n_fail"],
            "seed_entropy": m["seed_entropy"],
            "ppd": m["geometry"]["ppd"],
            "shape_px": m["shape_px"],
            "conditions": [
                {"index": c["index"], "label": c["label"], "repeats": c["repeats"], "pass": c["pass"],
                 "n_pass": c["n_pass"], "measured": c["measured"], "clipping": c["clipping"],
                 **({"speed": c["speed"]} if "speed" in c else {})}
                for c in m["conditions"]
            ],
            "figures": m["figures"],
            **({"motion": m["motion"]} if "motion" in m else {}),
        }
        if args.json:
            print_json(summary)
            return code
        h, w = m["shape_px"]
        motion = m.get("motion")
        if motion:
            print(f"wrote {m['n_stimuli']} movie{'s' * (m['n_stimuli'] != 1)} ({motion['n_frames']} frames of {h} x {w} px at "
                  f"{m['geometry']['ppd']:.4g} ppd, {motion['frame_rate_hz']:g} Hz) to {m['path']}")
        else:
            print(f"wrote {m['n_stimuli']} {'stimulus' if m['n_stimuli'] == 1 else 'stimuli'} ({h} x {w} px at {m['geometry']['ppd']:.4g} ppd) "
                  f"to {m['path']}")
        print(f"seed entropy: {m['seed_entropy']}")
        for c in m["conditions"]:
            meas = c["measured"]
            if "alpha" in meas:
                got = f"alpha {meas['alpha']:.3g} (design {meas['design_alpha']:.3g})"
            else:
                lo, hi = (_num_or_na(x) for x in meas["band_cpd"])
                params = c.get("params") or {}
                level = params.get("level", "half_amplitude").replace("_", " ")
                family = params.get("family")
                if family in ("lowpass", "highpass") and "cutoff_cpd" in meas:
                    got = f"{family} cutoff {_num_or_na(meas['cutoff_cpd'])} cpd at {level}"
                elif family == "notch":
                    got = f"stop band {lo}-{hi} cpd at {level}"
                    if meas.get("notch_depth_db") is not None:
                        got += f", depth {meas['notch_depth_db']:.3g} dB"
                else:
                    got = f"band {lo}-{hi} cpd at {level}, peak {_num_or_na(meas['peak_cpd'])} cpd"
            if "speed" in c:
                got += "; " + _speed_text(c["speed"])
            if c.get("target_energy_deg2") is not None:  # a target in the noise: E and E/N
                got += f"; E {c['target_energy_deg2']:.4g} deg^2"
                if c.get("e_over_n") is not None:
                    got += f", E/N {c['e_over_n']:.4g}"
            if meas.get("temporal_band_hz") is not None:  # spatiotemporal noise: its band in time
                t_lo, t_hi = (_num_or_na(x) for x in meas["temporal_band_hz"])
                got += f"; temporal band {t_lo}-{t_hi} Hz"
            clip = c["clipping"]
            if clip["n_over_limit"]:
                got += (f"; CLIPPED: {clip['n_over_limit']}/{c['repeats']} over {clip['limit']:.3%}, "
                        f"up to {clip['max_clipped_fraction']:.3%} of pixels")
            verdict = {True: "pass", False: "FAIL", None: "NOT MEASURABLE"}[c["pass"]]
            unmeasured = f", {c['n_not_measurable']} not measurable" if c.get("n_not_measurable") else ""
            print(f"  {c['index']:>3} {c['label']}: {got}  [{verdict}; {c['n_pass']}/{c['repeats']} stimuli pass"
                  f"{unmeasured}]")
            if c.get("not_measurable"):
                print(f"      not measurable: {c['not_measurable']}")
        what = f"spectra (first frames) and {_motion_checks(m['experiment'])}" if motion else "spectra"
        print(f"{what} pass: {m['n_pass']}/{m['n_stimuli']} stimuli; manifest: manifest.json")
        if failed:
            n_c = sum(c["pass"] is False for c in m["conditions"])
            print(f"stimgen run: FAILED checks: {m['n_fail']} of {m['n_stimuli']} stimuli and {n_c} of "
                  f"{len(m['conditions'])} conditions; the set is written and marked failed in its manifest"
                  + (" (--allow-fail: exit 0)" if args.allow_fail else " (exit 3)"), file=sys.stderr)
        return code

    return run


def _motion_checks(experiment: Mapping[str, Any]) -> str:
    """What is checked of a set's movies: their temporal bands (spatiotemporal noise) or speeds."""
    motion = experiment.get("motion") or {}
    return "temporal bands" if motion.get("model") == "spatiotemporal" else "speeds"


_VERIFY_EPILOG = """\
exit status:
  0  every file is intact and every stimulus passes its checks
  1  a file is changed, missing or not listed, or a re-measurement differs from the
     manifest (the set is corrupt)
  2  no manifest, a damaged manifest, or invalid arguments
  3  the set is intact but stimuli or conditions failed their checks (at generation, or
     re-measured from PNG levels); --allow-fail exits 0 instead
"""


@command("verify", "check a stimulus set against its manifest (hashes and spectra)")
def _verify(p: argparse.ArgumentParser) -> Handler:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = _VERIFY_EPILOG
    p.add_argument("directory", help="stimulus set directory (with manifest.json)")
    p.add_argument("--no-spectra", action="store_true", help="only re-hash the files")
    p.add_argument("--allow-fail", action="store_true",
                   help="exit 0 for an intact set whose stimuli failed their checks")
    p.add_argument("--require-pass", action="store_true",
                   help="count stimuli that failed their checks at generation as problems (exit 1)")
    add_json_flag(p)

    def run(args: argparse.Namespace) -> int:
        from .experiment import verify_set

        rep = verify_set(args.directory, spectra=not args.no_spectra, require_pass=args.require_pass)
        code = 1 if rep.failures else (3 if rep.failed_checks and not args.allow_fail else 0)
        if args.json:
            print_json(rep.to_dict())
            return code
        what = "hashes and spectra"
        if args.no_spectra:
            what = "hashes"
        elif rep.motion:
            from .experiment import read_manifest

            what = f"hashes, spectra and {_motion_checks(read_manifest(args.directory)[1]['experiment'])}"
        for line in rep.failures:
            print(f"FAIL {line}")
        for line in rep.failed_checks:
            print(f"FAILED CHECK {line}")
        for line in rep.notes:
            print(f"note {line}")
        if rep.failures:
            status = f"{len(rep.failures)} problem(s)"
        elif rep.failed_checks:
            status = f"intact, but {len(rep.failed_checks)} stimuli or conditions fail their checks"
        else:
            status = "OK"
        print(f"{rep.path}: {rep.n_stimuli} stimuli, {rep.n_files} files, {what} checked: {status}")
        return code

    return run


@command("regenerate", "rebuild one stimulus of a set from its manifest and compare the bytes")
def _regenerate(p: argparse.ArgumentParser) -> Handler:
    p.add_argument("directory", help="stimulus set directory (with manifest.json)")
    p.add_argument("--index", type=int, required=True, help="0-based stimulus index")
    p.add_argument("--out", help="write the regenerated files into this new directory "
                                 "(with regenerated.json); never inside a stimulus set")
    p.add_argument("--force", action="store_true",
                   help="replace an existing --out written by an earlier regenerate")
    add_json_flag(p)

    def run(args: argparse.Namespace) -> int:
        from .experiment import regenerate_stimulus

        res = regenerate_stimulus(args.directory, args.index, out=args.out, force=args.force)
        if args.json:
            print_json(res)
        else:
            print(f"stimulus {res['index']} (condition {res['condition']['index']}: "
                  f"{res['condition']['label']})")
            for f in res["files"]:
                state = "identical to the manifest" if f["match"] else "DIFFERENT from the manifest"
                if f["sha256_on_disk"] is None:
                    state += "; the file is missing from the set"
                elif not f["on_disk_match"]:
                    state += f"; the file on disk differs (sha256 {f['sha256_on_disk'][:16]}...)"
                print(f"  {f['file']}: {state} (sha256 {f['sha256_regenerated'][:16]}...)")
        return 0 if res["match"] and res["on_disk_match"] else 1

    return run


@command("report", "(re)write report.html, a self-contained review page, in a stimulus set")
def _report(p: argparse.ArgumentParser) -> Handler:
    p.add_argument("directory", help="stimulus set directory (with manifest.json)")
    add_json_flag(p)

    def run(args: argparse.Namespace) -> int:
        from .experiment.report import write_report

        path = write_report(args.directory)
        if args.json:
            print_json({"report": str(path)})
        else:
            print(f"wrote {path}")
        return 0

    return run


@command("export", "export a stimulus set for PsychoPy (conditions.csv, present.py) or as BIDS stimuli")
def _export(p: argparse.ArgumentParser) -> Handler:
    p.add_argument("directory", help="stimulus set directory (with manifest.json)")
    p.add_argument("--to", required=True, choices=("psychopy", "bids"), help="what to export for")
    p.add_argument("out", help="export folder to write (must not exist; never inside a stimulus set)")
    p.add_argument("--force", action="store_true", help="replace an existing OUT written by an earlier export")
    add_json_flag(p)

    def run(args: argparse.Namespace) -> int:
        from .export import export_set

        res = export_set(args.directory, args.out, to=args.to, force=args.force)
        if args.json:
            print_json(res)
        else:
            print(f"exported {res['n_stimuli']} stimuli for {res['to']} to {res['out']} ({res['n_files']} files; "
                  f"every file's sha256 matched the manifest)")
            print(f"images: {res['method']}")
        return 0

    return run


@command(
    "design",
    "filter passband in cpd: the band of given DoG sigmas, or the filter for a requested band",
)
def _design(p: argparse.ArgumentParser) -> Handler:
    levels = ("half_amplitude", "half_power")
    families = p.add_subparsers(dest="design_family", metavar="FAMILY")

    def family(name: str, help_text: str) -> argparse.ArgumentParser:
        sp = families.add_parser(name, help=help_text, description=help_text)
        sp.add_argument("--band-cpd", nargs=2, type=float, metavar=("LO", "HI"),
                        help="band edges at --level in cycles/degree")
        sp.add_argument("--peak-cpd", type=float, metavar="F", help="peak frequency in cpd")
        sp.add_argument("--octaves", type=float, metavar="B",
                        help="bandwidth in octaves at --level (with --peak-cpd)")
        return sp

    def finish(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--level", choices=levels, default="half_amplitude",
                        help="amplitude level of the band edges: 1/2 (default) or 1/sqrt 2")
        add_geometry_args(sp)
        add_json_flag(sp)
        sp.add_argument("--plot", metavar="FILE.png",
                        help="draw the transfer function(s) on a cpd axis into this file")

    dog = family("dog", "difference of Gaussians: band <-> sigmas")
    dog.add_argument("--sigmas-px", nargs=2, type=float, metavar=("S1", "S2"),
                     help="centre and surround sigma in pixels: report their band")
    dog.add_argument("--sigmas-deg", nargs=2, type=float, metavar=("S1", "S2"),
                     help="centre and surround sigma in degrees: report their band")
    dog.add_argument("--weight", type=float,
                     help="surround kernel sum / centre kernel sum (with sigmas; default 1)")
    finish(dog)
    finish(family("log_gaussian", "log-Gaussian (octave-symmetric, any bandwidth)"))
    bw = family("butterworth", "Butterworth band-pass (half power at each cutoff)")
    bw.add_argument("--cutoffs-cpd", nargs=2, type=float, metavar=("LO", "HI"),
                    help="the cutoffs themselves in cpd (LO 0: low-pass): report their band")
    bw.add_argument("--order", type=int, default=4, help="filter order (default 4)")
    finish(bw)
    for name, text in (("lowpass", "low-pass for critical-band noise: --cutoff-cpd at --level"),
                       ("highpass", "high-pass for critical-band noise: --cutoff-cpd at --level")):
        sp = family(name, text)
        sp.add_argument("--cutoff-cpd", type=float, metavar="F", help="cutoff in cpd at --level")
        sp.add_argument("--rolloff", choices=["butterworth", "gaussian"], default="butterworth",
                        help="Butterworth of --order (default) or Gaussian")
        sp.add_argument("--order", type=int, default=4, help="Butterworth order (default 4)")
        finish(sp)
    nt = family("notch", "notch (band-stop), power-complementary to a Butterworth band-pass; "
                         "--band-cpd is the stop band")
    nt.add_argument("--order", type=int, default=8, help="order of the band-pass (default 8)")
    finish(nt)

    def choose(args: argparse.Namespace) -> str:
        """The design mode the flags ask for (the flag's name), or ValueError."""
        fam = args.design_family
        modes = {
            "--band-cpd": args.band_cpd is not None,
            "--peak-cpd with --octaves": args.peak_cpd is not None or args.octaves is not None,
            "--sigmas-px": getattr(args, "sigmas_px", None) is not None,
            "--sigmas-deg": getattr(args, "sigmas_deg", None) is not None,
            "--cutoffs-cpd": getattr(args, "cutoffs_cpd", None) is not None,
            "--cutoff-cpd": getattr(args, "cutoff_cpd", None) is not None,
        }
        allowed = [m for m in modes if m in {
            "dog": ("--band-cpd", "--peak-cpd with --octaves", "--sigmas-px", "--sigmas-deg"),
            "log_gaussian": ("--band-cpd", "--peak-cpd with --octaves"),
            "butterworth": ("--band-cpd", "--peak-cpd with --octaves", "--cutoffs-cpd"),
            "lowpass": ("--cutoff-cpd",),
            "highpass": ("--cutoff-cpd",),
            "notch": ("--band-cpd", "--peak-cpd with --octaves"),
        }[fam]]
        given = [m for m, on in modes.items() if on]
        if len(given) != 1 or given[0] not in allowed:
            raise ValueError(f"design {fam} needs exactly one of {', '.join(allowed)}")
        mode = given[0]
        if mode.startswith("--peak") and (args.peak_cpd is None or args.octaves is None):
            raise ValueError("--peak-cpd and --octaves must be given together")
        weight = getattr(args, "weight", None)
        if weight is not None and not mode.startswith("--sigmas"):
            raise ValueError("--weight applies only to --sigmas-px or --sigmas-deg")
        return mode

    def build(args: argparse.Namespace, geometry: Any, mode: str) -> tuple[Any, str]:
        from . import filters as fl

        fam = args.design_family
        weight = getattr(args, "weight", None)
        if fam in fl.CRITICAL_BAND_FAMILIES:
            return fl.critical_band_filter(
                fam, ppd=geometry, cutoff_cpd=getattr(args, "cutoff_cpd", None), band_cpd=args.band_cpd,
                peak_cpd=args.peak_cpd, octaves=args.octaves, level=args.level, order=args.order,
                rolloff=getattr(args, "rolloff", "butterworth"),
            ), mode
        extra = {"order": args.order} if fam == "butterworth" else {}
        if mode == "--band-cpd":
            return fl.design_filter(fam, ppd=geometry, band_cpd=args.band_cpd,
                                    level=args.level, **extra), mode
        if mode.startswith("--peak"):
            return fl.design_filter(fam, ppd=geometry, peak_cpd=args.peak_cpd,
                                    octaves=args.octaves, level=args.level, **extra), mode
        if mode == "--cutoffs-cpd":
            lo, hi = args.cutoffs_cpd
            if lo < 0 or not hi > lo:
                raise ValueError(
                    f"--cutoffs-cpd must be LO HI with 0 <= LO < HI, got {lo:g} {hi:g}"
                )
            return fl.Butterworth(lo / geometry.ppd if lo > 0 else None,
                                  fl.as_ppd(hi, "--cutoffs-cpd HI") / geometry.ppd,
                                  args.order), mode
        s1, s2 = args.sigmas_px if mode == "--sigmas-px" else args.sigmas_deg
        if mode == "--sigmas-deg":
            s1, s2 = (fl.as_ppd(s, "--sigmas-deg") * geometry.ppd for s in (s1, s2))
        return fl.DoG(s1, s2, 1.0 if weight is None else weight), mode

    def run(args: argparse.Namespace) -> int:
        if args.design_family is None:
            raise ValueError("choose a family: stimgen design dog|log_gaussian|butterworth|lowpass|highpass|notch ...")
        from . import filters as fl

        # everything is validated and computed before anything is printed
        geometry = _checked_geometry(args)
        ppd = geometry.ppd
        if args.plot:
            _check_plot_path(args.plot)
        if getattr(args, "order", None) is not None and not 1 <= args.order <= _MAX_ORDER:
            raise ValueError(f"--order must be an integer between 1 and {_MAX_ORDER}, got "
                             f"{args.order} (higher orders are an ideal band edge in float64)")
        mode = choose(args)
        given = {"--band-cpd": args.band_cpd, "--peak-cpd with --octaves": [args.peak_cpd],
                 "--cutoffs-cpd": getattr(args, "cutoffs_cpd", None),
                 "--cutoff-cpd": [getattr(args, "cutoff_cpd", None)]}.get(mode) or []
        for f_cpd in given:
            if math.isfinite(f_cpd) and 0 < f_cpd / ppd < _MIN_CPP:  # products underflow
                raise ValueError(
                    f"{_design_request(args, mode)}: {f_cpd:g} cpd is {f_cpd / ppd:.3g} "
                    f"cycles/pixel at {ppd:g} ppd, below the float64 range of the design "
                    f"(products of frequencies underflow); give frequencies of at least "
                    f"{_MIN_CPP * ppd:.3g} cpd"
                )
        filt, mode, d = _computed_design(build, args, geometry, mode)
        d["designed_from"] = mode.lstrip("-").split(" ")[0].replace("-", "_")
        if args.design_family in fl.CRITICAL_BAND_FAMILIES:
            d["requested_family"] = args.design_family
            if isinstance(filt, fl.Notch):
                d["center_cpd"] = filt.center_cpp * ppd
                d["depth"] = filt.depth
        d["geometry"] = geometry.to_dict()
        if isinstance(filt, fl.DoG) and filt.weight == 1.0:
            d["min_octaves"] = fl.dog_min_octaves(args.level)
        elif isinstance(filt, fl.Butterworth) and d["kind"] == "bandpass":
            d["min_octaves"] = fl.Butterworth.min_octaves(filt.order, args.level)
        peak, center = d["peak_cpd"], d["center_cpd"]
        d["peak_is_center"] = bool(abs(peak - center) <= 1e-6 * max(abs(center), 1e-300))
        warns = []
        s1 = d.get("sigma_center_px")
        if s1 is not None and s1 < 1.0:
            warns.append(
                f"sigma_center_px {s1:.3g} < 1 px: a sampled (spatial) kernel aliases and "
                "misses the designed band; filter in the FFT domain (stimgen.apply_filter)"
            )
        hi_edge = d["band_cpd"][1]
        if hi_edge is not None and math.isfinite(hi_edge) and hi_edge > ppd / 2 * (1 + 1e-9):
            warns.append(f"band high edge {hi_edge:.4g} cpd exceeds Nyquist ({ppd / 2:.4g} cpd)")
        if d.get("weight", 1.0) != 1.0:
            leak = d.get("dc_gain", 0.0)
            warns.append(
                f"not zero-mean: the response at 0 cpd is {leak:.3g} x the peak "
                "(weight != 1 passes or inverts the mean luminance; noise power |H|^2 keeps it)"
            )
        d["warnings"] = warns
        text = None if args.json else _design_text(d)
        if args.plot:
            from . import plotting

            if isinstance(filt, fl.DoG):
                ax = plotting.plot_dog_design(filt, ppd=ppd, level=args.level)
            else:
                ax = plotting.plot_transfer(filt, ppd=ppd, level=args.level)
            plotting.save(ax.figure, args.plot)
            d["plot"] = args.plot
            if text is not None:
                text += f"\n  plot:            {args.plot}"
        for w in warns:
            print(f"stimgen design: warning: {w}", file=sys.stderr)
        if text is None:
            print_json(d)
        else:
            print(text)
        return 0

    return run


_MAX_ORDER = 100  # Butterworth orders accepted by ``stimgen design``
_MIN_CPP = 1e-150  # smallest design frequency in cycles/pixel (its square must be a float)
_PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".tif", ".tiff", ".eps", ".webp")


def _check_plot_path(path: str) -> None:
    """Refuse a ``--plot`` path that cannot be written, before any work is done."""
    import os

    suffix = os.path.splitext(path)[1].lower()
    if suffix not in _PLOT_SUFFIXES:
        raise ValueError(f"--plot must name a figure file ({', '.join(_PLOT_SUFFIXES)}), "
                         f"got {path!r}")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ValueError(f"--plot {path}: the folder {parent} does not exist")


def _checked_geometry(args: argparse.Namespace):
    """:func:`geometry_from_args` (which refuses screens whose numbers overflow float64).

    Returns None only when the geometry is optional and absent.
    """
    return geometry_from_args(args)


def _design_request(args: argparse.Namespace, mode: str) -> str:
    """The user's flags of the design ``mode``, as typed (for messages)."""
    if mode.startswith("--peak"):
        return f"--peak-cpd {args.peak_cpd:g} --octaves {args.octaves:g}"
    values = {"--band-cpd": args.band_cpd, "--sigmas-px": getattr(args, "sigmas_px", None),
              "--sigmas-deg": getattr(args, "sigmas_deg", None),
              "--cutoffs-cpd": getattr(args, "cutoffs_cpd", None),
              "--cutoff-cpd": None if getattr(args, "cutoff_cpd", None) is None else [args.cutoff_cpd]}.get(mode)
    if values is None:
        return mode
    return f"{mode} {' '.join(f'{x:g}' for x in values)}"


def _from_scipy(exc: BaseException) -> bool:
    """True if ``exc`` was raised inside scipy (a solver's message, not stimgen's)."""
    tb = exc.__traceback__
    module = ""
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        tb = tb.tb_next
    return module.startswith("scipy")


def _computed_design(build: Callable, args: argparse.Namespace, geometry: Any, mode: str):
    """``(filter, mode, describe record)`` of a design request, or ``ValueError`` naming
    the user's flags when the numbers cannot be computed or do not match the request."""
    import warnings

    import numpy as np

    try:
        with warnings.catch_warnings(record=True) as caught, np.errstate(under="ignore"):
            warnings.simplefilter("always")
            filt, mode = build(args, geometry, mode)
            d = filt.describe(geometry, args.level)
    except ValueError as exc:
        if not _from_scipy(exc):
            raise
        raise ValueError(
            f"{_design_request(args, mode)}: the {args.design_family} design cannot be solved "
            f"in float64 for this request (root finder: {_one_line(exc)}); ask for a band "
            "closer to 1 octave wide and well inside (0, Nyquist]"
        ) from None
    except ArithmeticError:
        raise ValueError(
            f"{_design_request(args, mode)}: the {args.design_family} design overflows float64; "
            "give values nearer the display's range "
            f"(0 < frequencies <= Nyquist {geometry.ppd / 2:g} cpd)"
        ) from None
    request = _design_request(args, mode)
    numbers = [d.get(k) for k in ("peak_cpd", "center_cpd", "peak_value", "dc_gain",
                                  "sigma_center_px", "sigma_surround_px", "ratio")]
    numbers += list(d["band_cpd"])
    if d["kind"] == "highpass":  # no peak and no upper edge: inf by definition
        numbers = [x for x in numbers if x != math.inf]
    finite = all(x is None or math.isfinite(x) for x in numbers)
    lo, hi = d["band_cpd"]
    sane = finite and hi > 0 and (
        d["kind"] != "bandpass" or 0 < lo < d["peak_cpd"] < hi and lo <= d["center_cpd"] <= hi
    )
    if not sane:
        raise ValueError(
            f"{request}: the {args.design_family} design is beyond float64 accuracy here: it "
            f"gives the band {lo:.4g} - {hi:.4g} cpd with its peak at {d['peak_cpd']:.4g} cpd "
            "(a band-pass needs finite 0 < low < peak < high, and its centre between the edges); "
            "give values nearer the "
            f"display's range (0 < frequencies <= Nyquist {geometry.ppd / 2:g} cpd)"
        )
    if mode == "--band-cpd":
        want = tuple(args.band_cpd)
    elif mode.startswith("--peak"):
        want = None
        got_oct = d["octaves"]
        if not math.isclose(got_oct, args.octaves, rel_tol=1e-6):
            raise ValueError(
                f"{request}: the {args.design_family} design came out {got_oct:.6g} octaves "
                "wide, not the requested width: the request is beyond float64 accuracy for "
                "this family; ask for a narrower band"
            )
    else:
        want = None
    if want is not None and not all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(want, (lo, hi), strict=True)):
        raise ValueError(
            f"{request}: the {args.design_family} design came out as {lo:.6g} - {hi:.6g} cpd, "
            "not the requested band: the request is beyond float64 accuracy for this family "
            f"({math.log2(want[1] / want[0]):.4g} octaves); ask for a narrower band"
        )
    for w in caught:  # the library's own warnings; numpy's arithmetic notes were checked above
        if not (issubclass(w.category, RuntimeWarning) and "encountered in" in str(w.message)):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return filt, mode, d


def _design_text(d: dict[str, Any]) -> str:
    """Readable summary of a ``stimgen design`` record (the lines printed by ``design``)."""
    ppd = d["ppd"]
    level = d["level"].replace("_", " ")
    out = [(f"{d['family']} filter, band edges at {level}; {_num(ppd)} ppd, "
            f"Nyquist {d['nyquist_cpd']:.4g} cpd")]
    if "sigma_center_px" in d:
        out.append(f"  sigma centre:    {_num(d['sigma_center_px'])} px = "
                   f"{_num(d['sigma_center_deg'], 5)} deg")
        out.append(f"  sigma surround:  {_num(d['sigma_surround_px'])} px = "
                   f"{_num(d['sigma_surround_deg'], 5)} deg  (ratio {_num(d['ratio'])})")
        if d.get("weight", 1.0) != 1.0:
            out.append(f"  surround weight: {d['weight']:.4g}")
    if "peak_cpp" in d and d["family"] == "log_gaussian":
        out.append(f"  sigma:           {_num(d['sigma_octaves'])} octaves (log2 axis)")
    if d["family"] in ("gaussian", "gaussian_highpass"):
        out.append(f"  sigma:           {_num(d['sigma_px'])} px = {_num(d['sigma_deg'], 5)} deg"
                   + (" (of the power-complementary low-pass)" if d["family"] == "gaussian_highpass" else ""))
    if d["family"] == "notch":
        out.append(f"  band-pass cutoffs: {_num(d['low_cutoff_cpd'])} - {_num(d['high_cutoff_cpd'])} cpd, "
                   f"order {d['order']} (the notch is sqrt(1 - |B|^2))")
    if d["family"] == "butterworth":
        cuts = [d.get("low_cutoff_cpd"), d.get("high_cutoff_cpd")]
        shown = " - ".join("none" if c is None else _num(c) for c in cuts)
        out.append(f"  cutoffs:         {shown} cpd (half power per factor), order {d['order']}")
    lo, hi = d["band_cpd"]
    hi_s = "inf" if hi is None or not math.isfinite(hi) else _num(hi)
    octs = d["octaves"]
    oct_s = f"{_num(octs)} octaves" if octs is not None and math.isfinite(octs) else "open band"
    if d["kind"] == "notch":
        out.append(f"  stop band:       {_num(lo)} - {hi_s} cpd  ({oct_s}; the notch rises back to {level} at the edges)")
        out.append(f"  notch centre:    {_num(d['center_cpd'])} cpd  (amplitude {d['depth']:.4g}, "
                   f"{-20 * math.log10(max(d['depth'], 1e-300)):.1f} dB down)")
        if "plot" in d:
            out.append(f"  plot:            {d['plot']}")
        return "\n".join(out)
    if d["kind"] == "highpass":
        out.append(f"  cutoff:          {_num(lo)} cpd at {level} (high-pass: passes up to Nyquist)")
        if "plot" in d:
            out.append(f"  plot:            {d['plot']}")
        return "\n".join(out)
    out.append(f"  band:            {_num(lo)} - {hi_s} cpd  ({oct_s})")
    if "min_octaves" in d:
        out.append(f"  narrowest band:  {_num(d['min_octaves'])} octaves for this family at {level}")
    signed = d["peak_value"]
    if d.get("weight", 1.0) != 1.0 and d["peak_cpd"] == 0:  # the DC lobe: H(0) = 1 - weight
        signed = 1.0 - d["weight"]
    out.append(f"  peak:            {_num(d['peak_cpd'])} cpd  (response {signed:.4f})")
    if not d["peak_is_center"] and d["kind"] == "bandpass" and d["center_cpd"] > 0:
        rel = d["peak_cpd"] / d["center_cpd"] - 1
        out.append(f"  geometric centre of the edges: {_num(d['center_cpd'])} cpd "
                   f"(the peak is {abs(rel):.1%} {'above' if rel > 0 else 'below'} it)")
    if "plot" in d:
        out.append(f"  plot:            {d['plot']}")
    return "\n".join(out)


def _print_design(d: dict[str, Any]) -> None:
    """Print the readable summary of a ``stimgen design`` record."""
    print(_design_text(d))


# the library's parameter names as the colorize command spells them, for its messages
_COLORIZE_FLAGS = (("form='gaussian'", "--form gaussian"),
                   ("form='correlation'", "--form correlation"), ("threshold=", "--threshold "),
                   ("threshold must", "--threshold must"), ("gray must", "GRAY must"),
                   ("scribbles must", "SCRIBBLES must"), (" or a larger eps", ""))
# the library's parameter names as the stats command spells them, for its messages
_STATS_FLAGS = (("on_error='skip'", "--skip-errors"), ("scale=", "--scale "),
                ("jobs must", "--jobs must"), ("files_per_task", "--files-per-task"))


class _flag_names:  # noqa: N801 - used as a context manager, like contextlib's helpers
    """Re-raise a library ``ValueError`` with its parameter names replaced by the command's
    flags (``on_error='skip'`` -> ``--skip-errors``), so no message suggests the other API."""

    def __init__(self, pairs: tuple[tuple[str, str], ...]) -> None:
        self.pairs = pairs

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if isinstance(exc, ValueError) and type(exc) is ValueError:
            msg = str(exc)
            for python_name, flag in self.pairs:
                msg = msg.replace(python_name, flag)
            if msg != str(exc):
                raise ValueError(msg) from None


def _dask_address_configured() -> bool:
    """True if Dask's configuration names a scheduler (e.g. DASK_SCHEDULER_ADDRESS)."""
    try:
        import dask.config
    except ImportError:  # dataset_stats reports the missing extra
        return True
    return bool(dask.config.get("scheduler-address", None))


@command("stats", "exact per-channel mean and std of an image dataset (files of any size)")
def _stats(p: argparse.ArgumentParser) -> Handler:
    p.add_argument("paths", nargs="+", metavar="PATH", help="directories, image files or globs")
    p.add_argument("--jobs", type=int, default=None, help="local worker processes (default 1)")
    p.add_argument("--scheduler", choices=("local", "dask"), default="local")
    p.add_argument("--address", default=None, help="Dask scheduler HOST:PORT")
    p.add_argument("--scale", type=_number_or_fraction, default=None,
                   help="multiply stored values by this, e.g. 1/65535 for 16-bit images "
                        "(default: 1/255 for 8-bit images, 1 for float arrays; required "
                        "for other integer images and for float arrays mixed with images)")
    p.add_argument("--skip-errors", action="store_true",
                   help="skip unreadable files and folders (counted in 'skipped') instead "
                        "of failing")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_json_flag(p)

    def run(args: argparse.Namespace) -> int:
        import warnings

        from .datastats import dataset_stats

        if args.scheduler == "dask" and args.address is None and not _dask_address_configured():
            raise ValueError("--scheduler dask needs --address HOST:PORT (a running Dask "
                             "scheduler), or DASK_SCHEDULER_ADDRESS set")
        with warnings.catch_warnings(record=True) as caught, _flag_names(_STATS_FLAGS):
            warnings.simplefilter("always")
            s = dataset_stats(
                args.paths if len(args.paths) > 1 else args.paths[0],
                jobs=args.jobs,
                scheduler=args.scheduler,
                address=args.address,
                on_error="skip" if args.skip_errors else "raise",
                progress=not args.no_progress,
                scale=args.scale,
            )
        for w in caught:  # the skips themselves are listed one by one below
            if not str(w.message).startswith("dataset_stats skipped"):
                print(f"stimgen stats: warning: {_one_line(w.message)}", file=sys.stderr)

        def fmt(v: Any) -> str:
            return "[" + ", ".join(_num(x, 6) for x in v) + "]"

        for _path, reason in s.skipped_files:
            print(f"stimgen stats: skipped {_one_line(reason)}", file=sys.stderr)
        if args.json:
            print_json(s.to_dict())
            return 0
        print(f"images: {s.n_images}   pixels: {s.n_pixels}   skipped: {s.skipped}")
        scale = "1/255" if s.scale == 1 / 255 else f"{s.scale:.6g}"
        print(f"scale:         {scale} ({s.scale_source})")
        print(f"mean:          {fmt(s.mean)}")
        print(f"std:           {fmt(s.std)}   (pooled over all pixels, ddof=0)")
        print(f"mean of stds:  {fmt(s.mean_of_stds)}   (per-image recipe; not the std)")
        print(f"within var:    {fmt(s.within_var)}")
        print(f"between var:   {fmt(s.between_var)}")
        return 0

    return run


# the library's parameter names as the display command spells them, for its messages
_DISPLAY_FLAGS = (("mean_cd_m2", "--mean-cd-m2"), ("rms_contrast", "--rms-contrast"),
                  ("bits for method", "--bits for --method"), ("l_min", "--l-min"),
                  ("l_max", "--l-max"), ("channel_weights", "--weights"), ("gamma must", "--gamma must"))


@command("display", "display calibration: fit a gamma model, count the levels an encoding can show")
def _display(p: argparse.ArgumentParser) -> Handler:
    actions = p.add_subparsers(dest="display_action", metavar="ACTION")
    fit = actions.add_parser("fit", help="fit L = a + (b v/v_max)^gamma to a calibration table",
                             description="fit the gain-offset-gamma model to a photometer table "
                                         "(CSV: level,luminance_cd_m2 or level,red_cd_m2,...)")
    fit.add_argument("file", metavar="FILE", help="calibration table (.csv, .yaml)")
    fit.add_argument("--plot", metavar="FILE.png",
                     help="figure of the measurements, the fit and the inverse lookup table")
    add_json_flag(fit)
    lev = actions.add_parser("levels", help="distinct luminance levels of an encoding on a display",
                             description="the number of distinct luminance levels an encoding shows "
                                         "on a display, and its steps in cd/m^2")
    lev.add_argument("--method", required=True,
                     choices=("linear8", "png16", "bitstealing", "mono++", "m16"))
    lev.add_argument("--bits", type=int, default=None, help="bits per level (png16: 8 to 16)")
    lev.add_argument("--calibration", metavar="FILE", help="calibration table or model (.csv, .yaml)")
    lev.add_argument("--gamma", type=float, help="gamma of a model display (with --l-min, --l-max)")
    lev.add_argument("--l-min", type=float, help="black luminance of the model display, cd/m^2")
    lev.add_argument("--l-max", type=float, help="white luminance of the model display, cd/m^2")
    lev.add_argument("--weights", type=float, nargs=3, metavar=("R", "G", "B"),
                     help="channel luminance weights (default 0.2126 0.7152 0.0722)")
    lev.add_argument("--mean-cd-m2", type=float, help="background luminance, cd/m^2 (with --rms-contrast)")
    lev.add_argument("--rms-contrast", type=float,
                     help="RMS contrast of noise: report the levels it spans (within +-3 RMS)")
    add_json_flag(lev)

    def display_of(args: argparse.Namespace):
        from .display import CHANNEL_WEIGHTS_REC709, DisplayModel, read_calibration

        model_flags = (args.gamma, args.l_min, args.l_max)
        if args.calibration is not None:
            if any(x is not None for x in model_flags) or args.weights is not None:
                raise ValueError("give either --calibration FILE or --gamma with --l-min and "
                                 "--l-max (and --weights), not both")
            return read_calibration(args.calibration)
        if any(x is None for x in model_flags):
            raise ValueError("describe the display: --calibration FILE or --gamma G --l-min "
                             "CD_M2 --l-max CD_M2")
        return DisplayModel.from_gamma(args.gamma, args.l_min, args.l_max,
                                       channel_weights=args.weights or CHANNEL_WEIGHTS_REC709)

    def run_fit(args: argparse.Namespace) -> int:
        from .display import fit_gamma, read_calibration

        if args.plot:
            _check_plot_path(args.plot)
        model = read_calibration(args.file)
        rec = model.to_record()
        if model.kind == "gamma":
            raise ValueError(f"{args.file} holds a gamma model, not measurements: nothing to fit")
        columns = (("gray", rec["luminance_cd_m2"]),) if model.kind == "table" else tuple(
            (c, rec[f"{c}_cd_m2"]) for c in ("red", "green", "blue"))
        fits = {name: fit_gamma(rec["levels"], lum, level_max=rec["level_max"]) for name, lum in columns}
        out: dict[str, Any] = {"calibration": rec.get("source"), "n_levels": len(rec["levels"]),
                               "level_max": rec["level_max"]}
        for name, f in fits.items():
            d = f.to_dict()
            keep = {k: d[k] for k in ("model", "a_cd_m2", "b", "gamma", "l_min_cd_m2", "l_max_cd_m2",
                                      "residual_rms_cd_m2", "residual_max_rel")}
            if name == "gray":
                out.update(keep)
            else:
                out.setdefault("channels", {})[name] = keep
        if args.plot:
            from . import plotting

            fig = plotting.plot_gamma_fit(fits, model=model)
            plotting.save(fig, args.plot)
            out["plot"] = args.plot
        if args.json:
            print_json(out)
            return 0
        print(f"calibration: {args.file} ({out['n_levels']} levels, 0 to {_num(out['level_max'], 0)})")
        print("model: L = a + (b * v / v_max)^gamma")
        for name, f in fits.items():
            print(f"  {name:5s}  gamma {f.gamma:.4f}   a {_num(f.offset_cd_m2)} cd/m^2   "
                  f"b {_num(f.gain)}   white {_num(f.l_max_cd_m2)} cd/m^2")
            print(f"         residual: rms {_num(f.residual_rms_cd_m2)} cd/m^2, "
                  f"largest {100 * f.residual_max_rel:.3g} % of the reading")
        if args.plot:
            print(f"plot: {args.plot}")
        return 0

    def run_levels(args: argparse.Namespace) -> int:
        from .display import display_levels

        with _flag_names(_DISPLAY_FLAGS):
            d = display_levels(display_of(args), args.method, bits=args.bits,
                               mean_cd_m2=args.mean_cd_m2, rms_contrast=args.rms_contrast)
        if args.json:
            print_json(d)
            return 0
        print(f"{d['method']} ({d['bits']} bits per level): {d['n_levels']} distinct levels, "
              f"{_num(d['l_min_cd_m2'])} to {_num(d['l_max_cd_m2'])} cd/m^2")
        print(f"  smallest step:  {_num(d['smallest_step_cd_m2'], 6)} cd/m^2")
        print(f"  largest step:   {_num(d['largest_step_cd_m2'], 6)} cd/m^2 "
              f"({d['largest_step_gray8']:.4f} of an 8-bit gray step)")
        if "levels_spanned" in d:
            print(f"  levels spanned by RMS {d['rms_contrast']:g} noise (+-3 RMS) at "
                  f"{_num(d['mean_cd_m2'])} cd/m^2: {d['levels_spanned']}; step there "
                  f"{d['step_at_mean_contrast']:.3g} in contrast")
        return 0

    def run(args: argparse.Namespace) -> int:
        if args.display_action == "fit":
            return run_fit(args)
        if args.display_action == "levels":
            return run_levels(args)
        p.print_help()
        return 2

    return run
