"""Notebook 03, "The front-end": start the two servers as in two terminals, and check the exercises.

The exercises rewrite two small pieces of the UI: the confidence filter behind the slider, and the
drawing of the boxes. Their checkpoints compare with what the UI must do, on made-up detections whose
answer is known (an exact list, pixels). The last exercise is a prediction (what does the page show
once the back-end is stopped?) checked against the running front-end itself: its page is opened as a
browser opens it, "Is alive?" pressed (:mod:`workshop.checkpoints.streamlit_page`), and what it shows is
read, red messages and tracebacks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import requests
from PIL import Image, ImageChops

from workshop.checkpoints import expect, fail, guarded, passed, say
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


# ------------------------------------------------------------------ exercise 1: the slider's filter
def _made_up(confidences: Sequence[float]) -> list[Detection]:
    """Detections with these confidences and distinct classes, so that a list says which ones were kept."""
    return [
        Detection(
            x_min=20 + 60 * index, y_min=20, x_max=60 + 60 * index, y_max=70, class_name=f"object-{index}",
            confidence=confidence,
        )
        for index, confidence in enumerate(confidences)
    ]


def _names(detections: object) -> list[str]:
    return [d.class_name for d in detections]  # type: ignore[attr-defined]


def confidence_filter(keep_confident: Callable[[list[Detection], float], list[Detection]] | None) -> None:
    """Exercise 1: ``keep_confident(detections, threshold)`` keeps what the slider keeps, at or above, in order."""
    expect(
        callable(keep_confident),
        "keep_confident is not defined: run the exercise's cell.",
        "keep_confident n'est pas définie : exécutez la cellule de l'exercice.",
    )
    detections = _made_up([0.05, 0.2, 0.25, 0.6, 0.95])

    def check() -> None:
        for threshold in (0.0, 0.25, 0.6, 1.0):
            kept = keep_confident(list(detections), threshold)  # type: ignore[misc]
            expect(
                kept is not None,
                "keep_confident returns nothing: return the list of the detections you keep.",
                "keep_confident ne renvoie rien : renvoyez la liste des détections gardées.",
            )
            wanted = [d for d in detections if d.confidence >= threshold]
            got = _names(kept)
            if threshold == 0.25 and got == _names(wanted[1:]):
                fail(
                    "A detection of confidence exactly 0.25 must stay at threshold 0.25: compare with >=, not >.",
                    "Une détection de confiance 0,25 doit rester au seuil 0,25 : comparez avec >=, pas >.",
                )
            expect(
                got == _names(wanted),
                f"At threshold {threshold}, keep_confident keeps {got} instead of {_names(wanted)}: keep each "
                "detection whose confidence is at or above the threshold, in the order received.",
                f"Au seuil {threshold}, keep_confident garde {got} au lieu de {_names(wanted)} : gardez chaque "
                "détection dont la confiance atteint le seuil, dans l'ordre reçu.",
            )

    guarded(check, "keep_confident failed on a list of detections", "keep_confident a échoué sur une liste de détections")
    passed(
        "keep_confident keeps what the slider keeps: moving it needs no new request to the back-end.",
        "keep_confident garde ce que garde le curseur : le bouger ne demande rien de plus au back-end.",
    )


# ------------------------------------------------------------------ exercise 2: drawing the boxes
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
    """Exercise 2: ``draw_boxes(image, detections)`` returns a copy with an outline around each box.

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
            "draw_boxes a dessiné sur l'image reçue : dessinez sur une copie (image.copy()), l'UI redessine à chaque "
            "mouvement du curseur.",
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
        "draw_boxes trace un contour par détection, sur une copie : ce que l'UI affiche sous le curseur.",
    )


# ------------------------------------------------------------------ exercise 3: the back-end stopped
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
    """Exercise 3: the prediction against what the real page shows once the back-end is stopped."""
    expect(
        isinstance(prediction, str) and prediction.strip().upper() in CHOICES,
        "Set my_prediction to 'A', 'B' or 'C' in the cell above, then run it.",
        "Donnez à my_prediction la valeur 'A', 'B' ou 'C' dans la cellule ci-dessus, puis exécutez-la.",
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
    print("Streamlit /_stcore/health:", "200" if frontend_up else "no answer")
    expect(
        not page.exceptions,
        f"The page shows a Python traceback ({page.exceptions[0] if page.exceptions else ''}) instead of a message: "
        "the UI must catch the failed request and say what to do (backend_error_message in "
        "workshop/frontend/shared.py).",
        f"La page affiche une trace d'erreur Python ({page.exceptions[0] if page.exceptions else ''}) au lieu d'un "
        "message : l'UI doit rattraper la requête ratée et dire quoi faire (backend_error_message dans "
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
    expect(
        prediction.strip().upper() == RIGHT_CHOICE,  # type: ignore[union-attr]
        "Not this one: the page stays up and shows the red message above (B), since the UI catches the failed "
        "request; set my_prediction = 'B' and run both cells again.",
        "Pas celle-ci : la page reste debout et affiche le message rouge ci-dessus (B), car l'UI rattrape la "
        "requête ratée ; mettez my_prediction = 'B' et relancez les deux cellules.",
    )
    passed(
        "Right: the UI catches the failed request and says what to do; the model lives in the back-end only.",
        "Exact : l'UI rattrape la requête ratée et dit quoi faire ; le modèle ne vit que dans le back-end.",
    )
