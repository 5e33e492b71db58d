"""Audits the locked dependencies with pip-audit and says plainly which of three things happened.

Exit 0: audited, no known vulnerability. Exit 1: vulnerabilities found (listed). Exit 2: the
vulnerability service could not be reached, so packages were NOT audited: pip-audit itself
would report that as a pass, which it is not.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

UNREACHABLE = 2


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / "requirements.txt"
        report = Path(tmp) / "audit.json"
        subprocess.run(  # noqa: S603 - fixed arguments
            ["uv", "export", "--quiet", "--frozen", "--format", "requirements-txt",  # noqa: S607
             "--no-hashes", "--no-emit-project", "-o", str(requirements)],
            check=True,
        )  # fmt: skip
        status = subprocess.run(  # noqa: S603 - fixed arguments
            [sys.executable, "-m", "pip_audit", "--disable-pip", "--no-deps", "-r",
             str(requirements), "--progress-spinner", "off", "-f", "json", "-o", str(report)],
            check=False,
        ).returncode  # fmt: skip
        if status not in (0, 1) or not report.exists():
            print(f"pip-audit failed to run (exit {status})", file=sys.stderr)  # noqa: T201
            return UNREACHABLE if status not in (0, 1) else 1
        dependencies = json.loads(report.read_text())["dependencies"]
    found = [(d["name"], v["id"]) for d in dependencies for v in d.get("vulns", [])]
    skipped = [d["name"] for d in dependencies if "skip_reason" in d]
    if found or status == 1:
        print(f"pip-audit: vulnerabilities found: {found}", file=sys.stderr)  # noqa: T201
        return 1
    if skipped:
        print(  # noqa: T201
            f"pip-audit: vulnerability service unreachable: {len(skipped)} of "
            f"{len(dependencies)} packages NOT audited",
            file=sys.stderr,
        )
        return UNREACHABLE
    print(f"pip-audit: no known vulnerabilities in {len(dependencies)} packages")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
