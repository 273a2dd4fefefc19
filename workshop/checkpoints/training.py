"""Notebook 08's checkpoints: a training configuration that fits the time, a prediction about more training,
and the new weights served by the back-end.

Each function checks one exercise and prints a line starting with ✅, or stops the notebook with one
sentence (in the notebook's language) saying what to fix.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from workshop.checkpoints import expect, fail, guarded, passed

#: Seconds one training picture costs per epoch on a 2-core codespace, from the run recorded in the
#: notebook (400 pictures, 15 epochs, 1048 s); only used to tell the student how long a choice takes.
SECONDS_PER_PICTURE_EPOCH = 1048 / (400 * 15)
#: Fast mode (CI) must train in about a minute: at most this many pictures × epochs.
FAST_BUDGET = 200
#: Past this many minutes a bonus exercise no longer fits in a lab session.
FULL_BUDGET_MINUTES = 60
#: "Clearly higher" in the prediction: more than this much mAP50 above the bundled model.
MARGIN = 0.01


def _minutes(config: Any) -> float:
    return config.train_images * config.epochs * SECONDS_PER_PICTURE_EPOCH / 60


def training_config(config: Any, fast: bool) -> None:
    """Exercise: what training starts from (a ``.pt`` to fine-tune, an architecture ``.yaml`` to train from
    scratch) and for how many epochs; in fast mode it must fine-tune and stay within about a minute."""
    from workshop.demo.train import TrainConfig

    expect(
        isinstance(config, TrainConfig),
        "Build config with TrainConfig(...), as the cell does: run the cell again.",
        "Construisez config avec TrainConfig(...), comme le fait la cellule : relancez-la.",
    )
    start = config.start_from
    expect(
        isinstance(start, str) and start.endswith((".pt", ".yaml")),
        f"start_from is {start!r}: give a weights file to fine-tune (str(bundled_weights_path())) or an "
        "architecture to train from scratch (DEMO_ARCHITECTURE).",
        f"start_from vaut {start!r} : donnez un fichier de poids à affiner (str(bundled_weights_path())) ou une "
        "architecture pour partir de zéro (DEMO_ARCHITECTURE).",
    )
    expect(
        not start.endswith(".pt") or Path(start).is_file(),
        f"start_from points to {start}, which does not exist: use str(bundled_weights_path()).",
        f"start_from désigne {start}, qui n'existe pas : utilisez str(bundled_weights_path()).",
    )
    epochs = config.epochs
    expect(
        isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 1,
        f"epochs is {epochs!r}: set it to a whole number of passes over the pictures, at least 1.",
        f"epochs vaut {epochs!r} : donnez un nombre entier de passages sur les images, au moins 1.",
    )
    minutes = _minutes(config)
    if fast:
        expect(
            start.endswith(".pt"),
            "In fast mode there is time for about one epoch, and from scratch one epoch learns nothing: "
            "fine-tune the bundled model (start_from=str(bundled_weights_path())).",
            "En mode rapide, on a le temps d'environ une époque, et une époque depuis zéro n'apprend rien : "
            "affinez le modèle embarqué (start_from=str(bundled_weights_path())).",
        )
        expect(
            config.train_images * epochs <= FAST_BUDGET,
            f"{config.train_images} pictures × {epochs} epochs is too long for fast mode: keep pictures × epochs "
            f"at most {FAST_BUDGET} (1 epoch is enough to see it work).",
            f"{config.train_images} images × {epochs} époques, c'est trop long pour le mode rapide : gardez "
            f"images × époques sous {FAST_BUDGET} (une époque suffit pour voir le mécanisme).",
        )
    else:
        expect(
            minutes <= FULL_BUDGET_MINUTES,
            f"{config.train_images} pictures × {epochs} epochs would take about {minutes:.0f} minutes on a "
            f"2-core codespace: stay under {FULL_BUDGET_MINUTES} (fewer epochs or pictures).",
            f"{config.train_images} images × {epochs} époques prendraient environ {minutes:.0f} minutes sur un "
            f"codespace à 2 cœurs : restez sous {FULL_BUDGET_MINUTES} (moins d'époques ou d'images).",
        )
    how = "fine-tune" if start.endswith(".pt") else "train from scratch"
    comment = "affiner" if start.endswith(".pt") else "entraîner depuis zéro"
    passed(
        f"{how.capitalize()} {Path(start).name} for {epochs} epoch(s) on {config.train_images} pictures.",
        f"{comment.capitalize()} {Path(start).name} pendant {epochs} époque(s) sur {config.train_images} images.",
    )


def bundled_map50(config: Any) -> float:
    """The bundled model's mAP50 on the held-out pictures ``train_demo`` measured ``config``'s model on."""
    from workshop.demo.train import _HELDOUT_SEED_OFFSET, evaluate
    from workshop.registry import bundled_weights_path

    with tempfile.TemporaryDirectory(prefix="heldout-") as folder:
        map50, _, _ = evaluate(
            bundled_weights_path(), config.heldout_images, config.seed + _HELDOUT_SEED_OFFSET, config.image_size,
            Path(folder),
        )
    return map50


def beats_bundled(my_prediction: object, report: Any, config: Any, bundled: float | None = None) -> None:
    """Exercise (predict, then measure): does your model score clearly higher (mAP50) than the bundled one,
    trained 35 epochs on 800 pictures, on the same fresh pictures? Any recorded guess passes, compared with the
    measure in one sentence.

    ``bundled`` is the bundled model's mAP50 on them; measured here when not given.
    """
    expect(
        isinstance(my_prediction, bool),
        "Write your prediction first: set my_prediction to True or False, then run the cells again.",
        "Notez d'abord votre pronostic : donnez à my_prediction la valeur True ou False, puis relancez.",
    )
    expect(
        report is not None and hasattr(report, "map50"),
        "Run the training cell first: it measures your model.",
        "Lancez d'abord la cellule d'entraînement : c'est elle qui mesure votre modèle.",
    )
    if bundled is None:
        scores: list[float] = []
        guarded(
            lambda: scores.append(bundled_map50(config)),
            "Measuring the bundled model failed",
            "La mesure du modèle embarqué a échoué",
        )
        bundled = scores[0]
    mine = float(report.map50)
    higher = mine > bundled + MARGIN
    figures = f"yours {mine:.3f}, the bundled model {bundled:.3f} (mAP50 on {config.heldout_images} fresh pictures)"
    chiffres = (f"le vôtre {mine:.3f}, le modèle embarqué {bundled:.3f} (mAP50 sur {config.heldout_images} images "
                "neuves)").replace(".", ",")
    verdict_en = "clearly higher" if higher else "not clearly higher"
    verdict_fr = "le vôtre est nettement meilleur" if higher else "le vôtre n'est pas nettement meilleur"
    if my_prediction == higher:
        passed(f"Well predicted: {figures}; yours is {verdict_en}.",
               f"Bien vu : {chiffres}. {verdict_fr[:1].upper()}{verdict_fr[1:]}.")
        return
    why_en = ("more training helped while the model still learnt" if higher else
              "more training only helps while the model still learns, on enough pictures")
    why_fr = ("l'entraînement supplémentaire a aidé tant que le modèle apprenait encore" if higher else
              "entraîner plus n'aide que tant que le modèle apprend encore, sur assez d'images")
    passed(
        f"You predicted {'higher' if my_prediction else 'not higher'}; measured: {figures}: yours is {verdict_en}, "
        f"{why_en}.",
        f"Vous aviez prévu {'meilleur' if my_prediction else 'pas meilleur'} ; mesuré : {chiffres}. "
        f"{verdict_fr[:1].upper()}{verdict_fr[1:]}, car {why_fr}.",
    )


def serves_model(url: str | None, name: str, image: Any, api_key: str | None = None) -> None:
    """Exercise: the back-end at ``url`` lists ``name`` in ``/models`` and answers a prediction with it."""
    from workshop.client import BackendError, WorkshopClient

    expect(
        bool(url),
        "Start the back-end in the cell above first.",
        "Démarrez d'abord le back-end dans la cellule au-dessus.",
    )
    client = WorkshopClient(str(url), api_key=api_key)
    listed: list[str] = []
    guarded(
        lambda: listed.extend(model.name for model in client.models()),
        "The back-end did not answer /models: is it running?",
        "Le back-end n'a pas répondu sur /models : tourne-t-il ?",
    )
    expect(
        name in listed,
        f"'{name}' is not in /models ({', '.join(listed)}): set custom_models to '{name}=' followed by the "
        "weights file's path, then start the back-end again.",
        f"« {name} » n'est pas dans /models ({', '.join(listed)}) : donnez à custom_models la valeur '{name}=' "
        "suivie du chemin du fichier de poids, puis redémarrez le back-end.",
    )
    try:
        answer = client.predict(image, model=name)
    except BackendError as error:
        fail(
            f"'{name}' is listed but could not predict ({error}): check that the path after '{name}=' is the "
            "weights file the training wrote.",
            f"« {name} » est listé mais n'a pas pu prédire ({error}) : vérifiez que le chemin après '{name}=' est "
            "bien le fichier de poids écrit par l'entraînement.",
        )
    expect(
        answer.model == name,
        f"The answer came from '{answer.model}', not '{name}': send model='{name}' in the request.",
        f"La réponse vient de « {answer.model} », pas de « {name} » : envoyez model='{name}' dans la requête.",
    )
    expect(
        bool(answer.detections),
        f"'{name}' answered but found nothing: train it longer, or check that it was trained on these shapes.",
        f"« {name} » a répondu mais n'a rien trouvé : entraînez-le plus longtemps, ou vérifiez qu'il a appris ces formes.",
    )
    counts = Counter(d.class_name for d in answer.detections)
    found = ", ".join(f"{kind} ×{count}" for kind, count in sorted(counts.items()))
    passed(
        f"The back-end serves '{name}': it found {found}.",
        f"Le back-end sert « {name} » : il a trouvé {found}.",
    )
