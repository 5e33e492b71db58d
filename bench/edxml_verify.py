"""Benchmark: edXML packages parsed and normalised per second, unsigned and signed (XML-DSig).

    uv run python -m bench.edxml_verify [--seconds 2] [--attachment-kib 0]

`--seconds` is the time per variant, `--attachment-kib` the size of a plain attachment in each
package. Every variant runs in the same process and the same run as the unsigned baseline, so
the ratio column compares like with like. Writes a JSON report to bench/results/.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Callable

from bench.common import arguments, table, write_report
from services.ingest.edocuments.normalise import EventContext, normalise_edocument
from services.ingest.edocuments.trust import TrustBundle
from services.ingest.settings import EdxmlLimits
from tests.support.edxml_corpus import NOW, OWN_AGENCIES, Attachment, bindings, build_document
from tests.support.pki import make_pki, sign_edxml, signed_pdf

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


def main(args: argparse.Namespace) -> None:
    # pyHanko logs path-building failures with tracebacks; they are not what is measured.
    logging.disable(logging.WARNING)

    pki = make_pki()
    trust = TrustBundle.from_pem(pki.bundle_pem)
    signers = bindings()
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
                bindings=signers,
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

    columns = ("variant", "bytes", "verdict", "packages_per_s", "ms_per_package", "vs_unsigned")
    print(
        table(
            ["variant", "bytes", "verdict", "pkg/s", "ms/pkg", "ratio"],
            [[row[c] for c in columns] for row in rows],
        )
    )
    report = {
        "seconds_per_variant": args.seconds,
        "attachment_kib": args.attachment_kib,
        "rows": rows,
    }
    write_report("edxml_verify", report)


def cli() -> None:
    main(arguments(__doc__, seconds=2.0, attachment_kib=0))


if __name__ == "__main__":
    cli()
