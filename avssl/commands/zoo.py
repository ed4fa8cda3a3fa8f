"""List, download and load the official pretrained releases (the model zoo).

    avssl zoo list [--method crisscross]
    avssl zoo fetch NAME [--dir DIR]
    avssl zoo load NAME --file LOCAL [--modality audio] [--save OUT.pt]

`fetch` downloads into torch.hub's checkpoint folder and verifies the SHA-256 prefix where the
authors published one. `load` reads a local file (or fetches), checks it strictly against the
encoder and reports the layout it recognised; `--save` writes it in avssl's own format.
"""

from __future__ import annotations

import argparse
import sys

from avssl.models import zoo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="zoo_action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="print the table of releases")
    listing.add_argument("--method", help="only this method (xdc, xid, avid_cma, crisscross, vicreg, xkd)")
    fetch = actions.add_parser("fetch", help="download a release and verify it")
    fetch.add_argument("name", help="zoo entry (see `avssl zoo list`)")
    fetch.add_argument("--dir", help="target folder (default: torch.hub.get_dir()/checkpoints)")
    fetch.add_argument("--quiet", action="store_true", help="no progress bar")
    load = actions.add_parser("load", help="load a release into its encoder and report")
    load.add_argument("name", help="zoo entry (see `avssl zoo list`)")
    load.add_argument("--file", help="local copy of the released file (default: fetch it)")
    load.add_argument("--modality", choices=("video", "audio"), help="for files holding both encoders")
    load.add_argument("--no-verify", action="store_true", help="skip the SHA-256 check of --file")
    load.add_argument("--save", help="write the loaded encoder in avssl's format to this path")


def _results_text(entry: zoo.ZooEntry) -> str:
    return "; ".join(f"{r.benchmark} {r.protocol} {r.value_text}" for r in entry.results)


def _print_table(method: str | None) -> None:
    entries = zoo.list_entries(method)
    if not entries:
        raise zoo.ZooError(f"no zoo entry for method {method!r}")
    rows = [("name", "method", "encoder(s)", "pretraining data", "file", "sha256")]
    for e in entries:
        rows.append((
            e.name, e.method, ", ".join(e.encoders.values()), e.pretraining_data,
            e.file_name or "(by hand)", e.sha256_prefix or "-",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * width for width in widths))
    print("\nReported results (authors' numbers, top-1 % unless mAP):")
    for e in entries:
        print(f"  {e.name}: {_results_text(e)}")


def _load(args: argparse.Namespace) -> None:
    from avssl.models.checkpoints import load_checkpoint
    from avssl.models.encoder import count_parameters
    from avssl.models.registry import create_encoder

    entry = zoo.get_entry(args.name)
    modality, encoder_name = zoo.encoder_for(entry, args.modality)
    path = zoo.local_file(args.name, args.file, verify=not args.no_verify)
    encoder = create_encoder(encoder_name)
    report = load_checkpoint(encoder, path)
    print(f"{entry.name}: {modality} encoder {encoder_name} ({count_parameters(encoder):,} parameters, "
          f"out_dim {encoder.out_dim})")
    print(f"  read {report.loaded_keys} tensors from {path} as layout '{report.layout}'")
    if report.absent_optional_keys:
        print(f"  left at initial values (optional in this layout): {', '.join(report.absent_optional_keys)}")
    if args.save:
        from avssl.models.checkpoints.avssl_native import save_encoder

        out = save_encoder(encoder, args.save, method=entry.method, extra={"zoo_entry": entry.name})
        print(f"  saved as avssl checkpoint: {out}")


def run(args: argparse.Namespace) -> int:
    try:
        if args.zoo_action == "list":
            _print_table(args.method)
        elif args.zoo_action == "fetch":
            print(zoo.fetch(args.name, args.dir, progress=not args.quiet))
        else:
            _load(args)
    except (zoo.ZooError, ValueError) as exc:  # CheckpointError is a ValueError
        print(f"avssl zoo: {exc}", file=sys.stderr)
        return 1
    return 0
