"""What the gen4sdk command prints for people: a verification report, a compliance report.

The CLI's own half, like _cli_args.py: cli.py runs the commands, this module words their results. It uses only
the public types.
"""

from __future__ import annotations

from gen4sdk.types import ComplianceReport, VerificationReport

__all__ = ["print_compliance", "print_report"]

_MARK = {"met": "met          ", "missing": "MISSING      ", "not_checkable": "not checkable"}


def print_report(report: VerificationReport) -> None:
    print(f"{report.path}: {report.status.upper()}")
    print(f"  {report.reason}")
    if report.signer:
        print(f"  signer:   {report.signer.common_name} ({report.signer.organization})")
    if report.owner:
        user = f" / {report.owner.user}" if report.owner.user else ""
        print(f"  owner:    {report.owner.organization}{user}")
    if report.ai_generated is not None:
        print(
            f"  AI-generated: {'yes' if report.ai_generated else 'no'}  ({report.software_agent or 'unknown agent'})"
        )
    if report.lineage:
        lin = report.lineage
        print(
            f"  lineage:  model {lin.model_id} (weights {str(lin.weights_sha256)[:16]}...), seed {lin.seed}"
        )
        print(f"            prompt commitment {str(lin.prompt_commitment)[:16]}...  request {lin.request_id}")
    for p in report.policy:
        extra = (f" {p.categories}" if p.categories else "") + (
            f" warnings {p.warnings}" if p.warnings else ""
        )
        print(f"  policy ({p.stage}): {p.pack_id} {p.pack_version}: {p.outcome}{extra}")
    if report.training_mining:
        print(
            f"  training/mining: {', '.join(f'{k}={v}' for k, v in sorted(report.training_mining.items()))}"
        )
    for ing in report.ingredients:
        print(f"  ingredient: {ing.title} ({ing.relationship}, {ing.format})")
    if report.watermark is not None:
        wm = report.watermark
        match = "" if wm.matches_credentials is None else f", matches credentials: {wm.matches_credentials}"
        found = f"found payload {wm.payload}" if wm.found else "not found"
        print(f"  watermark: {found} (confidence {wm.confidence:.2f}{match})")
    if report.recovered_from:
        print(f"  recovered from: {report.recovered_from} (by its {report.recovered_by or 'watermark'})")
    if report.fingerprint is not None:
        f = report.fingerprint
        print(
            f"  fingerprint: {f.frames} frames {f.distance:g} of 63 bits apart (similarity {f.similarity}), "
            f"from {f.offset_seconds:g} s of the stored clip, {f.view}"
        )
    if report.disclosure:
        d = report.disclosure
        print(f"  disclosure: {', '.join(d.profiles) or 'no profile'}; {d.system_name} ({d.system_version})")
    if report.visible_label:
        lab = report.visible_label
        print(
            f"  visible label: {lab.text!r} ({lab.position}, {lab.height_fraction:.1%} high, 0-{lab.end_s:g} s)"
        )
    for problem in report.problems:
        print(f"  problem:  {problem}")


def print_compliance(report: ComplianceReport) -> None:
    """Each profile's requirements for one clip: met / MISSING / not checkable, and why."""
    v = report.verification
    verdict = "MEETS" if report.ok else "DOES NOT MEET"
    print(f"{report.path}: {verdict} {', '.join(report.profiles)}  (verify: {v.status}; {v.reason})")
    for profile in report.profiles:
        print(f"  {profile}: {report.summary(profile).replace('_', ' ')}")
        for c in report.checks:
            if c.profile != profile:
                continue
            duty = " [operator]" if c.scope == "operator" else ""
            print(f"    {_MARK[c.status]} {c.requirement}{duty}: {c.title}")
            print(f"                  {c.why}  ({c.citation})")
