"""Draw the workshop's two teaching pictures into docs/assets/ (matplotlib, no network).

    python scripts/draw_diagrams.py            # writes both PNGs
    python scripts/draw_diagrams.py OUT_DIR    # writes them somewhere else (the test does this)

- ``microservices.png``: the compose stack, two containers on one Docker network, the browser talking to
  the front-end, the front-end calling ``http://backend:8000``, the published ports.
- ``where-is-localhost.png``: what "localhost" means on the laptop, in the codespace, inside a container
  and on a Google Cloud VM, and which door (forwarding, ``-p``, ``--network host``, firewall) leads where.

The pictures are drawn by code rather than by hand so that a change of port or name is a one-line edit
and the committed PNGs can be regenerated identically (fixed size, DejaVu fonts bundled with matplotlib,
no timestamp in the file).
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # No display in a codespace or in CI.

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen before pyplot loads)
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

ASSETS = Path(__file__).resolve().parent.parent / "docs" / "assets"

# Width 14 in at 100 dpi: 1400 px, the width a notebook shows at 100 %.
DPI = 100
WIDTH_IN = 14.0
SIZES_IN = {"microservices.png": (WIDTH_IN, 7.6), "where-is-localhost.png": (WIDTH_IN, 9.0)}

# One palette for both pictures: the same colour means the same kind of thing.
BROWSER = "#fde9c9"
HOST = "#eef2f7"
NETWORK = "#dbe9f6"
FRONTEND = "#d5f0dd"
BACKEND = "#fbdada"
CLOUD = "#e6e0f5"
DOOR = "#fff7b0"
INK = "#1f2933"
ARROW = "#33506b"


def _figure(name: str, title: str) -> tuple[plt.Figure, Axes]:
    """A figure of the picture's fixed size with its title, axes in inches (x right, y up)."""
    width, height = SIZES_IN[name]
    plt.rcParams["font.family"] = "DejaVu Sans"  # Bundled with matplotlib: same glyphs on every machine.
    fig = plt.figure(figsize=(width, height), dpi=DPI)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    _text(ax, 0.3, height - 0.2, title, 17, weight="bold")
    return fig, ax


def _save(fig: plt.Figure, path: Path) -> None:
    """Write the PNG without matplotlib's version in it, so a redraw gives the same bytes."""
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    plt.close(fig)


def _box(
    ax: Axes,
    x: float,
    y: float,
    w: float,
    h: float,
    color: str,
    *,
    dashed: bool = False,
    lw: float = 1.6,
) -> None:
    """A rounded box whose lower-left corner is (x, y)."""
    ax.add_patch(
        FancyBboxPatch(
            (x, y),
            w,
            h,
            boxstyle="round,pad=0,rounding_size=0.15",
            facecolor=color,
            edgecolor=INK,
            linewidth=lw,
            linestyle=(0, (5, 3)) if dashed else "solid",
        )
    )


def _text(ax: Axes, x: float, y: float, text: str, size: float = 12, **kwargs: object) -> None:
    """Text in the pictures' ink; ``kwargs`` go to ``Axes.text`` (weight, ha, va, family...)."""
    options: dict[str, object] = {"ha": "left", "va": "top", "color": INK, "linespacing": 1.35}
    options.update(kwargs)
    ax.text(x, y, text, fontsize=size, **options)


def _panel(
    ax: Axes,
    corner: tuple[float, float, float, float],
    color: str,
    title: str,
    body: str,
    sizes: tuple[float, float] = (13.5, 11),
    lw: float = 1.6,
) -> None:
    """A box ``corner`` = (x, y, w, h) with a bold title at its top and a paragraph under it."""
    x, y, w, h = corner
    _box(ax, x, y, w, h, color, lw=lw)
    _text(ax, x + 0.18, y + h - 0.17, title, sizes[0], weight="bold")
    _text(ax, x + 0.18, y + h - 0.7, body, sizes[1])


def _arrow(
    ax: Axes,
    start: tuple[float, float],
    end: tuple[float, float],
    *,
    both: bool = False,
    color: str = ARROW,
    rad: float = 0.0,
) -> None:
    """An arrow from ``start`` to ``end`` (a request's direction; ``both`` for a two-way link)."""
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle="<|-|>" if both else "-|>",
            mutation_scale=20,
            linewidth=2.2,
            color=color,
            connectionstyle=f"arc3,rad={rad}",
            shrinkA=2,
            shrinkB=2,
        )
    )


def _label(ax: Axes, x: float, y: float, text: str, size: float = 11.5) -> None:
    """A small white label on an arrow, centred on (x, y)."""
    ax.text(
        x,
        y,
        text,
        fontsize=size,
        ha="center",
        va="center",
        color=INK,
        family="DejaVu Sans Mono",
        bbox={"boxstyle": "round,pad=0.25", "facecolor": "white", "edgecolor": ARROW, "linewidth": 1},
    )


def _port(ax: Axes, x: float, y: float, text: str) -> None:
    """A published port drawn on the host's edge: the door from outside to one container."""
    ax.text(
        x,
        y,
        text,
        fontsize=12,
        ha="center",
        va="center",
        weight="bold",
        family="DejaVu Sans Mono",
        color=INK,
        bbox={"boxstyle": "round,pad=0.35", "facecolor": DOOR, "edgecolor": INK, "linewidth": 1.4},
    )


def draw_microservices(path: Path) -> None:
    """Two containers, one Compose network, the browser in front and ``http://backend:8000`` between them."""
    fig, ax = _figure(path.name, "Two services, one network: what `docker compose up` builds")

    # The Docker host and, inside it, the network Compose creates for the project.
    _box(ax, 3.7, 1.3, 10.0, 5.5, HOST, lw=2)
    _text(ax, 3.9, 6.65, "Docker host (your codespace, or the VM)", 13.5, weight="bold")
    _box(ax, 4.4, 1.65, 9.0, 4.4, NETWORK, dashed=True)
    _text(ax, 4.6, 5.95, "Compose network  deploy-ml-workshop_default  (private: containers see each other)", 11.5)

    # The browser, outside the machine that runs Docker.
    _panel(
        ax,
        (0.3, 3.6, 2.5, 2.0),
        BROWSER,
        "Your browser",
        "opens the UI:\nhttp://localhost:8501\n(in a codespace: the\nforwarded address)",
        (14, 11),
    )
    _text(
        ax,
        0.3,
        3.2,
        'ports: "HOST:CONTAINER"\npublishes a container\'s\nport on the host: the\nonly doors from outside\nthe network.',
        11,
    )

    # Front-end container.
    _panel(
        ax,
        (4.8, 2.4, 3.6, 3.0),
        FRONTEND,
        "container  frontend",
        "Streamlit UI\nstreamlit run\n  workshop/frontend/app.py\nlistens on 0.0.0.0:8501\n"
        "WORKSHOP_BACKEND_URL=\n  http://backend:8000",
    )

    # Back-end container.
    _panel(
        ax,
        (9.5, 2.4, 3.6, 3.0),
        BACKEND,
        "container  backend",
        "FastAPI + uvicorn\nYOLO model in memory\nlistens on 0.0.0.0:8000\n\nGET  /health  /models\nPOST /predict",
    )

    # The call between them: by service name, inside the network, no published port needed.
    _arrow(ax, (8.4, 3.9), (9.5, 3.9))
    _label(ax, 8.95, 4.35, "HTTP")
    _text(
        ax,
        8.45,
        2.05,
        "frontend → http://backend:8000/predict  (service name, resolved by Compose's DNS)",
        10.5,
        family="DejaVu Sans Mono",
        va="center",
        ha="center",
        weight="bold",
    )

    # Published ports on the host's edge.
    _port(ax, 3.7, 4.6, '"8501:8501"')
    _arrow(ax, (2.8, 4.6), (3.15, 4.6))
    _arrow(ax, (4.25, 4.6), (4.8, 4.6))
    _port(ax, 12.75, 1.3, '"8000:8000"')
    _arrow(ax, (12.75, 0.35), (12.75, 1.0))
    _arrow(ax, (12.75, 1.6), (12.75, 2.4))
    _text(
        ax,
        12.45,
        0.55,
        "also published, for you and for curl (the front-end does not need it):  http://localhost:8000/docs",
        11,
        ha="right",
        va="center",
    )
    _save(fig, path)


def draw_where_is_localhost(path: Path) -> None:
    """Laptop, codespace, container, VM: each box says what ``localhost`` means there."""
    fig, ax = _figure(path.name, 'Where is "localhost"?  Each machine (and each container) has its own.')

    # The laptop and its browser.
    _panel(
        ax,
        (0.3, 5.0, 3.3, 3.3),
        BROWSER,
        "Your laptop",
        "The browser runs here.\n\nlocalhost = the laptop.\nNothing of the workshop\nlistens here: open the\nforwarded address or\nthe VM's IP instead.",
        (14, 11),
    )

    # The codespace: a Linux machine in GitHub's cloud, with its forwarding proxy.
    _panel(
        ax,
        (4.4, 3.2, 9.3, 5.1),
        HOST,
        "Your codespace (a Linux machine in GitHub's cloud)",
        "localhost = the codespace.  uvicorn and streamlit run here:\n"
        "curl http://localhost:8000/health  works in its terminal.",
        (14, 11),
        lw=2,
    )

    # The forwarding proxy: the only way in from the laptop.
    _box(ax, 4.6, 5.1, 3.5, 1.55, DOOR)
    _text(ax, 4.75, 6.5, "Port forwarding (GitHub)", 12, weight="bold")
    _text(ax, 4.75, 6.0, "https://<name>-8501\n  .app.github.dev", 10.5, family="DejaVu Sans Mono")
    _arrow(ax, (3.6, 5.9), (4.6, 5.9))
    _label(ax, 4.1, 6.35, "HTTPS")
    _text(
        ax,
        4.6,
        4.85,
        "delivers to localhost:8501\nof the codespace: a process\n(streamlit run) or a\ncontainer published there\nwith -p 8501:8501",
        10.5,
    )

    # A container inside the codespace.
    _panel(
        ax,
        (8.7, 3.45, 4.8, 3.2),
        FRONTEND,
        "A container in the codespace",
        "localhost = the container itself,\nnot the codespace.\n\n"
        "-p 8501:8501  publishes its port\n  on the codespace's localhost.\n"
        "--network host  shares the\n  codespace's localhost instead.",
        (12.5, 10.5),
    )
    _arrow(ax, (8.1, 5.5), (8.7, 5.5))
    _label(ax, 8.4, 5.05, "-p")

    # The Google Cloud VM: reached by its external IP, through the firewall.
    _panel(
        ax,
        (4.4, 0.25, 9.3, 2.55),
        CLOUD,
        "A VM in Google Cloud",
        "localhost = the VM.  The back-end's container listens on 8000 there.\n"
        "From anywhere else:  http://EXTERNAL_IP:8000  (its external IP),\n"
        "only if a firewall rule opens tcp:8000; and localhost:8000 on your\n"
        "laptop or in the codespace is NOT this VM.",
        (14, 11),
        lw=2,
    )
    _port(ax, 2.5, 1.55, "firewall: tcp:8000")
    _arrow(ax, (1.6, 5.0), (1.8, 1.9))
    _arrow(ax, (3.55, 1.55), (4.4, 1.55))
    _label(ax, 1.9, 3.5, "http://EXTERNAL_IP:8000")
    _save(fig, path)


def draw_all(out_dir: Path = ASSETS) -> list[Path]:
    """Write both pictures into ``out_dir`` and return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "microservices.png", out_dir / "where-is-localhost.png"]
    draw_microservices(paths[0])
    draw_where_is_localhost(paths[1])
    return paths


if __name__ == "__main__":
    for written in draw_all(Path(sys.argv[1]) if len(sys.argv) > 1 else ASSETS):
        print(written)
