"""How long the track takes a class: the teacher notes' timing table, computed from the notebooks.

One model, written down here and printed under the table, applied to each notebook's core (what a class does
in its session) and to its stretch sections (the cells tagged ``stretch``) separately:

* **Reading.** The prose, counted by :func:`prose_words` (the words of the markdown cells, fenced code blocks
  left out), read at :data:`READING_WORDS_PER_MINUTE`: Brysbaert's meta-analysis (2019) measured 238 words a
  minute for silent reading of non-fiction in English and 195 in French; studying a technical text, stopping to
  look at the code and the outputs, goes at about two thirds of that: 150 and 125.
* **Code cells.** :data:`CODE_CELL_MINUTES` for each code cell a student runs and reads, other than an exercise
  and its checkpoint.
* **Exercises.** :data:`EXERCISE_MINUTES`, plus :data:`EXERCISE_MINUTES_PER_LINE` for each line of the solution
  (a one-line prediction takes less than a ten-line route): reading the question again, writing, running the
  checkpoint, fixing once. The exercise's checkpoint cell is part of it.
* **The machine.** What the recorded run of the solution notebook measured, cell by cell (its ``execution``
  timestamps: this project's 2-core machine, images cached, the notebooks' fast mode), except where a
  codespace waits for something else: the cells listed in :data:`WAITS` (a first image build, a load test in
  class mode, a full training) count the minutes given there instead, and :data:`NOTEBOOK_WAITS` adds
  Google's waits to notebook 06's core.
* **Set-up.** :data:`SETUP_MINUTES` before notebook 01: creating the codespace (about half of it waiting).

Calibration: on the track as it stood before its core/stretch split (commit ``b425edd``, every notebook read
whole), the model gives 4 h 13 for set-up plus notebooks 01 to 06 in French (3 h 54 in English), at the low end
of the 4 h 10 to 4 h 45 that a careful estimate at a student's pace gave for that track (issue "A lab a class
finishes"): the model is not kinder than that estimate.

``python -m workshop.track_timing`` writes the table into the teacher notes (English and French) and each
notebook's time line; ``--check`` exits 1 when they are out of step with the notebooks (a test runs it).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from workshop.lab import project_root
from workshop.notebook_track import (
    BEGIN,
    CHECKPOINT_TAG,
    END,
    LANGUAGES,
    is_stretch,
    render,
    solution_notebooks,
    source,
    tags,
    write_student_files,
)

# ----------------------------------------------------------------------------------------------- the model
#: Study reading of technical prose, words a minute (Brysbaert 2019: 238 in English, 195 in French, silent
#: reading of non-fiction; about two thirds of that when studying).
READING_WORDS_PER_MINUTE = {"en": 150, "fr": 125}
#: Running a code cell, reading its code and its output.
CODE_CELL_MINUTES = 0.5
#: An exercise with its checkpoint: a fixed part, and a part per line of its solution.
EXERCISE_MINUTES = 3.0
EXERCISE_MINUTES_PER_LINE = 0.5
#: Opening the codespace and its set-up, before notebook 01 (about half of it waiting for the machine).
SETUP_MINUTES = 10.0
#: The notebooks of the lab proper: set-up plus their core is what one session must hold.
LAB = ("01", "02", "03", "04", "05", "06")
#: The lab's limits (issue "A lab a class finishes"): the core of 01 to 06 with the set-up, and when 06 starts.
SESSION_LIMIT_MINUTES = 150.0
CLOUD_STEP_START_LIMIT_MINUTES = 105.0


@dataclass(frozen=True)
class Wait:
    """A cell whose machine time in a codespace is not what the recorded run measured."""

    notebook: str  #: the notebook's number, "04"
    marker: str  #: text the cell's code contains (the first such cell of the notebook)
    minutes: float
    why: str


#: Where a codespace waits longer than the recorded run (images were cached there, and fast mode shortens work).
WAITS = (
    Wait("04", "docker build -f backend/Dockerfile", 1.5,
         "the first build of the small back-end image (ONNX Runtime, no PyTorch): both images build cold in about "
         "1 minute on 2 cores (docs/benchmarks.md), rounded up for a codespace's first pull of the packages"),
    Wait("04", "docker build -f frontend/Dockerfile", 1.0, "the first build of the front-end image"),
    Wait("05", "docker compose up -d --build --wait", 0.5,
         "the stack's start, its images cached by notebook 04, as measured on a cached run"),
    Wait("07", "--output loadtest-results/one-server", 2.0, "a load test in class, 4 steps of 15 s"),
    Wait("07", "--output loadtest-results/replicas", 2.0, "the same against the replicas"),
    Wait("08", "train_demo(", 17.0, "the full training run, 15 epochs on 400 pictures, measured on 2 cores"),
)
#: Waits that belong to a notebook's core rather than to one cell: Google's, in notebook 06 (enabling the APIs,
#: the push, the VM's creation, boot and pull), as the teacher notes measured them.
NOTEBOOK_WAITS = {"06": 15.0}


# ----------------------------------------------------------------------------------------------- counting
_FENCED = re.compile(r"```.*?```", re.DOTALL)


def prose_words(cells: list[dict]) -> int:
    """Words of prose: over the markdown cells, ``len(text.split())`` once fenced code blocks are removed."""
    return sum(len(_FENCED.sub("", source(cell)).split()) for cell in cells if cell["cell_type"] == "markdown")


def solution_lines(text: str) -> list[int]:
    """For each solution block of a cell, its lines of code (blank lines and comments left out)."""
    counts, inside = [], False
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped == BEGIN:
            inside = True
            counts.append(0)
        elif stripped == END:
            inside = False
        elif inside and stripped and not stripped.startswith("#"):
            counts[-1] += 1
    return counts


def recorded_seconds(cell: dict) -> float:
    """How long the cell ran in the recorded run (0 when it was not recorded)."""
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    parse = lambda stamp: datetime.fromisoformat(stamp.replace("Z", "+00:00"))  # noqa: E731
    return max((parse(end) - parse(start)).total_seconds(), 0.0)


@dataclass
class Part:
    """The core, or the stretch sections, of one notebook: what a student reads, runs and writes, and waits for."""

    words: int = 0
    exercises: int = 0
    exercise_minutes: float = 0.0
    code_cells: int = 0
    machine_minutes: float = 0.0
    reading_minutes: float = 0.0

    @property
    def minutes(self) -> float:
        return self.reading_minutes + self.code_cells * CODE_CELL_MINUTES + self.exercise_minutes + self.machine_minutes


@dataclass
class NotebookTiming:
    number: str
    name: str
    title: str
    core: Part = field(default_factory=Part)
    stretch: Part = field(default_factory=Part)


def notebook_timing(path: Path, language: str) -> NotebookTiming:
    """The model applied to one solution notebook."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    cells = notebook["cells"]
    number = path.name[:2]
    title = source(cells[0]).split("\n", 1)[0].split("·", 1)[-1].strip()
    timing = NotebookTiming(number, path.stem, title)
    waits = [wait for wait in WAITS if wait.notebook == number]
    exercise_pending = False
    for cell in cells:
        part = timing.stretch if is_stretch(cell) else timing.core
        if cell["cell_type"] == "markdown":
            part.words += prose_words([cell])
            continue
        if cell["cell_type"] != "code":
            continue
        text = source(cell)
        wait = next((w for w in waits if w.marker in text), None)
        if wait is not None:
            waits.remove(wait)
            part.machine_minutes += wait.minutes
        else:
            part.machine_minutes += recorded_seconds(cell) / 60
        lines = solution_lines(text)
        if lines:
            part.exercises += len(lines)
            part.exercise_minutes += sum(EXERCISE_MINUTES + EXERCISE_MINUTES_PER_LINE * n for n in lines)
            exercise_pending = True
        elif CHECKPOINT_TAG in tags(cell) and exercise_pending:
            exercise_pending = False  # the exercise's own checkpoint: counted with it
        else:
            part.code_cells += 1
    timing.core.machine_minutes += NOTEBOOK_WAITS.get(number, 0.0)
    for part in (timing.core, timing.stretch):
        part.reading_minutes = part.words / READING_WORDS_PER_MINUTE[language]
    return timing


def track_timings(language: str, root: Path | None = None) -> list[NotebookTiming]:
    """Every notebook of the track, in order."""
    return [notebook_timing(path, language) for path in solution_notebooks(language, root)]


# ----------------------------------------------------------------------------------------------- writing
def clock(minutes: float) -> str:
    """``1 h 05``, or ``45 min`` under an hour."""
    whole = round(minutes)
    return f"{whole // 60} h {whole % 60:02d}" if whole >= 60 else f"{whole} min"


def rounded_to_five(minutes: float) -> int:
    """Minutes for a notebook's time line: to the nearest 5, at least 5."""
    return max(5, 5 * round(minutes / 5))


TEXT = {
    "en": {
        "header": "| Step | Notebook | Starts at | Core | words | exercises | Going further | words | exercises |",
        "setup": "codespace and set-up",
        "lab": "**set-up and core of 01 to 06**",
        "summary": (
            "Set-up and the core of notebooks 01 to 06: **{lab}**; notebook 06 starts at **{start06}**. "
            "Every core, 01 to 08: {core}; the whole track, every stretch section included: {everything}."
        ),
        "model": (
            "Computed by `python -m workshop.track_timing` from the notebooks, with this model: prose read at "
            "{en} words a minute in English ({fr} in French); {cell} min per code cell run and read; {ex} min "
            "per exercise plus {line} min per line of its solution; the machine's time as the recorded run "
            "measured it, except {waits}; {google} min of Google's waits in notebook 06's core; {setup} min of "
            "set-up."
        ),
        "time_line": "**Time:** {core} minutes for the core, {stretch} more to go further.",
        "time_prefix": "**Time:**",
        "wait": "{why} ({minutes} min, notebook {notebook})",
    },
    "fr": {
        "header": "| Étape | Notebook | Début | Essentiel | mots | exercices | Pour aller plus loin | mots | exercices |",
        "setup": "codespace et installation",
        "lab": "**installation et essentiel de 01 à 06**",
        "summary": (
            "L'installation et l'essentiel des notebooks 01 à 06 : **{lab}** ; le notebook 06 commence à "
            "**{start06}**. Tout l'essentiel, de 01 à 08 : {core} ; le parcours entier, avec toutes les sections "
            "pour aller plus loin : {everything}."
        ),
        "model": (
            "Calculé par `python -m workshop.track_timing` à partir des notebooks, avec ce modèle : la prose lue à "
            "{fr} mots par minute en français ({en} en anglais) ; {cell} min par cellule de code exécutée et "
            "lue ; {ex} min par exercice, plus {line} min par ligne de sa solution ; le temps de la machine "
            "mesuré par l'exécution enregistrée, sauf {waits} ; {google} min d'attente chez Google dans "
            "l'essentiel du notebook 06 ; {setup} min d'installation."
        ),
        "time_line": "**Durée :** {core} minutes pour l'essentiel, {stretch} de plus pour aller plus loin.",
        "time_prefix": "**Durée :**",
        "wait": "{why} ({minutes} min, notebook {notebook})",
    },
}
#: The waits of :data:`WAITS` said in French, in the same order.
WAIT_WHY_FR = (
    "la première construction de la petite image du back-end (ONNX Runtime, sans PyTorch) : les deux images se "
    "construisent à froid en 1 minute environ sur 2 cœurs (docs/benchmarks.md), arrondi pour le premier "
    "téléchargement des paquets dans un codespace",
    "la première construction de l'image du front-end",
    "le démarrage de la stack, ses images en cache depuis le notebook 04, mesuré sur une exécution avec cache",
    "un test de charge en classe, 4 paliers de 15 s",
    "le même face aux répliques",
    "l'entraînement complet, 15 époques sur 400 images, mesuré sur 2 cœurs",
)


def _number(value: float, language: str) -> str:
    """``0.5`` in English, ``0,5`` in French."""
    text = f"{value:g}"
    return text.replace(".", ",") if language == "fr" else text


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def table(language: str, root: Path | None = None) -> str:
    """The timing table, a summary line and the model under it, as markdown."""
    text = TEXT[language]
    timings = track_timings(language, root)
    rows = [text["header"], "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            _row("—", text["setup"], clock(0), clock(SETUP_MINUTES), "", "", "", "", "")]
    elapsed = SETUP_MINUTES
    for timing in timings:
        core, stretch = timing.core, timing.stretch
        rows.append(_row(int(timing.number), f"`{timing.name}`", clock(elapsed), clock(core.minutes), core.words,
                         core.exercises, clock(stretch.minutes), stretch.words, stretch.exercises))
        elapsed += core.minutes
        if timing.number == LAB[-1]:
            lab = [t for t in timings if t.number in LAB]
            rows.append(_row("", text["lab"], "", f"**{clock(elapsed)}**", sum(t.core.words for t in lab),
                             sum(t.core.exercises for t in lab), clock(sum(t.stretch.minutes for t in lab)),
                             sum(t.stretch.words for t in lab), sum(t.stretch.exercises for t in lab)))
    lab_total, start06 = lab_minutes(language, root)
    summary = text["summary"].format(
        lab=clock(lab_total), start06=clock(start06), core=clock(elapsed),
        everything=clock(elapsed + sum(t.stretch.minutes for t in timings)),
    )
    whys = [wait.why for wait in WAITS] if language == "en" else list(WAIT_WHY_FR)
    waits = {"en": "; ", "fr": " ; "}[language].join(
        text["wait"].format(why=why, minutes=_number(wait.minutes, language), notebook=wait.notebook)
        for wait, why in zip(WAITS, whys)
    )
    model = text["model"].format(
        en=READING_WORDS_PER_MINUTE["en"], fr=READING_WORDS_PER_MINUTE["fr"],
        cell=_number(CODE_CELL_MINUTES, language), ex=_number(EXERCISE_MINUTES, language),
        line=_number(EXERCISE_MINUTES_PER_LINE, language), waits=waits,
        google=_number(NOTEBOOK_WAITS.get("06", 0), language), setup=_number(SETUP_MINUTES, language),
    )
    return "\n".join(rows) + "\n\n" + summary + "\n\n" + model + "\n"


def lab_minutes(language: str, root: Path | None = None) -> tuple[float, float]:
    """``(set-up and core of 01 to 06, when 06 starts)``, in minutes."""
    elapsed, start06 = SETUP_MINUTES, None
    for timing in track_timings(language, root):
        if timing.number == "06":
            start06 = elapsed
        if timing.number in LAB:
            elapsed += timing.core.minutes
    return elapsed, start06 if start06 is not None else elapsed


# ----------------------------------------------------------------------------------------------- the files
MARKERS = ("<!-- timing table: generated by python -m workshop.track_timing, do not edit -->",
           "<!-- end of the timing table -->")
TEACHER_NOTES = {"en": Path("docs/en/teacher-notes.md"), "fr": Path("docs/fr/notes-enseignant.md")}


def with_table(page: str, language: str, root: Path | None = None) -> str:
    """The teacher notes' text with the generated table between its markers."""
    start, end = MARKERS
    if start not in page or end not in page:
        raise ValueError(f"the page has no '{start}' ... '{end}' block for the table")
    before, rest = page.split(start, 1)
    _, after = rest.split(end, 1)
    return f"{before}{start}\n{table(language, root)}{end}{after}"


def time_line(timing: NotebookTiming, language: str) -> str:
    """The opening's time line of a notebook, from the model."""
    return TEXT[language]["time_line"].format(
        core=rounded_to_five(timing.core.minutes), stretch=rounded_to_five(timing.stretch.minutes)
    )


def with_time_line(notebook: dict, timing: NotebookTiming, language: str) -> dict:
    """The notebook with its first cell's time line replaced by the model's."""
    first = notebook["cells"][0]
    prefix = re.escape(TEXT[language]["time_prefix"])
    # The whole paragraph: a hand-written time line may run over several lines.
    text, count = re.subn(rf"^{prefix}.*(?:\n[^\n]+)*", time_line(timing, language), source(first), count=1,
                          flags=re.M)
    if not count:
        raise ValueError(f"{timing.name}: the first cell has no line starting with {TEXT[language]['time_prefix']}")
    first["source"] = text
    return notebook


def expected_files(root: Path | None = None) -> dict[Path, str]:
    """The teacher notes and the solution notebooks as the model writes them."""
    root = root or project_root()
    files = {}
    for language in LANGUAGES:
        notes = root / TEACHER_NOTES[language]
        files[notes] = with_table(notes.read_text(encoding="utf-8"), language, root)
        for path, timing in zip(solution_notebooks(language, root), track_timings(language, root)):
            notebook = json.loads(path.read_text(encoding="utf-8"))
            files[path] = render(with_time_line(notebook, timing, language))
    return files


def write_expected_files(root: Path | None = None, rounds: int = 3) -> list[Path]:
    """Write the timing text until it is in step: a time line written anew can change its notebook's prose words,
    hence the table (once, when a notebook's line did not follow the template). Returns the files written."""
    written: list[Path] = []
    for _ in range(rounds):
        stale = {path: text for path, text in expected_files(root).items() if path.read_text(encoding="utf-8") != text}
        if not stale:
            break
        for path, text in stale.items():
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return list(dict.fromkeys(written))


def stale_files(root: Path | None = None) -> list[Path]:
    """The files whose timing text is out of step with the notebooks."""
    return [path for path, text in expected_files(root).items() if path.read_text(encoding="utf-8") != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compute the track's timing table and the notebooks' time lines.")
    parser.add_argument("--check", action="store_true", help="only say whether they are in step (exit 1 if not)")
    args = parser.parse_args(argv)
    root = project_root()
    if args.check:
        stale = stale_files(root)
        for path in stale:
            print(f"{path.relative_to(root)} is out of step with the notebooks")
        if stale:
            print("Run: python -m workshop.track_timing")
        return 1 if stale else 0
    changed = write_expected_files(root)
    for path in changed:
        print("wrote", path.relative_to(root))
    if any(path.suffix == ".ipynb" for path in changed):
        write_student_files(root)
        print("student notebooks regenerated")
    for language in LANGUAGES:
        lab, start06 = lab_minutes(language, root)
        print(f"{language}: set-up and core of 01 to 06 {clock(lab)}, notebook 06 starts at {clock(start06)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
