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


def _flow_levels(text: str) -> int | str:
    return text if text == "auto" else int(text)


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
        print(f"reliable: {100 * d['reliable_fraction']:.1f} % of pixels; normal flow only "
              f"(aperture problem): {100 * d['aperture_fraction']:.1f} %")
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
                   help="dog, log_gaussian, butterworth, ideal, white, pink, brown or power_law")
    p.add_argument("--order", type=int, default=4, help="Butterworth order")
    p.add_argument("--alpha", type=float, default=None, help="power-law exponent (pink 1, brown 2)")
    p.add_argument("--orientation-deg", type=float, help="orientation window centre (deg from vertical)")
    p.add_argument("--orientation-bandwidth-deg", type=float, default=30.0, help="window width (deg)")
    p.add_argument("--rms-contrast", type=float, default=0.2, help="RMS contrast in (0, 1]")
    p.add_argument("--kind", default="gaussian", help="white noise: gaussian, uniform, binary, flat")
    p.add_argument("--seed", type=int, help="seed (default: fresh entropy, recorded)")
    p.add_argument("--count", type=int, default=1, help="number of stimuli")
    p.add_argument("--png", choices=["8", "16"], help="also write PNGs of this bit depth")
    p.add_argument("--dither", default="noisy-bit", choices=["none", "noisy-bit"],
                   help="dithering of PNG output")
    p.add_argument("--out", required=True, help="FILE.npy (one stack) or DIR (one file per stimulus)")
    p.add_argument("--force", action="store_true", help="replace existing output")
    add_json_flag(p)

    def run(args: argparse.Namespace) -> int:
        from io import BytesIO
        from pathlib import Path

        import numpy as np

        from .contrast import quantize
        from .io import atomic_directory, atomic_write_bytes, write_png
        from .noise import bandpass_noise

        g = geometry_from_args(args)
        family, alpha = args.family, args.alpha
        aliases = {"pink": 1.0, "brown": 2.0}
        if family in aliases:
            family, alpha = "power_law", aliases[family] if alpha is None else alpha
        images, record = bandpass_noise(
            size_px=args.size_px, size_deg=args.size_deg, ppd=g, band_cpd=args.band_cpd,
            peak_cpd=args.peak_cpd, octaves=args.octaves, family=family, level=args.level,
            order=args.order, orientation_deg=args.orientation_deg,
            orientation_bandwidth_deg=args.orientation_bandwidth_deg,
            alpha=1.0 if alpha is None else alpha, rms_contrast=args.rms_contrast,
            kind=args.kind, n=args.count, rng=args.seed,
        )
        out = Path(args.out)
        files: list[str] = []
        if out.suffix == ".npy":
            if out.exists() and not args.force:
                raise FileExistsError(f"{out} exists (use --force to replace it)")
            buf = BytesIO()
            np.save(buf, images)
            atomic_write_bytes(out, buf.getvalue())
            atomic_write_bytes(out.with_suffix(".json"), json.dumps(jsonable(record), indent=2).encode())
            files = [str(out)]
        else:
            with atomic_directory(out, force=args.force) as tmp:
                for i, img in enumerate(images):
                    np.save(tmp / f"noise_{i:04d}.npy", img)
                    files.append(str(out / f"noise_{i:04d}.npy"))
                    if args.png:
                        q, _ = quantize(img, int(args.png), dither=args.dither, rng=args.seed)
                        write_png(tmp / f"noise_{i:04d}.png", q)
                (tmp / "record.json").write_text(json.dumps(jsonable(record), indent=2))
        summary = {"files": files, "record": record}
        if args.json:
            print_json(summary)
        else:
            d = record["design"]
            print(f"wrote {len(images)} stimuli of {record['shape_px'][0]}x{record['shape_px'][1]} px "
                  f"to {out}")
            if d:
                lo, hi = d["band_cpd"]
                print(f"design: peak {d['peak_cpd']:.3f} cpd, band {lo:.3f}-{hi:.3f} cpd "
                      f"({d['octaves']:.3f} octaves at {d['level']})")
        return 0

    return run


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
            if a.ndim == 3 and a.shape[-1] in (3, 4) and a.dtype.kind in "ui":
                raise ValueError(f"{f}: colour images are not supported; give one channel")
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

            ax = plot_spectrum(spec, measured=m)
            save(ax.figure, args.plot)
        if args.json:
            print_json(result)
        else:
            print(f"{spec.n_images} image(s) of {spec.shape_px[0]}x{spec.shape_px[1]} px "
                  f"at {g.ppd:.4g} ppd")
            print(f"peak: {m.peak_cpd:.4g} cpd")
            for level in ("half_amplitude", "half_power"):
                lo, hi = m.band_cpd(level)
                print(f"band at {level}: {lo:.4g}-{hi:.4g} cpd ({m.octaves(level):.3f} octaves)")
        return 0

    return run
