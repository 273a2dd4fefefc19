"""Notebook 03, "The front-end": start the two servers as in two terminals, and check the exercises.

Two exercises rewrite small pieces of the UI, on the client's ``Detection`` objects: the count of
detections per class behind the page's summary line, and the drawing of the boxes. Their checkpoints
compare with what the UI must do, on made-up detections whose answer is known (a count, pixels). The
third is a prediction (what does the page show once the back-end is stopped?), revealed by the running
front-end itself: its page is opened as a browser opens it, "Is alive?" pressed
(:mod:`workshop.checkpoints.streamlit_page`), and what it shows is read, red messages and tracebacks; any
recorded guess passes, compared with what the page showed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import requests
from PIL import Image, ImageChops

from workshop.checkpoints import CheckpointFailed, expect, fail, guarded, passed, say
from workshop.schemas import Detection
from workshop.checkpoints import servers
from workshop.checkpoints.streamlit_page import PageRun, read_page
from workshop.services import BackgroundService

#: The answers the prediction exercise offers (the notebook's markdown says what each means).
CHOICES = ("A", "B", "C")
#: What the page shows with the back-end stopped: a red message, and the page still works.
RIGHT_CHOICE = "B"


# ------------------------------------------------------------------ the two servers
def start_in_background(
    name: str,
    command: Sequence[str],
    url: str,
    *,
    ready_path: str = "/health",
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
) -> BackgroundService:
    """Run ``command`` as a second terminal would, without blocking the notebook; print it, wait until ready.

    ``command`` is written as typed in a terminal (``streamlit run ...``, ``workshop serve ...``). The command is
    printed, then a line once the server is up; a server that does not start fails with one sentence, under its log.
    """
    service = servers.start_in_background(command, url, name=name, ready_path=ready_path, env=env, timeout=timeout)
    print(say(f"{name} is up: {url}", f"{name} a démarré : {url}"))
    return service


# ------------------------------------------------------------------ exercise 1: the count per class
def _made_up(classes: Sequence[str]) -> list[Detection]:
    """Detections of these classes, side by side, with distinct confidences."""
    return [
        Detection(
            x_min=20 + 60 * index, y_min=20, x_max=60 + 60 * index, y_max=70, class_name=name,
            confidence=round(0.9 - 0.1 * index, 2),
        )
        for index, name in enumerate(classes)
    ]


def class_counts(count_by_class: Callable[[list[Detection]], Mapping[str, int]] | None) -> None:
    """Exercise 1: ``count_by_class(detections)`` gives how many detections of each class, as the page's summary says."""
    expect(
        callable(count_by_class),
        "count_by_class is not defined: run the exercise's cell.",
        "count_by_class n'est pas définie : exécutez la cellule de l'exercice.",
    )
    cases = [
        ["square", "circle", "square", "triangle", "square"],
        ["cat"],
        [],
    ]

    def check() -> None:
        for classes in cases:
            got = count_by_class(_made_up(classes))  # type: ignore[misc]
            expect(
                isinstance(got, Mapping),
                f"count_by_class returned {type(got).__name__}: return a dict, class name -> number of detections.",
                f"count_by_class a renvoyé un {type(got).__name__} : renvoyez un dict, nom de classe -> nombre de "
                "détections.",
            )
            wanted = {name: classes.count(name) for name in classes}
            expect(
                dict(got) == wanted,  # type: ignore[arg-type]
                f"For {classes or 'no detection'}, count_by_class gives {dict(got)} instead of {wanted}: count each "  # type: ignore[arg-type]
                "detection under its d.class_name (and an empty dict when there is none).",
                f"Pour {classes or 'aucune détection'}, count_by_class donne {dict(got)} au lieu de {wanted} : "  # type: ignore[arg-type]
                "comptez chaque détection sous son d.class_name (et un dict vide quand il n'y en a aucune).",
            )

    try:
        check()
    except TypeError as error:
        if "subscriptable" not in str(error):
            raise CheckpointFailed(
                f"count_by_class failed on a list of detections (TypeError: {error})",
                f"count_by_class a échoué sur une liste de détections (TypeError : {error})",
            ) from None
        fail(
            "Each detection is an object, not a dict: read its class with d.class_name, not d['class_name'].",
            "Chaque détection est un objet, pas un dict : lisez sa classe avec d.class_name, pas d['class_name'].",
        )
    except CheckpointFailed:
        raise
    except Exception as error:  # a checkpoint must never crash on a half-done exercise
        fail(
            f"count_by_class failed on a list of detections ({type(error).__name__}: {error})",
            f"count_by_class a échoué sur une liste de détections ({type(error).__name__} : {error})",
        )
    passed(
        "count_by_class counts the detections of each class: the page's summary line, from the same objects.",
        "count_by_class compte les détections de chaque classe, comme la ligne de résumé de la page, à partir des "
        "mêmes objets.",
    )


# ------------------------------------------------------------------ exercise 3 (going further): drawing the boxes
def _changed(before: Image.Image, after: Image.Image, box: tuple[int, int, int, int]) -> float:
    """The share of pixels that differ between the two pictures inside ``box`` (left, top, right, bottom)."""
    histogram = ImageChops.difference(before.crop(box), after.crop(box)).convert("L").histogram()
    return 1 - histogram[0] / max(sum(histogram), 1)  # histogram[0]: the pixels with no difference


def _edges_drawn(before: Image.Image, after: Image.Image, d: Detection) -> bool:
    """True when a line crosses the middle of each of the box's four sides (a few pixels of slack)."""
    x_mid, y_mid = round((d.x_min + d.x_max) / 2), round((d.y_min + d.y_max) / 2)
    sides = [(x_mid, round(d.y_min)), (x_mid, round(d.y_max)), (round(d.x_min), y_mid), (round(d.x_max), y_mid)]
    return all(_changed(before, after, (x - 3, y - 3, x + 4, y + 4)) > 0 for x, y in sides)


def boxes_drawn(draw_boxes: Callable[[Image.Image, list[Detection]], Image.Image] | None) -> None:
    """Exercise 3: ``draw_boxes(image, detections)`` returns a copy with an outline around each box.

    Checked on a plain grey picture with two boxes far apart: each box's four sides are drawn, the middle
    of each box is left visible (an outline, not a filled box), most of the rest is untouched (a label is
    fine), the picture keeps its size and the caller's picture is not modified.
    """
    expect(
        callable(draw_boxes),
        "draw_boxes is not defined: run the exercise's cell.",
        "draw_boxes n'est pas définie : exécutez la cellule de l'exercice.",
    )
    picture = Image.new("RGB", (320, 200), (128, 128, 128))
    original = picture.copy()
    detections = [
        Detection(x_min=30, y_min=50, x_max=130, y_max=170, class_name="square", confidence=0.9),
        Detection(x_min=190, y_min=40, x_max=290, y_max=150, class_name="circle", confidence=0.6),
    ]

    def check() -> None:
        drawn = draw_boxes(picture, list(detections))  # type: ignore[misc]
        expect(
            isinstance(drawn, Image.Image),
            "draw_boxes returns nothing: return the copy you drew on.",
            "draw_boxes ne renvoie rien : renvoyez la copie sur laquelle vous avez dessiné.",
        )
        expect(
            not ImageChops.difference(picture, original).getbbox(),
            "draw_boxes drew on the caller's picture: draw on a copy (image.copy()), as the UI redraws at each slider move.",
            "draw_boxes a dessiné sur l'image reçue : dessinez sur une copie (image.copy()), car l'interface redessine "
            "l'image à chaque mouvement du curseur.",
        )
        expect(
            drawn.size == picture.size,
            f"The drawing is {drawn.size[0]}x{drawn.size[1]} instead of 320x200: draw on a copy of the same size.",
            f"Le dessin fait {drawn.size[0]}x{drawn.size[1]} au lieu de 320x200 : dessinez sur une copie de même taille.",
        )
        drawn = drawn.convert("RGB")
        for d in detections:
            expect(
                _edges_drawn(original, drawn, d),
                f"The box of '{d.class_name}' is missing a side: draw.rectangle((x_min, y_min, x_max, y_max), "
                "outline=...) for each detection.",
                f"Il manque un côté au cadre de « {d.class_name} » : draw.rectangle((x_min, y_min, x_max, y_max), "
                "outline=...) pour chaque détection.",
            )
            inner = (round(d.x_min) + 25, round(d.y_min) + 25, round(d.x_max) - 25, round(d.y_max) - 25)
            expect(
                _changed(original, drawn, inner) < 0.2,
                f"The middle of the box of '{d.class_name}' is painted over: draw an outline (outline=...), not a fill.",
                f"Le milieu du cadre de « {d.class_name} » est recouvert : tracez un contour (outline=...), pas un "
                "remplissage.",
            )
        expect(
            _changed(original, drawn, (0, 0, 320, 200)) < 0.3,
            "draw_boxes changed most of the picture: draw only the boxes (and their labels).",
            "draw_boxes a modifié presque toute l'image : ne dessinez que les cadres (et leurs étiquettes).",
        )

    guarded(check, "draw_boxes failed on a test picture", "draw_boxes a échoué sur une image de test")
    passed(
        "draw_boxes draws one outline per detection, on a copy: what the UI shows under the slider.",
        "draw_boxes trace un contour par détection sur une copie, comme l'interface sous le curseur.",
    )


# ------------------------------------------------------------------ exercise 2: the back-end stopped
def _running_page(frontend_url: str) -> PageRun:
    """The running front-end's page after a press on "Is alive?", as a browser gets it; one sentence when it cannot
    be read."""
    try:
        return read_page(frontend_url, click="is_alive")
    except OSError:  # refused, reset, or no run finished in time
        fail(
            f"The front-end does not answer at {frontend_url}: is the front-end cell still running? Rerun the cell "
            "that starts it.",
            f"Le front-end ne répond pas à {frontend_url} : la cellule du front-end tourne-t-elle encore ? Relancez la "
            "cellule qui le démarre.",
        )
    except KeyError:
        fail(
            f"The page at {frontend_url} has no 'Is alive?' button: is it this workshop's front-end?",
            f"La page à {frontend_url} n'a pas de bouton « Is alive? » : est-ce bien le front-end de l'atelier ?",
        )
    except Exception as error:  # not a Streamlit page there, or it hung up halfway
        fail(
            f"The page at {frontend_url} could not be read ({type(error).__name__}: {error}): is it the front-end?",
            f"La page à {frontend_url} n'a pas pu être lue ({type(error).__name__} : {error}) : est-ce le front-end ?",
        )
    raise AssertionError("not reached: fail() raises")


def ui_when_backend_down(prediction: object, backend_url: str, frontend_url: str) -> None:
    """Exercise 2: the guess, then what the real page shows once the back-end is stopped, compared in one sentence."""
    expect(
        isinstance(prediction, str) and prediction.strip().upper() in CHOICES,
        "Write your prediction first: set my_prediction to 'A', 'B' or 'C' in the cell above, then run it.",
        "Notez d'abord votre réponse : donnez à my_prediction la valeur 'A', 'B' ou 'C' dans la cellule "
        "ci-dessus, puis exécutez-la.",
    )
    try:
        requests.get(f"{backend_url}/health", timeout=5)
        fail(
            f"The back-end still answers at {backend_url}: run the cell that stops it first.",
            f"Le back-end répond encore à {backend_url} : exécutez d'abord la cellule qui l'arrête.",
        )
    except requests.ConnectionError:
        pass  # stopped, as the exercise wants

    page = _running_page(frontend_url)
    errors = list(dict.fromkeys(page.errors))  # the sidebar and the page say it in the same words
    for message in errors:
        print("🟥", message)
    for exception in page.exceptions:
        print("💥", exception)
    try:
        frontend_up = requests.get(f"{frontend_url}/_stcore/health", timeout=5).status_code == 200
    except requests.RequestException:
        frontend_up = False
    print("Streamlit /_stcore/health:", "200" if frontend_up else say("no answer", "pas de réponse"))
    expect(
        not page.exceptions,
        f"The page shows a Python traceback ({page.exceptions[0] if page.exceptions else ''}) instead of a message: "
        "the UI must catch the failed request and say what to do (backend_error_message in "
        "workshop/frontend/shared.py).",
        f"La page affiche une trace d'erreur Python ({page.exceptions[0] if page.exceptions else ''}) au lieu d'un "
        "message : l'interface doit intercepter l'échec de la requête et dire quoi faire (backend_error_message dans "
        "workshop/frontend/shared.py).",
    )
    shown = bool(errors) and all("Back-end unreachable" in message for message in errors)
    expect(
        shown,
        f"The page shows no 'Back-end unreachable' message ({'; '.join(errors) or 'no red message at all'}): is "
        f"{frontend_url} the front-end started with WORKSHOP_BACKEND_URL={backend_url}?",
        f"La page n'affiche pas le message « Back-end unreachable » ({'; '.join(errors) or 'aucun message rouge'}) : "
        f"{frontend_url} est-il bien le front-end démarré avec WORKSHOP_BACKEND_URL={backend_url} ?",
    )
    guess = prediction.strip().upper()  # type: ignore[union-attr]
    if guess == RIGHT_CHOICE:
        passed(
            "You predicted B, and B it is: the UI catches the failed request and says what to do; the model lives "
            "in the back-end only.",
            "Vous aviez prévu B, et c'est bien B : l'interface intercepte l'échec de la requête et dit quoi faire. "
            "Le modèle, lui, ne vit que dans le back-end.",
        )
        return
    why_en = {"A": "the UI catches the failed request, so no traceback", "C": "the front-end has no model of its own"}
    why_fr = {"A": "l'interface intercepte l'échec de la requête, donc pas de trace d'erreur",
              "C": "le front-end n'a pas de modèle à lui"}
    passed(
        f"You predicted {guess}; the page shows B, the red message above, and keeps working: {why_en[guess]}.",
        f"Vous aviez prévu {guess} ; la page affiche B, le message rouge ci-dessus, et continue de fonctionner, car "
        f"{why_fr[guess]}.",
    )
