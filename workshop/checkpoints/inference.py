"""Notebook 01's checkpoints: reading Ultralytics' ``Results``, filtering by confidence, the first call's cost.

Each function checks one exercise and prints a line starting with ✅, or stops the notebook with one
sentence (in the notebook's language) saying what to fix.
"""

from __future__ import annotations

import numbers
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from workshop.checkpoints import expect, guarded, passed

#: The keys each detection dict must have, as the API's JSON has them.
KEYS = ("class_name", "confidence", "box")
# Boxes are compared to the pixel (the student may round), confidences to the hundredth.
_BOX_TOLERANCE = 1.0
_CONFIDENCE_TOLERANCE = 0.01


def reference_dicts(result: Any) -> list[dict]:
    """The right answer to the exercise: one ``{"class_name", "confidence", "box"}`` dict per box of ``result``."""
    boxes = result.boxes
    return [
        {"class_name": result.names[int(cls)], "confidence": float(conf), "box": [float(v) for v in xyxy]}
        for xyxy, conf, cls in zip(boxes.xyxy.tolist(), boxes.conf.tolist(), boxes.cls.tolist())
    ]


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_tensor(value: object) -> bool:
    return hasattr(value, "tolist") and not isinstance(value, (list, tuple))


def _check_one(number: int, got: object, wanted: dict) -> None:
    """One dict against the model's box ``number`` (counted from 1 in the sentences)."""
    expect(
        isinstance(got, dict) and all(key in got for key in KEYS),
        f"Detection {number} is {got!r}: make each one a dict with the keys class_name, confidence and box.",
        f"La détection {number} vaut {got!r} : faites de chacune un dict avec les clés class_name, confidence et box.",
    )
    assert isinstance(got, dict)
    name, confidence, box = got["class_name"], got["confidence"], got["box"]
    expect(
        isinstance(name, str),
        f"class_name of detection {number} is {name!r}, a class index: turn it into a name with result.names[int(cls)].",
        f"Dans la détection {number}, class_name vaut {name!r}, un numéro de classe : "
        "obtenez le nom avec result.names[int(cls)].",
    )
    expect(
        not _is_tensor(confidence) and not _is_tensor(box),
        f"Detection {number} holds tensors: turn them into plain numbers and lists with .tolist() (or float()).",
        f"La détection {number} contient des tenseurs : convertissez-les en nombres et listes avec .tolist() (ou float()).",
    )
    expect(
        _is_number(confidence) and 0.0 <= float(confidence) <= 1.0,
        f"confidence of detection {number} is {confidence!r}: it must be a number between 0 and 1 (result.boxes.conf).",
        f"Dans la détection {number}, confidence vaut {confidence!r} : il faut un nombre entre 0 et 1 "
        "(result.boxes.conf).",
    )
    expect(
        isinstance(box, (list, tuple)) and len(box) == 4 and all(_is_number(v) for v in box),
        f"box of detection {number} is {box!r}: make it a list of 4 numbers, [x_min, y_min, x_max, y_max].",
        f"Dans la détection {number}, box vaut {box!r} : il faut une liste de 4 nombres, [x_min, y_min, x_max, y_max].",
    )
    expect(
        name == wanted["class_name"],
        f"Detection {number} is a '{name}' but the model's box {number} is a '{wanted['class_name']}': "
        "keep the boxes in their order and read each one's class from result.boxes.cls.",
        f"La détection {number} est un « {name} » alors que la boîte {number} du modèle est un "
        f"« {wanted['class_name']} » : gardez l'ordre des boîtes et lisez la classe de chacune dans result.boxes.cls.",
    )
    expect(
        abs(float(confidence) - wanted["confidence"]) <= _CONFIDENCE_TOLERANCE,
        f"confidence of detection {number} is {float(confidence):.2f}, the model says {wanted['confidence']:.2f}: "
        "read it from result.boxes.conf.",
        f"Dans la détection {number}, confidence vaut {float(confidence):.2f} et le modèle dit "
        f"{wanted['confidence']:.2f} : lisez-le dans result.boxes.conf.",
    )
    shown = [round(v) for v in wanted["box"]]
    expect(
        all(abs(float(a) - b) <= _BOX_TOLERANCE for a, b in zip(box, wanted["box"])),
        f"box of detection {number} is {[round(float(v)) for v in box]}, the model's corners are {shown}: "
        "take result.boxes.xyxy (corners in the picture's pixels), not xywh or xyxyn.",
        f"Dans la détection {number}, box vaut {[round(float(v)) for v in box]} et les coins du modèle sont {shown} : "
        "prenez result.boxes.xyxy (les coins, en pixels de l'image), pas xywh ni xyxyn.",
    )


def _returned_list(call: Callable[[], Any], name: str, crash: tuple[str, str], fix: tuple[str, str]) -> list:
    """What the student's function ``name`` returned through ``call()``, when it is a list.

    A crash, or anything but a list, stops the checkpoint with one sentence (``crash`` and ``fix``
    complete it, in English and in French).
    """
    produced: list[Any] = []
    guarded(lambda: produced.append(call()), name + crash[0], name + crash[1])
    got = produced[0]
    expect(
        isinstance(got, list),
        f"{name} returned {type(got).__name__}, not a list: {fix[0]}",
        f"{name} a renvoyé un {type(got).__name__}, pas une liste : {fix[1]}",
    )
    return got


def _counts(detections: Sequence[dict]) -> str:
    counts = Counter(d["class_name"] for d in detections)
    return ", ".join(f"{name} ×{count}" for name, count in sorted(counts.items())) or "-"


def detections_as_dicts(to_dicts: Callable[[Any], Any] | None, result: Any) -> None:
    """Exercise: ``to_dicts(result)`` gives one dict per box, with the model's class name, confidence and corners."""
    expect(
        callable(to_dicts),
        "Define the function to_dicts(result) in the cell above, then run it.",
        "Définissez la fonction to_dicts(result) dans la cellule au-dessus, puis exécutez-la.",
    )
    assert to_dicts is not None
    wanted = reference_dicts(result)
    got = _returned_list(
        lambda: to_dicts(result),
        "to_dicts",
        ("(result) crashed: read the error, fix the loop", "(result) a planté : lisez l'erreur, corrigez la boucle"),
        ("return the list you filled, one dict per box.", "renvoyez la liste remplie, un dict par boîte."),
    )
    expect(
        bool(got) or not wanted,
        f"to_dicts returned an empty list, but the model found {len(wanted)} boxes: loop over the boxes and append one dict each.",
        f"to_dicts a renvoyé une liste vide, alors que le modèle a trouvé {len(wanted)} boîtes : "
        "parcourez les boîtes et ajoutez un dict pour chacune.",
    )
    expect(
        len(got) == len(wanted),
        f"to_dicts returned {len(got)} dicts for {len(wanted)} boxes: append exactly one dict per box.",
        f"to_dicts a renvoyé {len(got)} dicts pour {len(wanted)} boîtes : ajoutez exactement un dict par boîte.",
    )
    for number, (one, right) in enumerate(zip(got, wanted), 1):
        _check_one(number, one, right)
    passed(
        f"to_dicts turns the {len(wanted)} boxes into {len(wanted)} dicts: {_counts(wanted)}.",
        f"to_dicts transforme les {len(wanted)} boîtes en {len(wanted)} dicts : {_counts(wanted)}.",
    )


#: Thresholds the filter is tried with: the usual default, a strict one, and a loose one.
THRESHOLDS = (0.25, 0.5, 0.9, 0.05)


def confidence_filter(keep_confident: Callable[[list[dict], float], Any] | None, model: Any, image: Any) -> None:
    """Exercise: ``keep_confident(detections, threshold)`` keeps, in order, the detections at or above the threshold.

    The detections it is tried on are the model's own at a very low threshold (``conf=0.01``), so that
    there are weak boxes to drop; the result is then compared with Ultralytics' own ``conf=`` filter.
    """
    expect(
        callable(keep_confident),
        "Define the function keep_confident(detections, threshold) in the cell above, then run it.",
        "Définissez la fonction keep_confident(detections, threshold) dans la cellule au-dessus, puis exécutez-la.",
    )
    assert keep_confident is not None
    everything = reference_dicts(model.predict(image, conf=0.01, verbose=False)[0])
    for threshold in THRESHOLDS:
        wanted = [d for d in everything if d["confidence"] >= threshold]
        got = _returned_list(
            # A copy: a filter that edits the list it is given must not hide its mistake from the next threshold.
            lambda threshold=threshold: keep_confident([dict(d) for d in everything], threshold),
            "keep_confident",
            (" crashed", " a planté"),
            ("return the detections you kept.", "renvoyez les détections gardées."),
        )
        confidences = [d.get("confidence") if isinstance(d, dict) else d for d in got]
        too_weak = [c for c in confidences if _is_number(c) and c < threshold]
        expect(
            not too_weak,
            f"At threshold {threshold}, keep_confident kept a detection of confidence {too_weak[0] if too_weak else 0:.2f}: "
            "keep only those whose confidence is at least the threshold.",
            f"Au seuil {threshold}, keep_confident a gardé une détection de confiance {too_weak[0] if too_weak else 0:.2f} : "
            "ne gardez que celles dont la confiance atteint le seuil.",
        )
        expect(
            got == wanted,
            f"At threshold {threshold}, keep_confident kept {len(got)} of the {len(wanted)} detections at or above it: "
            "keep every one of them, whole and in their order.",
            f"Au seuil {threshold}, keep_confident en a gardé {len(got)} sur les {len(wanted)} qui l'atteignent : "
            "gardez-les toutes, entières et dans l'ordre.",
        )
    ultralytics = len(model.predict(image, conf=0.25, verbose=False)[0].boxes)
    mine = sum(d["confidence"] >= 0.25 for d in everything)
    passed(
        f"keep_confident drops the weak boxes: {len(everything)} at conf=0.01, {mine} kept at 0.25 "
        f"(Ultralytics' own conf=0.25 gives {ultralytics}).",
        f"keep_confident écarte les boîtes faibles : {len(everything)} à conf=0.01, {mine} gardées à 0.25 "
        f"(le conf=0.25 d'Ultralytics en donne {ultralytics}).",
    )


def first_call_prediction(first_call_slower: object, times_slower: object, seconds: Sequence[float] | None) -> None:
    """Exercise (predict, then measure): is a fresh model's first call slower than the next ones, and how much?

    The guess is written before the measure; this reveals the measure and compares it with the guess in one
    sentence. Any recorded guess passes: the lesson is the comparison, not guessing until it turns green.
    ``seconds`` are the measured calls (``workshop.lab.time_calls``): the first one, then the others.
    """
    expect(
        isinstance(first_call_slower, bool),
        "Write your prediction first: set first_call_slower to True or False, then run the cells again from there.",
        "Notez d'abord votre pronostic : donnez à first_call_slower la valeur True ou False, puis relancez les "
        "cellules à partir de là.",
    )
    expect(
        _is_number(times_slower) and float(times_slower) > 0,  # type: ignore[arg-type]
        "Write your prediction first: set times_slower to a positive number, how many times slower than the next "
        "ones you expect the first call (1 if no slower).",
        "Notez d'abord votre pronostic : donnez à times_slower un nombre positif, combien de fois plus lent que "
        "les suivants vous attendez le premier appel (1 s'il ne l'est pas).",
    )
    expect(
        bool(seconds) and len(seconds) >= 2,  # type: ignore[arg-type]
        "Run the timing cell above first: it measures the calls.",
        "Exécutez d'abord la cellule de mesure au-dessus : c'est elle qui chronomètre les appels.",
    )
    assert seconds is not None
    first, steady = seconds[0], statistics.median(seconds[1:])
    ratio = first / steady
    guess = float(times_slower)  # type: ignore[arg-type]
    slower = ratio > 1.5
    measured = f"first call {first * 1000:.0f} ms, then {steady * 1000:.0f} ms (median), {ratio:.1f}× slower"
    mesure = f"premier appel {first * 1000:.0f} ms, puis {steady * 1000:.0f} ms (médiane), {ratio:.1f}× plus lent"
    if first_call_slower != slower:
        verdict_en = ("it is slower: it builds the predictor and runs PyTorch for the first time" if slower
                      else "no slower here: was this model already warm?")
        verdict_fr = ("il est bien plus lent, car il construit le prédicteur et fait tourner PyTorch pour la "
                      "première fois"
                      if slower else "pas plus lent ici : ce modèle avait-il déjà tourné ?")
    else:
        off = max(guess / ratio, ratio / guess)
        if off < 2:
            verdict_en, verdict_fr = "well guessed", "bien vu"
        else:
            side_en, side_fr = ("high", "haute") if guess > ratio else ("low", "basse")
            verdict_en = f"your guess is {off:.0f} times too {side_en}"
            verdict_fr = f"votre estimation est {off:.0f} fois trop {side_fr}"
    mesure = mesure.replace(".", ",")
    passed(
        f"You predicted {'slower' if first_call_slower else 'not slower'}, {guess:g}×; measured: {measured}: "
        f"{verdict_en}.",
        f"Vous aviez prévu {'plus lent' if first_call_slower else 'pas plus lent'}, {guess:g}× ; mesuré : {mesure}. "
        f"{verdict_fr[:1].upper()}{verdict_fr[1:]}.",
    )
