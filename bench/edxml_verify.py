"""Benchmark: edXML packages parsed and normalised per second, unsigned and signed (XML-DSig).

Run `uv run python -m bench.edxml_verify [--seconds 2] [--attachment-kib 0]`. Every variant runs
in the same process and the same run as the unsigned baseline, so the ratio column compares like
with like. Results go to `bench/results/edxml_verify-<timestamp>.json` (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from services.ingest.edocuments.normalise import EventContext, normalise_edocument
from services.ingest.edocuments.signature import TrustBundle
from services.ingest.settings import EdxmlLimits
from tests.support.edxml_corpus import NOW, OWN_AGENCIES, Attachment, build_document
from tests.support.pki import make_pki, sign_edxml, signed_pdf

RESULTS = Path(__file__).parent / "results"
CONTEXT = EventContext(source="urn:bench", event_id="bench", event_time=NOW)


def _rate(run: Callable[[], object], seconds: float) -> tuple[float, int]:
    run()  # warm caches and lazy imports outside the measurement
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        run()
        count += 1
    return count / (time.perf_counter() - started), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per variant")
    parser.add_argument(
        "--attachment-kib", type=int, default=0, help="size of a plain attachment in each package"
    )
    args = parser.parse_args()
    # pyHanko logs path-building failures with tracebacks; they are not what is measured.
    logging.disable(logging.WARNING)

    pki = make_pki()
    trust = TrustBundle.from_pem(pki.bundle_pem)
    limits = EdxmlLimits()
    attachments: tuple[Attachment, ...] = ()
    if args.attachment_kib:
        blob = os.urandom(args.attachment_kib * 1024)
        attachments = (Attachment("phu-luc.bin", blob, "application/octet-stream"),)
    plain = build_document(attachments=attachments)
    variants: dict[str, bytes] = {
        "unsigned": plain,
        "rsa-sha256 / sha256": sign_edxml(plain, pki.signer),
        "rsa-sha1 / sha1": sign_edxml(plain, pki.signer, algorithm="rsa-sha1", digest="sha1"),
        "rsa-sha256 + signed PDF": sign_edxml(
            build_document(
                attachments=(*attachments, Attachment("qd.pdf", signed_pdf(pki.signer)))
            ),
            pki.signer,
        ),
    }

    rows = []
    baseline = 0.0
    for name, raw in variants.items():

        def run(raw: bytes = raw) -> object:
            return normalise_edocument(
                raw,
                own_agencies=OWN_AGENCIES,
                trust=trust,
                now=NOW,
                limits=limits,
                context=CONTEXT,
            )

        verdict = run().signature.verdict  # type: ignore[attr-defined]
        rate, count = _rate(run, args.seconds)
        baseline = baseline or rate
        rows.append(
            {
                "variant": name,
                "bytes": len(raw),
                "verdict": str(verdict),
                "packages_per_s": round(rate, 1),
                "ms_per_package": round(1000 / rate, 3),
                "vs_unsigned": round(rate / baseline, 3),
                "iterations": count,
            }
        )

    header = f"{'variant':<26}{'bytes':>9}{'verdict':>10}{'pkg/s':>10}{'ms/pkg':>9}{'ratio':>8}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['variant']:<26}{row['bytes']:>9}{row['verdict']:>10}"
            f"{row['packages_per_s']:>10}{row['ms_per_package']:>9}{row['vs_unsigned']:>8}"
        )

    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"edxml_verify-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "benchmark": "edxml_verify",
                "at": stamp,
                "seconds_per_variant": args.seconds,
                "attachment_kib": args.attachment_kib,
                "python": platform.python_version(),
                "machine": platform.machine(),
                "cpus": os.cpu_count(),
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"\nwritten to {out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out}")


if __name__ == "__main__":
    main()
