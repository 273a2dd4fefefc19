"""What a running Streamlit page shows, asked the way a browser asks: over the page's own WebSocket.

A browser that opens a Streamlit page connects to ``/_stcore/stream`` and sends a request to run the script; the
server runs it and streams back each element it draws (a text box, a button, a red ``st.error``, the traceback of
an exception nobody caught), then says the run is over. A click is one more run request, with the button's state
in it. :func:`read_page` does the same with Streamlit's own messages (its ``BackMsg`` and ``ForwardMsg``), so a
checkpoint judges the page the student's server really serves, not a copy of the script run in the notebook.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState, WidgetStates

#: Where a Streamlit server streams its pages (the browser connects there too).
STREAM_PATH = "/_stcore/stream"
#: How a run that was cut short by another one ends (Streamlit's ScriptFinishedStatus): its page is not the last.
_FINISHED_EARLY_FOR_RERUN = ForwardMsg.ScriptFinishedStatus.FINISHED_EARLY_FOR_RERUN


@dataclass
class PageRun:
    """What one run of the page drew: its red messages, its uncaught exceptions, and its buttons by key."""

    errors: list[str] = field(default_factory=list)
    #: Each exception the page shows instead of running on: ``"ZeroDivisionError: division by zero"``.
    exceptions: list[str] = field(default_factory=list)
    #: The widget id of each button, by its key (``"is_alive"``), which a click sends back.
    buttons: dict[str, str] = field(default_factory=dict)


def _websocket_url(page_url: str) -> str:
    return page_url.rstrip("/").replace("http", "ws", 1) + STREAM_PATH


def _run(connection, widgets: list[WidgetState], timeout: float) -> PageRun:  # noqa: ANN001 (a websockets connection)
    """Ask for one run of the page with ``widgets``' states; read what it draws until the run is over."""
    request = BackMsg(rerun_script=ClientState(widget_states=WidgetStates(widgets=widgets)))
    connection.send(request.SerializeToString())
    run = PageRun()
    while True:
        message = ForwardMsg()
        message.ParseFromString(connection.recv(timeout=timeout))
        kind = message.WhichOneof("type")
        if kind == "script_finished":
            if message.script_finished == _FINISHED_EARLY_FOR_RERUN:
                run = PageRun()  # another run follows: its page is the one shown
                continue
            return run
        if kind != "delta" or message.delta.WhichOneof("type") != "new_element":
            continue
        element = message.delta.new_element
        drawn = element.WhichOneof("type")
        if drawn == "alert" and element.alert.format == Alert.Format.ERROR:
            run.errors.append(element.alert.body)
        elif drawn == "exception":
            kind = element.exception.type.rsplit(".", 1)[-1]  # "BackendUnavailableError", not its module's path
            run.exceptions.append(f"{kind}: {element.exception.message}".strip(": "))
        elif drawn == "button":
            key = element.button.id.rsplit("-", 1)[-1]  # user-keyed widgets end with their key: "$$ID-...-is_alive"
            run.buttons[key] = element.button.id


def read_page(page_url: str, click: str | None = None, timeout: float = 60.0) -> PageRun:
    """Open the page at ``page_url`` as a browser does and return what it shows; with ``click``, the key of a
    button, press it once the page is drawn and return what the page shows then.

    Raises :class:`OSError` when nothing serves the page there, :class:`KeyError` when the page has no such button,
    :class:`TimeoutError` when a run does not end within ``timeout`` seconds.
    """
    from websockets.sync.client import connect

    with connect(_websocket_url(page_url), subprotocols=["streamlit"], open_timeout=timeout, max_size=None) as page:
        shown = _run(page, [], timeout)
        if click is None:
            return shown
        button = shown.buttons[click]
        return _run(page, [WidgetState(id=button, trigger_value=True)], timeout)
