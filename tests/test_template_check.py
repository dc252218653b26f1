"""The template check `make test` runs: the shipped templates pass it, and it catches each
kind of wording fault."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cmoc import ROOT
from cmoc.messages import TemplateLibrary
from cmoc.template_check import cases, check_library, main, repeated_phrase

SHIPPED = ROOT / "templates" / "messages"


def test_shipped_templates_pass_the_check():
    rendered, findings = check_library(TemplateLibrary(SHIPPED))
    assert rendered > 1000
    assert findings == [], "\n".join(map(str, findings[:10]))


def test_cases_cover_typical_and_edge_inputs():
    template = TemplateLibrary(SHIPPED).get("identified")
    names = [name for name, _ in cases(template)]
    assert "typical" in names and "empty optional" in names and "CJK" in names
    assert "160 characters" in names and "ends with '...'" in names
    assert 'cause starts with "We\'ve identified the cause as"' in names
    values = dict(cases(template))
    assert values["empty optional"]["action"] == ""
    assert len(values["160 characters"]["cause"]) == 160
    assert len(values["160 characters"]["action"]) <= 120  # capped at the field's own limit


def write(folder: Path, slug: str, *, statusio: str, twitter: str, slack: str,
          states: str = '["investigating", "identified", "monitoring", "resolved"]',
          variables: str = "") -> Path:
    (folder / slug).mkdir(parents=True)
    (folder / slug / "template.toml").write_text(
        f'label = "{slug}"\nstates = {states}\ndefault_for = {states}\n{variables}')
    for channel, body in (("statusio", statusio), ("twitter", twitter), ("slack", slack)):
        (folder / slug / f"{channel}.j2").write_text(body)
    return folder


FIX = '[[variables]]\nname = "fix"\nlabel = "What changed?"\nmax_length = 160\n'


@pytest.mark.parametrize(("statusio", "fault"), [
    ("{{ fix }}. Details follow.", "doubled punctuation"),           # "normal.." (finding 9)
    ("Errors affecting us {{ fix }} affecting Website.", "repeated phrase"),
    ("{{ fix|sentence }} Fix: [fix]", "leftover marker"),
    ("{{ fix|sentence }} Next update by {{ '{' }}next_updat}.", "unknown token"),
    ("{{ fix|sentence }} All systems are fully operational.", "operational before Resolved"),
])
def test_each_fault_is_caught(tmp_path, statusio, fault):
    folder = write(tmp_path, "bad", statusio=statusio, twitter="{{ fix|sentence }}",
                   slack="*{{ title }}*\n{{ fix|sentence }}", variables=FIX)
    _, findings = check_library(TemplateLibrary(folder))
    assert any(fault in f.message for f in findings), [str(f) for f in findings[:5]]
    # the gitlab comment falls back to the status page text, so it has the same fault
    assert {f.channel for f in findings} == {"statusio", "gitlab"}


def test_a_tweet_body_over_220_is_caught(tmp_path):
    folder = write(tmp_path, "long", statusio="{{ fix|sentence }}",
                   twitter="We're keeping you posted while our engineers work on it; thanks for "
                   "waiting. {{ fix|sentence }}",
                   slack="{{ fix|sentence }}", variables=FIX)
    _, findings = check_library(TemplateLibrary(folder))
    assert {f.case for f in findings if "tweet body" in f.message} >= {
        "160 characters, investigating/degraded_performance"}


def test_repeated_phrase_rules():
    assert repeated_phrase("We are are working on it") == "are are"
    assert repeated_phrase("error rates are high for many users today. Error rates are "
                           "falling") == "error rates"
    assert repeated_phrase("slow pages affecting users affecting Website") == \
        "affecting … affecting"
    assert repeated_phrase("We're seeing errors. We're investigating.") is None


def test_command_line_exit_status(tmp_path, capsys):
    assert main([str(SHIPPED)]) == 0
    assert "0 faults" in capsys.readouterr().out
    bad = write(tmp_path, "bad", statusio="{{ fix }}.", twitter="{{ fix }}", slack="{{ fix }}",
                variables=FIX)
    assert main([str(bad)]) == 1
    # As `make test` runs it: a module of its own, no app or database needed.
    run = subprocess.run([sys.executable, "-m", "cmoc.template_check"], capture_output=True,
                         text=True, timeout=120, check=False, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
