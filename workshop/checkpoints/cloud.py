"""Checkpoints of notebook 06, Google Cloud: the firewall rule written, the 401 predicted, the VM graded, what is
left after the clean-up; and, going further, the start-up script read.

No checkpoint needs Google Cloud: the answers are checked against the plan itself
(:mod:`workshop.deploy.notebook_cells` renders it), the start-up script's own text, and a real back-end
started here with an API key, called with the very curl command the notebook sends to the VM. Only the last
ones, :func:`vm_passes` and :func:`what_is_left`, talk to the cloud, and only once the student has deployed.
"""

from __future__ import annotations

import re
import shlex
import subprocess

from workshop.checkpoints import deployment_passes, expect, fail, guarded, passed, say
from workshop.deploy import notebook_cells
from workshop.deploy.gcp import API_KEY, EXTERNAL_IP, generate_api_key, startup_script_text, var

#: How the start-up script reads the image's name from the VM's metadata.
_IMAGE_FROM_METADATA = re.compile(r'IMAGE="\$\{IMAGE:-\$\(metadata ([\w-]+)\)\}"')
#: What the student may write for the source range: the variable the notebook set, or one address.
_VARIABLE = {"${SOURCE_RANGE}", "$SOURCE_RANGE"}
_ONE_ADDRESS = re.compile(r"(\d{1,3})(\.\d{1,3}){3}/32")


def startup_script(pull_line: object, metadata_key: object) -> None:
    """Exercise: the start-up script's line that pulls the image, and the metadata key the image's name is in."""

    def check() -> None:
        script = startup_script_text()
        lines = {line.strip() for line in script.splitlines() if line.strip()}
        expect(
            isinstance(pull_line, str) and pull_line.strip() != "",
            "Set pull_line to the line of the start-up script that pulls the image, copied as it is.",
            "Donnez à pull_line la ligne du script de démarrage qui télécharge l'image, copiée telle quelle.",
        )
        assert isinstance(pull_line, str)
        expect(
            pull_line.strip() in lines,
            "pull_line is not a line of workshop/deploy/startup.sh: copy one whole line from the cell above.",
            "pull_line n'est pas une ligne de workshop/deploy/startup.sh : copiez une ligne entière de la cellule "
            "ci-dessus.",
        )
        expect(
            "docker pull" in pull_line,
            "That line does not download the image: look for the docker command that fetches it from the registry.",
            "Cette ligne ne télécharge pas l'image : cherchez la commande docker qui la récupère dans le registre.",
        )
        found = _IMAGE_FROM_METADATA.search(script)
        key = found.group(1) if found else "image"
        expect(
            isinstance(metadata_key, str) and metadata_key.strip() == key,
            "metadata_key is not it: find the line IMAGE=... in the script, the word after 'metadata' is the key.",
            "metadata_key n'est pas la bonne : trouvez la ligne IMAGE=... du script, le mot après 'metadata' est la "
            "clé.",
        )
        create = next(step for step in notebook_cells.plan_steps() if step.title.en == "Create the VM")
        expect(
            any(word.startswith(f"--metadata={key}=") for word in create.command),
            f"The plan's create command no longer sets '{key}' in the VM's metadata: tell your teacher.",
            f"La commande de création du plan ne met plus '{key}' dans les métadonnées de la VM : prévenez "
            "l'enseignant.",
        )

    guarded(check, "The start-up script's answers could not be checked", "Les réponses sur le script de démarrage "
            "n'ont pas pu être vérifiées")
    passed(
        "Right: the VM pulls the image itself, at every boot, by the name (and digest) the plan put in its metadata.",
        "Exact : la VM télécharge elle-même l'image à chaque démarrage, sous le nom et l'empreinte que le plan a "
        "mis dans ses métadonnées.",
    )


def _words(text: str) -> list[str]:
    """The command's words as the shell splits them (backslash-newlines joined, comments and ``...`` dropped)."""
    words = shlex.split(text.replace("\\\n", " "), comments=True)
    flattened = []
    for index, word in enumerate(words):
        if word == "...":
            continue
        if word == "--source-ranges" and index + 1 < len(words):  # gcloud also takes "--flag value"
            continue
        if index and words[index - 1] == "--source-ranges":
            word = f"--source-ranges={word}"
        flattened.append(word)
    return flattened


def firewall_command(text: object) -> None:
    """Exercise: the firewall rule's command, with the flag that lets in your IP only."""

    def check() -> None:
        expect(
            isinstance(text, str) and text.strip() != "",
            "my_firewall_rule is empty: run the cell above with your flag written in it.",
            "my_firewall_rule est vide : exécutez la cellule ci-dessus, avec votre option écrite dedans.",
        )
        assert isinstance(text, str)
        try:
            words = _words(text)
        except ValueError as error:
            fail(f"The shell cannot read your command ({error}): check the quotes.",
                 f"Le shell ne peut pas lire votre commande ({error}) : vérifiez les guillemets.")
        plan = list(notebook_cells.firewall_step().command)
        given = [word for word in words if word.startswith("--source-ranges=")]
        expect(
            len(given) == 1,
            "Your command has no --source-ranges flag: add one line, --source-ranges=..., saying who may connect.",
            "Votre commande n'a pas d'option --source-ranges : ajoutez une ligne --source-ranges=... qui dit qui "
            "peut se connecter.",
        )
        value = given[0].split("=", 1)[1]
        expect(
            value not in {"0.0.0.0/0", "0.0.0.0"},
            "0.0.0.0/0 opens port 8000 to the whole internet: let in your own IP only (the SOURCE_RANGE variable).",
            "0.0.0.0/0 ouvre le port 8000 à tout internet : ne laissez entrer que votre IP (la variable "
            "SOURCE_RANGE).",
        )
        expect(
            value in _VARIABLE or bool(_ONE_ADDRESS.fullmatch(value)),
            f"--source-ranges={value} is not one address: write ${{SOURCE_RANGE}}, set above to your IP with /32.",
            f"--source-ranges={value} n'est pas une adresse unique : écrivez ${{SOURCE_RANGE}}, qui vaut votre IP "
            "suivie de /32.",
        )
        others = [word for word in words if not word.startswith("--source-ranges=")]
        expected = [word for word in plan if not word.startswith("--source-ranges=")]
        changed = next((word for word in expected if word not in others), None)
        expect(
            changed is None and len(others) == len(expected),
            f"The given lines changed (the plan has {changed or 'fewer words'}): keep them as they were, add your "
            "flag only.",
            f"Les lignes fournies ont changé (le plan a {changed or 'moins de mots'}) : gardez-les telles quelles, "
            "ajoutez seulement votre option.",
        )

    guarded(check, "Your firewall command could not be checked", "Votre commande de pare-feu n'a pas pu être vérifiée")
    passed(
        "Your rule matches the plan's: port 8000 of your VM, and of it alone (its tag), open to one address.",
        "Votre règle est celle du plan : le port 8000 de votre seule VM, désignée par son tag réseau, ouvert à "
        "une seule adresse.",
    )


def _status(output: str) -> int | None:
    found = re.findall(r"^HTTP (\d{3})$", output, flags=re.MULTILINE)
    return int(found[-1]) if found else None


def status_without_key(prediction: object) -> None:
    """Exercise: predict the status of a request without the key, then see it on a real back-end with a key.

    Any recorded guess passes: the point is to guess before seeing, then compare in one sentence.
    """
    from workshop.services import start_backend

    expect(
        isinstance(prediction, int) and not isinstance(prediction, bool) and 100 <= prediction <= 599,
        "Set status_without_key to a number: the HTTP status you expect (200, 401, 403, 404, 500...).",
        "Donnez à status_without_key un nombre : le code HTTP que vous attendez (200, 401, 403, 404, 500...).",
    )
    command = notebook_cells.CURL_WITHOUT_KEY
    answer: dict[str, str] = {}

    def run() -> None:
        # A back-end like the VM's: an API key set (the model is not needed to refuse a request: no warm-up).
        env = {"WORKSHOP_API_KEY": generate_api_key(), "WORKSHOP_WARMUP": "false"}
        with start_backend(env=env) as server:
            shown = command.replace(var(notebook_cells.API_URL), server.url)
            print(say("A local back-end started with WORKSHOP_API_KEY set, as on your VM; the notebook's command:",
                      "Un back-end local, protégé par WORKSHOP_API_KEY comme votre VM, reçoit la commande du "
                      "notebook :"))
            print(f"$ {shown}")
            result = subprocess.run(["bash", "-c", f"{notebook_cells.API_URL}={shlex.quote(server.url)}\n{command}"],
                                    capture_output=True, text=True, timeout=60)
            answer["output"] = result.stdout + result.stderr
        print(answer["output"].strip())

    guarded(run, "The local back-end could not answer", "Le back-end local n'a pas pu répondre")
    status = _status(answer.get("output", ""))
    expect(status is not None, "curl printed no status: is curl installed?",
           "curl n'a affiché aucun code : curl est-il installé ?")
    if prediction == status:
        passed(
            f"You predicted {prediction}, the back-end answered {status}: right, without the key the API refuses, and "
            "/health stays open, so anyone may see that the VM is up.",
            f"Vous aviez prévu {prediction}, le back-end a répondu {status} : exact. Sans la clé, l'API refuse, mais "
            "/health reste ouvert pour que chacun puisse voir que la VM répond.",
        )
    else:
        passed(
            f"You predicted {prediction}, the back-end answered {status}: without the key the API refuses (401 means "
            "'who are you?', the body above says so), and /health stays open.",
            f"Vous aviez prévu {prediction}, le back-end a répondu {status}. Sans la clé, l'API refuse : 401 veut dire "
            "« qui êtes-vous ? », comme l'explique la réponse ci-dessus. /health, lui, reste ouvert.",
        )


#: The mark of a checkpoint that could not run: as visible as the ✅ of the others.
NOT_VERIFIED = "⚠️"


def _not_verified() -> None:
    print(f"{NOT_VERIFIED} " + say("Not verified: nothing was deployed (RUN_IN_CLOUD is False).",
                                   "Non vérifié : rien n'a été déployé (RUN_IN_CLOUD vaut False)."))


def vm_passes(run_in_cloud: object) -> None:
    """After the deployment: grade the VM with ``workshop check``'s contract (nothing to grade before)."""
    if run_in_cloud is not True:
        _not_verified()
        return
    state = notebook_cells.read_state()
    expect(
        EXTERNAL_IP in state and "PORT" in state,
        "The VM's address is not known yet: run the cells above in order, from 'Your project' to the external IP.",
        "L'adresse de la VM n'est pas encore connue : exécutez les cellules ci-dessus dans l'ordre, de « votre "
        "projet » jusqu'à l'IP externe.",
    )
    url = f"http://{state[EXTERNAL_IP]}:{state['PORT']}"
    print(f"$ workshop check {url} --api-key ${{{API_KEY}}}")
    deployment_passes(url, state.get(API_KEY), what=say("Your VM", "Votre VM"))


def what_is_left(run_in_cloud: object) -> None:
    """After the clean-up: list what is left of this student's deployment, by exact names (the teardown's own
    checks); warn, without failing, about what still costs money."""
    from workshop.deploy.gcp import DeployConfig, leftover_checks
    from workshop.deploy.runner import list_leftovers

    if run_in_cloud is not True:
        _not_verified()
        return
    state = notebook_cells.read_state()
    expect(
        all(name in state for name in ("PROJECT_ID", "STUDENT", "REGION", "ZONE")),
        "Your names are not known yet: run the 'Your project' cell first.",
        "Vos noms ne sont pas encore connus : exécutez d'abord la cellule « votre projet ».",
    )
    config = DeployConfig(project=state["PROJECT_ID"], region=state["REGION"], zone=state["ZONE"],
                          student=state["STUDENT"])
    left: list[str] = []
    guarded(lambda: left.extend(list_leftovers(leftover_checks(config, delete_image=True))),
            "What is left could not be listed", "Ce qui reste n'a pas pu être listé")
    if left:
        print(f"{NOT_VERIFIED} " + say(f"Still there, and billed: {', '.join(left)}. Set "
                                       "I_REALLY_WANT_TO_DELETE = True and run the clean-up cells.",
                                       f"Encore là, et facturé : {', '.join(left)}. Mettez I_REALLY_WANT_TO_DELETE = "
                                       "True et exécutez les cellules du ménage."))
    else:
        passed("Nothing of yours is left: no VM, no disk, no firewall rule, no image.",
               "Plus rien à vous : ni VM, ni disque, ni règle de pare-feu, ni image.")
