"""The repository stands alone: its own corpus, no paths of one machine, a test database role that can
tear down what it set up, and ``guard bench`` that runs from anywhere without arguments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from guard.sample_corpus import SAMPLE_CORPUS, make_records, render
from recognizers.checksums import tw_national_id_valid, tw_resident_id_valid
from tests.databases import postgres_admin_url
from tests.e2e.helpers import REPO

# Files allowed to mention ../shared: the tests that optionally check against the development corpora
# beside the repository, and skip cleanly without them; the name tagger's training tools, which take
# the corpus path as an argument and say where it came from in their usage text, and the model's
# provenance record; and this test, which names the pattern.
MAY_NAME_SHARED = {"tests/policy/test_examples.py", "tests/recognizers/test_person_accuracy.py",
                   "tests/deploy/test_standalone.py", "tools/train_names.py", "tools/label_names_lac.py",
                   "recognizers/data/person_crf.json", "recognizers/data/person_net.json",
                   "tools/train_names_net.py", "tests/recognizers/data/person_net_small.json"}


def tracked_files() -> list[str]:
    done = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip("not a git checkout")
    return [name for name in done.stdout.splitlines() if (REPO / name).is_file()]


def test_the_shipped_sample_corpus_is_what_the_generator_writes() -> None:
    assert SAMPLE_CORPUS.read_text(encoding="utf-8") == render(make_records())


def test_every_label_of_the_sample_corpus_sits_at_its_offsets_and_ids_have_valid_check_digits() -> None:
    records = [json.loads(line) for line in SAMPLE_CORPUS.read_text(encoding="utf-8").splitlines()]
    types = {e["type"] for r in records for e in r["entities"]}
    assert {"PERSON", "TW_NATIONAL_ID", "TW_RESIDENT_ID", "TW_LICENSE_PLATE", "PHONE_NUMBER",
            "EMAIL_ADDRESS", "CLASSIFICATION_MARKER"} <= types
    assert any(not r["entities"] for r in records)  # clean prompts too
    for record in records:
        for entity in record["entities"]:
            assert record["text"][entity["start"]:entity["end"]] == entity["text"], record["id"]
            if entity["type"] == "TW_NATIONAL_ID":
                assert tw_national_id_valid(entity["text"]), entity
            if entity["type"] == "TW_RESIDENT_ID":
                assert tw_resident_id_valid(entity["text"]), entity


def test_the_sample_corpus_is_not_the_development_corpus() -> None:
    dev = REPO.parent / "shared" / "corpus" / "dev.jsonl"
    if not dev.is_file():
        pytest.skip("no ../shared/corpus/dev.jsonl beside the repository")
    dev_texts = {json.loads(line)["text"] for line in dev.read_text(encoding="utf-8").splitlines() if line}
    ours = {json.loads(line)["text"] for line in SAMPLE_CORPUS.read_text(encoding="utf-8").splitlines()}
    assert not dev_texts & ours


@pytest.mark.parametrize("needle", ["/work/", "/home/", "../shared", '"shared"'])
def test_no_tracked_file_names_a_path_of_one_machine_or_the_shared_folder(needle: str) -> None:
    offenders = []
    for name in tracked_files():
        # Documentation may say where a number was measured; code, tests and configuration may not need it.
        if name in MAY_NAME_SHARED or name.endswith((".md", ".lock", "package-lock.json")):
            continue
        try:
            content = (REPO / name).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        # Citing the project's reference documents (shared/reference/...) is a source, not a dependency.
        if needle in content.replace("/work/shared/reference/", "reference/"):
            offenders.append(name)
    assert offenders == []


@pytest.mark.postgres
def test_the_test_database_role_may_end_sessions_its_teardown_drops() -> None:
    """DROP DATABASE ... WITH (FORCE) ends an autovacuum worker too, which needs pg_signal_backend."""
    engine = create_engine(make_url(postgres_admin_url()).set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as conn:
            member = conn.execute(text("SELECT pg_has_role(current_user, 'pg_signal_backend', 'MEMBER')"))
            assert member.scalar() is True
    finally:
        engine.dispose()


def test_guard_bench_runs_from_any_directory_on_the_bundled_corpus(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "guard.cli", "bench", "--repeat", "2"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"corpus: {SAMPLE_CORPUS}" in done.stdout
    assert "throughput is" in done.stdout
