"""The fast variants of the fault suite (``make test-faults`` runs the long ones).

``scripts/fault_kill_add.py``: ``lookalike add`` SIGKILLed over and over, some of the kills inside
the snapshot save; after every run the catalog is intact with every item's vector, orphaned
temporary snapshots are removed by the next save, and at the end every photo is its own first
hit and the graph answers like an exact twin.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import fault_kill_add  # noqa: E402


def test_add_killed_again_and_again_loses_nothing(tmp_path):
    report_file = tmp_path / "report.json"
    status = fault_kill_add.main(["--images", "400", "--runs", "6", "--threshold", "150", "--seed", "3",
                                  "--work", str(tmp_path / "work"), "--json", str(report_file)])
    report = json.loads(report_file.read_text())
    assert status == 0, report["problems"]
    assert report["summary"]["killed"] >= 4, report["runs"]
    assert report["summary"]["killed_in_save"] >= 1, report["runs"]
    assert report["summary"]["items_lost"] == 0
    assert report["search"]["own_first_hit_missed"] == 0


def test_server_killed_under_load_loses_nothing_acknowledged(tmp_path):
    """``scripts/fault_kill_serve.py``: the server SIGKILLed under 32 uploaders, a folder job and
    deletes, twice; after each restart nothing acknowledged is lost, nothing deleted is back,
    every image is served as stored and every upload is its own first hit; the job resumes."""
    import fault_kill_serve

    report_file = tmp_path / "report.json"
    status = fault_kill_serve.main(["--rounds", "2", "--uploads", "80", "--folder", "80", "--seed", "5",
                                    "--work", str(tmp_path / "work"), "--json", str(report_file)])
    report = json.loads(report_file.read_text())
    assert status == 0, [round["problems"] for round in report["rounds"]]
    assert report["summary"]["lost"] == 0
    assert report["summary"]["acknowledged_at_end"] > 0
    assert report["summary"]["jobs_lost"] == 0, [round["job"] for round in report["rounds"]]
