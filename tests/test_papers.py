"""Paper discussions: each source compiles, each committed PDF is up to date, cited results exist, 4-8 pages.

The experiments are never run here; the tests read what ``python -m vclib papers`` stored.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import typst

from vclib import papers

WRITTEN = [p for p in papers.PAPERS if p.source.exists()]
JSON_BINDING = re.compile(r"#?let\s+([A-Za-z_][\w-]*)\s*=\s*json\(\s*\"([^\"]+)\"\s*\)")
TEMPLATE = Path(__file__).resolve().parent.parent / "paper_discussions" / "src" / "template.typ"
IDENT = r"[A-Za-z_][\w-]*"


def cited_keys(source: str) -> list[tuple[str, tuple[str | int, ...]]]:
    """``(json path, key chain)`` for every ``r.a.b`` / ``r.at("a").at(0)`` that a Typst source cites.

    A chain stops at a method call (``r.rows.len()``) or at anything that is not a field or ``.at(...)``.
    """
    cited = []
    for name, json_path in JSON_BINDING.findall(source):
        step = re.compile(rf"\.(?:at\(\s*(?:\"([^\"]*)\"|(\d+))\s*\)|({IDENT})(?![\w(-]))")
        for start in re.finditer(rf"(?<![\w.-]){re.escape(name)}(?=\.)", source):
            keys: list[str | int] = []
            position = start.end()
            while (match := step.match(source, position)) is not None:
                text_key, index, field = match.groups()
                keys.append(int(index) if index is not None else (text_key if text_key is not None else field))
                position = match.end()
            if keys:
                cited.append((json_path, tuple(keys)))
    return cited


def lookup(data: object, keys: tuple[str | int, ...]) -> str | None:
    """``None`` when the chain exists in ``data``, else a message naming the first missing key."""
    for depth, key in enumerate(keys):
        if isinstance(key, int) and isinstance(data, list) and -len(data) <= key < len(data):
            data = data[key]
        elif isinstance(key, str) and isinstance(data, dict) and key in data:
            data = data[key]
        else:
            found = sorted(data) if isinstance(data, dict) else type(data).__name__
            return f"{'.'.join(map(str, keys[:depth + 1]))} is missing (there: {found})"
    return None


def test_cited_keys_parses_fields_at_calls_and_stops_at_methods():
    source = '#let r = json("/results/x/results.json")\n#num(r.a.b) #r.at("c-d").at(0).e. #r.rows.len()'
    assert cited_keys(source) == [
        ("/results/x/results.json", ("a", "b")),
        ("/results/x/results.json", ("c-d", 0, "e")),
        ("/results/x/results.json", ("rows",)),
    ]
    assert lookup({"a": {"b": 1}}, ("a", "b")) is None
    assert "a.c is missing" in lookup({"a": {"b": 1}}, ("a", "c"))


def test_page_counter_counts_typst_pages(tmp_path):
    source = tmp_path / "three.typ"
    source.write_text("Page one #pagebreak() Page two #pagebreak() Page three")
    typst.compile(str(source), output=str(tmp_path / "three.pdf"))
    assert papers.count_pdf_pages(tmp_path / "three.pdf") == 3


def test_registry_names_the_six_pdfs():
    assert [p.pdf.name for p in papers.PAPERS] == [
        "1_Comparative_study_AlexNet_ResNet.pdf", "2_Comparative_Study_YOLO_DeepLabv3.pdf",
        "3_Exploring_RNN_LSTM_Transformers.pdf", "4_Exploring_Transformers_ObjectDetection.pdf",
        "5_Exploring_GANs.pdf", "6_Exploring_3D_DeepLearning.pdf",
    ]


@pytest.mark.parametrize("entry", WRITTEN, ids=lambda p: p.name)
def test_source_compiles(entry, tmp_path):
    assert not entry.missing(), f"{entry.source.name} exists but its paper lacks {entry.missing()}"
    papers.compile_pdf(entry.source, tmp_path / "out.pdf")
    assert 4 <= papers.count_pdf_pages(tmp_path / "out.pdf") <= 8


@pytest.mark.parametrize("entry", WRITTEN, ids=lambda p: p.name)
def test_pdf_is_up_to_date_with_its_inputs(entry):
    manifest = papers.read_manifest()
    rebuild = f"rebuild with: python -m vclib papers --no-experiments --only {entry.number}"
    assert entry.pdf.name in manifest, f"{entry.pdf.name} is not in manifest.json; {rebuild}"
    recorded = manifest[entry.pdf.name]
    assert recorded["inputs"] == papers.input_hashes(entry), f"{entry.pdf.name} is older than its inputs; {rebuild}"
    assert entry.pdf.exists(), f"{entry.pdf.name} is missing; {rebuild}"
    assert recorded["pdf"] == papers.sha256(entry.pdf), f"{entry.pdf.name} differs from the one built; {rebuild}"


@pytest.mark.parametrize("entry", WRITTEN, ids=lambda p: p.name)
def test_pdf_has_4_to_8_pages_and_metadata(entry):
    assert entry.pdf.exists(), f"{entry.pdf.name} is missing; build it: python -m vclib papers --only {entry.number}"
    assert 4 <= papers.count_pdf_pages(entry.pdf) <= 8
    assert b"Deep Learning for Visual Computing" in entry.pdf.read_bytes()


@pytest.mark.parametrize("entry", WRITTEN, ids=lambda p: p.name)
def test_every_cited_result_exists(entry):
    source = entry.source.read_text()
    cited = cited_keys(source)
    assert cited, f"{entry.source.name} cites no results.json value"
    for json_path, keys in cited:
        path = entry.folder / json_path.lstrip("/")
        assert path.exists(), f"{entry.source.name} reads {json_path}, which does not exist (run the experiment)"
        data = json.loads(path.read_text())
        problem = lookup(data, keys)
        assert problem is None, f"{entry.source.name} cites {json_path}: {problem}"


def _scratch_repository(root: Path) -> papers.Paper:
    """A repository with paper 1 only: a tiny source that cites its results, the real template."""
    folder = root / "paper_discussions"
    (folder / "src").mkdir(parents=True)
    (folder / "experiments").mkdir()
    (folder / "results" / "1_tiny").mkdir(parents=True)
    shutil.copy(TEMPLATE, folder / "src" / "template.typ")
    (folder / "experiments" / "1_tiny.py").write_text("")
    (folder / "results" / "1_tiny" / "results.json").write_text('{"error": 0.25}')
    entry = papers.paper(1)
    entry.source.write_text('#import "template.typ": *\n#show: paper.with(title: "T", number: 1)\n'
                            '#let r = json("/results/1_tiny/results.json")\nError #num(r.error).')
    return entry


def test_build_records_hashes_and_a_tampered_input_or_pdf_is_detected(tmp_path, monkeypatch):
    monkeypatch.setattr(papers, "repository_root", lambda: tmp_path)
    entry = _scratch_repository(tmp_path)
    papers.build_pdf(entry)
    recorded = papers.read_manifest()[entry.pdf.name]
    assert recorded == {"inputs": papers.input_hashes(entry), "pdf": papers.sha256(entry.pdf)}
    assert set(recorded["inputs"]) == {"src/1_Comparative_study_AlexNet_ResNet.typ", "src/template.typ",
                                       "results/1_tiny/results.json"}
    assert papers.count_pdf_pages(entry.pdf) == 1
    first = entry.pdf.read_bytes()
    papers.build_pdf(entry)
    assert entry.pdf.read_bytes() == first, "two builds of the same inputs differ"
    results = entry.results_dir / "results.json"
    results.write_text('{"error": 0.5}')
    assert recorded["inputs"] != papers.input_hashes(entry)
    entry.pdf.write_bytes(first + b"\n")
    assert recorded["pdf"] != papers.sha256(entry.pdf)


def test_missing_sources_are_named_not_raised(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(papers, "repository_root", lambda: tmp_path)
    (tmp_path / "paper_discussions").mkdir()
    assert papers.build_papers([2], experiments=False) == 1
    assert "paper 2: not built, missing paper_discussions/experiments/2_<slug>.py" in capsys.readouterr().out


def test_run_experiment_passes_out_and_threads_to_the_script(tmp_path, monkeypatch):
    monkeypatch.setattr(papers, "repository_root", lambda: tmp_path)
    script = tmp_path / "paper_discussions" / "experiments" / "3_probe.py"
    script.parent.mkdir(parents=True)
    script.write_text(
        "import json, os, sys\nfrom pathlib import Path\nout = Path(sys.argv[sys.argv.index('--out') + 1])\n"
        "out.mkdir(parents=True)\n(out / 'results.json').write_text(json.dumps({'threads': os.environ['VCLIB_THREADS'],"
        " 'omp': os.environ['OMP_NUM_THREADS']}))\n"
    )
    entry = papers.paper(3)
    assert entry.experiment == script and entry.results_dir == tmp_path / "paper_discussions" / "results" / "3_probe"
    assert papers.run_experiment(entry, threads=2) > 0
    assert json.loads((entry.results_dir / "results.json").read_text()) == {"threads": "2", "omp": "2"}
    assert entry.missing() == ["paper_discussions/src/3_Exploring_RNN_LSTM_Transformers.typ"]
